"""Time what related searches add to the full answer: ``python -m bench.related [--docs N] [--index PATH]``.

Builds an index of N corpus items spread over the corpus (3,000 by default;
or reads PATH, built from the same N items), then asks the fixed query mix of
``bench run`` (bench/queries.py) after a warm-up. Each query is answered
REPEATS times with related searches and as often without (search/related.py's
MIN_HITS set past any total, so none is made), the two alternating, and the
median of each kept: on a busy machine a pair measured together differs by what
related searches cost, not by what the machine did meanwhile. Prints one
markdown table: p50/p95/p99 of the full answer with and without, and of the
difference (also over the queries with at least SAMPLE matches, whose sample is
whole), and what the related searches read.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import corpus, queries

REPEATS = 3
QUERIES = 300
WARMUP = 30


def main(argv: list[str]) -> None:
    count = int(argv[argv.index("--docs") + 1]) if "--docs" in argv else 3000
    docs, _ = corpus.load_docs(corpus.DEFAULT_CORPUS, count)
    with tempfile.TemporaryDirectory() as folder:
        index = Path(argv[argv.index("--index") + 1]) if "--index" in argv else _build(docs, Path(folder))
        rows = measure(index, docs)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{count:,} items, {QUERIES} queries of the `bench run` mix, median of {REPEATS} answers each, ms "
          f"(load average after: {load} on {os.cpu_count()} cores)\n")
    print("| answer | p50 | p95 | p99 | mean |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, values in rows["times"].items():
        if not values:
            continue
        p = queries.percentiles(values)
        print(f"| {name} | {p['p50']:.1f} | {p['p95']:.1f} | {p['p99']:.1f} | {p['mean']:.1f} |")
    print(f"\nanswers with related searches: {rows['with']} of {QUERIES}, {rows['entries']:.1f} each on average; "
          f"stored documents read for them: median {rows['stored']:.0f}; cut by the time share: {rows['capped']}")


def _build(docs: list[dict], folder: Path) -> Path:
    from indexer.writer import build_index

    build_index([str(corpus.write_docs(docs, folder))], folder / "index", jobs=1)
    return folder / "index"


def measure(index: Path, docs: list[dict]) -> dict:
    """Return per-query median seconds with and without related searches, their difference, and what they read."""
    from search import related

    answer = queries.ours_answerer(index)
    queries.time_each(answer, queries.make_queries(docs, WARMUP, seed=queries.WARMUP_SEED))
    floor = related.MIN_HITS
    times: dict[str, list[float]] = {"with related": [], "without": [], "difference": [],
                                     f"difference, {related.SAMPLE}+ matches": []}
    made, stored, capped = [], [], 0
    for item in queries.make_queries(docs, QUERIES):
        runs: dict[bool, list[float]] = {True: [], False: []}
        for turn in range(2 * REPEATS):
            on = turn % 2 == 0
            related.MIN_HITS = floor if on else sys.maxsize
            started = time.perf_counter()
            result = answer(item)
            runs[on].append(time.perf_counter() - started)
            if on and turn == 0:
                broad = result["total"] >= related.SAMPLE  # a whole sample to read (less its stories' other copies)
                made.append(len(result["related"]))
                stored.append(result["work"]["sampled"])
                capped += "related" in result["work"]["capped"]
        related.MIN_HITS = floor
        with_, without = statistics.median(runs[True]), statistics.median(runs[False])
        times["with related"].append(with_)
        times["without"].append(without)
        times["difference"].append(with_ - without)
        if broad:
            times[f"difference, {related.SAMPLE}+ matches"].append(with_ - without)
    return {"times": times, "with": sum(1 for n in made if n), "entries": statistics.mean(n for n in made if n),
            "stored": statistics.median(stored), "capped": capped}


if __name__ == "__main__":
    main(sys.argv[1:])
