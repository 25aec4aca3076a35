"""Rebuild throughput: our rebuild, the textbook build and the segmentation floor, each in a subprocess.

Every contender runs as its own command, so its wall time includes start-up and
reading the documents, and its memory is that of its whole process tree:
sampled every SAMPLE_SECONDS, summed over the process and its children, and
reported as the peak of the sums (RSS, which counts pages shared after a fork
once per process, and PSS, which splits them). CPU time is the tree's user +
system seconds (getrusage of reaped children), which other load on the machine
disturbs less than wall time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.environment import REPO

SAMPLE_SECONDS = 0.2


@dataclass
class Measured:
    """One command's wall time, peak tree memory and output."""

    name: str
    wall_s: float
    cpu_s: float
    peak_rss: int
    peak_pss: int
    stdout: str
    index_bytes: int | None = None


def bench_env() -> dict:
    """Return the environment for benchmark subprocesses: bench importable, no progress bars."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("NEWSEARCH_PROGRESS", None)
    return env


def newsearch_command() -> list[str]:
    """Return how to run the newsearch CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("newsearch")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "web"]


def _tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """Return the summed RSS and PSS of a process and its descendants."""
    rss = pss = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for member in members:
        try:
            info = member.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def run_measured(name: str, command: list[str], cwd: Path | None = None, env: dict | None = None) -> Measured:
    """Run a command to its end, sampling its process tree's memory; raise if it fails.

    env: variables to set besides bench_env()'s.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, tempfile.TemporaryFile("w+") as err:
        cpu_before = _children_cpu()
        started = time.perf_counter()
        popen = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd, env={**bench_env(), **(env or {})})
        proc = psutil.Process(popen.pid)
        peak_rss = peak_pss = 0
        while popen.poll() is None:
            rss, pss = _tree_memory(proc)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if popen.returncode != 0:
        raise RuntimeError(f"{name} failed with exit {popen.returncode}: {stderr[-2000:]}")
    return Measured(name, wall, cpu, peak_rss, peak_pss, stdout)


def _children_cpu() -> float:
    """Return the user + system seconds of every reaped child process (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dir_size(path: Path) -> int:
    """Return the bytes of all files under a folder, following a link to it."""
    return sum(p.stat().st_size for p in Path(path).resolve().rglob("*") if p.is_file())


def rebuild_ours(docs_path: Path, work: Path) -> Measured:
    """Time `newsearch rebuild` with its defaults (all cores) into work/index."""
    index = work / "index"
    result = run_measured("newsearch rebuild", [*newsearch_command(), "rebuild", str(docs_path),
                                                "--index", str(index), "--json"])
    summary = json.loads(result.stdout)
    if not summary.get("ok"):
        raise RuntimeError(f"newsearch rebuild failed: {result.stdout[-2000:]}")
    result.index_bytes = dir_size(index)
    return result


def rebuild_textbook(docs_path: Path, work: Path) -> Measured:
    """Time the textbook build (one writer, one commit) into work/textbook."""
    folder = work / "textbook"
    folder.mkdir()
    result = run_measured("textbook", [sys.executable, "-m", "bench.textbook", str(docs_path), str(folder)])
    result.index_bytes = dir_size(folder)
    return result


def segment_floor(docs_path: Path, segmenter: str) -> Measured:
    """Time segmentation alone of the same text with a segmenter on all cores."""
    return run_measured(f"floor {segmenter}", [sys.executable, "-m", "bench.floor", str(docs_path), segmenter])


def run_rebuilds(docs_path: Path, work: Path, log) -> dict[str, Measured]:
    """Run every rebuild contender in turn; return them by key (ours, textbook, jieba, rjieba)."""
    steps = {
        "ours": lambda: rebuild_ours(docs_path, work),
        "textbook": lambda: rebuild_textbook(docs_path, work),
        "jieba": lambda: segment_floor(docs_path, "jieba"),
        "rjieba": lambda: segment_floor(docs_path, "rjieba"),
    }
    results = {}
    for key, step in steps.items():
        log(f"rebuild: {key} …")
        results[key] = step()
        log(f"rebuild: {key} {results[key].wall_s:.1f} s")
    return results
