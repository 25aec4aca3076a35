"""Postings of a segment being built, and the posting arrays they are written as.

``FieldPostings`` holds one field's postings in flat arrays while a segment is
built (segment.py) and gives them, in term order, all at once to
``PostingArraysWriter``.

The posting arrays keep every indexed field's lists as plain arrays, one .npy
file a part (``array_files``), the one copy of the postings: what matching
reads (arrays.py) and what Whoosh reads through our codec (codec.py):

- ptext, ptends, pfields: the term dictionary (terms.py), each term's field and text, sorted;
- pstarts (uint32, uint64 when wide; one more than terms): where its list starts in pdocs, the next one's
  start its end (``list_spans``);
- pdocs (uint32): document numbers, each list ascending, the lists in dictionary order;
- pfreqs, pfbig, pfmarks: frequencies, capped at FREQ_MAX, of the WEIGHTED fields' postings only
  (``freq_shifts``), one byte each, the rare ones of 255 and more apart (freqs.py);
- pvlens, pvlong, pvmarks: where each positional posting's bytes are in pvals (positions.py), its place
  among them derived like pfreqs' (``position_shifts``);
- pvals (uint8): each posting's positions (schema.PackedPositions).

``copy_lists`` writes one such set from one set or from many (joining.py joins
a build's segments' sets with it).
"""

from __future__ import annotations

import mmap
from array import array
from itertools import repeat
from pathlib import Path

import numpy as np

from indexer import store
from indexer.analysis import iter_bigrams, iter_chars, iter_words
from indexer.freqs import PARTS as FREQ_PARTS
from indexer.freqs import FreqsWriter, values
from indexer.mapped import ADVICE, map_raw, runs
from indexer.positions import LengthsWriter, extents
from indexer.positions import PARTS as POSITION_PARTS
from indexer.schema import BODY, BODY_CHARS, BODY_GRAMS, TITLE, TITLE_CHARS, TITLE_GRAMS
from indexer.terms import FIELDS, TERM_PARTS, TermDictionary, TermsWriter, gather_texts, merge_order

# Text fields: the stored field they read, their stream, and whether they keep
# positions (else presence only) and weigh terms by frequency (else 1.0).
TEXT_FIELDS = {
    TITLE: (TITLE, iter_words, False, True),
    BODY: (BODY, iter_words, False, True),
    TITLE_GRAMS: (TITLE, iter_bigrams, True, False),
    BODY_GRAMS: (BODY, iter_bigrams, True, False),
    TITLE_CHARS: (TITLE, iter_chars, False, False),
    BODY_CHARS: (BODY, iter_chars, False, False),
}
TERM_BYTES = 120  # memory of one distinct term in a segment being built: its text and dict slot
# Every indexed field's posting lists are kept as plain arrays, the only copy: what matching reads,
# and what the Whoosh codec (codec.py) answers Whoosh's own searcher from.
ARRAY_FIELDS = FIELDS
ARRAY_PARTS = (*TERM_PARTS, "pstarts", "pdocs", *FREQ_PARTS)
# Fields whose terms weigh their frequency: the words. Every other field's postings weigh 1.0 (pairs,
# characters: TEXT_FIELDS; ids, labels and numbers occur once), so pfreqs holds the word fields' postings
# only, field after field in dictionary order: 75% of the postings keep no frequency.
WEIGHTED = frozenset(name for name, (_, _, _, weighted) in TEXT_FIELDS.items() if weighted)
UNWEIGHTED = frozenset(FIELDS) - WEIGHTED
WEIGHTED_INDEX = np.array([field in WEIGHTED for field in FIELDS])
# Of positional fields (the pairs), each posting's encoded positions too (what Whoosh's Phrase reads through
# the codec): their lengths and the bytes (positions.py).
POSITIONAL = frozenset(name for name, (_, _, positional, _) in TEXT_FIELDS.items() if positional)
POSITIONAL_INDEX = np.array([field in POSITIONAL for field in FIELDS])
WRITE_CHUNK = 1 << 20  # postings converted at a time
# The posting arrays keep frequencies as uint16: a word more often than this in
# one document counts as this often (BM25 has long flattened by then). The
# rebuild's report names such documents (SATURATED).
FREQ_MAX = 65535
SATURATED = f"a word occurs over {FREQ_MAX:,} times: its frequency is counted as {FREQ_MAX:,}"
EDGE_SAMPLES = 256  # rows of the dictionaries sampled a range, to place the ranges' edges (_edges)
JOIN_POSTINGS = 4_000_000  # postings (and 4x as many position bytes) copy_lists copies at a time: bounds a join's memory


