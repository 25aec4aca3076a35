"""Facet counts over all hits from column arrays, never a Python loop over hits.

At open, each document's category, source and publish time become numpy
arrays indexed by document number. A request's hits are an array of document
numbers; each facet's counts are a ``bincount`` over the hits that pass every
*other* facet's selection (within a facet the choice is OR, so its own
selection must not hide its other values), and the answer's hits are those
that pass all of them.

The people, places and organisations of each document (indexer/entities.py)
are lists, kept as offsets and codes (``EntityColumn``). A filter on them
marks the documents holding a chosen name by one pass over the codes of the
archive (a few per document: its cost does not follow the matches); their
counts gather the codes of at most ENTITY_SAMPLE matches, evenly spaced, and
scale the counts up when there were more (the answer's ``work.capped`` then
says ``entities``), so a million matches cost what 100,000 do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer.entities import KINDS, WORD
from indexer.schema import CATEGORY, NO_CATEGORY, PUBLISHED, SOURCE

DAY = 86400
# Preset date windows, relative to now, in the order the site shows them.
PRESETS = {"1d": ("一天内", DAY), "1w": ("一周内", 7 * DAY), "1m": ("一月内", 31 * DAY), "1y": ("一年内", 366 * DAY)}
ENTITY_LIMIT = 10  # names shown per kind
ENTITY_SAMPLE = 100_000  # most matches whose names are counted
SAMPLED = "sampled"  # the facets' flag, popped by the engine: names were counted on a sample


@dataclass(frozen=True)
class EntityColumn:
    """One kind of name of every document: document d holds labels[codes[offsets[d]:offsets[d + 1]]]."""

    labels: np.ndarray  # str, sorted
    offsets: np.ndarray  # int64, documents + 1
    codes: np.ndarray  # int32

    def holding(self, chosen: tuple[str, ...], count: int) -> np.ndarray:
        """Return which of the count documents hold any of the chosen names."""
        at = np.searchsorted(self.labels, chosen) if len(self.labels) else np.zeros(0, np.int64)
        wanted = [int(i) for i, name in zip(at, chosen) if i < len(self.labels) and self.labels[i] == name]
        held = np.zeros(count, dtype=bool)
        if wanted:
            where = np.flatnonzero(np.isin(self.codes, wanted))
            held[np.searchsorted(self.offsets, where, side="right") - 1] = True
        return held

    def counts(self, docs: np.ndarray) -> tuple[np.ndarray, bool]:
        """Return how many of docs hold each name (estimated from a sample when many) and whether it was."""
        sampled = len(docs) > ENTITY_SAMPLE
        picked = docs[np.linspace(0, len(docs) - 1, ENTITY_SAMPLE).astype(np.int64)] if sampled else docs
        counts = np.bincount(_codes_of(self.offsets, self.codes, picked), minlength=len(self.labels))
        if sampled:
            counts = np.rint(counts * (len(docs) / len(picked))).astype(np.int64)
        return counts, sampled


@dataclass(frozen=True)
class WordColumn:
    """The words related searches count (indexer/related_words.py), as an EntityColumn, with their counts."""

    labels: np.ndarray  # str, folded, sorted
    offsets: np.ndarray  # int64, documents + 1
    codes: np.ndarray  # int32
    written: np.ndarray  # str: each word as first written
    df: np.ndarray  # int64: the documents holding each word, deleted ones included
    size: int  # the documents, deleted ones included

    def held(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the codes of the words docs hold and how many of docs hold each."""
        return np.unique(_codes_of(self.offsets, self.codes, docs), return_counts=True)


