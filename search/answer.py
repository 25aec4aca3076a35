"""Shape the parts of an answer as plain data.

A hit (its title and snippet highlighted), another copy of a story on an
article page, the strings a query highlights, the facet selection of a
request, and times and story ids as the API shows them. search/engine.py puts
them together.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from indexer import analysis
from indexer.schema import ARTICLE, BODY, ID_FIELD, TITLE
from search import facets, highlight
from search.query import Clause, ParsedQuery
from search.request import SearchRequest


def story_id(key: int) -> str:
    """Return the id of a story key as the API shows it: 16 hexadecimal digits."""
    return f"{key:016x}"


def selection_of(request: SearchRequest, now: int) -> facets.Selection:
    """Return the facet selection of a request."""
    start = end = None
    if request.range:
        start, end = now - facets.PRESETS[request.range][1] + 1, now + 1
    if request.date_from:
        start = _day_epoch(request.date_from)
    if request.date_to:
        end = _day_epoch(request.date_to) + facets.DAY
    return facets.Selection(request.categories, request.sources, start, end, request.range,
                            request.person, request.place, request.org)


def _day_epoch(day) -> int:
    return (day - datetime(1970, 1, 1).date()).days * facets.DAY


def iso_time(epoch: int) -> str:
    """Return an epoch time as the answer shows it: YYYY-MM-DD HH:MM:SS."""
    return (datetime(1970, 1, 1) + timedelta(seconds=epoch)).isoformat(sep=" ")


def needles_of(parsed: ParsedQuery) -> list[str]:
    """Return the literal strings whose occurrences a hit highlights."""
    needles: set[str] = set()
    for clause in parsed.positive:
        if clause.field in ("source", "category"):
            continue
        needles.update(_clause_needles(clause))
    return sorted(needles, key=len, reverse=True)


def _clause_needles(clause: Clause) -> set[str]:
    folded = analysis.normalize(clause.text).strip()
    runs = analysis.word_runs(folded)
    found = {folded} if folded else set()
    found.update(r for r in runs if len(r) > 1 or len(runs) == 1)
    if not clause.phrase:
        found.update(w for w in clause.words() if len(w) > 1)
    return found


def copy_data(stored: dict) -> dict:
    """Return what an article page lists of another copy of its story."""
    return {"id": stored[ID_FIELD], "title": stored.get(TITLE, ""), "source": stored.get("source") or None,
            "published": iso_time(stored["published"]) if stored.get("published") else None,
            "url": stored.get("url") or None}


def hit_data(stored: dict, needles: list[str], score: float | None) -> dict:
    """Return the plain data of one hit, title and snippet highlighted."""
    title = stored.get(TITLE, "")
    body = stored.get(BODY, "")
    return {
        "id": stored[ID_FIELD],
        "kind": stored.get("kind", ARTICLE),
        "title": title,
        "title_html": highlight.highlight(title, needles),
        "snippet_html": highlight.snippet(body, needles),
        "category": stored.get("category") or None,
        "source": stored.get("source") or None,
        "published": iso_time(stored["published"]) if stored.get("published") else None,
        "url": stored.get("url") or None,
        "score": score,
    }


def article_data(stored: dict, needles: list[str], story: dict | None, copies: list[dict],
                 alike: list[dict], work: dict) -> dict:
    """Return the plain data of an article page: the hit, its body marked, its copies and similar articles."""
    data = hit_data(stored, needles, None)
    data.update({
        "body_html": [highlight.highlight(p, needles) for p in stored.get(BODY, "").split("\n") if p],
        "origin": stored.get("origin") or None,
        "snapshot_time": stored.get("snapshot_time") or None,
        "related": json.loads(stored.get("related") or "[]"),
        "parent": stored.get("parent") or None,
        "story": story,
        "copies": [copy_data(c) for c in copies],
        "more_like_this": [copy_data(c) for c in alike],
        "work": work,
    })
    return data
