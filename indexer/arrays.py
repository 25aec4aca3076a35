"""Read the posting arrays of a build: whole lists, slices of them by document range, positions.

``PostingArrays`` maps a build's arrays read-only (postings.py describes them):
the joined set (joining.py), if it covers the first segments as they are, then
each segment's own. A term is looked up by its text in each set's term dictionary (terms.py);
where its lists stand is kept for recently looked-up terms (CACHE_LOCATIONS).
In the joined set, reads are asked for before they are made (mapped.ExactReads)
and a long list is searched by its skip marks (joining.SKIP).
"""

from __future__ import annotations

import mmap
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from indexer import joining
from indexer.freqs import values as freq_values
from indexer.mapped import ExactReads, heads, indexes_in, map_npy, runs
from indexer.positions import MARK, extents
from indexer.postings import POSITIONAL_INDEX, UNWEIGHTED, array_files, freq_shifts, list_spans, position_shifts
from indexer.terms import FIELD_INDEX, TermDictionary

# Where recently looked-up terms' lists stand, kept per build: at most this many terms, and this many
# (segment, row, start, end) rows of 32 bytes over them all (~32 MB), however many segments the archive has.
CACHE_LOCATIONS = 20_000
CACHE_LOCATION_ROWS = 1_000_000
WHOLE_LIST_PAGES = 8  # a list probed for k documents is asked for whole when it has at most this many pages a document


