"""Whoosh's codec over our files: a build stays a Whoosh index, its postings read from our arrays.

``whoosh.index.open_dir`` opens a build, and Whoosh's own searcher, query
parser and ``document_number`` answer on it through ``ArrayCodec``:

- its terms reader (``ArrayTermsReader``) reads a segment's term dictionary
  (terms.py) and posting arrays (postings.py), the segment's only copy of its
  postings: terms by text and prefix, their statistics, and matchers over the
  lists, with the positions of the pair fields for Whoosh's Phrase query;
- its per-document reader (perdoc.ArrayPerDocReader) reads our stored fields,
  composing the values the segment's keys file holds from it, and field
  lengths and columns from that keys file;
  deletions are the segment's, in the TOC.

Whoosh's TOC pickles every segment with its codec, so this module's path and
its class names stay fixed (changing them means a rebuild). Segments are
written by segment.py, never through Whoosh's writer: ``field_writer`` refuses.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np
from whoosh.codec import base
from whoosh.codec.whoosh3 import W3Codec, W3Segment
from whoosh.matching import ListMatcher
from whoosh.reading import TermInfo, TermNotFound

from indexer import joining
from indexer.freqs import values as freq_values
from indexer.mapped import map_npy
from indexer.perdoc import ArrayPerDocReader
from indexer.positions import span
from indexer.postings import POSITIONAL, UNWEIGHTED, array_files, freq_shifts, list_spans, position_shifts
from indexer.store import DamagedFileError
from indexer.terms import FIELD_INDEX, FIELDS, TermDictionary

MAX_LENGTH = 1 << 31  # a term's longest document, as its statistics say: unknown here, and only a bound


class MissingTerm(TermNotFound, KeyError):
    """A term a segment does not hold: Whoosh's readers catch one or the other, by method."""


class ArrayCodec(W3Codec):
    """Whoosh 2.7's codec interface over our arrays and per-document files."""

    def field_writer(self, storage, segment):
        raise NotImplementedError("segments of this codec are written by indexer.segment, not Whoosh's writer")

    def per_document_writer(self, storage, segment):
        raise NotImplementedError("segments of this codec are written by indexer.segment, not Whoosh's writer")

    def per_document_reader(self, storage, segment):
        return ArrayPerDocReader(storage, segment)

    def terms_reader(self, storage, segment):
        return ArrayTermsReader(Path(storage.folder), segment)

    def new_segment(self, storage, indexname):
        return ArraySegment(self, indexname)


class ArraySegment(W3Segment):
    """A segment whose postings are our arrays: its codec is ArrayCodec (pickled in the TOC with it)."""