def _codes_of(offsets: np.ndarray, codes: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Return the codes of the docs, each document's run laid end to end."""
    starts = offsets[docs]
    sizes = offsets[docs + 1] - starts
    # Run start + offset inside the run.
    return codes[np.repeat(starts - (np.cumsum(sizes) - sizes), sizes) + np.arange(int(sizes.sum()))]


def load_entities(arrays: dict[str, np.ndarray]) -> dict[str, EntityColumn]:
    """Return the name columns of a build's arrays (none for a build without them)."""
    if f"{KINDS[0]}_codes" not in arrays:
        return {}
    return {kind: EntityColumn(arrays[f"{kind}_labels"], arrays[f"{kind}_offsets"], arrays[f"{kind}_codes"])
            for kind in KINDS}


def load_words(arrays: dict[str, np.ndarray]) -> WordColumn | None:
    """Return the related searches' word column of a build's arrays (None for a build without one)."""
    if f"{WORD}_codes" not in arrays:
        return None
    labels, codes = arrays[f"{WORD}_labels"], arrays[f"{WORD}_codes"]
    return WordColumn(labels, arrays[f"{WORD}_offsets"], codes, arrays[f"{WORD}_written"],
                      np.bincount(codes, minlength=len(labels)), len(arrays[f"{WORD}_offsets"]) - 1)


@dataclass(frozen=True)
class Columns:
    """Per-document facet values of one index build."""

    categories: list[str]
    category: np.ndarray  # int32 code into categories
    sources: list[str]
    source: np.ndarray
    published: np.ndarray  # int64 seconds; 0 = unknown
    day: np.ndarray  # int32: 1 + days from day0 to the publish day; 0 = unknown
    day0: int  # the archive's first publish day, in days since 1970-01-01
    both: np.ndarray  # int32 category code × len(sources) + source code: the two facets counted in one pass
    story: np.ndarray | None = None  # int32 story code per document (None: a build without stories)
    story_keys: np.ndarray | None = None  # uint64 story key per code
    story_size: np.ndarray | None = None  # live documents per code
    entities: dict | None = None  # kind -> EntityColumn (None: a build without them)
    words: WordColumn | None = None  # what related searches count (None: a build without them)


def load_columns(arrays: dict[str, np.ndarray]) -> Columns:
    """Build the facet columns from a build's per-document arrays (indexer/columns.py)."""
    published = arrays[PUBLISHED]
    dated = published > 0
    day0 = int(published[dated].min() // DAY) if dated.any() else 0
    day = np.where(dated, published // DAY - day0 + 1, 0).astype(np.int32)
    sources = arrays[f"{SOURCE}_labels"].tolist()
    both = (arrays[CATEGORY].astype(np.int32) * len(sources) + arrays[SOURCE]).astype(np.int32)
    return Columns(arrays[f"{CATEGORY}_labels"].tolist(), arrays[CATEGORY], sources, arrays[SOURCE],
                   published, day, day0, both, arrays.get("story"), arrays.get("story_keys"), arrays.get("story_size"),
                   load_entities(arrays) or None, load_words(arrays))


@dataclass(frozen=True)
class Selection:
    """What the request narrowed the hits to."""

    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    start: int | None = None  # seconds, inclusive
    end: int | None = None  # seconds, exclusive
    preset: str | None = None
    person: tuple[str, ...] = ()  # names of KINDS: OR within a kind
    place: tuple[str, ...] = ()
    org: tuple[str, ...] = ()


def _member(codes: np.ndarray, labels: list[str], chosen: tuple[str, ...]) -> np.ndarray | None:
    if not chosen:
        return None
    wanted = np.zeros(len(labels), dtype=bool)
    wanted[[labels.index(v) for v in chosen if v in labels]] = True
    return wanted[codes]


def _all(*masks):
    result = None
    for m in masks:
        if m is not None:
            result = m if result is None else result & m
    return result


def apply(columns: Columns, docs: np.ndarray, sel: Selection,
          now: int) -> tuple[np.ndarray, np.ndarray | None, dict, dict]:
    """Return the hits that pass the selection, which of docs they are (a mask; None: all), the facet counts
    and the timeline."""
    cat = _member(columns.category[docs], columns.categories, sel.categories)
    src = _member(columns.source[docs], columns.sources, sel.sources)
    pub = columns.published[docs]
    date = None
    if sel.start is not None or sel.end is not None:
        date = (pub >= (sel.start if sel.start is not None else -(2**62))) & (pub < (sel.end if sel.end is not None else 2**62))
    names = {kind: _holding(columns, kind, getattr(sel, kind), docs) for kind in KINDS}
    named = _all(*names.values())
    final = _all(cat, src, date, named)
    hits = docs if final is None else docs[final]
    if cat is None and src is None:  # both facets count the same documents: one pass for the two
        pairs = np.bincount(columns.both[_pick(docs, date, named)],
                            minlength=len(columns.categories) * len(columns.sources))
        pairs = pairs.reshape(len(columns.categories), len(columns.sources))
        by_category, by_source = pairs.sum(axis=1), pairs.sum(axis=0)
    else:
        by_category = np.bincount(columns.category[_pick(docs, src, date, named)], minlength=len(columns.categories))
        by_source = np.bincount(columns.source[_pick(docs, cat, date, named)], minlength=len(columns.sources))
    facets = {
        "category": _value_counts(columns.categories, by_category, sel.categories, skip=NO_CATEGORY),
        "source": _value_counts(columns.sources, by_source, sel.sources, skip=""),
    }
    facets.update(_name_counts(columns, docs, sel, names, cat, src, date))
    undated = _pick(docs, cat, src, named)  # every filter but the date's
    days = Days.of_codes(columns.day[undated], columns.day0)
    facets.update(_date_counts(pub if undated is docs else columns.published[undated], days, sel, now))
    return hits, final, facets, days.timeline(sel)


def _holding(columns: Columns, kind: str, chosen: tuple[str, ...], docs: np.ndarray) -> np.ndarray | None:
    """Return which of docs hold a chosen name of this kind (None: no choice; none do in a build without names)."""
    if not chosen:
        return None
    if columns.entities is None:
        return np.zeros(len(docs), dtype=bool)
    column = columns.entities[kind]
    return column.holding(chosen, len(column.offsets) - 1)[docs]


def _name_counts(columns: Columns, docs: np.ndarray, sel: Selection, names: dict, *masks) -> dict:
    """Return each kind's most frequent names among the docs that pass every other filter."""
    out, sampled = {}, False
    for kind in KINDS:
        chosen = getattr(sel, kind)
        if columns.entities is None:
            out[kind] = [{"value": v, "count": 0, "selected": True} for v in chosen]
            continue
        column = columns.entities[kind]
        counts, cut = column.counts(_pick(docs, *masks, *(m for k, m in names.items() if k != kind)))
        sampled |= cut
        shown = _top(counts, ENTITY_LIMIT).tolist()
        at = np.searchsorted(column.labels, chosen) if len(column.labels) else []
        shown += [int(i) for i, v in zip(at, chosen) if i < len(column.labels) and column.labels[i] == v and i not in shown]
        out[kind] = _value_counts([str(column.labels[i]) for i in shown], counts[shown], chosen, skip=None)
    out[SAMPLED] = sampled
    return out


def _top(counts: np.ndarray, k: int) -> np.ndarray:
    """Return the k largest nonzero counts' indexes, largest first, ties in index order (labels are sorted: in
    name order); what a stable sort of every count gives, without sorting the build's every name each search."""
    held = np.flatnonzero(counts)
    if len(held) > k:
        least = np.partition(counts[held], len(held) - k)[len(held) - k]  # the k-th largest count
        held = held[counts[held] >= least]  # with every tie at it
    return held[np.lexsort((held, -counts[held]))][:k]


def _pick(docs: np.ndarray, *masks) -> np.ndarray:
    m = _all(*masks)
    return docs if m is None else docs[m]


def _value_counts(labels, counts, chosen, skip) -> list[dict]:
    order = sorted(range(len(labels)), key=lambda i: (-counts[i], labels[i]))
    out = [{"value": labels[i], "count": int(counts[i]), "selected": labels[i] in chosen}
           for i in order if (counts[i] or labels[i] in chosen) and labels[i] != skip]
    out += [{"value": v, "count": 0, "selected": True} for v in chosen if v not in labels]
    return out


@dataclass(frozen=True)
class Days:
    """Matches per day: the counts the month, year and timeline buckets add up, without a pass over matches each."""

    first: int  # the first day with a match, in days since 1970-01-01
    counts: np.ndarray  # matches on each day from first to the last with one
    undated: int  # matches without a publish time

    @classmethod
    def of(cls, published: np.ndarray) -> Days:
        """Count publish times (seconds, 0 unknown) by day."""
        known = published[published > 0]
        if not len(known):
            return cls(0, np.zeros(0, dtype=np.int64), len(published))
        days = known // DAY
        first = int(days.min())
        return cls(first, np.bincount(days - first), len(published) - len(known))

    @classmethod
    def of_codes(cls, codes: np.ndarray, day0: int) -> Days:
        """Count day codes (Columns.day: 1 + days from day0, 0 unknown) by day."""
        counts = np.bincount(codes)
        held = np.flatnonzero(counts[1:])
        if not len(held):
            return cls(0, np.zeros(0, dtype=np.int64), int(counts[0]) if len(counts) else 0)
        return cls(day0 + int(held[0]), counts[1 + held[0]:2 + held[-1]], int(counts[0]))

    def timeline(self, sel: Selection) -> dict:
        """Return the matches over time (see timeline())."""
        return _timeline(self, sel)

    def by(self, unit: str) -> tuple[np.datetime64, np.ndarray]:
        """Return the first unit ("D", "M" or "Y") holding a match and the matches in each from it on."""
        calendar = np.arange(self.first, self.first + len(self.counts)).astype("datetime64[D]").astype(f"datetime64[{unit}]")
        index = (calendar - calendar[0]).astype(np.int64)
        return calendar[0], np.bincount(index, weights=self.counts).astype(np.int64)


def _date_counts(pub: np.ndarray, days: Days, sel: Selection, now: int) -> dict:
    widest = max(span for _, span in PRESETS.values())
    recent = pub[(pub > now - widest) & (pub <= now)]  # the windows nest: the others count within the widest
    out = {"range": [{"value": key, "label": label, "count": int(np.count_nonzero(recent > now - span)),
                      "selected": sel.preset == key} for key, (label, span) in PRESETS.items()],
           "year": [], "month": []}
    if len(days.counts):
        first, counts = days.by("Y")
        out["year"] = [{"value": str(first + i), "count": int(counts[i])} for i in np.flatnonzero(counts)[::-1].tolist()]
        first, counts = days.by("M")
        out["month"] = [{"value": str(first + i), "count": int(counts[i])} for i in np.flatnonzero(counts)[::-1].tolist()]
    return out


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
    return Days.of(published).timeline(sel)


def _timeline(days: Days, sel: Selection) -> dict:
    undated = int(days.undated)
    if not len(days.counts):
        return {"unit": None, "buckets": [], "undated": undated}
    first_day, last_day = np.datetime64(days.first, "D"), np.datetime64(days.first + len(days.counts) - 1, "D")
    spans = {
        "day": (first_day, last_day),
        "month": (first_day.astype("datetime64[M]"), last_day.astype("datetime64[M]")),
        "year": (first_day.astype("datetime64[Y]"), last_day.astype("datetime64[Y]")),
    }
    unit = next((u for u in UNITS if _between(*spans[u]) <= MAX_BUCKETS), "year")
    start, end = spans[unit]
    step = np.timedelta64(1, {"day": "D", "month": "M", "year": "Y"}[unit])
    counts = days.by({"day": "D", "month": "M", "year": "Y"}[unit])[1]
    steps = np.arange(len(counts) + 1) * step  # every bucket's bounds at once: no numpy scalar a bucket
    bounds = (start + steps).astype("datetime64[D]")
    days_from = bounds.astype(np.int64)  # days since 1970-01-01
    firsts = np.datetime_as_string(bounds[:-1]).tolist()
    lasts = np.datetime_as_string(bounds[1:] - np.timedelta64(1, "D")).tolist()
    buckets = []
    for i, count in enumerate(counts.tolist()):
        lo, hi = int(days_from[i]) * DAY, int(days_from[i + 1]) * DAY
        selected = (sel.start is not None or sel.end is not None) and \
            (sel.start is None or sel.start <= lo) and (sel.end is None or hi <= sel.end)
        buckets.append({"label": _label(firsts[i], unit), "from": firsts[i], "to": lasts[i], "count": count,
                        "selected": bool(selected)})
    return {"unit": unit, "buckets": buckets, "undated": undated}


def _between(start: np.datetime64, end: np.datetime64) -> int:
    """Return how many units from start to end, both included."""
    return int(end.astype(np.int64) - start.astype(np.int64)) + 1


def _label(first_day: str, unit: str) -> str:
    """Return a bucket's name: 2024-03-05, 2024-03 or 2024."""
    return {"day": first_day, "month": first_day[:7], "year": first_day[:4]}[unit]
