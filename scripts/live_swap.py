"""Rebuild an index under live search traffic and show that no request fails and answers switch.

Serves an index built from seeds/ with gunicorn (WORKERS workers, 127.0.0.1
only), runs CLIENTS client threads that send a fixed number of searches, and
meanwhile runs `newsearch rebuild` over a sample of the shared corpus into the
same index path. The new build swaps in while the site keeps serving; a query
only the corpus answers (国务院) must go from 0 hits to some without a restart,
and /healthz must name the new build. Prints requests, errors, p50/p95 and the
moment of the swap; exits 1 when any request failed or the answers did not switch.

Example:

    /work/venv/bin/python scripts/live_swap.py --requests 600 --sample 3000

tests/test_reliability.py imports ``run_live_swap`` from here.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
CORPUS = ROOT.parent / "shared" / "corpus" / "news.jsonl.gz"
HOST = "127.0.0.1"  # the only address this script talks to
NEW_ONLY = "国务院"  # in the corpus sample, not in seeds/
REQUESTS = [("/api/search", {"q": NEW_ONLY}), ("/api/search", {"q": "经济 发展"}), ("/api/search", {"q": "公司"}),
            ("/search", {"q": NEW_ONLY}), ("/api/search", {"q": "南京市长江大桥", "sort": "newest"}), ("/healthz", {})]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def write_sample(path: Path, count: int, start: int = 0) -> Path:
    """Write count lines of the shared corpus (read at run time, never copied into the repo) to path."""
    with gzip.open(CORPUS, "rt", encoding="utf-8") as src, open(path, "w", encoding="utf-8") as out:
        out.writelines(itertools.islice(src, start, start + count))
    return path


def fetch(port: int, path: str, params: dict, timeout: float = 30.0) -> tuple[int, bytes]:
    """GET a path of the local site; return status and body."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path + ("?" + urlencode(params) if params else ""))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def start_gunicorn(index_dir: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    """Start gunicorn serving web:create_app() over index_dir on 127.0.0.1:port, in its own process group."""
    env = {**os.environ, "NEWSEARCH_INDEX": str(index_dir), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"{HOST}:{port}", "--timeout", "60",
               "web:create_app()"]
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_gunicorn(server: subprocess.Popen) -> None:
    """Stop the gunicorn this script started (its own process group), waiting at most 10 s."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60.0) -> dict:
    """Poll /healthz until it answers 200 (bounded); return its JSON."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            status, body = fetch(port, "/healthz", {}, timeout=5)
            if status == 200:
                return json.loads(body)
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:g} s")


class Traffic:
    """Client threads sharing a fixed request budget, some of it kept for after the rebuild."""

    def __init__(self, port: int, budget: int, clients: int, reserve: int, pause: float, deadline: float) -> None:
        self.port, self.budget, self.clients = port, budget, clients
        self.reserve, self.pause, self.deadline = reserve, pause, deadline
        self.rebuilt = threading.Event()
        self.lock = threading.Lock()
        self.issued = 0
        self.log: list[dict] = []  # one record per request: start, seconds, status, path, total, build, error

    def take(self) -> int | None:
        """Return the next request number, or None when the budget (or the time) is used up."""
        while time.monotonic() < self.deadline:
            with self.lock:
                if self.issued >= self.budget:
                    return None
                if self.rebuilt.is_set() or self.budget - self.issued > self.reserve:
                    self.issued += 1
                    return self.issued - 1
            time.sleep(0.05)  # keep the reserve for after the swap
        return None

    def client(self) -> None:
        """Send requests until the budget is used."""
        while (number := self.take()) is not None:
            path, params = REQUESTS[number % len(REQUESTS)]
            self.log_one(path, params)
            time.sleep(self.pause)

    def log_one(self, path: str, params: dict) -> None:
        record = {"start": time.monotonic(), "path": path, "q": params.get("q"), "status": None,
                  "total": None, "build": None, "error": None}
        try:
            status, body = fetch(self.port, path, params)
            record["status"] = status
            if path.startswith("/api/") and status == 200:
                record["total"] = json.loads(body)["total"]
            elif path == "/healthz" and status == 200:
                record["build"] = json.loads(body)["build"]
        except (OSError, ValueError, KeyError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["seconds"] = time.monotonic() - record["start"]
        with self.lock:
            self.log.append(record)

    def run(self) -> list[threading.Thread]:
        """Start the client threads; return them."""
        threads = [threading.Thread(target=self.client, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        return threads


def rebuild(sample: Path, index_dir: Path, timeout: float) -> dict:
    """Run `newsearch rebuild` of the sample into the index; return its JSON summary and timing."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "indexer", "rebuild", str(sample), "--index", str(index_dir),
                           "--jobs", "2", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    ended = time.monotonic()
    if done.returncode != 0:
        raise RuntimeError(f"rebuild failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"started": started, "ended": ended, "summary": json.loads(done.stdout)}


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile of values."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def summarize(traffic: Traffic, built: dict, before: dict, after: dict, t0: float) -> dict:
    """Return the figures of a run: counts, errors, latency, and when answers switched."""
    log = sorted(traffic.log, key=lambda r: r["start"])
    failed = [r for r in log if r["error"] or r["status"] != 200]
    probes = [r for r in log if r["q"] == NEW_ONLY and r["total"] is not None]
    switched = [r for r in probes if r["total"] > 0]
    after_rebuild = [r for r in probes if r["start"] > built["ended"]]
    ms = [r["seconds"] * 1000 for r in log]
    return {
        "requests": len(log), "errors": len(failed), "failures": failed[:10],
        "p50_ms": round(percentile(ms, 0.50), 1), "p95_ms": round(percentile(ms, 0.95), 1),
        "rebuild_started_s": round(built["started"] - t0, 2), "rebuild_ended_s": round(built["ended"] - t0, 2),
        "first_new_answer_s": round(switched[0]["start"] - t0, 2) if switched else None,
        "requests_during_rebuild": sum(built["started"] <= r["start"] <= built["ended"] for r in log),
        "probes_before_rebuild": [r["total"] for r in probes if r["start"] < built["started"]][:3],
        "probes_after_rebuild": len(after_rebuild),
        "stale_after_rebuild": sum(r["total"] == 0 for r in after_rebuild),
        "old_build": before["build"], "new_build": after["build"],
        "rebuilt_build": Path(built["summary"]["build"]).name, "documents": after["documents"],
        "healthz_builds": sorted({r["build"] for r in log if r["build"]}),
    }


def run_live_swap(workdir: Path, requests: int = 600, sample: int = 3000, clients: int = 4, workers: int = 2,
                  pause: float = 0.05, timeout: float = 300.0) -> dict:
    """Serve a seed index, rebuild it from a corpus sample under traffic, and return the figures."""
    from indexer.writer import build_index

    index_dir = workdir / "index"
    build_index([str(SEEDS)], index_dir, jobs=1)
    lines = write_sample(workdir / "sample.jsonl", sample)
    port = free_port()
    server = start_gunicorn(index_dir, port, workers, workdir / "gunicorn.log")
    try:
        before = wait_healthy(port, server)
        t0 = time.monotonic()
        traffic = Traffic(port, requests, clients, reserve=max(clients * 10, requests // 4), pause=pause,
                          deadline=t0 + timeout)
        threads = traffic.run()
        time.sleep(1.0)  # some answers from the old index first
        try:
            built = rebuild(lines, index_dir, timeout)
        finally:
            traffic.rebuilt.set()
        for thread in threads:
            thread.join(max(1.0, traffic.deadline - time.monotonic()))
        after = wait_healthy(port, server)
        return summarize(traffic, built, before, after, t0)
    finally:
        stop_gunicorn(server)


def report(result: dict) -> str:
    """Return the figures as the lines the script prints."""
    return "\n".join([
        f"requests {result['requests']}  errors {result['errors']}  "
        f"p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms",
        f"rebuild ran {result['rebuild_started_s']} s .. {result['rebuild_ended_s']} s "
        f"({result['requests_during_rebuild']} requests meanwhile)",
        f"first answer from the new index at {result['first_new_answer_s']} s; "
        f"'{NEW_ONLY}' hits before: {result['probes_before_rebuild']}, "
        f"after the rebuild: {result['probes_after_rebuild']} probes, {result['stale_after_rebuild']} stale",
        f"/healthz build {result['old_build']} -> {result['new_build']} ({result['documents']} documents), "
        f"seen: {', '.join(result['healthz_builds'])}",
        *(f"FAILED: {f}" for f in result["failures"]),
    ])


def succeeded(result: dict) -> bool:
    """Tell whether no request failed and every worker switched to the new build."""
    return (result["errors"] == 0 and result["stale_after_rebuild"] == 0 and result["probes_after_rebuild"] > 0
            and result["new_build"] == result["rebuilt_build"] != result["old_build"]
            and all(total == 0 for total in result["probes_before_rebuild"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="requests in all (default 600)")
    parser.add_argument("--sample", type=int, default=3000, help="corpus items to rebuild from (default 3000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds each client waits between requests")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before the run gives up")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="live-swap-"))
    try:
        result = run_live_swap(workdir, args.requests, args.sample, args.clients, args.workers, args.pause,
                               args.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(result))
    ok = succeeded(result)
    print("OK: 0 failed requests, answers switched without a restart" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
