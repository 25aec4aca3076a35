"""Time hostile query shapes on an index: ``python -m bench.hostile INDEX [--cold] [--load N]``.

Each shape (those of tests/test_limits.py, a span of common characters that
is checked by position, misspellings that find nothing and so try did-you-mean
repairs, a query whose best hits are scored for proximity; then the paths
beside matching: autocomplete of a one-character and a common two-character
prefix, the longest article's page with its copies and similar articles, and
the list of the largest story) is asked twice, the posting cache emptied
before each (with --cold, the index's files are dropped from the page cache
before the first: bench.environment.evict; with --load N, N threads of the
same engine keep asking ordinary searches meanwhile, as a threaded server's
other requests do); one markdown row per shape: both
times in ms, the hits (suggestions, similar articles) and the answer's work
(postings, position lists, stored documents read, caps hit: every answer
carries it). Asserts nothing about time. The 256-character clause is cut from
the first corpus item's body.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from bench import corpus, environment

PAIRS = list(zip("中美经社文科教农工商国人发会议时民政法安全城乡交", "国国济会化技育业业务家民展议员代主府治全面市村通"))
LETTERS = "中国人大会议发展经济社会主义建设工作时间新闻联播"
LOAD = ["经济", "中国 发展", "国务院 会议", "改革开放", "习近平", "新闻联播"]  # what --load's threads ask


def shapes(body: str) -> dict[str, tuple[str, dict | str]]:
    """Return the shapes by name: (query, request parameters or "facets" for every facet selected)."""
    return {
        '24 quoted "中 国"': (" ".join(['"中 国"'] * 24), {}),
        "24 different quoted pairs with a space": (" ".join(f'"{a} {b}"' for a, b in PAIRS), {}),
        "24 different quoted pairs with a comma": (" ".join(f'"{a}，{b}"' for a, b in PAIRS), {}),
        "a 256-character clause": (body[:256], {}),
        "24 single characters": (" ".join(LETTERS), {}),
        "- and OR everywhere": (" OR ".join(["中国", "-美国", "经济", "-发展", "会议", "-工作"] * 4), {}),
        "中国, page 1,000": ("中国", {"page": 1000, "size": 50}),
        "经济, every facet selected, 一年内": ("经济", "facets"),
        "经济": ("经济", {}),
        "国人民 (common characters, checked by position)": ("国人民", {}),
        "人工智障 大模形 (misspelt, nothing found: did-you-mean)": ("人工智障 大模形", {}),
        "习近平总书计 (misspelt, nothing found: did-you-mean)": ("习近平总书计", {}),
    }


def asked(engine, body: str) -> dict:
    """Return each shape's call by name."""
    from indexer.schema import BODY, ID_FIELD
    from search import SearchRequest

    build = engine.current()
    first = engine.search(SearchRequest(q="经济"))
    every = {"categories": tuple(f["value"] for f in first["facets"]["category"]),
             "sources": tuple(f["value"] for f in first["facets"]["source"]), "range": "1y"}
    calls = {name: partial(engine.search, SearchRequest(q=q, **(every if params == "facets" else params)))
             for name, (q, params) in shapes(body).items()}
    lengths = build.lengths[BODY].copy()
    if build.cache.deleted is not None:
        lengths[build.cache.deleted] = -1
    with engine.borrowed(build) as searcher:
        longest = searcher.stored_fields(int(lengths.argmax()))[ID_FIELD]
    calls["经济 发展 改革 开放 (proximity of the best 50 hits)"] = partial(engine.search, SearchRequest(q="经济 发展 改革 开放"))
    calls["autocomplete 中"] = partial(engine.complete, "中")
    calls["autocomplete 中国"] = partial(engine.complete, "中国")
    calls["the longest article's page (copies, similar articles)"] = partial(engine.article, longest)
    calls["an article page of 经济's best hit"] = partial(engine.article, first["hits"][0]["id"], q="经济")
    cols = build.columns
    if cols.story is not None and len(cols.story_keys):
        largest = f"{int(cols.story_keys[int(cols.story_size.argmax())]):016x}"
        calls[f"the largest story's list ({int(cols.story_size.max()):,} copies)"] = partial(
            engine.search, SearchRequest(q="", story=largest, size=50))
    return calls


def found_in(answer: dict) -> int:
    """Return what an answer found: hits, suggestions or similar articles."""
    if "total" in answer:
        return answer["total"]
    return len(answer["suggestions"]) if "suggestions" in answer else len(answer["more_like_this"])


@contextmanager
def loaded(engine, threads: int):
    """Keep threads asking ordinary searches of the engine while the block runs."""
    from search import SearchRequest

    stop = threading.Event()

    def ask() -> None:
        for q in itertools.cycle(LOAD):
            if stop.is_set():
                return
            engine.search(SearchRequest(q=q))

    workers = [threading.Thread(target=ask, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def main(argv: list[str]) -> None:
    from search import Engine

    engine = Engine(argv[0])
    load = int(argv[argv.index("--load") + 1]) if "--load" in argv else 0
    build = engine.current()
    docs, _ = corpus.load_docs(corpus.DEFAULT_CORPUS, 1)
    body = "".join(docs[0]["body"].split())
    print("| shape | ms | ms again | hits | postings | position lists | stored read | capped | searched | passes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    with loaded(engine, load):
        for name, ask in asked(engine, body).items():
            row(engine, build, name, ask, "--cold" in argv)
    engine.close()


def row(engine, build, name: str, ask, cold: bool) -> None:
    """Ask one shape twice, the posting cache emptied before each, and print its row."""
    times = []
    for again in range(2):
        if not again and cold:
            environment.evict(Path(engine.index_dir))
        with build.cache.lock:
            build.cache.items.clear()
            build.cache.size = 0
        started = time.perf_counter()
        answer = ask()
        times.append((time.perf_counter() - started) * 1000)
    work = answer["work"]
    print(f"| {name} | {times[0]:,.0f} | {times[1]:,.0f} | {found_in(answer):,} | {work['postings']:,} | "
          f"{work['positions']:,} | {work['stored']:,} | {', '.join(work['capped']) or '—'} | "
          f"{work['searched']:.1%} | {work['passes']} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
