"""Time the timeline of a search's matches on an index: ``python -m bench.timeline INDEX``.

For broad queries and for every document of the archive (the most a timeline
can cover), times ``search.facets.timeline`` alone on those matches (median of
REPEATS runs) and prints one markdown row each: matches, unit, buckets, ms.
"""

from __future__ import annotations

import statistics
import sys
import time

from search import Engine, SearchRequest
from search.facets import Selection, timeline
from search.match import Matcher
from search.query import parse_query

QUERIES = ("中国", "发展", "会议", "新闻联播")
REPEATS = 50


def main(argv: list[str]) -> None:
    engine = Engine(argv[0])
    build = engine.current()
    published = build.columns.published
    cases = {}
    for q in QUERIES:
        with engine.borrowed(build) as searcher:
            hits = Matcher(searcher, build.cache, build.lengths, published, build.windows).query(parse_query(q))
        cases[q] = published[hits.docs]
    cases["every document"] = published
    print("| matches of | matches | unit | buckets | timeline ms (median) | full answer ms |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name, values in cases.items():
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            result = timeline(values, Selection())
            times.append((time.perf_counter() - started) * 1000)
        answer_ms = "—"
        if name in QUERIES:
            answer_ms = f"{statistics.median(engine.search(SearchRequest(q=name))['took_ms'] for _ in range(5)):.1f}"
        print(f"| {name} | {len(values):,} | {result['unit']} | {len(result['buckets'])} | "
              f"{statistics.median(times):.2f} | {answer_ms} |")
    engine.close()


if __name__ == "__main__":
    main(sys.argv[1:])
