"""A parsed query and a request's selection as OpenSearch's query DSL, and its aggregations as our facets.

Matching is the embedded engine's (search/match.py, search/exact.py), said in
the fields indexer/opensearch_index.py writes:

- a term matches where its exact characters occur in one field: each run of
  letters, digits and ideographs of it as a phrase of pairs (``*_text``,
  positions are character offsets, so the phrase is an exact substring), or
  a single character (``*_text.chars``); its jieba word (``*_words``) scores
  BM25, title three times the body, and a characters-only match a flat,
  smaller amount;
- text "in one piece" (a quoted phrase, or an unquoted run of several words
  lifted above scattered ones): one run as above; with punctuation or spaces,
  its characters without spaces as a phrase of pairs in ``*_compact`` (the
  folded text without whitespace), as our engine checks the stored text;
- clauses AND together (``must``), OR alternatives are ``should``, excluded
  clauses ``must_not``; source: and category: are keyword terms.

Relevance is multiplied by the recency prior (an exponential decay on the
publish time: 1 + weight * 0.5 ** (age / half-life)) and by HEADLINE_WEIGHT
for a headline-only entry, as search/ranking.py does.
"""

from __future__ import annotations

import numpy as np

from indexer.analysis import WORD_RUN, normalize, word_runs
from indexer.entities import KINDS
from indexer.opensearch_index import spaced
from indexer.schema import BODY, CATEGORY, HEADLINE, NO_CATEGORY, PUBLISHED, SOURCE, TITLE
from search import facets
from search.exact import reads_stored
from search.match import CHARS_BOOST, PHRASE_BONUS, WORD_BOOST
from search.query import KEYWORD_FIELDS, TEXT_FIELDS, Clause, ParsedQuery
from search.ranking import HEADLINE_WEIGHT

CHARS_SCORE = {f: 2 * boost for f, boost in CHARS_BOOST.items()}  # flat: under a word's BM25 times its boost
PHRASE_SCORE = {f: 5 * boost for f, boost in PHRASE_BONUS.items()}
# Held in one piece: lifted above every hit holding the words apart (the embedded
# engine adds the best score; a constant far above any BM25 sum does the same).
ONE_PIECE = {TITLE: 150.0, BODY: 100.0}
FACET_VALUES = 10_000  # category, source and name values counted
STORY_PRECISION = 40_000  # the story count is exact below this many stories (cardinality's threshold)


def _constant(query: dict, boost: float) -> dict:
    return {"constant_score": {"filter": query, "boost": boost}}


def _all(queries: list[dict]) -> dict:
    return queries[0] if len(queries) == 1 else {"bool": {"filter": queries}}


def runs_query(field: str, text: str) -> dict | None:
    """Match documents whose field holds every run of text's letters, digits and ideographs; None: none."""
    runs = list(dict.fromkeys(word_runs(normalize(text))))
    if not runs:
        return None
    return _all([{"term": {f"{field}_text.chars": run}} if len(run) == 1 else
                 {"match_phrase": {f"{field}_text": run}} for run in runs])


def one_piece(field: str, text: str) -> dict | None:
    """Match documents whose field holds text in one piece, punctuation and all, spaces not counting.

    As search/exact.py's layout(): typed without spaces, with two runs of two
    characters or more, the runs must also stand as far apart as typed (so a
    space in the text between them counts): the stretch from the first such
    run to the last, non-word characters made spaces, is a phrase of pairs.
    """
    if not reads_stored(text):
        return runs_query(field, text)
    folded = normalize(text).strip()
    core = "".join(folded.split())
    whole = {"match_phrase": {f"{field}_compact": core}}
    long_runs = [m for m in WORD_RUN.finditer(core) if len(m.group()) > 1]
    if folded != core or len(long_runs) < 2:
        return whole
    stretch = spaced(core[long_runs[0].start():long_runs[-1].end()])
    return _all([whole, {"match_phrase": {f"{field}_text": stretch}}])


def _either(queries: list[dict]) -> dict:
    return queries[0] if len(queries) == 1 else {"bool": {"should": queries, "minimum_should_match": 1}}


def term_query(word: str, fields: tuple[str, ...]) -> dict:
    """Match a term's characters in any field, its jieba word scoring BM25 above its characters."""
    should = []
    for f in fields:
        should.append({"term": {f"{f}_words": {"value": word, "boost": WORD_BOOST[f]}}})
        chars = runs_query(f, word)
        if chars is not None:
            should.append(_constant(chars, CHARS_SCORE[f]))
    return _either(should)


def single_query(clause: Clause) -> dict | None:
    """Return one clause without its alternatives as a query; None when it has nothing to match."""
    if clause.field in KEYWORD_FIELDS:
        return {"bool": {"filter": [{"term": {KEYWORD_FIELDS[clause.field]: clause.text.strip()}}]}}
    fields = TEXT_FIELDS.get(clause.field or "", (TITLE, BODY))
    if clause.phrase:
        if not word_runs(normalize(clause.text)):
            return None
        return _either([_constant(one_piece(f, clause.text), PHRASE_SCORE[f]) for f in fields])
    terms = clause.terms()
    if not terms:
        return None
    query = {"bool": {"must": [term_query(t, fields) for t in terms]}}
    if len(terms) > 1 or normalize(clause.text).strip() != terms[0]:
        lifts = [_constant(one_piece(f, clause.text), ONE_PIECE[f]) for f in fields]
        query["bool"]["should"] = [{"dis_max": {"queries": lifts}}]
    return query


def clause_query(clause: Clause) -> dict | None:
    """Return a clause with its OR alternatives as a query; None when none has anything to match."""
    options = [q for q in (single_query(c) for c in [clause, *clause.alternatives]) if q is not None]
    return _either(options) if options else None


