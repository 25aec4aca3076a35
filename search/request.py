"""A search request: the structural parameters, validated strictly.

What users type into the box is never an error (search/query.py reads it
leniently); a bad page, size, sort, date or an unknown parameter is, and
``RequestError`` names the parameter and its limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from search.facets import PRESETS

MAX_SIZE = 50
MAX_PAGE = 1000
SORTS = ("relevance", "newest", "oldest")
BEIJING = timezone(timedelta(hours=8))
# Every parameter a request may carry, with what it means.
PARAMETERS = {
    "q": "the query text",
    "category": "category filter (repeatable; OR within)",
    "source": "source filter (repeatable; OR within)",
    "person": "person filter: a name from facets.person (repeatable; OR within)",
    "place": "place filter: a name from facets.place (repeatable; OR within)",
    "org": "organisation filter: a name from facets.org (repeatable; OR within)",
    "range": "preset date window: " + ", ".join(f"{k} ({v[0]})" for k, v in PRESETS.items()),
    "from": "first publish date, YYYY-MM-DD",
    "to": "last publish date, YYYY-MM-DD (inclusive)",
    "sort": "relevance (default), newest or oldest",
    "page": f"page number, 1 to {MAX_PAGE}",
    "size": f"hits per page, 1 to {MAX_SIZE} (default 10)",
    "collapse": "1 (default): one hit per story, the others counted; 0: every copy",
    "story": "a story id: list every copy of that story, first published first",
}
STORY_ID = re.compile(r"[0-9a-f]{16}")


class RequestError(ValueError):
    """A structural parameter is invalid; names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class SearchRequest:
    """Everything one search asks for."""

    q: str = ""
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    person: tuple[str, ...] = ()
    place: tuple[str, ...] = ()
    org: tuple[str, ...] = ()
    range: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "relevance"
    page: int = 1
    size: int = 10
    collapse: bool = True
    story: str | None = None  # 16 hex digits (search/answer.py: story_id)

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise RequestError("sort", f"must be one of {', '.join(SORTS)}")
        if self.range is not None and self.range not in PRESETS:
            raise RequestError("range", f"must be one of {', '.join(PRESETS)}")
        if not 1 <= self.page <= MAX_PAGE:
            raise RequestError("page", f"must be a whole number from 1 to {MAX_PAGE}")
        if not 1 <= self.size <= MAX_SIZE:
            raise RequestError("size", f"must be a whole number from 1 to {MAX_SIZE}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise RequestError("from", "must not be after to")
        if self.story is not None and not STORY_ID.fullmatch(self.story):
            raise RequestError("story", "must be a story id: 16 hexadecimal digits, as a hit's story.id")


def now_epoch() -> int:
    """Return the current Beijing wall-clock time as the index stores times."""
    moment = datetime.now(BEIJING).replace(tzinfo=None)
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def _int(params: Mapping, name: str, default: int, limit: int) -> int:
    raw = _one(params, name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise RequestError(name, f"must be a whole number from 1 to {limit}") from None


def _date(params: Mapping, name: str) -> date | None:
    raw = _one(params, name)
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise RequestError(name, "must be a date as YYYY-MM-DD") from None


def _one(params: Mapping, name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value


def _many(params: Mapping, name: str) -> tuple[str, ...]:
    if hasattr(params, "getlist"):
        values = params.getlist(name)
    else:
        value = params.get(name) or ()
        values = [value] if isinstance(value, str) else list(value)
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def parse_request(params: Mapping, strict: bool = True) -> SearchRequest:
    """Build a request from query-string style parameters.

    :raises RequestError: for a bad structural parameter, or (strict) an unknown one.
    """
    if strict:
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise RequestError(unknown[0], f"unknown parameter; known: {', '.join(PARAMETERS)}")
    return SearchRequest(
        q=_one(params, "q") or "",
        categories=_many(params, "category"),
        sources=_many(params, "source"),
        person=_many(params, "person"),
        place=_many(params, "place"),
        org=_many(params, "org"),
        range=_one(params, "range") or None,
        date_from=_date(params, "from"),
        date_to=_date(params, "to"),
        sort=_one(params, "sort") or "relevance",
        page=_int(params, "page", 1, MAX_PAGE),
        size=_int(params, "size", 10, MAX_SIZE),
        collapse=_flag(params, "collapse", True),
        story=(_one(params, "story") or "").strip().lower() or None,
    )


def _flag(params: Mapping, name: str, default: bool) -> bool:
    raw = (_one(params, name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise RequestError(name, "must be 1 or 0")
