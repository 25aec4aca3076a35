"""Contract of the one-writer, many-readers index: crash safety, concurrent writers, live swap.

A rebuild or update killed with SIGKILL at any point (sources parsed, segments
half written, build written, build renamed but not yet linked) or at a random
moment leaves the old index opening and answering exactly as before, leaves no
lock that blocks the next writer, and the next run cleans up after it and
answers the new data. A second writer waits at most --wait seconds and fails
with exit code 1 and one line naming the holder; a writer that finishes within
the wait lets it through. The site under gunicorn keeps answering while a
rebuild swaps in, and picks the new build up without a restart.
"""

import importlib.util
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS, corpus_lines
from indexer.store import builds_dir, live_build, writer_lock
from indexer.update import update_index
from indexer.writer import build_index
from search import Engine, SearchRequest

SEED_ONLY = ("金砖电池", "南京市长江大桥", "公司")  # answered by seeds/, not by the corpus head
CORPUS_ONLY = "国务院"  # in the corpus head, not in seeds/
QUERIES = (*SEED_ONLY, CORPUS_ONLY, "经济")
NEWSEARCH = str(Path(sys.executable).with_name("newsearch"))
POINTS = ("parsed", "writing", "written", "swap")


def answers(index_dir: Path) -> dict:
    """Return (total, first hit id) per query from a fresh Engine."""
    engine = Engine(index_dir)
    found = {}
    try:
        for q in QUERIES:
            answer = engine.search(SearchRequest(q=q), now=0)
            found[q] = (answer["total"], answer["hits"][0]["id"] if answer["hits"] else None)
    finally:
        engine.close()
    return found


def write_sample(tmp_path: Path, count: int, start: int = 0) -> Path:
    """Write corpus lines to a JSON Lines file in tmp_path."""
    path = tmp_path / f"sample-{start}-{count}.jsonl"
    path.write_text("".join(corpus_lines(count, start)), encoding="utf-8")
    return path


def seed_index(tmp_path: Path) -> Path:
    """Build an index of seeds/ in tmp_path; return its path."""
    index_dir = tmp_path / "index"
    build_index([str(SEEDS)], index_dir, jobs=1)
    return index_dir


def indexer_command(command: str, source: Path, index_dir: Path, *extra: str) -> list[str]:
    """Return the argv of `python -m indexer COMMAND SOURCE --index INDEX --jobs 2 ...`."""
    return [sys.executable, "-m", "indexer", command, str(source), "--index", str(index_dir), "--jobs", "2", *extra]


def run_crashing(argv: list[str], point: str) -> subprocess.CompletedProcess:
    """Run a writer that kills itself with SIGKILL at a crash point (bounded to 120 s)."""
    env = {**os.environ, "NEWSEARCH_CRASH_AT": point}
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def assert_unchanged(index_dir: Path, build: Path, before: dict) -> None:
    """Check that the index still points at its old build and answers exactly as before."""
    assert live_build(index_dir) == build
    assert answers(index_dir) == before


def stale_builds(index_dir: Path) -> list[str]:
    """Return the half-written build folders (*.tmp) of an index."""
    return sorted(p.name for p in builds_dir(index_dir).glob("*.tmp"))


