"""Order the hits: relevance (BM25F, bonuses, a mild recency prior) or publish time.

How a document's relevance is made (the match weights are in search/match.py):

- each word scores BM25 in the field it matched (a field longer than 4 times
  the average counts as that long); a whole-word match in the title counts 3x
  one in the body, and a characters-only match (the term is a substring of some
  longer word, or spans two words) a flat, smaller amount by how rare its
  characters are, never more than half the lowest score a whole-word match can
  have in that field, so 国家 as a word ranks above 美国家庭 and 共和国家庭,
  which hold only its characters. Scores use list lengths only, never the
  lists: a word looked for among a few candidates (probed) scores as one read
  in full;
- a quoted phrase, or an unspaced run of Chinese found in one piece, adds a
  bonus;
- among the best RERANK_WINDOW hits, plain terms standing close together
  (within PROXIMITY_SLOP characters of each other) add a bonus;
- a headline-only entry (a title seen in a related list, with at most a
  teaser) counts HEADLINE_WEIGHT of a full article with the same score;
- in relevance order the score is multiplied by
  ``1 + RECENCY_WEIGHT * 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)``:
  today's article gets up to +15 %, one a half-life old +7.5 %, an old one
  nearly nothing. ``recency_weight=0`` switches it off.

Newest/oldest order sort by publish time, ties by relevance, then by document.
"""

from __future__ import annotations

import numpy as np

from indexer.schema import BODY, GRAMS_OF, TITLE
from search.budget import MAX_POSITIONS
from search.match import Matcher
from search.query import ParsedQuery

RECENCY_WEIGHT = 0.15
RECENCY_HALF_LIFE_DAYS = 180.0
HEADLINE_WEIGHT = 0.7
RERANK_WINDOW = 50
PROXIMITY_BONUS = {TITLE: 1.5, BODY: 0.6}  # times the words' mean idf
PROXIMITY_SLOP = {TITLE: 10, BODY: 20}  # characters between neighbouring terms
PROXIMITY_POSITIONS = 1_000  # positions of all the terms together looked at in one document and field: its first


def recency(published: np.ndarray, now: int, weight: float, half_life_days: float) -> np.ndarray:
    """Return each hit's recency factor (1.0 when the prior is off)."""
    if weight <= 0:
        return np.ones(len(published))
    age = np.maximum(now - published, 0)
    return 1.0 + weight * np.exp2(age * (-1.0 / (86400.0 * half_life_days)))  # 0.5 ** (age in half-lives)


def order(docs: np.ndarray, scores: np.ndarray, published: np.ndarray, sort: str, wanted: int) -> np.ndarray:
    """Return the indexes of the first `wanted` hits in the requested order.

    Only the hits that can be among the first `wanted` are sorted: those scoring
    at least the wanted-th best score (by relevance), or published at least as
    new (newest) or as old (oldest) as the wanted-th hit, ties included; picking
    them out is linear in the hits.
    """
    if sort == "relevance":
        primary = -scores
        keys = (docs, -scores)
    else:
        primary = -published if sort == "newest" else published
        keys = (docs, -scores, primary)
    if wanted >= len(docs):
        return np.lexsort(keys)
    if wanted <= 0:
        return np.zeros(0, dtype=np.int64)
    bound = np.partition(primary, wanted - 1)[wanted - 1]
    top = np.flatnonzero(primary <= bound)
    return top[np.lexsort(tuple(k[top] for k in keys))][:wanted]


def _min_span(lists: list[list[int]]) -> int | None:
    """Return the shortest stretch holding one position from every list."""
    events = sorted((p, i) for i, plist in enumerate(lists) for p in plist)
    need, count, seen, best, left = len(lists), 0, {}, None, 0
    for right, (pos, i) in enumerate(events):
        seen[i] = seen.get(i, 0) + 1
        count += seen[i] == 1
        while count == need:
            start, j = events[left]
            span = pos - start
            best = span if best is None or span < best else best
            seen[j] -= 1
            count -= seen[j] == 0
            left += 1
    return best


def late(matcher: Matcher) -> bool:
    """Tell whether the matcher's deadline has passed: the paths beside matching stop there too."""
    return matcher.deadline is not None and matcher.clock() > matcher.deadline


def proximity(matcher: Matcher, parsed: ParsedQuery, docs: np.ndarray) -> np.ndarray:
    """Return the closeness bonus of each of the given documents, best ranked first (zeros when it does not apply).

    Bounded by counts: the documents whose position lists still fit the
    request's MAX_POSITIONS (the best ranked first), and in each document and
    field the first PROXIMITY_POSITIONS positions of the terms together. A
    field whose lists would be read after the deadline adds nothing. Any of
    these cuts is named "proximity" in the answer's work.
    """
    words = [w for c in parsed.clauses if not (c.negated or c.field or c.alternatives or c.phrase) for w in c.words()]
    anchors = [w[:2] for w in words if len(w) > 1 and w[:2].isalnum()]
    bonus = np.zeros(len(docs))
    if len(anchors) < 2 or len(anchors) > 8 or not len(docs):
        return bonus
    room = max(0, MAX_POSITIONS - matcher.work.positions) // (2 * len(anchors))
    if room < len(docs):
        matcher.work.cap("proximity")
        docs = docs[:room]
    order_ = np.sort(docs)
    weight = float(np.mean([matcher.word_idf(w) for w in words]))
    each = PROXIMITY_POSITIONS // len(anchors)
    for field in (TITLE, BODY):
        found = []
        for anchor in anchors:
            if late(matcher):
                matcher.work.cap("proximity")
                return bonus
            found.append(matcher.positions(GRAMS_OF[field], anchor, order_))
        limit = PROXIMITY_SLOP[field] * (len(anchors) - 1)
        for i, doc in enumerate(docs.tolist()):
            lists = [f.get(doc) for f in found]
            if all(lists):
                if any(len(positions) > each for positions in lists):
                    matcher.work.cap("proximity")
                span = _min_span([positions[:each] for positions in lists])  # positions come in order
                if span is not None and span <= limit:
                    bonus[i] += PROXIMITY_BONUS[field] * weight
    return bonus
