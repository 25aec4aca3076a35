"""The term dictionary of a set of posting arrays: every term's text, sorted, looked up by text.

A set of posting arrays (postings.py) has one row per term of every indexed
field; the dictionary gives each row's field and text, three parts beside the
set's other ``.npy`` files (``TERM_PARTS``):

- ptext (uint8): the terms' UTF-8 bytes back to back, in dictionary order;
- ptends (uint32; uint64 when ptext reaches 4 GB): where each term's bytes end
  in ptext (row i runs from ptends[i - 1], or 0, to ptends[i]);
- pfields (int64, len(FIELDS) + 1): the first row of each field of FIELDS, then
  the number of rows.

Dictionary order is by field (FIELDS, sorted by name), then by the term's bytes
(for UTF-8, code point order), strictly ascending: one row a term, and no two
terms can share a row, as two hashes could. A term is found by text: an
order-keeping 64-bit key of its field and first PREFIX bytes (``prefix_keys``,
computed from the parts at first use, never stored) narrows the search to the
rows that share it, usually one, whose texts are then compared.
"""

from __future__ import annotations

import bisect
from array import array

import numpy as np

from indexer.mapped import runs
from indexer.schema import build_schema

# Every indexed field of the schema, in dictionary order.
FIELDS = tuple(sorted(name for name, field in build_schema().items() if field.indexed))
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}
TERM_PARTS = ("ptext", "ptends", "pfields")
PREFIX = 7  # bytes of a term in its key, after the field's byte


def prefix_key(field: str, btext: bytes) -> int:
    """Return the order-keeping key of a term: its field's index, then its first PREFIX bytes."""
    return (FIELD_INDEX[field] << 56) | int.from_bytes(btext[:PREFIX].ljust(PREFIX, b"\0"), "big")


def prefix_keys(text: np.ndarray, ends: np.ndarray, fields: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Return the prefix_key of rows [lo, hi) (all by default), from a dictionary's parts (ascending, ties allowed)."""
    hi = len(ends) if hi is None else hi
    count = hi - lo
    starts = np.zeros(count, dtype=np.int64)
    starts[1:] = ends[lo:hi - 1] if count else starts[1:]
    if lo and count:
        starts[0] = ends[lo - 1]
    lengths = ends[lo:hi].astype(np.int64) - starts
    per_field = np.diff(np.clip(fields, lo, hi)).astype(np.int64)
    keys = np.repeat(np.arange(len(fields) - 1, dtype=np.uint64), per_field) << np.uint64(56)
    for j in range(PREFIX):
        has = np.flatnonzero(lengths > j)
        byte = np.zeros(count, dtype=np.uint64)
        byte[has] = text[starts[has] + j]
        keys |= byte << np.uint64(8 * (PREFIX - 1 - j))
    return keys


class TermDictionary:
    """One set's term dictionary, over its (mapped) parts: texts by row, rows by text."""

    def __init__(self, text: np.ndarray, ends: np.ndarray, fields: np.ndarray) -> None:
        self.text, self.ends, self.fields = text, ends, fields
        self._keys: np.ndarray | None = None
        self._field_keys: dict[str, np.ndarray] = {}

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray]) -> TermDictionary:
        """Return the dictionary of a set's arrays (by part)."""
        return cls(arrays["ptext"], arrays["ptends"], arrays["pfields"])

    def __len__(self) -> int:
        return len(self.ends)

    @property
    def keys(self) -> np.ndarray:
        """Every row's prefix_key (computed once: two threads may both compute it, to the same result)."""
        if self._keys is None:
            self._keys = prefix_keys(self.text, self.ends, self.fields)
        return self._keys

    def field_keys(self, field: str) -> np.ndarray:
        """The prefix_key of a field's rows (computed once per field: a look-up of one field's terms reads
        only that field's part of the dictionary)."""
        if self._keys is not None:
            return self._keys[slice(*self.rows(field))]
        found = self._field_keys.get(field)
        if found is None:
            found = self._field_keys[field] = prefix_keys(self.text, self.ends, self.fields, *self.rows(field))
        return found

    def term(self, row: int) -> bytes:
        """Return a row's text."""
        start = int(self.ends[row - 1]) if row else 0
        return self.text[start:int(self.ends[row])].tobytes()

    def rows(self, field: str) -> tuple[int, int]:
        """Return the rows [first, end) of a field (empty for a field the dictionary does not know)."""
        if field not in FIELD_INDEX:
            return 0, 0
        i = FIELD_INDEX[field]
        return int(self.fields[i]), int(self.fields[i + 1])

    def start(self, field: str, btext: bytes) -> int:
        """Return the row of a field's first term at or after btext (the field's end when there is none)."""
        first, end = self.rows(field)
        if end == first:
            return end
        keys, key = self.field_keys(field), np.uint64(prefix_key(field, btext))
        lo = first + int(np.searchsorted(keys, key, side="left"))
        hi = first + int(np.searchsorted(keys, key, side="right"))
        return bisect.bisect_left(range(lo, hi), btext, key=self.term) + lo

    def find(self, field: str, btexts: list[bytes]) -> np.ndarray:
        """Return the row of each term of a field, -1 for one the dictionary does not hold."""
        found = np.full(len(btexts), -1, dtype=np.int64)
        first, end = self.rows(field)
        if end == first:
            return found
        table = self.field_keys(field)
        keys = np.array([prefix_key(field, b) for b in btexts], dtype=np.uint64)
        lo = np.searchsorted(table, keys, side="left") + first
        hi = np.searchsorted(table, keys, side="right") + first
        for j in np.flatnonzero(hi > lo).tolist():
            a, b = int(lo[j]), int(hi[j])
            at = a if b - a == 1 else bisect.bisect_left(range(a, b), btexts[j], key=self.term) + a
            if at < b and self.term(at) == btexts[j]:
                found[j] = at
        return found

    def items_from(self, field: str, prefix: bytes = b""):
        """Yield (row, text) of a field's terms from the first at or after prefix, in order, to the field's end."""
        _, end = self.rows(field)
        for row in range(self.start(field, prefix), end):
            yield row, self.term(row)