def array_files(seg) -> dict[str, str]:
    """Return the names of a segment's posting array files by part (kept and dropped with the segment)."""
    return {part: f"{seg.segment_id()}.{part}.npy" for part in ARRAY_PARTS + POSITION_PARTS}


class FieldPostings:
    """The postings of one field, in flat arrays in the order documents were added.

    Each posting is a term number, a document number, a frequency and, for
    positional fields, its encoded positions appended to one byte buffer: about
    20 bytes a posting, against ~80 as Python objects per term and document.
    """

    __slots__ = ("terms", "term_ids", "docs", "freqs", "values", "ends")

    def __init__(self, positional: bool) -> None:
        self.terms: dict = {}  # term text -> term number
        self.term_ids = array("I")
        self.docs = array("I")
        self.freqs = array("I")
        self.values = bytearray() if positional else None
        self.ends = array("q") if positional else None

    def add_document(self, found: dict, docnum: int, encode=None, counted: bool = False) -> int:
        """Add one document's terms (text -> its positions, which encode packs in a positional field; with counted,
        text -> a count); return the positions or counts added up. One call a document, not one a posting: the
        calls were ~15 % of writing a segment."""
        freqs = list(found.values()) if counted else [len(plist) for plist in found.values()]
        terms, term_ids = self.terms, self.term_ids
        for text in found:
            number = terms.get(text)
            if number is None:
                number = terms[text] = len(terms)
            term_ids.append(number)
        self.freqs.extend(freqs)
        self.docs.extend(repeat(docnum, len(freqs)))
        if self.values is not None:
            values, ends = self.values, self.ends
            for plist in found.values():
                values += encode(plist)
                ends.append(len(values))
        return sum(freqs)

    def nbytes(self) -> int:
        """Return an estimate of the memory these postings hold."""
        size = len(self.term_ids) * 12 + len(self.terms) * TERM_BYTES
        return size + (len(self.values) + len(self.ends) * 8 if self.values is not None else 0)

    def write_to(self, arrays: PostingArraysWriter, field: str, weighted: bool = True) -> None:
        """Give the field's lists, in term order, to a segment's array writer, letting go of them here."""
        term_ids = np.frombuffer(self.term_ids, dtype=np.uint32)
        order = np.argsort(term_ids, kind="stable")  # keeps each term's documents in order
        starts = np.zeros(len(self.terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_ids, minlength=len(self.terms)), out=starts[1:])
        docs = np.frombuffer(self.docs, dtype=np.uint32)[order]
        freqs = np.frombuffer(self.freqs, dtype=np.uint32)[order]
        values = self.values
        if values is not None:
            ends = np.frombuffer(self.ends, dtype=np.int64)
            begins = np.concatenate((np.zeros(1, dtype=np.int64), ends[:-1]))[order]
            values = (np.frombuffer(values, dtype=np.uint8), begins, ends[order])
        del term_ids
        self.term_ids = self.docs = self.freqs = self.ends = self.values = None
        items = sorted(self.terms.items())
        self.terms = {}
        numbers = np.fromiter((number for _, number in items), dtype=np.int64, count=len(items))
        arrays.add_field(field, [term for term, _ in items], starts[numbers], starts[numbers + 1], docs,
                         freqs if weighted else None, values)