class PostingArrays:
    """The posting arrays of an index's segments, mapped read-only: whole lists, slices of them by
    document range, and positions in given documents."""

    def __init__(self, parts: list[tuple[int, dict[str, np.ndarray]]], positional: bool = False,
                 total: int = 0, reads: dict[str, ExactReads] | None = None) -> None:
        self.parts = parts  # (document offset, arrays) per segment, in index order; first the joined set, if any
        self.dicts = [TermDictionary.of(arrays) for _, arrays in parts]
        self.shifts = [freq_shifts(arrays) for _, arrays in parts]  # pdocs place -> pfreqs place, by field
        self.vshifts = [position_shifts(arrays) for _, arrays in parts]  # pdocs place -> positional place
        self.reads = reads or {}  # the joined set's exact reads by part (see ask)
        self.positional = positional  # every segment keeps its positions too
        self.bounds = np.array([offset for offset, _ in parts] + [total], dtype=np.int64)  # segment i: [i], [i + 1]
        # (field, term) -> (segment, row, start, end per segment holding it; its postings over all).
        self.located: OrderedDict[tuple[str, str], tuple[np.ndarray, int]] = OrderedDict()  # see locate()
        self.located_rows = 0  # rows held in located
        self.lock = threading.Lock()

    @classmethod
    def open(cls, folder: Path, segments: list) -> PostingArrays | None:
        """Map the arrays of every segment (a missing one raises store.DamagedFileError)."""
        parts, offset, reads = [], 0, None
        joined = joining.open_joined(folder, segments)
        if joined is not None:
            covered, arrays, reads = joined
            parts.append((0, arrays))
            offset = sum(seg.doc_count_all() for seg in segments[:covered])
            segments = segments[covered:]
        for seg in segments:
            parts.append((offset, {part: map_npy(folder / name)[1] for part, name in array_files(seg).items()}))
            offset += seg.doc_count_all()
        return cls(parts, True, offset, reads if joined is not None else None)

    def warm(self) -> None:
        """Work out every term dictionary's look-up keys now, when a build opens, not in its first requests."""
        for dictionary in self.dicts:
            dictionary.keys

    def close(self) -> None:
        """Let go of the mapped arrays: each file is unmapped once no array over it is left (call when
        no request reads them any more)."""
        with self.lock:
            self.parts, self.dicts, self.shifts, self.vshifts, self.reads = [], [], [], [], {}
            self.located.clear()
            self.located_rows = 0

    def ask(self, i: int, part: str, starts, ends) -> None:
        """Ask for items [starts, ends) of a part's array in part i, before reading them (the joined set's only)."""
        if i == 0 and part in self.reads:
            self.reads[part].ask(starts, ends)

    def _offsets(self, i: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return where the encoded positions of the postings at rows begin and end in part i's bytes
        (asking for the lengths' blocks, then for the bytes, in the joined set)."""
        self.ask(i, "pvlens", rows // MARK * MARK, (rows + 1) // MARK * MARK + MARK)
        begins, ends = extents(self.parts[i][1], rows)
        self.ask(i, "pvals", begins, ends)
        return begins, ends

    def _find(self, i: int, start: int, end: int, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return, for each of the sorted local documents, where it is in part i's list [start, end) (or
        near where it would be, inside the list) and whether it is there.

        A list short enough for the documents is asked for whole and searched;
        a longer one in the joined set is searched by its skip marks (joining.SKIP) in
        memory, then in the one page of the list each document can be on,
        those pages asked for together. Elsewhere a binary search over the list.
        """
        arrays = self.parts[i][1]
        mine = arrays["pdocs"]
        short = (end - start) * 4 <= WHOLE_LIST_PAGES * mmap.PAGESIZE * max(len(local), 1)
        if short:
            self.ask(i, "pdocs", start, end)
        if short or "pskip" not in arrays:
            at = np.minimum(np.searchsorted(mine[start:end], local), end - start - 1)
            return at, mine[start:end][at] == local
        first = -(-start // joining.SKIP)
        marks = arrays["pskip"][first:-(-end // joining.SKIP)]  # the list's documents at positions k * SKIP
        j = np.searchsorted(marks, local, side="right")  # a document is at or after mark j - 1, before mark j
        j = j[heads(j)]  # each page once (the one before the first mark may be empty)
        lo = np.where(j > 0, (first + j - 1) * joining.SKIP, start)
        hi = np.where(j < len(marks), (first + j) * joining.SKIP, end)
        self.ask(i, "pdocs", lo, hi)
        at = runs(lo, hi - lo)
        if not len(at):
            return np.zeros(len(local), dtype=np.int64), np.zeros(len(local), dtype=bool)
        near = mine[at]  # the pages' documents, still sorted
        pos = np.minimum(np.searchsorted(near, local), len(near) - 1)
        return at[pos] - start, near[pos] == local

    def locate(self, field: str, terms: list[str]) -> list[tuple[np.ndarray, int]]:
        """Return, per term, where its list stands in the segments holding it, and its postings over all.

        Where: one row (segment index, row in its term table, start, end of the
        list) per segment holding the term. Terms not looked up lately are
        searched in each segment's term dictionary all at once (TermDictionary.find).
        """
        found: dict[str, tuple[np.ndarray, int]] = {}
        with self.lock:
            for t in terms:
                if (hit := self.located.get((field, t))) is not None:
                    self.located.move_to_end((field, t))
                    found[t] = hit
        missing = [t for t in dict.fromkeys(terms) if t not in found]
        if missing:
            btexts = [t.encode("utf-8") for t in missing]
            parts = []  # (term, segment, row, start, end) per segment holding a term
            for i, (_, arrays) in enumerate(self.parts):
                at = self.dicts[i].find(field, btexts)
                held = np.flatnonzero(at >= 0)
                spans = list_spans(arrays, at[held])
                parts.append(np.column_stack([held, np.full(len(held), i), at[held], spans]))
            rows = np.concatenate(parts) if parts else np.zeros((0, 5), dtype=np.int64)
            rows = rows[np.argsort(rows[:, 0], kind="stable")]  # by term, segments in order
            cuts = np.searchsorted(rows[:, 0], np.arange(len(missing) + 1))
            fresh = {}
            for j, t in enumerate(missing):
                where = np.ascontiguousarray(rows[cuts[j]:cuts[j + 1], 1:])
                fresh[t] = (where, int((where[:, 3] - where[:, 2]).sum()))
            found.update(fresh)
            with self.lock:
                for t, hit in fresh.items():
                    if (old := self.located.pop((field, t), None)) is not None:  # another thread looked it up too
                        self.located_rows -= len(old[0])
                    self.located[field, t] = hit
                    self.located_rows += len(hit[0])
                while len(self.located) > CACHE_LOCATIONS or self.located_rows > CACHE_LOCATION_ROWS:
                    self.located_rows -= len(self.located.popitem(last=False)[1][0])
        return [found[t] for t in terms]

    def _where(self, field: str, term: str) -> dict[int, tuple[int, int, int]]:
        """Return segment index -> (row in its term table, start, end of the term's list) per segment holding it."""
        return {seg: (row, start, end) for seg, row, start, end in self.locate(field, [term])[0][0].tolist()}

    def probe(self, field: str, term: str, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return which of the sorted docs a term's list holds, and their frequencies, deleted ones included.

        A binary search of each document in its segment's list: the cost grows
        with the documents asked about, not with the list's length.
        """
        where = self._where(field, term)
        held_docs, held_freqs = [], []
        for i, offset, arrays, local in self._segments_of(docs, where):
            _, start, end = where[i]
            if end == start:
                continue
            found, held = self._find(i, start, end, local)
            held_docs.append(local[held].astype(np.int64) + offset)
            if field in UNWEIGHTED:
                held_freqs.append(np.ones(int(held.sum()), dtype=np.float32))
            else:
                at = start + found[held] + self.shifts[i][FIELD_INDEX[field]]
                self.ask(i, "pfreqs", at, at + 1)
                held_freqs.append(freq_values(arrays, at).astype(np.float32))
        if not held_docs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(held_docs), np.concatenate(held_freqs)

    def _segments_of(self, docs: np.ndarray, where: dict[int, tuple[int, int, int]]):
        """Yield (segment, document offset, arrays, the sorted docs inside it as local uint32) per segment
        holding some of the docs and a list (in where).

        uint32 is the lists' own type: searching them with another makes numpy copy the whole list first.
        """
        cuts = np.searchsorted(docs, self.bounds)
        for i in np.flatnonzero(cuts[1:] > cuts[:-1]).tolist():
            if i not in where:
                continue
            offset, arrays = self.parts[i]
            yield i, offset, arrays, (docs[cuts[i]:cuts[i + 1]] - offset).astype(np.uint32)

    def _spans(self, field: str, term: str | bytes):
        """Yield (segment, document offset, arrays, start, end) of a term's list in each segment holding it."""
        where = self._where(field, term if isinstance(term, str) else term.decode("utf-8"))
        for i, (_, start, end) in sorted(where.items()):
            offset, arrays = self.parts[i]
            yield i, offset, arrays, start, end

    def positions(self, field: str, term: str, docs: np.ndarray, decode) -> dict[int, list[int]] | None:
        """Return a term's positions in those of the sorted docs that hold it; None when not kept.

        decode: the field format's decoder of one posting's bytes.
        """
        held = self._held_values(field, term, docs)
        if held is None:
            return None
        out: dict[int, list[int]] = {}
        for found, begins, ends, vals in held:
            for doc, b, e in zip(found.tolist(), begins.tolist(), ends.tolist()):
                out[doc] = decode(vals[b:e].tobytes())
        return out

    def _held_values(self, field: str, term: str, docs: np.ndarray) -> list[tuple] | None:
        """Return, per segment holding some of the sorted docs and the term, (the docs it holds, where each one's
        position bytes begin and end in vals, vals); None when the field keeps no positions here."""
        where = self._where(field, term)
        out = []
        for i, offset, arrays, local in self._segments_of(docs, where):
            row, start, end = where[i]
            if not (self.positional and POSITIONAL_INDEX[FIELD_INDEX[field]]):
                return None
            first = int(self.vshifts[i][FIELD_INDEX[field]])  # a posting's place in pdocs -> among positional
            if end == start:
                continue
            at, held = self._find(i, start, end, local)
            if held.any():
                begins, ends = self._offsets(i, at[held] + start + first)
                out.append((local[held].astype(np.int64) + offset, begins, ends, arrays["pvals"]))
        return out

    def position_arrays(self, field: str, term: str, docs: np.ndarray, decode) -> tuple[np.ndarray, np.ndarray] | None:
        """Return a term's (document, position) pairs in those of the sorted docs that hold it; None when not kept.

        Only segments holding some of the docs are looked at; the positions are
        decoded in bulk (numpy over the packed deltas); decode, the field format's
        decoder of one posting, reads the rare wide ones.
        """
        held = self._held_values(field, term, docs)
        if held is None:
            return None
        held_docs, raw, counts, wide = [], [], [], []
        for found, begins, ends, vals in held:
            narrow = vals[begins] == ord("H")
            for doc, b, e in zip(found[~narrow].tolist(), begins[~narrow].tolist(), ends[~narrow].tolist()):
                wide.append((doc, decode(vals[b:e].tobytes())))
            b, lengths = begins[narrow] + 1, ends[narrow] - begins[narrow] - 1
            raw.append(vals[runs(b, lengths)])
            counts.append(lengths // 2)
            held_docs.append(found[narrow])
        found_docs, found_positions = [], []
        if held_docs:
            many = np.concatenate(counts)
            running = np.cumsum(np.ascontiguousarray(np.concatenate(raw)).view("<u2").astype(np.int64))
            before = np.concatenate(([0], running))[np.cumsum(many) - many]
            found_docs.append(np.repeat(np.concatenate(held_docs), many))
            found_positions.append(running - np.repeat(before, many))
        for doc, positions in wide:
            found_docs.append(np.full(len(positions), doc, dtype=np.int64))
            found_positions.append(np.array(positions, dtype=np.int64))
        if not found_docs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(found_docs), np.concatenate(found_positions)

    def counts(self, field: str, terms: list[str]) -> list[int]:
        """Return the lengths of terms' lists over all segments, reading none of them."""
        return [total for _, total in self.locate(field, terms)]

    def read(self, field: str, term: str | bytes, ranges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return a term's (document numbers, frequencies) over all segments, deleted documents included.

        ranges: sorted, disjoint [start, end) rows of document numbers; only
        postings inside them are read (two binary searches per range and segment).
        """
        docs, freqs = [], []
        for i, offset, arrays, start, end in self._spans(field, term):
            shift = int(self.shifts[i][FIELD_INDEX[field]])
            if ranges is None:
                at, kept = slice(start, end), slice(start + shift, end + shift)
                self.ask(i, "pdocs", start, end)
                if field not in UNWEIGHTED:
                    self.ask(i, "pfreqs", start + shift, end + shift)
            else:
                at = indexes_in(arrays["pdocs"][start:end], ranges - offset) + start
                kept = at + shift
                self.ask(i, "pdocs", at, at + 1)
                if field not in UNWEIGHTED:
                    self.ask(i, "pfreqs", kept, kept + 1)
            docs.append(arrays["pdocs"][at].astype(np.int64) + offset)
            freqs.append(np.ones(len(docs[-1]), dtype=np.float32) if field in UNWEIGHTED else
                         freq_values(arrays, kept).astype(np.float32))
        if not docs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(docs), np.concatenate(freqs)
