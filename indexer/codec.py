"""Whoosh's codec over our files: a build stays a Whoosh index, its postings read from our arrays.

``whoosh.index.open_dir`` opens a build, and Whoosh's own searcher, query
parser and ``document_number`` answer on it through ``ArrayCodec``:

- its terms reader (``ArrayTermsReader``) reads a segment's term dictionary
  (terms.py) and posting arrays (postings.py), the segment's only copy of its
  postings: terms by text and prefix, their statistics, and matchers over the
  lists, with the positions of the pair fields for Whoosh's Phrase query;
- its per-document reader is Whoosh's own (stored fields, field lengths,
  columns; deletions are the segment's, in the TOC).

Whoosh's TOC pickles every segment with its codec, so this module's path and
its class names stay fixed (changing them means a rebuild). Segments are
written by segment.py, never through Whoosh's writer: ``field_writer`` refuses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from whoosh.codec import base
from whoosh.codec.whoosh3 import W3Codec, W3Segment
from whoosh.matching import ListMatcher
from whoosh.reading import TermInfo, TermNotFound

from indexer.mapped import map_npy
from indexer.postings import UNWEIGHTED, array_files, freq_shifts
from indexer.terms import FIELD_INDEX, FIELDS, TermDictionary

MAX_LENGTH = 1 << 31  # a term's longest document, as its statistics say: unknown here, and only a bound


class MissingTerm(TermNotFound, KeyError):
    """A term a segment does not hold: Whoosh's readers catch one or the other, by method."""


class ArrayCodec(W3Codec):
    """Whoosh 2.7's codec interface over our arrays; per-document files are Whoosh 3's."""

    def field_writer(self, storage, segment):
        raise NotImplementedError("segments of this codec are written by indexer.segment, not Whoosh's writer")

    def terms_reader(self, storage, segment):
        return ArrayTermsReader(Path(storage.folder), segment)

    def new_segment(self, storage, indexname):
        return ArraySegment(self, indexname)


class ArraySegment(W3Segment):
    """A segment whose postings are our arrays: its codec is ArrayCodec (pickled in the TOC with it)."""


class ArrayTermsReader(base.TermsReader):
    """A segment's terms, statistics and posting lists, read from its term dictionary and arrays."""

    def __init__(self, folder: Path, segment) -> None:
        self.arrays = {part: map_npy(folder / name)[1] for part, name in array_files(segment).items()}
        self.dictionary = TermDictionary.of(self.arrays)
        self.shifts = freq_shifts(self.arrays)

    def _row(self, fieldname: str, tbytes: bytes) -> int:
        return int(self.dictionary.find(fieldname, [tbytes])[0])

    def _found(self, fieldname: str, tbytes: bytes) -> int:
        row = self._row(fieldname, tbytes)
        if row < 0:
            raise MissingTerm(f"{fieldname}:{tbytes!r}")
        return row

    def _span(self, row: int) -> tuple[int, int]:
        start, end = self.arrays["pspans"][row]
        return int(start), int(end)

    def __contains__(self, term) -> bool:
        return self._row(*term) >= 0

    def indexed_field_names(self):
        return [field for field in FIELDS if self.dictionary.rows(field)[1] > self.dictionary.rows(field)[0]]

    def terms(self):
        for field in FIELDS:
            for _, text in self.dictionary.items_from(field):
                yield field, text

    def terms_from(self, fieldname, prefix):
        for _, text in self.dictionary.items_from(fieldname, prefix):
            yield fieldname, text
        for field in FIELDS[FIELDS.index(fieldname) + 1:] if fieldname in FIELDS else ():
            for _, text in self.dictionary.items_from(field):
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
        return self.arrays["pfreqs"][start + shift:end + shift].astype(np.float64)

    def term_info(self, fieldname, tbytes):
        start, end = self._span(self._found(fieldname, tbytes))
        docs, freqs = self.arrays["pdocs"], self._freqs(fieldname, start, end)
        return TermInfo(float(freqs.sum()), end - start, 1, MAX_LENGTH, float(freqs.max()),
                        int(docs[start]), int(docs[end - 1]))

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
        return ListMatcher(self.arrays["pdocs"][start:end].tolist(), weights, self._values(row, end - start),
                           format_, scorer=scorer, term=(fieldname, tbytes),
                           terminfo=self.term_info(fieldname, tbytes))

    def _values(self, row: int, count: int) -> list[bytes] | None:
        """Return the encoded positions of a term's postings, or None for a field that keeps none."""
        first = int(self.arrays["pvterm"][row])
        if first < 0:
            return None
        offs, vals = self.arrays["pvoffs"][first:first + count + 1].astype(np.int64), self.arrays["pvals"]
        return [vals[b:e].tobytes() for b, e in zip(offs[:-1].tolist(), offs[1:].tolist())]

    def close(self):
        self.arrays, self.dictionary = {}, None  # each file is unmapped once no array over it is left