def wait_until(condition, seconds: float) -> None:
    """Poll condition every 50 ms until it holds; fail after seconds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {seconds} s"
        time.sleep(0.05)


# ---- kill -9 at each crash point ----------------------------------------------


@pytest.mark.parametrize("point", POINTS)
def test_a_rebuild_killed_at_a_crash_point_leaves_the_old_index(tmp_path, point):
    index_dir = seed_index(tmp_path)
    build, before = live_build(index_dir), answers(index_dir)
    sample = write_sample(tmp_path, 1000)
    crashed = run_crashing(indexer_command("rebuild", sample, index_dir), point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert_unchanged(index_dir, build, before)
    if point in ("writing", "written"):
        assert stale_builds(index_dir) != []  # the half-written build is still there to clean up
    summary = build_index([str(sample)], index_dir, jobs=2, wait=2)
    assert summary["articles"] == 1000
    assert stale_builds(index_dir) == []
    after = answers(index_dir)
    assert after[CORPUS_ONLY][0] > 0 and before[CORPUS_ONLY][0] == 0
    assert after["金砖电池"] == (0, None) != before["金砖电池"]  # the seeds are gone: a rebuild replaces


@pytest.mark.parametrize("point", POINTS)
def test_an_update_killed_at_a_crash_point_leaves_the_old_index(tmp_path, point):
    index_dir = seed_index(tmp_path)
    build, before = live_build(index_dir), answers(index_dir)
    sample = write_sample(tmp_path, 600)
    crashed = run_crashing(indexer_command("update", sample, index_dir), point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert_unchanged(index_dir, build, before)
    summary = update_index([str(sample)], index_dir, jobs=2, wait=2)
    assert (summary["changed"], summary["added"], summary["deleted"]) == (True, 600, 0)
    assert stale_builds(index_dir) == []
    after = answers(index_dir)
    assert after[CORPUS_ONLY][0] > 0 and before[CORPUS_ONLY][0] == 0
    assert {q: after[q] for q in ("金砖电池", "南京市长江大桥")} == {q: before[q] for q in ("金砖电池", "南京市长江大桥")}
    assert update_index([str(sample)], index_dir, jobs=2, wait=2)["changed"] is False


@pytest.mark.parametrize("command", ["rebuild", "update"])
def test_a_crash_during_the_swap_leaves_no_orphan_build(tmp_path, command):
    """The next writer must keep the live build and the one before it (KEEP_BUILDS), not a never-live orphan."""
    index_dir = seed_index(tmp_path)
    previous = live_build(index_dir)
    sample = write_sample(tmp_path, 40)
    crashed = run_crashing(indexer_command(command, sample, index_dir), "swap")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert live_build(index_dir) == previous
    write = build_index if command == "rebuild" else update_index
    current = Path(write([str(sample)], index_dir, jobs=1, wait=2)["build"])
    kept = sorted(p.name for p in builds_dir(index_dir).iterdir() if p.is_dir())
    orphans = sorted(set(kept) - {previous.name, current.name})
    assert (previous.exists(), orphans) == (True, []), f"pruned the build readers were on, kept {orphans}"


def test_a_rebuild_killed_from_outside_at_a_random_moment(tmp_path):
    index_dir = seed_index(tmp_path)
    build, before = live_build(index_dir), answers(index_dir)
    sample = write_sample(tmp_path, 1500)
    proc = subprocess.Popen(indexer_command("rebuild", sample, index_dir), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: stale_builds(index_dir), 60)  # started: parsing, then writing, take 3 s or more
        time.sleep(random.Random(20261130).uniform(0.0, 2.5))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        returncode = proc.wait(60)
    assert returncode == -signal.SIGKILL
    assert_unchanged(index_dir, build, before)
    build_index([str(sample)], index_dir, jobs=2, wait=2)
    assert stale_builds(index_dir) == []
    assert answers(index_dir)[CORPUS_ONLY][0] > 0


def test_an_update_killed_from_outside_leaves_the_old_index(tmp_path):
    index_dir = seed_index(tmp_path)
    build, before = live_build(index_dir), answers(index_dir)
    sample = write_sample(tmp_path, 600)
    proc = subprocess.Popen(indexer_command("update", sample, index_dir), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: stale_builds(index_dir), 60)  # the update has started writing its build
        time.sleep(random.Random(7).uniform(0.0, 1.0))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        returncode = proc.wait(60)
    assert returncode == -signal.SIGKILL
    assert_unchanged(index_dir, build, before)
    assert update_index([str(sample)], index_dir, jobs=2, wait=2)["added"] == 600
    assert stale_builds(index_dir) == []


# ---- one writer at a time -------------------------------------------------------


def test_a_second_writer_on_the_cli_fails_naming_the_running_one(tmp_path):
    index_dir = seed_index(tmp_path)
    sample = write_sample(tmp_path, 1500)
    lock = builds_dir(index_dir) / "write.lock"
    first = subprocess.Popen(indexer_command("rebuild", sample, index_dir, "--json"), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_until(lambda: f"rebuild pid {first.pid} since" in lock.read_text(encoding="utf-8"), 60)
        os.kill(first.pid, signal.SIGSTOP)  # hold it there, however fast the machine: the lock stays taken
        started = time.monotonic()
        try:
            second = subprocess.run([NEWSEARCH, "update", str(SEEDS), "--index", str(index_dir), "--wait", "1"],
                                    cwd=ROOT, capture_output=True, text=True, timeout=60)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        waited = time.monotonic() - started
        out, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    assert (second.returncode, second.stdout) == (1, "")
    assert second.stderr.startswith(f"Error: index is busy: rebuild pid {first.pid} since ")
    assert second.stderr.endswith(f" holds {lock} (waited 1 s)\n") and second.stderr.count("\n") == 1
    assert 1.0 <= waited < 30
    assert first.returncode == 0 and '"ok": true' in out
    assert answers(index_dir)[CORPUS_ONLY][0] > 0


def test_a_second_writer_waits_for_one_that_finishes_within_wait(tmp_path):
    index_dir = seed_index(tmp_path)
    held = threading.Event()
    release = threading.Event()

    def hold():
        with writer_lock(index_dir, what="update"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        threading.Timer(1.0, release.set).start()
        done = subprocess.run([NEWSEARCH, "rebuild", str(SEEDS), "--index", str(index_dir), "--wait", "20", "--json"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        release.set()
        holder.join(10)
    assert done.returncode == 0, done.stderr
    assert live_build(index_dir).name in done.stdout


def test_a_busy_index_on_the_cli_names_an_in_process_holder(tmp_path):
    index_dir = seed_index(tmp_path)
    with writer_lock(index_dir, what="update"):
        done = subprocess.run([NEWSEARCH, "rebuild", str(SEEDS), "--index", str(index_dir), "--wait", "0.5"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: index is busy: update pid {os.getpid()} since ")
    assert done.stderr.endswith("(waited 0.5 s)\n")
    done = subprocess.run([NEWSEARCH, "rebuild", str(SEEDS), "--index", str(index_dir), "--wait", "0.5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# ---- live swap under gunicorn ---------------------------------------------------------


def load_live_swap():
    """Import scripts/live_swap.py, which the test shares with the reproducible script."""
    spec = importlib.util.spec_from_file_location("live_swap", ROOT / "scripts" / "live_swap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_rebuild_swaps_in_under_live_traffic_without_a_failed_request(tmp_path):
    live_swap = load_live_swap()
    result = live_swap.run_live_swap(tmp_path, requests=600, sample=1500, clients=4, workers=2, pause=0.02,
                                     timeout=180)
    assert (result["requests"], result["errors"], result["failures"]) == (600, 0, [])
    assert result["requests_during_rebuild"] > 0
    assert result["probes_before_rebuild"] and set(result["probes_before_rebuild"]) == {0}
    assert result["probes_after_rebuild"] > 0 and result["stale_after_rebuild"] == 0
    assert result["new_build"] == result["rebuilt_build"] != result["old_build"]
    assert result["documents"] == 1500
    assert live_swap.succeeded(result)
