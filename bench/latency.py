"""Time the full answer on an existing index: ``python -m bench.latency INDEX [--cold]``.

The fixed query mix of the growth benchmark (bench/scale.py's latency
columns), drawn from the shared corpus, asked once each after a warm-up; prints
one markdown table of p50/p95/p99, p95 per kind and the slowest query.
--cold first drops the index's files from the page cache (bench.environment.evict).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench import corpus, environment, scale


def main(argv: list[str]) -> None:
    docs, _ = corpus.load_docs(corpus.DEFAULT_CORPUS, None)
    if "--cold" in argv:
        print(f"dropped {environment.evict(Path(argv[0])) / 1e9:.1f} GB from the page cache", file=sys.stderr)
    columns = scale.latency_columns(Path(argv[0]), docs)
    print("| " + " | ".join(columns) + " |")
    print("|" + " ---: |" * len(columns))
    print("| " + " | ".join(columns.values()) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
