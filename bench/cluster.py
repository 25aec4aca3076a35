"""The cluster row: the same rebuild and query mix against a local 3-node OpenSearch cluster.

The cluster is started by `newsearch cluster start` in a folder of the run's work folder (full JIT, not
`--quick`: that would slow indexing and searching) and stopped at the end, also when a step fails. The
rebuild is `newsearch rebuild --backend opensearch --json`, timed as the embedded rebuild is: our build of
the same documents, then their bulk load into a new index and the alias swap; its summary gives the load's
own time. The queries are the run's fixed mix through `OpenSearchEngine.search`, after the same warm-up. A
query that ends with the cluster's deadline error (ClusterTimeoutError: no answer within the request's 1 s,
search/opensearch_calls.py) is counted as timed out, left out of the percentiles and of the totals compared,
and the run goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from bench.queries import BenchQuery, engine_answerer, percentiles, time_each
from bench.rebuild import bench_env, newsearch_command, run_measured

NODES = 3
ALIAS = "newsearch-bench"


def start_cluster(folder: Path) -> tuple[str, float]:
    """Start the nodes with `newsearch cluster start`; return the URL and the seconds until green."""
    started = time.perf_counter()
    done = subprocess.run([*newsearch_command(), "cluster", "start", "--nodes", str(NODES), "--dir", str(folder),
                           "--stop-with", str(os.getpid())], capture_output=True, text=True, env=bench_env())
    if done.returncode != 0:
        raise RuntimeError(f"newsearch cluster start failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1], time.perf_counter() - started


def stop_cluster(folder: Path) -> None:
    """Stop the nodes with `newsearch cluster stop`."""
    subprocess.run([*newsearch_command(), "cluster", "stop", "--dir", str(folder)], capture_output=True,
                   text=True, env=bench_env(), check=False)


def rebuild_into(url: str, docs_path: Path, index: Path):
    """Time `newsearch rebuild --backend opensearch`; return the measurement and the cluster's summary."""
    result = run_measured("newsearch rebuild --backend opensearch", [
        *newsearch_command(), "rebuild", str(docs_path), "--index", str(index), "--backend", "opensearch",
        "--url", url, "--alias", ALIAS, "--json"])
    summary = json.loads(result.stdout)
    if not summary.get("ok") or "cluster" not in summary:
        raise RuntimeError(f"newsearch rebuild --backend opensearch failed: {result.stdout[-2000:]}")
    return result, summary["cluster"]


def time_queries(url: str, items: list[BenchQuery], warmup: list[BenchQuery], log) -> dict:
    """Answer the warm-up, then every query once, through OpenSearchEngine; return timings and totals.

    A query out of time has None as its total and no timing; "first" is None when every query was.
    """
    from search.opensearch_engine import OpenSearchEngine

    engine = OpenSearchEngine(url, ALIAS)
    try:
        answer = within_deadline(engine_answerer(engine))
        log("cluster: queries warm-up …")
        time_each(answer, warmup)
        log("cluster: queries pass 1 …")
        seconds, totals = time_each(answer, items)
    finally:
        engine.close()
    answered = [s for s, total in zip(seconds, totals) if total is not None]
    return {"first": percentiles(answered) if answered else None, "seconds": answered, "totals": totals,
            "timed_out": totals.count(None)}


def within_deadline(answer):
    """Return answer made to give {"total": None} for a query the cluster did not answer within the deadline."""
    from search.opensearch_calls import ClusterTimeoutError

    def bounded(item: BenchQuery) -> dict:
        try:
            return answer(item)
        except ClusterTimeoutError:
            return {"total": None}

    return bounded


def run_cluster(docs_path: Path, work: Path, items: list[BenchQuery], warmup: list[BenchQuery], log) -> dict:
    """Start a 3-node cluster under work, rebuild into it, time the query mix, stop it; return the figures."""
    folder = work / "cluster"
    log(f"cluster: starting {NODES} nodes …")
    try:
        url, start_s = start_cluster(folder)
        log(f"cluster: green in {start_s:.1f} s; rebuild …")
        rebuilt, loaded = rebuild_into(url, docs_path, work / "cluster-index")
        log(f"cluster: rebuild {rebuilt.wall_s:.1f} s (load {loaded['load_s']:.1f} s)")
        queries = time_queries(url, items, warmup, log)
    finally:
        stop_cluster(folder)
    return {"nodes": NODES, "start_s": start_s, "rebuild": rebuilt, "load_s": loaded["load_s"],
            "sent": loaded["sent"], "queries": queries}
