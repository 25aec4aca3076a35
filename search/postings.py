"""Read a build's posting lists into arrays, and cache them per build.

A term's list is a slice of the build's mapped posting arrays
(indexer/arrays.py). A cache made without them reads the same arrays through
Whoosh's searcher and our codec (indexer/codec.py: a list is one ListMatcher),
taken straight into numpy. Lists read whole are kept per build
(CACHE_POSTINGS), least recently used dropped first; deleted documents are
dropped from every list read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from whoosh.matching import ListMatcher, WrappingMatcher
from whoosh.reading import TermNotFound

from indexer.arrays import PostingArrays
from indexer.mapped import indexes_in
from indexer.postings import ARRAY_FIELDS
from search.sets import EMPTY, common_at, member

CACHE_POSTINGS = 4_000_000  # postings kept in memory per build (~50 MB)


class PostingCache:
    """Posting lists of one build as arrays, least recently used dropped first."""

    def __init__(self, deleted: np.ndarray | None = None, limit: int = CACHE_POSTINGS,
                 arrays: PostingArrays | None = None) -> None:
        self.deleted = deleted  # sorted document numbers an update marked deleted, or None
        self.arrays = arrays  # the build's posting arrays, when its segments have them
        self.limit = limit
        self.size = 0
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def counts(self, searcher, field: str, terms: list[str]) -> list[int]:
        """Return the lengths of terms' lists without reading them, deleted documents included.

        Every list is counted the same way, cached or not, so idf, BM25 and the
        order of terms never depend on what earlier requests left in the cache.
        A list's live length is known only by reading it or probing it at every
        deleted document (a page of the list each, from disk when cold); its
        length with deleted documents is one look-up in the term table, the
        count Whoosh's doc_frequency (and Lucene's docFreq) gives. The two differ
        by at most the deleted share of a segment, which an update keeps under
        indexer/update.py's MAX_DELETED by rewriting the segment.
        """
        if self.arrays is not None and field in ARRAY_FIELDS:
            return self.arrays.counts(field, terms)
        return [searcher.doc_frequency(field, t) for t in terms]

    def get_within(self, searcher, field: str, term: str, ranges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return a term's (document numbers, frequencies) inside [start, end) ranges, not kept in the cache."""
        with self.lock:
            found = self.items.get((field, term))
        if found is not None:
            at = indexes_in(found[0], ranges)
            return found[0][at], found[1][at]
        if self.arrays is not None and field in ARRAY_FIELDS:
            found = self.arrays.read(field, term, ranges)
        else:  # through Whoosh and the codec, whole
            found = read_postings(searcher, field, term)
            at = indexes_in(found[0], ranges)
            found = (found[0][at], found[1][at])
        return self._live(found)

    def probe(self, searcher, field: str, term: str, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (those of the sorted live docs a term's list holds, their frequencies), without reading the list
        when the build has posting arrays."""
        with self.lock:
            found = self.items.get((field, term))
        if found is None and self.arrays is not None and field in ARRAY_FIELDS:
            return self.arrays.probe(field, term, docs)  # docs are live: no deleted one can be held
        if found is None:
            found = self.get(searcher, field, term)
        mine, theirs = common_at(docs, found[0])
        return docs[mine], found[1][theirs]

    def _live(self, found: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if self.deleted is not None and len(found[0]):
            live = ~member(found[0], self.deleted)
            found = (found[0][live], found[1][live])
        return found

    def get(self, searcher, field: str, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (document numbers, frequencies) of a term in a field."""
        key = (field, term)
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
                return found
        if self.arrays is not None and field in ARRAY_FIELDS:
            found = self.arrays.read(field, term)
        else:
            found = read_postings(searcher, field, term)
        found = self._live(found)
        with self.lock:
            raced = self.items.pop(key, None)  # another thread missed on the same term meanwhile
            if raced is not None:
                self.size -= len(raced[0])
            self.items[key] = found
            self.size += len(found[0])
            while self.size > self.limit and len(self.items) > 1:
                _, old = self.items.popitem(last=False)
                self.size -= len(old[0])
        return found


def read_postings(searcher, field: str, term: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a term's whole posting list through Whoosh's searcher (and our codec), as arrays."""
    docs, freqs = [], []
    btext = term.encode("utf-8")
    for leaf, offset in searcher.leaf_searchers():
        matcher = _postings(leaf.reader(), field, btext)
        if matcher is None:
            continue
        matcher = _unwrapped(matcher)
        docs.append(np.asarray(matcher._ids, dtype=np.int64) + offset)
        freqs.append(_weights(matcher._weights, len(docs[-1])))
    if not docs:
        return EMPTY, np.zeros(0, np.float32)
    return np.concatenate(docs), np.concatenate(freqs)


def _postings(reader, field: str, btext: bytes):
    """Return a leaf reader's matcher of a term, or None: one term table look-up, not two."""
    try:
        return reader.postings(field, btext)
    except TermNotFound:
        return None


def _unwrapped(matcher) -> ListMatcher:
    """Return the codec's ListMatcher of a leaf reader's matcher: its whole list, deleted documents included."""
    while isinstance(matcher, WrappingMatcher):  # the reader's filter of deleted documents
        matcher = matcher.child
    return matcher


def _weights(stored, count: int) -> np.ndarray:
    if stored is None:
        return np.ones(count, np.float32)
    if isinstance(stored, float):
        return np.full(count, stored, np.float32)
    return np.asarray(stored, dtype=np.float32)


def positions(searcher, field: str, term: str, docs: np.ndarray) -> dict[int, list[int]]:
    """Return a term's positions in each of the given (sorted) documents that hold it.

    Decodes values only for the documents asked for.
    """
    out: dict[int, list[int]] = {}
    btext = term.encode("utf-8")
    for leaf, offset in searcher.leaf_searchers():
        reader = leaf.reader()
        mine = docs[(docs >= offset) & (docs < offset + reader.doc_count_all())] - offset
        matcher = _postings(reader, field, btext) if len(mine) else None
        if matcher is None:
            continue
        decode = reader.schema[field].format.decode_positions
        matcher = _unwrapped(matcher)
        ids, values = np.asarray(matcher._ids), matcher._values
        at = np.searchsorted(ids, mine)
        inside = at < len(ids)
        for doc, i in zip(mine[inside].tolist(), at[inside].tolist()):
            if ids[i] == doc:
                out[doc + offset] = decode(values[i])
    return out

