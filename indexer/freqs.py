"""Frequencies of the word fields' postings: one byte each, the rare larger ones apart.

A set of posting arrays (postings.py) keeps the frequencies of its WEIGHTED
fields' postings (title, body words) in posting order, as:

- pfreqs (uint8): the frequency, or BIG (255) for one of 255 or more, whose
  value is the next entry of
- pfbig (uint16): the BIG postings' frequencies (capped at postings.FREQ_MAX), in posting order;
- pfmarks (uint32, uint64 when the set is wide; one per MARK postings and one
  more): how many BIG postings come before posting MARK * b.

Almost every word occurs under 255 times in a document, so a read is one
byte a posting and a check that none is BIG; a BIG one is found in pfbig by
its mark and a count over at most MARK bytes before it.
"""

from __future__ import annotations

import numpy as np

BIG = 255
MARK = 1024  # postings a mark: a BIG frequency's read counts at most this many bytes
PARTS = ("pfreqs", "pfbig", "pfmarks")


def values(arrays: dict[str, np.ndarray], at) -> np.ndarray:
    """Return the frequencies (uint16) of the weighted postings at (a slice or indexes) of a set."""
    freqs = arrays["pfreqs"]
    if freqs.dtype == np.uint16:  # a segment's scratch arrays (postings.PostingArraysWriter): plain
        return freqs[at]
    out = freqs[at].astype(np.uint16)
    big = np.flatnonzero(out == BIG)
    if len(big):
        where = np.arange(*at.indices(len(freqs)))[big] if isinstance(at, slice) else np.asarray(at)[big]
        marks = arrays["pfmarks"]
        ranks = [int(marks[p // MARK]) + int(np.count_nonzero(freqs[p // MARK * MARK:p] == BIG))
                 for p in where.tolist()]
        out[big] = arrays["pfbig"][ranks]
    return out


class FreqsWriter:
    """Write pfreqs, pfbig and pfmarks of weighted postings given a run at a time, in posting order."""

    def __init__(self, streams: dict, mark_type) -> None:
        self.streams, self.mark_type = streams, mark_type  # files open for writing raw values, by part
        self.count = self.bigs = 0

    def add(self, freqs: np.ndarray) -> None:
        """Add the frequencies (capped at FREQ_MAX) of the next postings."""
        big = freqs >= BIG
        marked = np.arange((-self.count) % MARK, len(freqs), MARK)
        before = np.cumsum(big) - big
        (before[marked] + self.bigs).astype(self.mark_type).tofile(self.streams["pfmarks"])
        np.minimum(freqs, BIG).astype(np.uint8).tofile(self.streams["pfreqs"])
        freqs[big].astype(np.uint16).tofile(self.streams["pfbig"])
        self.count += len(freqs)
        self.bigs += int(big.sum())

    def close(self) -> None:
        """Write the mark of the end when the postings fill their last block (a read past the last may ask it)."""
        if self.count % MARK == 0:
            np.array([self.bigs], dtype=self.mark_type).tofile(self.streams["pfmarks"])
