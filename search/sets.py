"""Combine sorted arrays of document numbers: set operations, and Hits (documents with their scores).

Posting lists are sorted unique document numbers and differ in length by
orders of magnitude: two lists are combined by binary searches of the shorter
in the longer, or, when they are dense in their range of document numbers
(DENSE_SHARE), by marking an array over that range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer.mapped import heads

EMPTY = np.zeros(0, dtype=np.int64)
DENSE_SHARE = 16  # lists holding at least 1/16 of their range of document numbers are united by marking


def distinct(a: np.ndarray) -> np.ndarray:
    """Return a's distinct values, sorted."""
    a = np.sort(a)
    return a[heads(a)]


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the distinct values of a and b together, sorted."""
    return distinct(np.concatenate((a, b)))


def firsts(codes: np.ndarray) -> np.ndarray:
    """Return the index of each distinct code's first occurrence, in order of the codes (np.unique's return_index)."""
    order = np.argsort(codes, kind="stable")
    return order[heads(codes[order])]


def member(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return a mask of which elements of sorted unique a are in sorted unique b.

    Binary search of one array in the other, O(m log n), instead of np.isin's
    sort of both: posting lists differ in length by orders of magnitude.
    """
    if not len(a) or not len(b):
        return np.zeros(len(a), dtype=bool)
    if _dense(a, b):
        marked = np.zeros(int(max(a[-1], b[-1])) + 1, dtype=bool)
        marked[b] = True
        return marked[a]
    if len(a) > 4 * len(b):  # search the shorter in the longer
        mask = np.zeros(len(a), dtype=bool)
        mask[common_at(b, a)[1]] = True
        return mask
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    return b[at] == a


def common_at(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for sorted unique a and b, the indexes in a and in b of the elements both hold."""
    if not len(a) or not len(b):
        return EMPTY, EMPTY
    if _dense(a, b):  # where each of b's documents stands, by document number
        at = np.full(int(max(a[-1], b[-1])) + 1, -1, dtype=np.int32)
        at[b] = np.arange(len(b), dtype=np.int32)
        theirs = at[a]
        found = np.flatnonzero(theirs >= 0)
        return found, theirs[found]
    if len(a) > len(b):
        theirs, mine = common_at(b, a)
        return mine, theirs
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    found = np.flatnonzero(b[at] == a)
    return found, at[found]


def _dense(a: np.ndarray, b: np.ndarray) -> bool:
    """Tell whether the shorter of two sorted lists is long enough against their range of document numbers
    (1/DENSE_SHARE of it) that marking an array over the range costs less than binary searches."""
    return min(len(a), len(b)) * DENSE_SHARE >= max(a[-1], b[-1])


def common(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the elements both sorted unique arrays hold."""
    return a[common_at(a, b)[0]]


def minus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the elements of sorted unique a that b lacks."""
    return a[~member(a, b)]


@dataclass(frozen=True)
class Hits:
    """Sorted unique document numbers and their scores."""

    docs: np.ndarray
    scores: np.ndarray

    @classmethod
    def none(cls) -> Hits:
        """Return no hits."""
        return cls(EMPTY, np.zeros(0))

    @classmethod
    def sum(cls, parts: list[Hits]) -> Hits:
        """Unite hits, adding scores: marked over the range of document numbers when they cover much of it
        (DENSE_SHARE), otherwise pairwise (either)."""
        parts = [p for p in parts if len(p.docs)]
        if len(parts) < 3:
            return parts[0].either(parts[1]) if len(parts) == 2 else parts[0] if parts else cls.none()
        span = max(int(p.docs[-1]) for p in parts) + 1
        if sum(len(p.docs) for p in parts) * DENSE_SHARE < span:
            hits = parts[0]
            for other in parts[1:]:
                hits = hits.either(other)
            return hits
        seen = np.zeros(span, dtype=bool)
        total = np.zeros(span)
        for hits in parts:  # each list's documents are unique: += adds once per document
            seen[hits.docs] = True
            total[hits.docs] += hits.scores
        docs = np.flatnonzero(seen)
        return cls(docs, total[docs])

    def both(self, other: Hits) -> Hits:
        """Keep documents in both, adding scores."""
        mine, theirs = common_at(self.docs, other.docs)
        return Hits(self.docs[mine], self.scores[mine] + other.scores[theirs])

    def either(self, other: Hits) -> Hits:
        """Keep documents in either, adding scores.

        A much shorter list is merged into the longer one (O(n + m log n));
        lists of like length that cover much of their range of document numbers
        are marked in arrays over that range (linear), sparser ones are sorted
        together (one stable sort).
        """
        small, large = (self, other) if len(self.docs) <= len(other.docs) else (other, self)
        if not len(small.docs):
            return large
        if len(small.docs) * 8 > len(large.docs):
            span = int(max(self.docs[-1], other.docs[-1])) + 1
            if (len(self.docs) + len(other.docs)) * DENSE_SHARE >= span:
                seen = np.zeros(span, dtype=bool)
                total = np.zeros(span)
                for hits in (self, other):  # each list's documents are unique: += adds once per document
                    seen[hits.docs] = True
                    total[hits.docs] += hits.scores
                docs = np.flatnonzero(seen)
                return Hits(docs, total[docs])
            joined = np.concatenate([self.docs, other.docs])
            order = np.argsort(joined, kind="stable")  # two sorted runs: merged in linear time
            joined = joined[order]
            first = heads(joined)
            group = np.cumsum(first) - 1
            scores = np.concatenate([self.scores, other.scores])[order]
            return Hits(joined[first], np.bincount(group, scores, int(group[-1]) + 1))
        at = np.searchsorted(large.docs, small.docs)
        held = np.zeros(len(small.docs), dtype=bool)
        inside = at < len(large.docs)
        held[inside] = large.docs[at[inside]] == small.docs[inside]
        fresh = ~held
        docs = np.insert(large.docs, at[fresh], small.docs[fresh])
        scores = np.insert(large.scores.astype(np.float64), at[fresh], small.scores[fresh])
        # A held document moved right by the fresh ones inserted before it.
        scores[at[held] + np.cumsum(fresh)[held]] += small.scores[held]
        return Hits(docs, scores)

    def without(self, docs: np.ndarray) -> Hits:
        """Drop the given documents."""
        keep = ~member(self.docs, docs)
        return Hits(self.docs[keep], self.scores[keep])
