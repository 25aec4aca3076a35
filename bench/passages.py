"""Time pasted passages by length on an index: ``python -m bench.passages INDEX [--cold] [--count N]``.

A reader who wants an older article again pastes a sentence or a paragraph of
it. From a fixed random draw of the index's own articles, spans of 20, 50, 100
and 256 characters are cut out of one paragraph each (no spaces or line breaks
inside, punctuation kept: the beginnings of one 256-character span of each
article), and each is asked unquoted and in quotes (a quoted
256 holds 254 characters: a query is read up to 256). Each is asked once,
after a pass over all of them (the page cache warm), the posting cache
emptied before each; with --cold, the index is closed, its files dropped from
the page cache (bench.environment.evict) and opened again before each: a
process's own mappings keep their pages cached, and opening is not timed. Prints one markdown row per
length and form: the full answer's p50/p95/slowest in ms, the median and
largest postings and position lists, the stored articles read, how many
passes were cut (by the postings cap or the deadline: searched < 100 %), how
many hit another cap, how many matched their article but ranked it below the
top 10 (the same text stands in more than ten articles), and how many did not
match it at all (found means the article, or one with its very title: a larger
archive holds copies).
Asserts nothing about time.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

from bench import environment

LENGTHS = (20, 50, 100, 256)
COUNT = 25  # passages per length
SEED = 20261205


def draw_passages(searcher, count: int = COUNT, seed: int = SEED) -> list[tuple[dict, str]]:
    """Return (an article's stored fields, a 256-character span of one of its paragraphs) for count articles
    drawn at random; the shorter passages are the span's beginnings."""
    rng = random.Random(seed)
    total = searcher.doc_count_all()
    out: list[tuple[dict, str]] = []
    for _ in range(200 * count):
        if len(out) == count:
            break
        doc = rng.randrange(total)
        if searcher.reader().is_deleted(doc):
            continue
        fields = searcher.stored_fields(doc)
        pieces = [p for p in (fields.get("body") or "").split() if len(p) >= LENGTHS[-1]]
        if pieces:
            piece = rng.choice(pieces)
            start = rng.randrange(len(piece) - LENGTHS[-1] + 1)
            out.append((fields, piece[start:start + LENGTHS[-1]]))
    return out


def pasted(span: str, length: int, quoted: bool) -> str:
    """Return the query of a span's first length characters, as pasted (a quoted one fits in 256)."""
    return f'"{span[:min(length, 254)]}"' if quoted else span[:length]


def main(argv: list[str]) -> None:
    from search import Engine, SearchRequest

    index = Path(argv[0])
    count = int(argv[argv.index("--count") + 1]) if "--count" in argv else COUNT
    cold = "--cold" in argv
    engine = Engine(index)
    build = engine.current()
    with engine.borrowed(build) as searcher:
        passages = draw_passages(searcher, count)
    asked = [(length, form, pasted(span, length, form == "quoted"), fields)
             for length in LENGTHS for fields, span in passages for form in ("unquoted", "quoted")]
    for _, _, q, _ in asked:  # the page cache warm (dropped again before each with --cold)
        engine.search(SearchRequest(q=q, size=10))
    rows: dict[tuple[int, str], list] = {}
    for length, form, q, fields in asked:
        if cold:  # pages a process maps stay in the page cache: close the index, drop it, open it again
            engine.close()
            environment.evict(index)
            engine = Engine(index)
            build = engine.current()
        with build.cache.lock:
            build.cache.items.clear()
            build.cache.size = 0
        started = time.perf_counter()
        answer = engine.search(SearchRequest(q=q, size=10))
        ms = (time.perf_counter() - started) * 1000
        found = _holds(answer, fields) or (_matched(engine, q, fields) and "crowded")
        rows.setdefault((length, form), []).append((ms, answer["work"], found))
    engine.close()
    print(f"{'cold' if cold else 'warm'}: {len(passages)} articles, a passage of each length of each, asked unquoted and quoted")
    print("| length | form | p50 ms | p95 ms | slowest ms | postings (median, max) | position lists (median, max) "
          "| stored read (max) | cut | other caps | below the top 10 | not found |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (length, form), done in rows.items():
        ms = np.array([d[0] for d in done])
        works = [d[1] for d in done]
        postings = [w["postings"] for w in works]
        positions = [w["positions"] for w in works]
        cut = sum(w["searched"] < 1 for w in works)
        capped = sum(bool(set(w["capped"]) - {"time", "postings"}) for w in works)
        print(f"| {length} | {form} | {np.percentile(ms, 50):,.1f} | {np.percentile(ms, 95):,.1f} | {ms.max():,.1f} "
              f"| {np.median(postings):,.0f}, {max(postings):,} | {np.median(positions):,.0f}, {max(positions):,} "
              f"| {max(w['stored'] for w in works):,} | {cut} | {capped} | {sum(d[2] == 'crowded' for d in done)} "
              f"| {sum(not d[2] for d in done)} |", flush=True)


def _holds(answer: dict, fields: dict) -> bool:
    """Tell whether an answer's page holds the article (or one with its very title: a larger archive holds copies)."""
    return any(h["id"] == fields["id"] or h["title"] == fields.get("title") for h in answer["hits"])


def _matched(engine, q: str, fields: dict) -> bool:
    """Tell whether the article is among a query's matches at all (untimed, 50 a page, as far as pages go).

    A passage can stand in more than ten articles (the growth benchmark's copies
    swap paragraphs between items): its article is then matched but may rank
    below ten others holding the very same text.
    """
    from search import SearchRequest
    from search.request import MAX_PAGE

    for page in range(1, MAX_PAGE + 1):
        answer = engine.search(SearchRequest(q=q, size=50, page=page))
        if _holds(answer, fields):
            return True
        if page * 50 >= answer["stories"]:
            return False
    return False


if __name__ == "__main__":
    main(sys.argv[1:])
