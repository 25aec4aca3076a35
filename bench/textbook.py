"""The textbook setup: Whoosh with jieba's ChineseAnalyzer on title and body, as the tutorials show it.

One ``ix.writer()``, every document added, one commit. Queries go through
``MultifieldParser`` over title and body and ``searcher.search(q, limit=10,
groupedby=…)``; the ten hits' title and body are highlighted with
``hit.highlights``. Facet fields are sortable columns, and year and month are
indexed as their own fields (not ``DateRangeFacet``, whose per-bucket queries
would make the textbook path slower than it needs to be).

Run as ``python -m bench.textbook DOCS FOLDER`` to build an index (the rebuild step does).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta

import jieba
from jieba.analyse import ChineseAnalyzer
from whoosh import index as whoosh_index
from whoosh import query, sorting
from whoosh.fields import DATETIME, ID, TEXT, Schema
from whoosh.qparser import MultifieldParser

jieba.setLogLevel(60)

FACETS = ("category", "source", "year", "month")
# The site's preset windows, as the range facet counts them.
PRESET_DAYS = {"1d": 1, "1w": 7, "1m": 31, "1y": 366}


def build_schema() -> Schema:
    """Return the textbook schema."""
    analyzer = ChineseAnalyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        title=TEXT(stored=True, analyzer=analyzer),
        body=TEXT(stored=True, analyzer=analyzer),
        category=ID(stored=True, sortable=True),
        source=ID(stored=True, sortable=True),
        date=DATETIME(stored=True, sortable=True),
        year=ID(sortable=True),
        month=ID(sortable=True),
    )


def to_document(doc: dict) -> dict:
    """Return the textbook index document of a corpus item."""
    moment = datetime.strptime(doc["date"], "%Y-%m-%d %H:%M:%S")
    return {
        "id": doc["id"],
        "title": doc["title"],
        "body": doc["body"],
        "category": doc.get("category") or None,  # Whoosh skips None
        "source": doc.get("source") or None,
        "date": moment,
        "year": f"{moment:%Y}",
        "month": f"{moment:%Y-%m}",
    }


def build_index(docs_path: str, folder: str) -> int:
    """Build the textbook index of a JSON Lines file in folder: one writer, one commit; return the count."""
    from bench.corpus import read_docs

    ix = whoosh_index.create_in(folder, build_schema())
    writer = ix.writer()
    count = 0
    for doc in read_docs(docs_path):
        writer.add_document(**to_document(doc))
        count += 1
    writer.commit()
    return count


def make_parser(ix) -> MultifieldParser:
    """Return the textbook query parser over title and body."""
    return MultifieldParser(["title", "body"], ix.schema)


def search_kwargs(item, now: datetime) -> dict:
    """Return the search() arguments of a benchmark query: limit, facets, filter, sort."""
    facets = sorting.Facets()
    for name in FACETS:
        facets.add_field(name)
    presets = {key: query.DateRange("date", now - timedelta(days=days), now) for key, days in PRESET_DAYS.items()}
    facets.add_facet("range", sorting.QueryFacet(presets, allow_overlap=True))
    kwargs = {"limit": 10, "groupedby": facets, "maptype": sorting.Count}
    filters = []
    if item.category:
        filters.append(query.Term("category", item.category))
    if item.date_from:
        start = datetime.combine(item.date_from, datetime.min.time())
        end = datetime.combine(item.date_to, datetime.max.time())
        filters.append(query.DateRange("date", start, end))
    if filters:
        kwargs["filter"] = filters[0] if len(filters) == 1 else query.And(filters)
    if item.sort == "newest":
        kwargs.update(sortedby="date", reverse=True)
    return kwargs


def answer(searcher, parser, item, now: datetime) -> dict:
    """Answer a benchmark query the textbook way: top 10, highlights, all facets."""
    results = searcher.search(parser.parse(item.q), **search_kwargs(item, now))
    hits = [
        {
            "id": hit["id"],
            "title_html": hit.highlights("title") or hit["title"],
            "snippet_html": hit.highlights("body"),
            "category": hit.get("category"),
            "published": hit["date"].isoformat(sep=" "),
        }
        # With groupedby Whoosh collects every hit, limit or not: take the top 10 ourselves.
        for hit in results[:10]
    ]
    facets = {name: results.groups(name) for name in (*FACETS, "range")}
    return {"total": len(results), "hits": hits, "facets": facets}


def main(argv: list[str]) -> None:
    """Build the textbook index: DOCS FOLDER; print the count as JSON."""
    docs_path, folder = argv
    print(json.dumps({"documents": build_index(docs_path, folder)}))


if __name__ == "__main__":
    main(sys.argv[1:])
