"""The fixed query set and the latency of our engine and of the textbook path over it.

Queries are drawn with a fixed seed from the benchmark's own documents, so a
run with the same --docs asks the same questions. Kinds cycle fastest, then
filters, then sorts, so every (kind, filter, sort) combination appears equally:

    word      a jieba word (2+ characters) of a title          中国经济
    two       two words of one title                           经济 发展
    phrase    a quoted span of 4-8 characters of a body        "推进高质量发展"
    substring an unquoted span of 3-6 characters of a body     质量发展新
    title     a whole title, as copied from a page                 国务院常务会议部署推进高质量发展
    × no filter / category (the source item's) / date (a year around the item)
    × relevance / newest
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

KINDS = ("word", "two", "phrase", "substring", "title")
FILTERS = ("none", "category", "date")
SORTS = ("relevance", "newest")
SEED = 20240501
WARMUP_SEED = 7
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{6,}")
_STOP = set("的了和与及或是在也就都而着之于被把让对从以其这那个")


@dataclass(frozen=True)
class BenchQuery:
    """One query as a user sends it: text, filters and sort."""

    q: str
    kind: str
    filter: str
    category: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "relevance"

    def params(self) -> dict:
        """Return the query as /api/search parameters."""
        params = {"q": self.q, "sort": self.sort}
        if self.category:
            params["category"] = self.category
        if self.date_from:
            params.update({"from": self.date_from.isoformat(), "to": self.date_to.isoformat()})
        return params


def _title_words(title: str) -> list[str]:
    import jieba

    words = [w for w in jieba.cut(title) if len(w) >= 2 and all("\u4e00" <= ch <= "\u9fff" for ch in w)]
    return list(dict.fromkeys(w for w in words if not set(w) <= _STOP))


def _body_span(rng: random.Random, body: str, low: int, high: int) -> str | None:
    runs = _CJK_RUN.findall(body)
    if not runs:
        return None
    run = rng.choice(runs)
    size = min(len(run), rng.randint(low, high))
    start = rng.randrange(len(run) - size + 1)
    return run[start:start + size]


def _text_of(rng: random.Random, kind: str, doc: dict) -> str | None:
    if kind == "word":
        words = _title_words(doc["title"])
        return rng.choice(words) if words else None
    if kind == "two":
        words = _title_words(doc["title"])
        return " ".join(rng.sample(words, 2)) if len(words) >= 2 else None
    if kind == "phrase":
        span = _body_span(rng, doc["body"], 4, 8)
        return f'"{span}"' if span else None
    if kind == "title":
        return doc["title"].strip() or None
    return _body_span(rng, doc["body"], 3, 6)


def make_queries(docs: list[dict], count: int, seed: int = SEED) -> list[BenchQuery]:
    """Return count queries drawn reproducibly from the documents, every combination in turn."""
    import jieba

    jieba.setLogLevel(60)
    rng = random.Random(seed)
    labelled = [d for d in docs if d.get("category")] or docs
    out: list[BenchQuery] = []
    while len(out) < count:
        i = len(out)
        kind, filt = KINDS[i % len(KINDS)], FILTERS[(i // len(KINDS)) % len(FILTERS)]
        sort = SORTS[(i // (len(KINDS) * len(FILTERS))) % len(SORTS)]
        doc = rng.choice(labelled if filt == "category" else docs)
        text = _text_of(rng, kind, doc)
        if text:
            out.append(_with_filter(BenchQuery(text, kind, filt, sort=sort), doc))
    return out


def _with_filter(item: BenchQuery, doc: dict) -> BenchQuery:
    if item.filter == "category" and doc.get("category"):
        return BenchQuery(item.q, item.kind, item.filter, category=doc["category"], sort=item.sort)
    if item.filter == "date":
        day = datetime.strptime(doc["date"][:10], "%Y-%m-%d").date()
        return BenchQuery(item.q, item.kind, item.filter, date_from=day - timedelta(days=182),
                          date_to=day + timedelta(days=182), sort=item.sort)
    return item


def percentiles(seconds: list[float]) -> dict:
    """Return p50, p95, p99 and the mean of timings, in milliseconds."""
    ms = np.array(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean()), "n": len(ms)}


def time_each(answer, items: list[BenchQuery]) -> tuple[list[float], list[int]]:
    """Time answer(item) for each item; return the seconds and each answer's total."""
    seconds, totals = [], []
    for item in items:
        started = time.perf_counter()
        result = answer(item)
        seconds.append(time.perf_counter() - started)
        totals.append(result["total"])
    return seconds, totals


def ours_answerer(index_dir):
    """Return a function answering a query with our engine, as the site does."""
    from search import Engine

    return engine_answerer(Engine(index_dir))


def engine_answerer(engine):
    """Return a function answering a query with an engine of either backend, as the site does."""
    from search import SearchRequest

    def answer(item: BenchQuery) -> dict:
        return engine.search(SearchRequest(q=item.q, categories=(item.category,) if item.category else (),
                                           date_from=item.date_from, date_to=item.date_to, sort=item.sort))

    return answer


def textbook_answerer(folder):
    """Return a function answering a query the textbook way, over the textbook index."""
    from whoosh import index as whoosh_index

    from bench import textbook

    ix = whoosh_index.open_dir(str(folder))
    searcher = ix.searcher()
    parser = textbook.make_parser(ix)
    now = datetime.now()
    return lambda item: textbook.answer(searcher, parser, item, now)


def run_queries(index_dir, textbook_dir, items: list[BenchQuery], warmup: list[BenchQuery], log) -> dict:
    """Time both paths: warm up on other queries, then pass 1 (each query's first sight), pass 2 (repeat, ours)."""
    results = {}
    for key, make in (("ours", ours_answerer), ("textbook", textbook_answerer)):
        answer = make(index_dir if key == "ours" else textbook_dir)
        log(f"queries: {key} warm-up …")
        time_each(answer, warmup)
        log(f"queries: {key} pass 1 …")
        first, totals = time_each(answer, items)
        results[key] = {"first": percentiles(first), "seconds": first, "totals": totals}
        if key == "ours":
            results[key]["repeat"] = percentiles(time_each(answer, items)[0])
    return results
