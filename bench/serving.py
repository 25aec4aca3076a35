"""The site as deployed: gunicorn throughput and latency, worker memory, and `newsearch serve` start-up.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import psutil

from bench.queries import BenchQuery, percentiles
from bench.rebuild import bench_env, newsearch_command
from indexer.memory import proc_kb

HOST = "127.0.0.1"
WORKERS = 2
CLIENTS = 4
WARMUP_REQUESTS = 20  # untimed, so each worker has opened the index
READY_TIMEOUT = 120.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def fetch(port: int, path: str, timeout: float = 30.0) -> int:
    """GET a path from 127.0.0.1:port and read the whole answer; return the status (0 when unreachable)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def wait_until(port: int, path: str, proc: subprocess.Popen, timeout: float = READY_TIMEOUT) -> float:
    """Poll a path until it answers 200; return the moment (perf_counter) it did."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {path}")
        if fetch(port, path, timeout=5.0) == 200:
            return time.perf_counter()
        time.sleep(0.02)
    raise RuntimeError(f"no 200 from {path} within {timeout:g} s")


@contextmanager
def running(command: list[str], env: dict):
    """Run a server command for the duration of a block, then stop it (and only it)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def search_path(item: BenchQuery) -> str:
    """Return the /api/search URL path of a query."""
    return "/api/search?" + urllib.parse.urlencode(item.params())


def load(port: int, paths: list[str], clients: int) -> dict:
    """Send every path once from `clients` threads; return requests/s, latency percentiles and errors."""
    timings: list[float] = []
    errors = [0]
    lock = threading.Lock()
    queue = iter(paths)

    def client() -> None:
        while True:
            with lock:
                path = next(queue, None)
            if path is None:
                return
            started = time.perf_counter()
            status = fetch(port, path)
            elapsed = time.perf_counter() - started
            with lock:
                timings.append(elapsed)
                errors[0] += status != 200

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"requests": len(timings), "seconds": wall, "rps": len(timings) / wall, "errors": errors[0],
            **percentiles(timings)}


def run_http(index_dir, items: list[BenchQuery], requests: int) -> dict:
    """Serve the index with gunicorn (2 workers), load it from 4 clients; add each worker's private memory."""
    port = free_port()
    env = {**bench_env(), "NEWSEARCH_INDEX": str(index_dir)}
    command = [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-b", f"{HOST}:{port}", "web:create_app()"]
    paths = [search_path(items[i % len(items)]) for i in range(requests)]
    with running(command, env) as proc:
        wait_until(port, "/healthz", proc)
        load(port, [search_path(items[-1 - i % len(items)]) for i in range(WARMUP_REQUESTS)], CLIENTS)
        result = load(port, paths, CLIENTS)
        workers = psutil.Process(proc.pid).children()
        result["worker_uss"] = [w.memory_full_info().uss for w in workers]
        result["worker_rss"] = [w.memory_info().rss for w in workers]
        result["worker_anon"] = [anonymous_bytes(w.pid) for w in workers]
    return result


def anonymous_bytes(pid: int) -> int | None:
    """Return a process's anonymous memory (heap, not file pages it maps), from /proc smaps_rollup."""
    return proc_kb(f"/proc/{pid}/smaps_rollup", "Anonymous")


def run_startup(index_dir) -> dict:
    """Time `newsearch serve` on an existing index from spawn to its first answered search."""
    port = free_port()
    command = [*newsearch_command(), "serve", "--index", str(index_dir), "--port", str(port)]
    env = bench_env()
    started = time.perf_counter()
    with running(command, env) as proc:
        answered = wait_until(port, "/api/search?" + urllib.parse.urlencode({"q": "中国"}), proc)
        rss = psutil.Process(proc.pid).memory_info().rss
    return {"seconds": answered - started, "rss": rss}
