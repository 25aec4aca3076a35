"""Time hostile query shapes on an index: ``python -m bench.hostile INDEX [--cold]``.

Each shape (those of tests/test_limits.py, a span of common characters that
is checked by position, misspellings that find nothing and so try did-you-mean
repairs; then a one-character autocomplete and an article page with its copies
and similar articles) is asked twice, the posting cache emptied before each
(with --cold, the index's files are dropped from the page cache before the
first: bench.environment.evict); one markdown row per shape: both times in ms,
the hits (suggestions, similar articles) and a search's work (postings,
position lists, stored documents read, caps hit).
Asserts nothing about time. The 256-character clause is cut from the first
corpus item's body.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

from bench import corpus, environment

PAIRS = list(zip("中美经社文科教农工商国人发会议时民政法安全城乡交", "国国济会化技育业业务家民展议员代主府治全面市村通"))
LETTERS = "中国人大会议发展经济社会主义建设工作时间新闻联播"


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


def main(argv: list[str]) -> None:
    from search import Engine, SearchRequest

    engine = Engine(argv[0])
    build = engine.current()
    docs, _ = corpus.load_docs(corpus.DEFAULT_CORPUS, 1)
    body = "".join(docs[0]["body"].split())
    first = engine.search(SearchRequest(q="经济"))
    every = {"categories": tuple(f["value"] for f in first["facets"]["category"]),
             "sources": tuple(f["value"] for f in first["facets"]["source"]), "range": "1y"}
    page = first["hits"][0]["id"]
    asked = {name: partial(engine.search, SearchRequest(q=q, **(every if params == "facets" else params)))
             for name, (q, params) in shapes(body).items()}
    asked["autocomplete 中"] = lambda: engine.complete("中")
    asked["an article page (copies, similar articles)"] = lambda: engine.article(page, q="经济")
    print("| shape | ms | ms again | hits | postings | position lists | stored read | capped | searched | passes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for name, ask in asked.items():
        times = []
        for again in range(2):
            if not again and "--cold" in argv:
                environment.evict(Path(argv[0]))
            with build.cache.lock:
                build.cache.items.clear()
                build.cache.size = 0
            started = time.perf_counter()
            answer = ask()
            times.append((time.perf_counter() - started) * 1000)
        if isinstance(answer, list):
            found, work = len(answer), None
        elif "work" in answer:
            found, work = answer["total"], answer["work"]
        else:
            found, work = len(answer["more_like_this"]), None
        counts = "— | — | — | — | — | —" if work is None else (
            f"{work['postings']:,} | {work['positions']:,} | {work['stored']:,} | {', '.join(work['capped']) or '—'} | "
            f"{work['searched']:.1%} | {work['passes']}")
        print(f"| {name} | {times[0]:,.0f} | {times[1]:,.0f} | {found:,} | {counts} |", flush=True)
    engine.close()


if __name__ == "__main__":
    main(sys.argv[1:])