def text_query(parsed: ParsedQuery) -> dict | None:
    """Return the whole query's matching part; None when nothing in it can be searched."""
    seen: dict[str, Clause] = {}
    for clause in parsed.clauses:
        seen.setdefault(repr(clause), clause)
    must = [q for c in seen.values() if not c.negated and (q := clause_query(c)) is not None]
    if not must:
        return None
    must_not = [q for c in seen.values() if c.negated and (q := clause_query(c)) is not None]
    return {"bool": {"must": must, "must_not": must_not}}


def ranked(query: dict, now: int, weight: float, half_life_days: float) -> dict:
    """Return a query scored with the recency prior and the headline weight."""
    functions = [{"weight": 1.0}]
    if weight > 0:
        decay = {PUBLISHED: {"origin": now, "scale": half_life_days * 86400, "decay": 0.5}}
        functions.append({"exp": decay, "weight": weight})
    recent = {"function_score": {"query": query, "functions": functions, "score_mode": "sum",
                                 "boost_mode": "multiply"}}
    headline = [{"filter": {"term": {"kind": HEADLINE}}, "weight": HEADLINE_WEIGHT}]
    return {"function_score": {"query": recent, "functions": headline, "boost_mode": "multiply"}}


def selection_filters(sel: facets.Selection) -> dict[str, dict | None]:
    """Return the selection's filter on each facet: category, source, date and each kind of name (None: not
    narrowed)."""
    date = None
    if sel.start is not None or sel.end is not None:
        bounds = {k: v for k, v in (("gte", sel.start), ("lt", sel.end)) if v is not None}
        date = {"range": {PUBLISHED: bounds}}
    chosen = {CATEGORY: sel.categories, SOURCE: sel.sources, **{kind: getattr(sel, kind) for kind in KINDS}}
    filters = {name: {"terms": {name: list(values)}} if values else None for name, values in chosen.items()}
    return {**filters, "date": date}


def _others(filters: dict[str, dict | None], facet: str) -> dict:
    """Return the AND of every filter but the facet's own: a facet counts the hits the other filters pass."""
    return both(*(f for name, f in filters.items() if name != facet))


def both(*filters: dict | None) -> dict:
    """Return the AND of the filters given (match_all when none is)."""
    kept = [f for f in filters if f is not None]
    return {"bool": {"filter": kept}} if kept else {"match_all": {}}


def aggregations(filters: dict[str, dict | None], now: int) -> dict:
    """Return the aggregations of facets, dates and stories; each facet over the hits passing the other filters."""
    widest = max(span for _, span in facets.PRESETS.values())
    ranges = {key: {"range": {PUBLISHED: {"gt": now - span, "lte": now}}} for key, (_, span) in facets.PRESETS.items()}
    values = {name: {"filter": _others(filters, name), "aggs": {"v": {"terms": {"field": name, "size": FACET_VALUES}}}}
              for name in (CATEGORY, SOURCE, *KINDS)}
    return {
        **values,
        "dates": {"filter": _others(filters, "date"), "aggs": {
            "undated": {"filter": {"term": {PUBLISHED: 0}}},
            "dated": {"filter": {"range": {PUBLISHED: {"gt": 0}}}, "aggs": {
                "days": {"histogram": {"field": PUBLISHED, "interval": 86400, "min_doc_count": 0}}}},
            "recent": {"filter": {"range": {PUBLISHED: {"gt": now - widest, "lte": now}}},
                       "aggs": {"ranges": {"filters": {"filters": ranges}}}},
        }},
        "stories": {"filter": both(*filters.values()),
                    "aggs": {"n": {"cardinality": {"field": "story", "precision_threshold": STORY_PRECISION}}}},
    }


def _values(agg: dict, chosen: tuple[str, ...], skip: str) -> list[dict]:
    buckets = agg["v"]["buckets"]
    labels = [b["key"] for b in buckets]
    return facets._value_counts(labels, np.array([b["doc_count"] for b in buckets], dtype=np.int64), chosen, skip)


def _names(agg: dict, chosen: tuple[str, ...]) -> list[dict]:
    """Return a kind's most frequent names (ENTITY_LIMIT, ties in name order) and the chosen ones, as the embedded
    engine shows them."""
    buckets = sorted(agg["v"]["buckets"], key=lambda b: (-b["doc_count"], b["key"]))
    shown = buckets[:facets.ENTITY_LIMIT] + [b for b in buckets[facets.ENTITY_LIMIT:] if b["key"] in chosen]
    labels = [b["key"] for b in shown]
    return facets._value_counts(labels, np.array([b["doc_count"] for b in shown], dtype=np.int64), chosen, None)


def answer_facets(aggs: dict, sel: facets.Selection, now: int) -> tuple[dict, dict, int]:
    """Return the facet counts, the timeline and the story count, shaped as the embedded engine's."""
    dates = aggs["dates"]
    days_buckets = dates["dated"]["days"]["buckets"]
    counts = np.array([b["doc_count"] for b in days_buckets], dtype=np.int64)
    first = int(days_buckets[0]["key"]) // facets.DAY if days_buckets else 0
    days = facets.Days(first, counts, int(dates["undated"]["doc_count"]))
    found = {
        "category": _values(aggs["category"], sel.categories, NO_CATEGORY),
        "source": _values(aggs["source"], sel.sources, ""),
        **{kind: _names(aggs[kind], getattr(sel, kind)) for kind in KINDS},
    }
    dated = facets._date_counts(np.zeros(0, dtype=np.int64), days, sel, now)
    in_range = dates["recent"]["ranges"]["buckets"]
    for entry in dated["range"]:
        entry["count"] = int(in_range[entry["value"]]["doc_count"])
    found.update(dated)
    return found, days.timeline(sel), int(aggs["stories"]["n"]["value"])
