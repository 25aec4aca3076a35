"""Where each positional posting's bytes are in pvals: one byte a posting, not four.

A set of posting arrays (postings.py) keeps the encoded positions of the pair
fields' postings back to back in ``pvals``. Where posting k's bytes start is
not stored per posting but derived:

- pvlens (uint8, one per positional posting): its byte length, or LONG (255)
  for a posting of 255 bytes or more (over 126 positions of one pair in one
  document: rare), whose length is the next entry of
- pvlong (uint32): the lengths of the LONG postings, in posting order;
- pvmarks (uint32, uint64 when pvals reaches 4 GB; rows of 2, one per MARK
  postings and one more when the count is a multiple of MARK): for posting MARK * b, where its bytes start in
  pvals and how many LONG postings come before it.

Posting k starts at pvmarks[k // MARK, 0] plus the lengths of the postings
MARK * (k // MARK) .. k - 1: a block of at most MARK lengths, decoded in numpy.
Row k == count (the end of the last posting) has its block too.

Which positional posting a term's list starts at is not stored either: like
pfreqs' place (postings.freq_shifts), it is the list's start in pdocs plus a
shift per field (``position_shifts``).
"""

from __future__ import annotations

import numpy as np

from indexer.mapped import heads

MARK = 128  # postings per mark: a read decodes at most this many lengths more than it needs
LONG = 255  # a length byte meaning "look it up in pvlong"
PARTS = ("pvlens", "pvlong", "pvmarks", "pvals")


def extents(arrays: dict[str, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return where the positional postings at rows (any order) begin and end in pvals."""
    rows = np.asarray(rows, dtype=np.int64)
    if "pvoffs" in arrays:  # a segment's scratch arrays (postings.PostingArraysWriter): plain offsets
        offs = arrays["pvoffs"]
        return offs[rows].astype(np.int64), offs[rows + 1].astype(np.int64)
    if not len(rows):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    blocks = np.sort(np.concatenate((rows // MARK, (rows + 1) // MARK)))
    blocks = blocks[heads(blocks)]  # np.unique, without its hashing (mapped.heads)
    starts = block_starts(arrays, blocks)
    at_begin = np.searchsorted(blocks, rows // MARK) * MARK + rows % MARK
    at_end = np.searchsorted(blocks, (rows + 1) // MARK) * MARK + (rows + 1) % MARK
    return starts[at_begin], starts[at_end]


def span(arrays: dict[str, np.ndarray], first: int, count: int) -> np.ndarray:
    """Return where postings first .. first + count - 1 start, and where the last one ends (count + 1 offsets)."""
    if "pvoffs" in arrays:
        return arrays["pvoffs"][first:first + count + 1].astype(np.int64)
    blocks = np.arange(first // MARK, (first + count) // MARK + 1, dtype=np.int64)
    start = first - blocks[0] * MARK
    return block_starts(arrays, blocks)[start:start + count + 1]


def block_starts(arrays: dict[str, np.ndarray], blocks: np.ndarray) -> np.ndarray:
    """Return the start in pvals of every posting of the sorted blocks, MARK a block, block after block
    (past the last posting: where it ends)."""
    lens, marks = arrays["pvlens"], arrays["pvmarks"]
    index = (blocks[:, None] * MARK + np.arange(MARK)).ravel()
    inside = index < len(lens)
    lengths = np.zeros(len(index), dtype=np.int64)
    lengths[inside] = lens[index[inside]]
    lengths = lengths.reshape(len(blocks), MARK)
    long = lengths == LONG
    if long.any():
        rank = marks[blocks, 1].astype(np.int64)[:, None] + np.cumsum(long, axis=1) - 1
        lengths[long] = arrays["pvlong"][rank[long]]
    return (marks[blocks, 0].astype(np.int64)[:, None] + np.cumsum(lengths, axis=1) - lengths).ravel()


class LengthsWriter:
    """Write pvlens, pvlong and pvmarks of postings given a run at a time, in posting order."""

    def __init__(self, streams: dict, mark_type=np.uint32) -> None:
        self.streams = streams  # pvlens, pvlong, pvmarks: files open for writing raw values
        self.mark_type = mark_type  # uint64 when the bytes may reach 4 GB
        self.count = self.nbytes = self.longs = 0

    def add(self, lengths: np.ndarray) -> None:
        """Add the byte lengths of the next postings."""
        lengths = np.asarray(lengths, dtype=np.int64)
        long = lengths >= LONG
        marked = np.arange((-self.count) % MARK, len(lengths), MARK)
        before = np.cumsum(lengths) - lengths
        longs_before = np.cumsum(long) - long
        np.stack([before[marked] + self.nbytes, longs_before[marked] + self.longs],
                 axis=1).astype(self.mark_type).tofile(self.streams["pvmarks"])
        np.minimum(lengths, LONG).astype(np.uint8).tofile(self.streams["pvlens"])
        lengths[long].astype(np.uint32).tofile(self.streams["pvlong"])
        self.count += len(lengths)
        self.nbytes += int(lengths.sum())
        self.longs += int(long.sum())

    def close(self) -> None:
        """Write the mark of the end when the postings fill their last block (its row is read for the end)."""
        if self.count % MARK == 0:
            np.array([[self.nbytes, self.longs]], dtype=self.mark_type).tofile(self.streams["pvmarks"])