class TermsWriter:
    """Collect a set's terms field after field, each field's in order, as the dictionary's parts."""

    def __init__(self) -> None:
        self.text = bytearray()
        self.ends = array("q")
        self.counts = np.zeros(len(FIELDS), dtype=np.int64)

    def add(self, field: str, btexts: list[bytes]) -> None:
        """Add a field's terms, sorted; fields come in FIELDS order."""
        for btext in btexts:
            self.text += btext
            self.ends.append(len(self.text))
        self.counts[FIELD_INDEX[field]] += len(btexts)

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the parts.

        :raises ValueError: when the terms were not added in dictionary order.
        """
        fields = np.zeros(len(FIELDS) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=fields[1:])
        parts = {"ptext": np.frombuffer(bytes(self.text), dtype=np.uint8),
                 "ptends": np.frombuffer(self.ends, dtype=np.int64).astype(np.uint32), "pfields": fields}
        keys = prefix_keys(parts["ptext"], parts["ptends"], fields)
        if (keys[1:] < keys[:-1]).any():
            raise ValueError("terms were not added in dictionary order")
        return parts


def merge_order(dicts: list[TermDictionary], part: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return the order that sorts rows (of dicts[part], at row) by field and text, parts in order for one
    term, the rows' keys in that order, and a mask, in that order, of each distinct term's first row.

    Keys decide; then, among rows of one key, a text of at most PREFIX bytes
    (padded with zeros in its key) comes before longer ones, shorter before
    longer, and texts longer than PREFIX bytes are ranked by their whole bytes.
    """
    keys = np.empty(len(row), dtype=np.uint64)
    lengths = np.empty(len(row), dtype=np.int64)
    for p in np.flatnonzero(np.bincount(part)).tolist():  # the parts present (np.unique hashes)
        mine = part == p
        d = dicts[p]
        keys[mine] = d.keys[row[mine]]
        ends = d.ends[row[mine]].astype(np.int64)
        lengths[mine] = ends - np.where(row[mine] > 0, d.ends[np.maximum(row[mine] - 1, 0)].astype(np.int64), 0)
    rank = np.zeros(len(row), dtype=np.int64)
    long = np.flatnonzero(lengths > PREFIX)
    if len(long):
        texts = [dicts[p].term(r) for p, r in zip(part[long].tolist(), row[long].tolist())]
        ranks = {t: i + 1 for i, t in enumerate(sorted(set(texts)))}
        rank[long] = [ranks[t] for t in texts]
    short = np.where(lengths <= PREFIX, lengths, 0)  # b"a" and b"a\0" share a key
    order = np.lexsort((part, short, rank, keys))
    k, r, n = keys[order], rank[order], short[order]
    head = np.ones(len(order), dtype=bool)
    head[1:] = (k[1:] != k[:-1]) | (r[1:] != r[:-1]) | (n[1:] != n[:-1])
    return order, k, head


def gather_texts(dicts: list[TermDictionary], part: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the texts of rows (of dicts[part], at row) back to back, and each one's length."""
    lengths = np.empty(len(row), dtype=np.int64)
    begins = np.empty(len(row), dtype=np.int64)
    for p in np.flatnonzero(np.bincount(part)).tolist():  # the parts present (np.unique hashes)
        mine = part == p
        ends = dicts[p].ends
        e = ends[row[mine]].astype(np.int64)
        b = np.where(row[mine] > 0, ends[np.maximum(row[mine] - 1, 0)].astype(np.int64), 0)
        begins[mine], lengths[mine] = b, e - b
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    at = np.cumsum(lengths) - lengths
    for p in np.flatnonzero(np.bincount(part)).tolist():  # the parts present (np.unique hashes)
        mine = part == p
        out[runs(at[mine], lengths[mine])] = dicts[p].text[runs(begins[mine], lengths[mine])]
    return out, lengths