class PostingArraysWriter:
    """Write a segment's posting lists as arrays: every list's document numbers (uint32) and
    frequencies (uint16, capped) one after another, and per term its text (terms.py) and (start, end)
    (uint32), in dictionary order. A field's postings go to disk at once; only the per-term rows stay in
    memory. Fields come in dictionary order, each one's terms sorted; at close the lists are copied into
    that order too (see copy_lists), the order join_arrays reads them in."""

    def __init__(self, folder: Path, seg) -> None:
        self.names = {part: folder / name for part, name in array_files(seg).items()}
        self.docs = store.create_file(self.names["pdocs"].with_suffix(".raw"))
        self.freqs = store.create_file(self.names["pfreqs"].with_suffix(".raw"))
        self.vals = store.create_file(self.names["pvals"].with_suffix(".raw"))
        self.offs_path = folder / f"{seg.segment_id()}.pvoffs.raw"  # scratch: plain offsets, read by copy_lists
        self.offs = store.create_file(self.offs_path)
        self.terms = TermsWriter()
        self.spans = array("q")
        self.at = 0
        self.vat = 0  # positional postings written
        self.vbytes = 0  # their bytes written

    def add_field(self, field: str, terms: list, starts: np.ndarray, ends: np.ndarray, docs: np.ndarray,
                  freqs: np.ndarray | None, values: tuple | None = None) -> None:
        """Add a field's lists: docs and freqs hold them all, term i's at starts[i]:ends[i].

        freqs None: a field whose weights are all 1.0 (UNWEIGHTED): none is written.
        values, for a positional field: (the bytes, each posting's begin and end in them, in docs' order).
        """
        self.terms.add(field, [t if isinstance(t, bytes) else t.encode("utf-8") for t in terms])
        spans = np.empty((len(terms), 2), dtype=np.int64)
        spans[:, 0], spans[:, 1] = starts + self.at, ends + self.at
        self.spans.frombytes(spans.tobytes())
        self.at += len(docs)
        if values is not None:  # in docs' order: a list's first is at its start plus the field's shift
            self._add_values(*values)
        self.docs.write(memoryview(np.ascontiguousarray(docs, dtype=np.uint32)))  # no copy: docs are uint32
        for first in range(0, len(docs) if freqs is not None else 0, WRITE_CHUNK):  # no full-size temporaries
            self.freqs.write(memoryview(np.minimum(freqs[first:first + WRITE_CHUNK], FREQ_MAX).astype(np.uint16)))

    def _add_values(self, data: np.ndarray, begins: np.ndarray, ends: np.ndarray) -> None:
        """Write positional postings' bytes in list order and where each starts, a chunk of postings at a time."""
        for first in range(0, len(begins), WRITE_CHUNK):
            b, e = begins[first:first + WRITE_CHUNK], ends[first:first + WRITE_CHUNK]
            lengths = e - b
            at = np.cumsum(lengths) - lengths  # each posting's start within the chunk's bytes
            total = int(lengths.sum())
            if self.vbytes + total >= 1 << 32:  # a segment's postings are bounded by SEGMENT_BYTES, far below
                raise ValueError("a segment's positions outgrew 4 GB")
            self.offs.write(memoryview(np.ascontiguousarray(at + self.vbytes, dtype=np.uint32)))
            self.vals.write(memoryview(np.ascontiguousarray(data[runs(b, lengths)])))
            self.vbytes += total
        self.vat += len(begins)

    def close(self) -> None:
        """Write the arrays with the lists in dictionary order, as join_arrays reads them: front to back."""
        # Every count inside one segment fits 32 bits (its postings are bounded by SEGMENT_BYTES): the
        # per-term tables and the position offsets stay half as large.
        if self.at >= 1 << 32 or self.vat >= 1 << 31:
            raise ValueError("a segment's postings outgrew 32-bit offsets")
        self.offs.write(memoryview(np.array([self.vbytes], dtype=np.uint32)))  # the last posting's end
        part = {**self.terms.arrays(), "pspans": np.frombuffer(self.spans, dtype=np.int64).reshape(-1, 2)}
        raws = {name: self.names[name].with_suffix(".raw") for name in ("pdocs", "pfreqs", "pvals")}
        raws["pvoffs"] = self.offs_path
        maps = []
        for stream, name, dtype in ((self.docs, "pdocs", np.uint32), (self.freqs, "pfreqs", np.uint16),
                                    (self.vals, "pvals", np.uint8), (self.offs, "pvoffs", np.uint32)):
            stream.close()
            m, part[name] = map_raw(raws[name], dtype)
            maps.append(m)
        copy_lists([(0, part)], maps, self.names)
        del part, maps
        for path in raws.values():
            path.unlink()