class ArrayTermsReader(base.TermsReader):
    """A segment's terms, statistics and posting lists, read from its term dictionary and arrays, or, for
    a segment the build's joined set covers, from its slice of that set (joining.py)."""

    def __init__(self, folder: Path, segment) -> None:
        names = array_files(segment)
        self.base, self.count = 0, None  # a covered segment: its first document in the set, and how many
        if (folder / names["pdocs"]).is_file():
            self.set = _ArraySet({part: map_npy(folder / name)[1] for part, name in names.items()})
        else:
            self.set = _joined(folder)
            if self.set is None or segment.segment_id() not in self.set.ids:
                raise DamagedFileError(folder / names["pdocs"], "missing, and no joined set holds it")
            k = self.set.ids.index(segment.segment_id())
            self.base, self.count = sum(self.set.counts[:k]), self.set.counts[k]
        self.arrays, self.dictionary, self.shifts = self.set.arrays, self.set.dictionary, self.set.shifts
        self.vshifts = self.set.vshifts

    def _row(self, fieldname: str, tbytes: bytes) -> int:
        row = int(self.dictionary.find(fieldname, [tbytes])[0])
        return row if row >= 0 and self._held(row) else -1

    def _held(self, row: int) -> bool:
        start, end = self._span(row)
        return end > start

    def _found(self, fieldname: str, tbytes: bytes) -> int:
        row = self._row(fieldname, tbytes)
        if row < 0:
            raise MissingTerm(f"{fieldname}:{tbytes!r}")
        return row

    def _span(self, row: int) -> tuple[int, int]:
        """Return where the segment's postings of a row's term are in pdocs (its part of the set's list)."""
        start, end = (int(n) for n in list_spans(self.arrays, [row])[0])
        if self.count is None:
            return start, end
        docs = self.arrays["pdocs"][start:end]
        return start + int(np.searchsorted(docs, self.base)), start + int(np.searchsorted(docs, self.base + self.count))

    def __contains__(self, term) -> bool:
        return self._row(*term) >= 0

    def indexed_field_names(self):
        return [field for field in FIELDS if self.dictionary.rows(field)[1] > self.dictionary.rows(field)[0]]

    def terms(self):
        return self.terms_from(FIELDS[0], b"")

    def terms_from(self, fieldname, prefix):
        for field in FIELDS[FIELDS.index(fieldname):] if fieldname in FIELDS else ():
            for row, text in self.dictionary.items_from(field, prefix if field == fieldname else b""):
                if self.count is None or self._held(row):
                    yield field, text

    def items(self):
        for field, text in self.terms():
            yield (field, text), self.term_info(field, text)

    def items_from(self, fieldname, prefix):
        for field, text in self.terms_from(fieldname, prefix):
            yield (field, text), self.term_info(field, text)

    def _freqs(self, fieldname: str, start: int, end: int) -> np.ndarray:
        if fieldname in UNWEIGHTED:
            return np.ones(end - start, dtype=np.float64)
        shift = int(self.shifts[FIELD_INDEX[fieldname]])
        return freq_values(self.arrays, slice(start + shift, end + shift)).astype(np.float64)

    def term_info(self, fieldname, tbytes):
        start, end = self._span(self._found(fieldname, tbytes))
        docs, freqs = self.arrays["pdocs"], self._freqs(fieldname, start, end)
        return TermInfo(float(freqs.sum()), end - start, 1, MAX_LENGTH, float(freqs.max()),
                        int(docs[start]) - self.base, int(docs[end - 1]) - self.base)

    def frequency(self, fieldname, tbytes):
        start, end = self._span(self._found(fieldname, tbytes))
        return float(self._freqs(fieldname, start, end).sum())

    def doc_frequency(self, fieldname, tbytes):
        start, end = self._span(self._found(fieldname, tbytes))
        return end - start

    def matcher(self, fieldname, tbytes, format_, scorer=None):
        row = self._found(fieldname, tbytes)
        start, end = self._span(row)
        weights = None if fieldname in UNWEIGHTED else self._freqs(fieldname, start, end).tolist()
        ids = (self.arrays["pdocs"][start:end].astype(np.int64) - self.base).tolist()
        return ListMatcher(ids, weights, self._values(fieldname, start, end), format_, scorer=scorer,
                           term=(fieldname, tbytes), terminfo=self.term_info(fieldname, tbytes))

    def _values(self, fieldname: str, start: int, end: int) -> list[bytes] | None:
        """Return the encoded positions of postings [start, end) of a term, or None for a field that keeps none."""
        if fieldname not in POSITIONAL:
            return None
        first = start + int(self.vshifts[FIELD_INDEX[fieldname]])
        offs, vals = span(self.arrays, first, end - start), self.arrays["pvals"]
        return [vals[b:e].tobytes() for b, e in zip(offs[:-1].tolist(), offs[1:].tolist())]

    def close(self):
        self.set = self.arrays = self.dictionary = None  # each file is unmapped once no array over it is left


class _ArraySet:
    """One set of posting arrays mapped, with its term dictionary and frequency shifts."""

    def __init__(self, arrays: dict[str, np.ndarray], ids: list[str] = (), counts: list[int] = ()) -> None:
        self.arrays, self.ids, self.counts = arrays, list(ids), list(counts)
        self.dictionary = TermDictionary.of(arrays)
        self.shifts = freq_shifts(arrays)
        self.vshifts = position_shifts(arrays)


# The joined set of each build, shared by the readers of the segments it covers while any of them is open:
# mapped once, and each field's dictionary keys computed once, not once per segment.
_JOINED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_JOINING = threading.Lock()


def _joined(folder: Path) -> _ArraySet | None:
    """Return the build's joined set, shared (None when it has none)."""
    try:
        stat = (folder / joining.WHOLE_FILE).stat()
    except OSError:
        return None
    key = (str(folder.resolve()), stat.st_ino, stat.st_mtime_ns)
    with _JOINING:
        found = _JOINED.get(key)
        if found is None:
            joined = joining.joined_set(folder)
            if joined is None:
                return None
            found = _JOINED[key] = _ArraySet(joined[2], joined[0], joined[1])
    return found
