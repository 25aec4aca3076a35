"""Facet counts over all hits from column arrays, never a Python loop over hits.

At open, each document's category, source and publish time become numpy
arrays indexed by document number. A request's hits are an array of document
numbers; each facet's counts are a ``bincount`` over the hits that pass every
*other* facet's selection (within a facet the choice is OR, so its own
selection must not hide its other values), and the answer's hits are those
that pass all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer.schema import CATEGORY, NO_CATEGORY, PUBLISHED, SOURCE

DAY = 86400
# Preset date windows, relative to now, in the order the site shows them.
PRESETS = {"1d": ("一天内", DAY), "1w": ("一周内", 7 * DAY), "1m": ("一月内", 31 * DAY), "1y": ("一年内", 366 * DAY)}


@dataclass(frozen=True)
class Columns:
    """Per-document facet values of one index build."""

    categories: list[str]
    category: np.ndarray  # int32 code into categories
    sources: list[str]
    source: np.ndarray
    published: np.ndarray  # int64 seconds; 0 = unknown
    month: np.ndarray  # int32 YYYYMM; 0 = unknown
    story: np.ndarray | None = None  # int32 story code per document (None: a build without stories)
    story_keys: np.ndarray | None = None  # uint64 story key per code
    story_size: np.ndarray | None = None  # live documents per code


def load_columns(arrays: dict[str, np.ndarray]) -> Columns:
    """Build the facet columns from a build's per-document arrays (indexer/columns.py)."""
    published = arrays[PUBLISHED]
    months = published.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    month = np.where(published > 0, (months // 12 + 1970) * 100 + months % 12 + 1, 0).astype(np.int32)
    return Columns(arrays[f"{CATEGORY}_labels"].tolist(), arrays[CATEGORY],
                   arrays[f"{SOURCE}_labels"].tolist(), arrays[SOURCE], published, month,
                   arrays.get("story"), arrays.get("story_keys"), arrays.get("story_size"))


@dataclass(frozen=True)
class Selection:
    """What the request narrowed the hits to."""

    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    start: int | None = None  # seconds, inclusive
    end: int | None = None  # seconds, exclusive
    preset: str | None = None


def _member(codes: np.ndarray, labels: list[str], chosen: tuple[str, ...]) -> np.ndarray | None:
    if not chosen:
        return None
    wanted = [labels.index(v) for v in chosen if v in labels]
    return np.isin(codes, np.array(wanted, dtype=np.int32))


def _all(*masks):
    result = None
    for m in masks:
        if m is not None:
            result = m if result is None else result & m
    return result


def apply(columns: Columns, docs: np.ndarray, sel: Selection, now: int) -> tuple[np.ndarray, dict, dict]:
    """Return the hits that pass the selection, the facet counts and the timeline."""
    cat = _member(columns.category[docs], columns.categories, sel.categories)
    src = _member(columns.source[docs], columns.sources, sel.sources)
    pub = columns.published[docs]
    date = None
    if sel.start is not None or sel.end is not None:
        date = (pub >= (sel.start if sel.start is not None else -(2**62))) & (pub < (sel.end if sel.end is not None else 2**62))
    final = _all(cat, src, date)
    hits = docs if final is None else docs[final]
    facets = {
        "category": _value_counts(columns.categories, columns.category, _pick(docs, src, date), sel.categories, skip=NO_CATEGORY),
        "source": _value_counts(columns.sources, columns.source, _pick(docs, cat, date), sel.sources, skip=""),
    }
    dated = _pick(docs, cat, src)  # every filter but the date's
    facets.update(_date_counts(columns, dated, sel, now))
    return hits, facets, timeline(columns.published[dated], sel)


def _pick(docs: np.ndarray, *masks) -> np.ndarray:
    m = _all(*masks)
    return docs if m is None else docs[m]


def _value_counts(labels, codes, docs, chosen, skip) -> list[dict]:
    counts = np.bincount(codes[docs], minlength=len(labels))
    order = sorted(range(len(labels)), key=lambda i: (-counts[i], labels[i]))
    out = [{"value": labels[i], "count": int(counts[i]), "selected": labels[i] in chosen}
           for i in order if (counts[i] or labels[i] in chosen) and labels[i] != skip]
    out += [{"value": v, "count": 0, "selected": True} for v in chosen if v not in labels]
    return out


def _date_counts(columns: Columns, docs: np.ndarray, sel: Selection, now: int) -> dict:
    pub = columns.published[docs]
    month = columns.month[docs]
    months, month_counts = np.unique(month[month > 0], return_counts=True)
    years, year_counts = np.unique(month[month > 0] // 100, return_counts=True)
    return {
        "range": [{"value": key, "label": label, "count": int(np.count_nonzero((pub > now - span) & (pub <= now))),
                   "selected": sel.preset == key} for key, (label, span) in PRESETS.items()],
        "year": [{"value": str(y), "count": int(c)} for y, c in sorted(zip(years, year_counts), reverse=True)],
        "month": [{"value": f"{m // 100}-{m % 100:02d}", "count": int(c)}
                  for m, c in sorted(zip(months, month_counts), reverse=True)],
    }


# Timeline units, finest first: the finest that covers the matches' range in at
# most MAX_BUCKETS buckets is used.
UNITS = ("day", "month", "year")
UNIT_NAMES = {"day": "日", "month": "月", "year": "年"}  # as a reader is told: 每日, 每月, 每年
MAX_BUCKETS = 60


def timeline(published: np.ndarray, sel: Selection) -> dict:
    """Return the matches over time: buckets by day, month or year, empty ones included.

    published: the publish times (Beijing wall-clock seconds, 0 unknown) of the
    matches after the category and source filters, before the date filter, so
    that the bucket counts plus ``undated`` equal that total. Each bucket has its
    first and last day (what a link narrowing the search to it asks for) and
    whether the request's date filter covers it.
    """
    known = published[published > 0]
    undated = int(len(published) - len(known))
    if not len(known):
        return {"unit": None, "buckets": [], "undated": undated}
    days = known // DAY
    first_day, last_day = np.datetime64(int(days.min()), "D"), np.datetime64(int(days.max()), "D")
    spans = {
        "day": (first_day, last_day),
        "month": (first_day.astype("datetime64[M]"), last_day.astype("datetime64[M]")),
        "year": (first_day.astype("datetime64[Y]"), last_day.astype("datetime64[Y]")),
    }
    unit = next((u for u in UNITS if _between(*spans[u]) <= MAX_BUCKETS), "year")
    start, end = spans[unit]
    step = np.timedelta64(1, {"day": "D", "month": "M", "year": "Y"}[unit])
    index = (days.astype("datetime64[D]").astype(start.dtype) - start).astype(np.int64)
    counts = np.bincount(index, minlength=_between(start, end))
    buckets = []
    for i, count in enumerate(counts.tolist()):
        begins = (start + i * step).astype("datetime64[D]")
        ends = (start + (i + 1) * step).astype("datetime64[D]") - np.timedelta64(1, "D")
        first, last = str(begins), str(ends)
        lo, hi = int(begins.astype(np.int64)) * DAY, (int(ends.astype(np.int64)) + 1) * DAY
        selected = (sel.start is not None or sel.end is not None) and \
            (sel.start is None or sel.start <= lo) and (sel.end is None or hi <= sel.end)
        buckets.append({"label": _label(first, unit), "from": first, "to": last, "count": count,
                        "selected": bool(selected)})
    return {"unit": unit, "buckets": buckets, "undated": undated}


def _between(start: np.datetime64, end: np.datetime64) -> int:
    """Return how many units from start to end, both included."""
    return int(end.astype(np.int64) - start.astype(np.int64)) + 1


def _label(first_day: str, unit: str) -> str:
    """Return a bucket's name: 2024-03-05, 2024-03 or 2024."""
    return {"day": first_day, "month": first_day[:7], "year": first_day[:4]}[unit]