def copy_lists(parts: list[tuple[int, dict[str, np.ndarray]]], maps: list, target: dict[str, Path],
               skip: int = 0, docmaps: dict[int, np.ndarray] | None = None) -> None:
    """Write the posting lists of parts as one set of arrays (target: .npy path by part), in dictionary order.

    With a "pskip" target, every skip-th document number of the written pdocs too (see joining.SKIP).
    docmaps: for some parts (by index), each of their document numbers' new number, or -1 for one dropped
    (its postings are left out, and a term left with none gets no row); their offset is not added. Their
    new numbers must come before those of the parts after them.

    parts: (document offset, arrays) each, its dictionary sorted (its lists in
    any order); a term held by several parts gets one list, theirs one after
    another with the offsets added. Terms are taken a range of dictionary keys
    at a time (ranges of about equal postings, see _edges): only the range's
    postings are held, and the maps' pages are let go after each range. Parts
    whose lists are in dictionary order are read front to back, so the memory
    stays flat however many parts and postings there are.
    """
    dicts = [TermDictionary.of(a) for _, a in parts]
    shifts = [freq_shifts(a) for _, a in parts]
    postings = sum(len(a["pdocs"]) for _, a in parts)
    vshifts = [position_shifts(a) for _, a in parts]
    nbytes = sum(len(a["pvals"]) for _, a in parts)
    span_type = np.uint64 if postings >= 1 << 32 else np.uint32
    tend_type = np.uint64 if sum(len(a["ptext"]) for _, a in parts) >= 1 << 32 else np.uint32
    edges = _edges(dicts, parts, max(1, -(-postings // JOIN_POSTINGS), -(-nbytes // (4 * JOIN_POSTINGS))))
    cuts = [np.concatenate(([0], np.searchsorted(d.keys, edges), [len(d)])) for d in dicts]
    raw = {part: store.create_file(path.with_suffix(".joining")) for part, path in target.items() if part != "pfields"}
    mark_type = np.uint64 if nbytes >= 1 << 32 else np.uint32
    lengths_out, freqs_out = LengthsWriter(raw, mark_type), FreqsWriter(raw, span_type)
    at = tbytes = 0
    counts = np.zeros(len(FIELDS), dtype=np.int64)
    docmaps = docmaps or {}
    try:
        for r in range(len(edges) + 1):
            rows = [(i, slice(cut[r], cut[r + 1])) for i, cut in enumerate(cuts) if cut[r + 1] > cut[r]]
            if not rows:
                continue
            seg = np.concatenate([np.full(s.stop - s.start, i) for i, s in rows])
            row = np.concatenate([np.arange(s.start, s.stop) for _, s in rows])
            spans = np.concatenate([list_spans(parts[i][1], s) for i, s in rows])
            first = np.concatenate([_first_placed(parts[i][1], vshifts[i], s) for i, s in rows])
            lengths = _kept_lengths(parts, docmaps, seg, spans)
            live = lengths > 0
            seg, row, spans, first, lengths = seg[live], row[live], spans[live], first[live], lengths[live]
            if not len(seg):
                continue
            order, keys, head_mask = merge_order(dicts, seg, row)
            seg, row, spans, first, lengths = seg[order], row[order], spans[order], first[order], lengths[order]
            out = np.cumsum(lengths) - lengths  # each row's start in the range's postings
            where = first >= 0
            placed_lengths = np.where(where, lengths, 0)
            vout = np.cumsum(placed_lengths) - placed_lengths  # and in its positional postings
            head = np.flatnonzero(head_mask)
            term_ends = np.concatenate((out[head[1:]], [int(lengths.sum())]))
            text, text_lengths = gather_texts(dicts, seg[head], row[head])
            text.tofile(raw["ptext"])
            (np.cumsum(text_lengths) + tbytes).astype(tend_type).tofile(raw["ptends"])
            tbytes += len(text)
            counts += np.bincount((keys[head] >> np.uint64(56)).astype(np.int64), minlength=len(FIELDS))
            (out[head] + at).astype(span_type).tofile(raw["pstarts"])
            fields = (keys >> np.uint64(56)).astype(np.int64)
            docs, freqs, vals, vlen = _copy_range(parts, docmaps, seg, spans, lengths, out, (first, where, vout),
                                                   (fields, shifts))
            docs.tofile(raw["pdocs"])
            if "pskip" in raw:
                docs[(-at) % skip::skip].tofile(raw["pskip"])  # those at positions k * skip of the whole pdocs
            freqs_out.add(freqs)
            lengths_out.add(vlen)
            vals.tofile(raw["pvals"])
            at += len(docs)
            for m in maps:
                if m is not None and ADVICE:
                    m.advise(mmap.MADV_DONTNEED)  # the pages stay cached; this process lets go of them
        lengths_out.close()
        freqs_out.close()
        np.array([at], dtype=span_type).tofile(raw["pstarts"])  # the last list's end
    finally:
        for stream in raw.values():
            stream.close()
    dtypes = {"ptext": np.uint8, "ptends": tend_type, "pstarts": span_type, "pdocs": np.uint32, "pfreqs": np.uint8,
              "pfbig": np.uint16, "pfmarks": span_type, "pvlens": np.uint8, "pvlong": np.uint32, "pvmarks": mark_type,
              "pvals": np.uint8, "pskip": np.uint32}
    for part, path in target.items():
        if part != "pfields":
            raw_to_npy(path.with_suffix(".joining"), path, dtypes[part], width=2 if part == "pvmarks" else 1)
    with store.create_file(target["pfields"]) as stream:
        np.save(stream, np.concatenate(([0], np.cumsum(counts))).astype(np.int64))


def _edges(dicts: list[TermDictionary], parts: list, ranges: int) -> np.ndarray:
    """Return the dictionary keys that cut the parts' terms into about `ranges` ranges of equal postings."""
    if ranges <= 1 or not sum(len(d) for d in dicts):
        return np.zeros(0, dtype=np.uint64)
    # Every step-th row of each part stands for the rows up to the next one: the edges are as good to within one
    # block, and what is sorted here is 1/step of the dictionaries (sorting every row of a million items' 60
    # segments took a rebuild's peak from ~2.3 to 4.3 GB).
    step = max(1, sum(len(d) for d in dicts) // (ranges * EDGE_SAMPLES))
    keys, sizes = [], []
    for d, (_, a) in zip(dicts, parts):
        if len(d):
            at = np.arange(0, len(d), step)
            keys.append(d.keys[at])
            sizes.append(np.add.reduceat(np.diff(list_spans(a, slice(0, len(d))), axis=1).ravel(), at))
    keys, sizes = np.concatenate(keys), np.concatenate(sizes)
    order = np.argsort(keys, kind="stable")
    total = np.cumsum(sizes[order])
    at = np.searchsorted(total, np.arange(1, ranges) * (int(total[-1]) / ranges))
    return np.unique(keys[order][np.minimum(at, len(keys) - 1)])


def list_spans(arrays: dict[str, np.ndarray], rows) -> np.ndarray:
    """Return [start, end) in pdocs of the lists of rows (a slice or indexes), as rows of 2 (int64).

    A set keeps the starts only (pstarts: a list ends where the next starts); a segment's scratch arrays
    (PostingArraysWriter), whose lists are in the order terms were first seen, keep both (pspans).
    """
    if "pspans" in arrays:
        return arrays["pspans"][rows].astype(np.int64).reshape(-1, 2)
    starts = arrays["pstarts"]
    if isinstance(rows, slice):
        rows = np.arange(*rows.indices(len(starts) - 1))
    rows = np.asarray(rows, dtype=np.int64)
    return np.stack([starts[rows], starts[rows + 1]], axis=1).astype(np.int64).reshape(-1, 2)


def _first_placed(arrays: dict[str, np.ndarray], vshifts: np.ndarray, rows: slice) -> np.ndarray:
    """Return the place among the positional postings of the first posting of each of the rows' lists
    (-1 for a field that keeps no positions)."""
    field = np.searchsorted(arrays["pfields"].astype(np.int64), np.arange(rows.start, rows.stop), side="right") - 1
    starts = list_spans(arrays, rows)[:, 0]
    return np.where(POSITIONAL_INDEX[field], starts + vshifts[field], -1)


def position_shifts(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Return, per field of FIELDS, what to add to a posting's place in a set's pdocs for its place among
    the positional postings (meaningful for the POSITIONAL fields only, field after field)."""
    return freq_shifts(arrays, POSITIONAL_INDEX)


def freq_shifts(arrays: dict[str, np.ndarray], kept: np.ndarray = WEIGHTED_INDEX) -> np.ndarray:
    """Return, per field of FIELDS, what to add to a posting's place in a set's pdocs for its place in pfreqs
    (meaningful for the WEIGHTED fields only, whose postings pfreqs holds, field after field; kept: the
    fields of another such part instead).

    A field's lists are one block of pdocs, in dictionary order except in a segment's scratch arrays
    (PostingArraysWriter), where they are in the order terms were first seen: the block starts at its
    lowest list start.
    """
    fields = arrays["pfields"].astype(np.int64)
    starts, sizes = np.zeros(len(FIELDS), dtype=np.int64), np.zeros(len(FIELDS), dtype=np.int64)
    for i in np.flatnonzero(kept & (fields[1:] > fields[:-1])).tolist():
        rows = list_spans(arrays, slice(fields[i], fields[i + 1]))
        starts[i], sizes[i] = rows[:, 0].min(), (rows[:, 1] - rows[:, 0]).sum()
    return np.cumsum(sizes) - sizes - starts


def _sources(parts, docmaps, i: int, spans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the postings of part i that rows (their spans in it) keep, in row order, and their new document
    numbers (the part's offset added, or its docmap's numbers for those it keeps)."""
    base, arrays = parts[i]
    src = runs(spans[:, 0], spans[:, 1] - spans[:, 0])
    if i not in docmaps:
        return src, arrays["pdocs"][src] + np.uint32(base)
    mapped = docmaps[i][arrays["pdocs"][src]]
    kept = mapped >= 0
    return src[kept], mapped[kept].astype(np.uint32)


def _kept_lengths(parts, docmaps, seg: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Return how many postings of each row's list are kept (all but those a docmap drops)."""
    lengths = spans[:, 1] - spans[:, 0]
    for i in docmaps:
        mine = np.flatnonzero(seg == i)
        if len(mine):
            src = runs(spans[mine, 0], lengths[mine])
            kept = docmaps[i][parts[i][1]["pdocs"][src]] >= 0
            owner = np.repeat(np.arange(len(mine)), lengths[mine])
            lengths[mine] = np.bincount(owner, weights=kept, minlength=len(mine)).astype(np.int64)
    return lengths


def _copy_range(parts, docmaps, seg, spans, lengths, out, placed, weights):
    """Return a range's (document numbers, frequencies, position bytes, each positional posting's length),
    its rows' lists copied from their parts one after another (see copy_lists).

    lengths: the postings each row keeps; placed: per row, its first positional posting in its part,
    whether it has any, and where they go; weights: per row, its field's index in FIELDS; per part, its
    freq_shifts.
    """
    first, where, vout = placed
    fields, shifts = weights
    weighted = WEIGHTED_INDEX[fields]
    docs = np.empty(int(lengths.sum()), dtype=np.uint32)
    freq_lengths = np.where(weighted, lengths, 0)
    fout = np.cumsum(freq_lengths) - freq_lengths
    freqs = np.empty(int(freq_lengths.sum()), dtype=np.uint16)
    placed_lengths = np.where(where, lengths, 0)
    vlen = np.empty(int(placed_lengths.sum()), dtype=np.int64)
    copies = []
    for i in np.flatnonzero(np.bincount(seg)).tolist():  # the parts present (np.unique hashes)
        arrays = parts[i][1]
        mine = seg == i
        src, docs[runs(out[mine], lengths[mine])] = _sources(parts, docmaps, i, spans[mine])
        inside = src - np.repeat(spans[mine, 0], lengths[mine])  # each kept posting's place in its list
        kept = np.repeat(weighted[mine], lengths[mine])
        shift = np.repeat(shifts[i][fields[mine]], lengths[mine])
        freqs[runs(fout[mine & weighted], lengths[mine & weighted])] = values(arrays, (src + shift)[kept])
        p = (np.repeat(first[mine], lengths[mine]) + inside)[np.repeat(where[mine], lengths[mine])]
        begins, ends = extents(arrays, p)
        pdest = runs(vout[mine & where], lengths[mine & where])
        vlen[pdest] = ends - begins
        copies.append((arrays, begins, ends - begins, pdest))
    voffs = np.cumsum(vlen) - vlen
    vals = np.empty(int(vlen.sum()), dtype=np.uint8)
    for arrays, begins, blen, pdest in copies:
        vals[runs(voffs[pdest], blen)] = arrays["pvals"][runs(begins, blen)]
    return docs, freqs, vals, vlen


def raw_to_npy(raw: Path, target: Path, dtype, width: int = 1) -> None:
    """Turn a file of raw values into a .npy file, streaming (the header goes first); width > 1: rows of it."""
    count = raw.stat().st_size // np.dtype(dtype).itemsize
    shape = (count,) if width == 1 else (count // width, width)
    with store.create_file(target) as out, open(raw, "rb") as source:
        np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                   "fortran_order": False, "shape": shape})
        while chunk := source.read(1 << 24):
            out.write(chunk)
    raw.unlink()
