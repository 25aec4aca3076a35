"""Write Whoosh segments directly, in Whoosh's own on-disk format.

Whoosh's writer turns every token into an object, pushes every posting through
a sorting pool and pickles each block's postings as tuples of Python numbers.
Our fields produce ~4x the postings of a plain word index (words + character
pairs + characters), so that path is too slow and too big. ``SegmentBuilder``
instead computes each document's postings straight from the analysis streams,
keeps them in flat arrays per field, and writes each posting list in whole blocks:

- a block is what Whoosh's reader expects — a length, a pickled info tuple, and
  a zlib-compressed pickle of (ids, weights, values) — but written with pickle
  protocol 4 and compact containers: ids as a byte/short array of deltas,
  weights left out when all are 1.0;
- posting lists of at most INLINE_LIMIT documents are stored inline in the term
  table, a layout Whoosh's reader supports (its writer's switch for it is broken
  in 2.7.4).

Segments are left as separate files, not one compound file (see finish). The
result opens with plain ``whoosh.index.open_dir``. Each worker process
builds whole segments; the parent lists them in one TOC. ``SegmentStream``
starts a new segment whenever the postings held reach a memory budget, so a
process's memory does not grow with the archive.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import mmap
import os
import struct
import threading
import weakref
import zlib
from array import array
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from pickle import dumps

import numpy as np
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3TermInfo
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC, clean_files
from whoosh.system import pack_ushort
from whoosh.util.numeric import length_to_byte

from indexer import store, stories
from indexer.analysis import WORD_RUN, iter_bigrams, iter_chars, iter_words, normalize
from indexer.schema import (
    BODY, BODY_CHARS, BODY_GRAMS, BODY_LEN, CATEGORY, HEADLINE, LENGTH_OF, PUBLISHED, SOURCE, TITLE, TITLE_CHARS,
    TITLE_GRAMS, TITLE_LEN, build_schema,
)

INDEX_NAME = "MAIN"
INLINE_LIMIT = 8  # posting lists this short live in the term table
BLOCK_LIMIT = 128  # postings per block, as Whoosh's writer uses
COMPRESSION = 3  # zlib level of block data, as Whoosh's writer uses
TERM_BYTES = 120  # memory of one distinct term in a segment being built: its text and dict slot
SEGMENT_BYTES = 400_000_000  # postings one process holds before it writes them out as a segment
SEGMENT_DOCS = 60_000  # and at most this many documents in one segment
_TERMINFO = W3TermInfo._struct  # a term-table row's fixed part
_ROW_LENGTHS = struct.Struct("!ii")  # a hash table row's key and value lengths, as whoosh.filedb.filetables
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


def _no_value(plist):
    return None


def word_chars(folded: str) -> str:
    """Return the word characters of folded text, in order."""
    return "".join(WORD_RUN.findall(folded))


def bigram_positions(folded: str) -> dict[str, list[int]]:
    """Return each character pair of folded text with its positions."""
    found: dict[str, list[int]] = {}
    for match in WORD_RUN.finditer(folded):
        run, base = match.group(), match.start()
        for i in range(len(run) - 1):
            pair = run[i:i + 2]
            at = found.get(pair)
            if at is None:
                found[pair] = [base + i]
            else:
                at.append(base + i)
    return found


def word_positions(folded: str, original: str | None = None) -> dict[str, list[int]]:
    """Return each word of folded text with its positions (original: the text before folding)."""
    found: dict[str, list[int]] = {}
    for word, pos, _, _ in iter_words(folded, original):
        at = found.get(word)
        if at is None:
            found[word] = [pos]
        else:
            at.append(pos)
    return found

LENGTH_COLUMNS = {column: field for field, column in LENGTH_OF.items()}



class _FieldPostings:
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

    def add(self, text, docnum: int, freq: int, value: bytes | None) -> None:
        number = self.terms.get(text)
        if number is None:
            number = self.terms[text] = len(self.terms)
        self.term_ids.append(number)
        self.docs.append(docnum)
        self.freqs.append(freq)
        if value is not None:
            self.values += value
            self.ends.append(len(self.values))

    def nbytes(self) -> int:
        """Return an estimate of the memory these postings hold."""
        size = len(self.term_ids) * 12 + len(self.terms) * TERM_BYTES
        return size + (len(self.values) + len(self.ends) * 8 if self.values is not None else 0)

    def sorted_terms(self, arrays: PostingArraysWriter | None = None, field: str = "", weighted: bool = True):
        """Yield (term, document numbers, frequencies as arrays, values or None) in term order, letting go of the arrays.

        arrays, if given, gets the whole field's posting lists at once first.
        """
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
            ends = ends[order]
        del term_ids
        self.term_ids = self.docs = self.freqs = self.ends = self.values = None
        items = sorted(self.terms.items())
        self.terms = {}
        if arrays is not None:
            numbers = np.fromiter((number for _, number in items), dtype=np.int64, count=len(items))
            arrays.add_field(field, [term for term, _ in items], starts[numbers], starts[numbers + 1], docs,
                             freqs if weighted else None,
                             None if values is None else (np.frombuffer(values, dtype=np.uint8), begins, ends))
        found = None
        for term, number in items:
            first, last = int(starts[number]), int(starts[number + 1])
            if values is not None:
                found = [bytes(values[b:e]) for b, e in zip(begins[first:last].tolist(), ends[first:last].tolist())]
            yield term, docs[first:last], freqs[first:last], found


class SegmentBuilder:
    """Build one segment of an index from document dicts.

    Besides Whoosh's files, finish writes the segment's keys and per-document
    values into ``<segment id>.keys.npz`` (see _Keys), which updates and the
    search side read instead of unpickling every stored document.
    """

    def __init__(self, storage, schema=None) -> None:
        self.storage = storage
        self.schema = schema or build_schema()
        self.codec = W3Codec()
        self.segment = self.codec.new_segment(storage, INDEX_NAME)
        self.perdoc = self.codec.per_document_writer(storage, self.segment)
        self.fields: dict[str, _FieldPostings] = {
            name: _FieldPostings(name in TEXT_FIELDS and TEXT_FIELDS[name][2])
            for name in self.schema.names() if self.schema[name].indexed}
        self.lengths: dict[str, array] = {name: array("I") for name in self.fields}
        self.keys = _Keys()
        self.docnum = 0
        self.saturated = 0  # postings of weighted fields whose frequency is past FREQ_MAX

    def nbytes(self) -> int:
        """Return an estimate of the memory this segment holds so far."""
        return sum(f.nbytes() for f in self.fields.values()) + self.keys.nbytes

    def add(self, doc: dict) -> None:
        """Add one document; the character fields are derived from title and body."""
        docnum = self.docnum
        folded = {name: normalize(doc.get(name) or "") for name in (TITLE, BODY)}
        self.perdoc.start_doc(docnum)
        for name in self.schema.names():
            field = self.schema[name]
            value = doc.get(name)
            length = 0
            if name in LENGTH_COLUMNS:
                value = self.lengths[LENGTH_COLUMNS[name]][docnum]
            if name in TEXT_FIELDS:
                source = TEXT_FIELDS[name][0]
                length = self._index_text(name, folded[source], docnum, doc.get(source) or "")
            elif value is None:
                self.lengths.get(name, array("I")).append(0)
                continue
            elif field.indexed:
                length = self._index_other(name, field, value, docnum)
            self.perdoc.add_field(name, field, value if field.stored else None, length)
            if field.column_type is not None and value is not None:
                self.perdoc.add_column_value(name, field.column_type, field.to_column_value(value))
        self.perdoc.finish_doc()
        self.keys.add(doc, folded[TITLE], self.lengths[TITLE][docnum], self.lengths[BODY][docnum])
        self.docnum += 1

    def _index_text(self, name: str, folded: str, docnum: int, original: str) -> int:
        _, stream, positional, _ = TEXT_FIELDS[name]
        postings = self.fields[name]
        if stream is iter_chars:
            chars = word_chars(folded)
            for ch in set(chars):
                postings.add(ch, docnum, 1, None)
            self.lengths[name].append(len(chars))
            return len(chars)
        found = bigram_positions(folded) if stream is iter_bigrams else word_positions(folded, original)
        encode = self.schema[name].format.encode if positional else _no_value
        length = 0
        weighted = TEXT_FIELDS[name][3]
        for text, plist in found.items():
            postings.add(text, docnum, len(plist), encode(plist))
            length += len(plist)
            self.saturated += weighted and len(plist) > FREQ_MAX
        self.lengths[name].append(length)
        return length

    def _index_other(self, name: str, field, value, docnum: int) -> int:
        postings = self.fields[name]
        length = 0
        for btext, freq, _, _ in field.index(value):
            postings.add(btext, docnum, freq, None)
            length += freq
        self.lengths[name].append(length if field.scorable else 0)
        return length if field.scorable else 0

    def finish(self):
        """Write the postings, the posting arrays and the keys file and close the segment; return it for a TOC."""
        self.perdoc.close()
        writer = self.codec.field_writer(self.storage, self.segment)
        arrays = PostingArraysWriter(Path(self.storage.folder), self.segment)
        for name in sorted(self.fields):
            writer.start_field(name, self.schema[name])
            weighted = TEXT_FIELDS.get(name, (None, None, False, True))[3]
            lengths = self.lengths[name]
            kept = arrays if name in ARRAY_FIELDS else None
            for term, docs, freqs, values in self.fields.pop(name).sorted_terms(kept, name, weighted):
                btext = term if isinstance(term, bytes) else term.encode("utf-8")
                _write_term(writer, btext, docs.tolist(), freqs.tolist(), values, lengths, weighted)
            writer.finish_field()
        writer.close()
        arrays.close()
        self.segment.set_doc_count(self.docnum)
        self.keys.save(Path(self.storage.folder) / keys_file(self.segment))
        # No compound file: Whoosh reads a compound segment's parts through
        # BytesIO copies of the mapped file (~100 MB per term table, per
        # process); separate files are read in place and shared in the page cache.
        return self.segment


def key_of(text: str) -> int:
    """Return the 64-bit key of a text (an id, a folded title, a path)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def keys_file(seg) -> str:
    """Return the name of a segment's keys file: Whoosh's clean-up keeps and drops it with the segment."""
    return f"{seg.segment_id()}.keys.npz"


# -- posting arrays ------------------------------------------------------------------

# Fields whose posting lists are also kept as plain arrays beside Whoosh's blocks:
# what matching reads whole. Whoosh's blocks are decoded in Python, block by block
# (~30 µs a block of 128); an array is one slice of a mapped file.
ARRAY_FIELDS = (*TEXT_FIELDS, SOURCE, CATEGORY)
ARRAY_PARTS = ("pkeys", "pspans", "pdocs", "pfreqs")
# Fields whose frequencies are all 1 (TEXT_FIELDS): their pfreqs are never read, which spares a third of
# the bytes a read of their lists would fault in.
UNWEIGHTED = frozenset(name for name, (_, _, _, weighted) in TEXT_FIELDS.items() if not weighted)
# Where recently looked-up terms' lists stand, kept per build: at most this many terms, and this many
# (segment, row, start, end) rows of 32 bytes over them all (~32 MB), however many segments the archive has.
CACHE_LOCATIONS = 20_000
CACHE_LOCATION_ROWS = 1_000_000
# Of positional fields, each posting's encoded positions too (the bytes Whoosh keeps in its blocks):
# per term the index of its first posting's offset (-1: not positional), the offsets, the bytes.
POSITION_PARTS = ("pvterm", "pvoffs", "pvals")
WRITE_CHUNK = 1 << 20  # postings converted at a time
# The posting arrays keep frequencies as uint16: a word more often than this in
# one document counts as this often (BM25 has long flattened by then). The
# rebuild's report names such documents (SATURATED).
FREQ_MAX = 65535
SATURATED = f"a word occurs over {FREQ_MAX:,} times: its frequency is counted as {FREQ_MAX:,}"


def posting_key(field: str, btext: bytes) -> int:
    """Return the 64-bit key of a term in a field, as the posting arrays are sorted by."""
    return _hash8(field.encode() + b"\0" + btext)


def _hash8(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def array_files(seg) -> dict[str, str]:
    """Return the names of a segment's posting array files by part (kept and dropped with the segment)."""
    return {part: f"{seg.segment_id()}.{part}.npy" for part in ARRAY_PARTS + POSITION_PARTS}


class PostingArraysWriter:
    """Write a segment's posting lists as arrays: every list's document numbers (uint32) and
    frequencies (uint16, capped) one after another, and per term its key and (start, end) (uint32),
    sorted by key. A field's postings go to disk at once; only the per-term rows stay in memory.
    At close the lists are copied into key order (see _copy_lists), the order join_arrays reads them in."""

    def __init__(self, folder: Path, seg) -> None:
        self.names = {part: folder / name for part, name in array_files(seg).items()}
        self.docs = store.create_file(self.names["pdocs"].with_suffix(".raw"))
        self.freqs = store.create_file(self.names["pfreqs"].with_suffix(".raw"))
        self.vals = store.create_file(self.names["pvals"].with_suffix(".raw"))
        self.offs = store.create_file(self.names["pvoffs"].with_suffix(".raw"))
        self.keys = array("Q")
        self.spans = array("q")
        self.vterm = array("q")
        self.at = 0
        self.vat = 0  # positional postings written
        self.vbytes = 0  # their bytes written

    def add_field(self, field: str, terms: list, starts: np.ndarray, ends: np.ndarray, docs: np.ndarray,
                  freqs: np.ndarray | None, values: tuple | None = None) -> None:
        """Add a field's lists: docs and freqs hold them all, term i's at starts[i]:ends[i].

        freqs None: a field whose weights are all 1.0 (as Whoosh reads it).
        values, for a positional field: (the bytes, each posting's begin and end in them, in docs' order).
        """
        prefix = field.encode() + b"\0"
        self.keys.extend(_hash8(prefix + (t if isinstance(t, bytes) else t.encode("utf-8"))) for t in terms)
        spans = np.empty((len(terms), 2), dtype=np.int64)
        spans[:, 0], spans[:, 1] = starts + self.at, ends + self.at
        self.spans.frombytes(spans.tobytes())
        self.at += len(docs)
        if values is None:
            self.vterm.frombytes(np.full(len(terms), -1, dtype=np.int64).tobytes())
        else:
            self.vterm.frombytes((np.asarray(starts, dtype=np.int64) + self.vat).tobytes())
            self._add_values(*values)
        self.docs.write(memoryview(np.ascontiguousarray(docs, dtype=np.uint32)))  # no copy: docs are uint32
        for first in range(0, len(docs), WRITE_CHUNK):  # a field holds tens of millions: no full-size temporaries
            count = min(WRITE_CHUNK, len(docs) - first)
            values = np.ones(count, dtype=np.uint16) if freqs is None else \
                np.minimum(freqs[first:first + count], FREQ_MAX).astype(np.uint16)
            self.freqs.write(memoryview(values))

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
        """Write the arrays with the lists in key order, as join_arrays reads them: front to back."""
        # Every count inside one segment fits 32 bits (its postings are bounded by SEGMENT_BYTES): the
        # per-term tables and the position offsets stay half as large.
        if self.at >= 1 << 32 or self.vat >= 1 << 31:
            raise ValueError("a segment's postings outgrew 32-bit offsets")
        self.offs.write(memoryview(np.array([self.vbytes], dtype=np.uint32)))  # the last posting's end
        keys = np.frombuffer(self.keys, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        part = {"pkeys": keys[order], "pspans": np.frombuffer(self.spans, dtype=np.int64).reshape(-1, 2)[order],
                "pvterm": np.frombuffer(self.vterm, dtype=np.int64)[order]}
        maps = []
        for stream, name, dtype in ((self.docs, "pdocs", np.uint32), (self.freqs, "pfreqs", np.uint16),
                                    (self.vals, "pvals", np.uint8), (self.offs, "pvoffs", np.uint32)):
            stream.close()
            m, part[name] = _mapped_raw(self.names[name].with_suffix(".raw"), dtype)
            maps.append(m)
        _copy_lists([(0, part)], maps, self.names)
        del part, maps
        for name in ("pdocs", "pfreqs", "pvals", "pvoffs"):
            self.names[name].with_suffix(".raw").unlink()


def _mapped_raw(path: Path, dtype) -> tuple[Mapping | None, np.ndarray]:
    """Map a file of raw values read-only: (the map, the array over it)."""
    return _map(path, np.dtype(dtype), (path.stat().st_size // np.dtype(dtype).itemsize,), 0)


def _mapped(path: Path) -> tuple[Mapping | None, np.ndarray]:
    """Map a .npy file read-only: (the map, to let go of its pages or advise it; the array over it).

    :raises store.DamagedFileError: when it is missing, not a .npy file, or shorter than its header says.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            start = f.tell()
            size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError) as exc:
        raise store.DamagedFileError(path, f"not a readable array ({type(exc).__name__}: {exc})") from None
    needed = start + int(np.prod(shape)) * dtype.itemsize
    if size < needed:
        raise store.DamagedFileError(path, f"cut short: {size:,} bytes of {needed:,}")
    return _map(path, dtype, shape, start)


def _map(path: Path, dtype: np.dtype, shape: tuple, start: int) -> tuple[Mapping | None, np.ndarray]:
    count = int(np.prod(shape))
    if not count:
        return None, np.zeros(shape, dtype=dtype)
    m = Mapping(path)
    found = np.frombuffer(m.pages, dtype=dtype, count=count, offset=start).reshape(shape)
    found.flags.writeable = False  # the pages are mapped read-only: a write would crash the process
    return m, found


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_MAP_FAILED = ctypes.c_void_p(-1).value


class Mapping:
    """A whole file mapped read-only, holding no file descriptor; unmapped when no array over it is left.

    Python's mmap keeps a duplicate of the file's descriptor as long as the map
    lives (before 3.13's trackfd): seven per segment, so an index of ~146
    segments would reach a limit of 1,024 descriptors. A mapping needs no open
    descriptor, so the file is closed at once. pages (a ctypes array over the
    mapping) is what arrays are made over: numpy keeps it alive as their base,
    and the pages are unmapped when it is collected, never under a live array.
    """

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            self.size = os.fstat(fd).st_size
            address = _libc.mmap(None, self.size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        finally:
            os.close(fd)
        if address in (None, _MAP_FAILED):
            error = ctypes.get_errno()
            raise OSError(error, f"cannot map {path}: {os.strerror(error)}")
        self.address = address
        self.pages = (ctypes.c_ubyte * self.size).from_address(address)
        unmap = weakref.finalize(self.pages, _libc.munmap, address, self.size)
        unmap.atexit = False  # the process's end unmaps it; at exit other threads may still read it

    def advise(self, advice: int, start: int = 0, length: int | None = None) -> None:
        """Advise the kernel about bytes [start, start + length) (page-aligned start) of the map."""
        length = self.size - start if length is None else min(length, self.size - start)
        if length > 0 and _libc.madvise(self.address + start, length, advice) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))


def runs(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Return the indexes start, start + 1, ... of each run, one run after another (no Python loop)."""
    total = int(lengths.sum())
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total, dtype=np.int64)


def heads(ordered: np.ndarray) -> np.ndarray:
    """Return a mask of the sorted values that differ from the one before (each distinct value's first).

    With a sort, what np.unique gives: since numpy 2.3 that hashes, and took
    44 ms for 100,000 document numbers here against 0.6 ms for a sort.
    """
    return np.concatenate(([True], ordered[1:] != ordered[:-1])) if len(ordered) else np.zeros(0, dtype=bool)


def _raw_to_npy(raw: Path, target: Path, dtype, width: int = 1) -> None:
    """Turn a file of raw values into a .npy file, streaming (the header goes first); width > 1: rows of it."""
    count = raw.stat().st_size // np.dtype(dtype).itemsize
    shape = (count,) if width == 1 else (count // width, width)
    with store.create_file(target) as out, open(raw, "rb") as source:
        np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                   "fortran_order": False, "shape": shape})
        while chunk := source.read(1 << 24):
            out.write(chunk)
    raw.unlink()


# A rebuild joins its segments' arrays into one set (whole.*.npy, whole.json naming the segments it
# covers): a term's list is then one run of bytes, not one per segment. On a cold page cache a read
# faults once per list instead of once per segment (50 at 16x), each fault reading up to read_ahead_kb.
WHOLE = "whole"
WHOLE_FILE = "whole.json"
ADVICE = all(hasattr(mmap, name) for name in ("MADV_RANDOM", "MADV_WILLNEED", "MADV_DONTNEED"))  # as on Linux
JOIN_POSTINGS = 4_000_000  # postings (and 4x as many position bytes) joined at a time: bounds the join's memory
# The joined set also keeps every SKIP-th document number of its lists (whole.pskip.npy, 3.2 MB at a million
# items, read into memory): a document probed in a long list is then found on its page of the list by a
# search in memory, and only that page is read, where a binary search over the mapped list faults in a
# page at each step. Optional: a set without the file is searched as before.
SKIP = 1024  # document numbers of a page (4 KB of uint32)
SKIP_FILE = f"{WHOLE}.pskip.npy"


def whole_files() -> dict[str, str]:
    """Return the names of a build's joined posting array files by part."""
    return {part: f"{WHOLE}.{part}.npy" for part in ARRAY_PARTS + POSITION_PARTS}


def join_arrays(folder: str | Path, segments: list) -> bool:
    """Join the segments' posting arrays into one set in folder (see WHOLE); False when there is nothing to join."""
    folder = Path(folder)
    names = [array_files(seg) for seg in segments]
    if len(segments) < 2 or not all((folder / n[part]).is_file() for n in names for part in n):
        return False
    maps, parts, offset = [], [], 0
    for seg, n in zip(segments, names):
        arrays = {}
        for part, name in n.items():
            m, arrays[part] = _mapped(folder / name)
            maps.append(m)
        parts.append((offset, arrays))
        offset += seg.doc_count_all()
    _copy_lists(parts, maps, {**{part: folder / name for part, name in whole_files().items()},
                              "pskip": folder / SKIP_FILE})
    with store.create_file(folder / WHOLE_FILE) as stream:
        stream.write(json.dumps({"segments": [seg.segment_id() for seg in segments], "documents": offset}).encode())
    return True


def _copy_lists(parts: list[tuple[int, dict[str, np.ndarray]]], maps: list, target: dict[str, Path]) -> None:
    """Write the posting lists of parts as one set of arrays (target: .npy path by part), in key order.

    With a "pskip" target, every SKIP-th document number of the written pdocs too (see SKIP).

    parts: (document offset, arrays) each, its pkeys sorted (its lists in any
    order); a term held by several parts gets one list, theirs one after
    another with the offsets added. Terms are taken a range of keys at a time:
    only the range's postings are held, and the maps' pages are let go after
    each range. Parts whose lists are in key order are read front to back, so
    the memory stays flat however many parts and postings there are.
    """
    postings = sum(len(a["pdocs"]) for _, a in parts)
    placed = sum(len(a["pvoffs"]) - 1 for _, a in parts)
    nbytes = sum(len(a["pvals"]) for _, a in parts)
    wide = postings >= 1 << 32 or nbytes >= 1 << 32 or placed >= 1 << 31
    span_type, offs_type, term_type = (np.uint64, np.uint64, np.int64) if wide else (np.uint32, np.uint32, np.int32)
    ranges = max(1, -(-postings // JOIN_POSTINGS), -(-nbytes // (4 * JOIN_POSTINGS)))
    edges = np.array([(k << 64) // ranges for k in range(1, ranges)], dtype=np.uint64)
    cuts = [np.concatenate(([0], np.searchsorted(a["pkeys"], edges), [len(a["pkeys"])])) for _, a in parts]
    raw = {part: store.create_file(path.with_suffix(".joining")) for part, path in target.items()}
    at = vat = vbytes = 0
    try:
        for r in range(ranges):
            rows = [(i, slice(cut[r], cut[r + 1])) for i, cut in enumerate(cuts) if cut[r + 1] > cut[r]]
            if not rows:
                continue
            keys = np.concatenate([parts[i][1]["pkeys"][s] for i, s in rows])
            seg = np.concatenate([np.full(s.stop - s.start, i) for i, s in rows])
            spans = np.concatenate([parts[i][1]["pspans"][s].astype(np.int64).reshape(-1, 2) for i, s in rows])
            first = np.concatenate([parts[i][1]["pvterm"][s].astype(np.int64) for i, s in rows])
            order = np.lexsort((seg, keys))
            keys, seg, spans, first = keys[order], seg[order], spans[order], first[order]
            lengths = spans[:, 1] - spans[:, 0]
            out = np.cumsum(lengths) - lengths  # each row's start in the range's postings
            where = first >= 0
            placed_lengths = np.where(where, lengths, 0)
            vout = np.cumsum(placed_lengths) - placed_lengths  # and in its positional postings
            head = np.flatnonzero(heads(keys))
            term_ends = np.concatenate((out[head[1:]], [int(lengths.sum())]))
            keys[head].tofile(raw["pkeys"])
            np.stack([out[head] + at, term_ends + at], axis=1).astype(span_type).tofile(raw["pspans"])
            np.where(where[head], vout[head] + vat, -1).astype(term_type).tofile(raw["pvterm"])
            docs = np.empty(int(lengths.sum()), dtype=np.uint32)
            freqs = np.empty(len(docs), dtype=np.uint16)
            vlen = np.empty(int(placed_lengths.sum()), dtype=np.int64)
            copies = []
            for i in np.unique(seg).tolist():
                base, arrays = parts[i]
                mine = seg == i
                src, dest = runs(spans[mine, 0], lengths[mine]), runs(out[mine], lengths[mine])
                docs[dest] = arrays["pdocs"][src] + np.uint32(base)
                freqs[dest] = arrays["pfreqs"][src]
                mine &= where
                p = runs(first[mine], lengths[mine])
                begins, ends = arrays["pvoffs"][p].astype(np.int64), arrays["pvoffs"][p + 1].astype(np.int64)
                pdest = runs(vout[mine], lengths[mine])
                vlen[pdest] = ends - begins
                copies.append((arrays, begins, ends - begins, pdest))
            voffs = np.cumsum(vlen) - vlen
            vals = np.empty(int(vlen.sum()), dtype=np.uint8)
            for arrays, begins, blen, pdest in copies:
                vals[runs(voffs[pdest], blen)] = arrays["pvals"][runs(begins, blen)]
            docs.tofile(raw["pdocs"])
            if "pskip" in raw:
                docs[(-at) % SKIP::SKIP].tofile(raw["pskip"])  # those at positions k * SKIP of the whole pdocs
            freqs.tofile(raw["pfreqs"])
            (voffs + vbytes).astype(offs_type).tofile(raw["pvoffs"])
            vals.tofile(raw["pvals"])
            at, vat, vbytes = at + len(docs), vat + len(vlen), vbytes + len(vals)
            for m in maps:
                if m is not None and ADVICE:
                    m.advise(mmap.MADV_DONTNEED)  # the pages stay cached; this process lets go of them
        np.array([vbytes], dtype=offs_type).tofile(raw["pvoffs"])
    finally:
        for stream in raw.values():
            stream.close()
    dtypes = {"pkeys": np.uint64, "pspans": span_type, "pdocs": np.uint32, "pfreqs": np.uint16,
              "pvterm": term_type, "pvoffs": offs_type, "pvals": np.uint8, "pskip": np.uint32}
    for part, path in target.items():
        _raw_to_npy(path.with_suffix(".joining"), path, dtypes[part], width=2 if part == "pspans" else 1)


def rejoin(folder: str | Path, segments: list) -> bool:
    """Join these segments' arrays anew in place of the build's joined set (see join_arrays)."""
    folder = Path(folder)
    for name in (*whole_files().values(), SKIP_FILE, WHOLE_FILE):
        (folder / name).unlink(missing_ok=True)  # links to the live build's: that one keeps its own
    return join_arrays(folder, segments)


def joined_ids(folder: str | Path) -> list[str]:
    """Return the ids of the segments the build's joined set was made of (none when it has none)."""
    try:
        covers = json.loads((Path(folder) / WHOLE_FILE).read_text())["segments"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return covers if isinstance(covers, list) else []


def _joined(folder: Path, segments: list) -> tuple[int, dict[str, np.ndarray], dict[str, ExactReads]] | None:
    """Return (how many of the first segments it covers, its arrays, their exact reads) of the build's
    joined set, if it covers the first segments as they are (an update may have rewritten one of them).

    Its arrays hold "pskip" (see SKIP) when the set has a file of the right length.
    """
    covered = covered_count(folder, segments, check=True)
    if covered is None:
        return None
    arrays, reads = {}, {}
    for part, name in whole_files().items():
        m, arrays[part] = _mapped(folder / name)
        if m is not None and part in EXACT_PARTS and ADVICE:
            reads[part] = ExactReads(m, arrays[part])
    try:
        skip = np.load(folder / SKIP_FILE)
    except (OSError, ValueError, EOFError):  # none, or not an array: searched without it
        skip = None
    if skip is not None and skip.dtype == np.uint32 and len(skip) == -(-len(arrays["pdocs"]) // SKIP):
        arrays["pskip"] = skip
    return covered, arrays, reads


def covered_count(folder: str | Path, segments: list, check: bool = False) -> int | None:
    """Return how many of the first segments the build's joined set covers; None when it has none, or it
    does not cover the first segments as they are (an update rewrote one of them).

    :raises store.DamagedFileError: with check, when whole.json cannot be read or a file of the set is missing.
    """
    folder = Path(folder)
    path = folder / WHOLE_FILE
    if not path.is_file():
        return None
    covers = joined_ids(folder)
    if not covers:
        if check:
            raise store.DamagedFileError(path, "not the list of segments the joined arrays cover")
        return None
    if covers != [seg.segment_id() for seg in segments[:len(covers)]]:
        return None
    for name in whole_files().values():
        if not (folder / name).is_file():
            if check:
                raise store.DamagedFileError(folder / name, f"missing (the joined arrays {WHOLE_FILE} names)")
            return None
    return len(covers)


# The joined set's large arrays are read exactly (see ExactReads); its term tables, a few MB, by the kernel's
# read-around as usual.
EXACT_PARTS = ("pdocs", "pfreqs", "pvoffs", "pvals")
WHOLE_LIST_PAGES = 8  # a list probed for k documents is asked for whole when it has at most this many pages a document


class ExactReads:
    """Reads of a mapped array that fetch the pages they need and no others.

    The map is advised MADV_RANDOM: a page fault then reads its own page, not
    the kernel's read-around (up to read_ahead_kb, 8 MB on our machine) of
    unrelated terms' lists. What a request will read is asked for first, all
    at once (MADV_WILLNEED): the disk serves those pages together instead of one
    fault after another.
    """

    def __init__(self, mapped: Mapping, array: np.ndarray) -> None:
        self.mapped = mapped
        self.start = array.ctypes.data - mapped.address
        self.itemsize = array.dtype.itemsize * (array.shape[1] if array.ndim > 1 else 1)
        mapped.advise(mmap.MADV_RANDOM)

    def ask(self, starts, ends) -> None:
        """Ask for items [starts[i], ends[i]) of the array (numbers or arrays of them)."""
        first = self.start + np.atleast_1d(np.asarray(starts, dtype=np.int64)) * self.itemsize
        last = self.start + np.atleast_1d(np.asarray(ends, dtype=np.int64)) * self.itemsize
        try:
            for a, b in page_runs(first, last):
                self.mapped.advise(mmap.MADV_WILLNEED, a * mmap.PAGESIZE, (b - a) * mmap.PAGESIZE)
        except (OSError, ValueError):  # advice only: the reads fault the pages in anyway
            pass


def page_runs(first: np.ndarray, last: np.ndarray) -> list[tuple[int, int]]:
    """Return the runs [a, b) of pages that hold bytes [first[i], last[i]), in order, none touching another."""
    keep = last > first
    if not keep.any():
        return []
    lo, hi = first[keep] // mmap.PAGESIZE, (last[keep] - 1) // mmap.PAGESIZE + 1
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], np.maximum.accumulate(hi[order])
    new = np.concatenate(([True], lo[1:] > hi[:-1]))  # a run starts past the end of every page before it
    ends_at = np.concatenate((np.flatnonzero(new)[1:] - 1, [len(lo) - 1]))
    return list(zip(lo[new].tolist(), hi[ends_at].tolist()))


class PostingArrays:
    """The posting arrays of an index's segments, mapped read-only: whole lists, slices of them by
    document range, and positions in given documents."""

    def __init__(self, parts: list[tuple[int, dict[str, np.ndarray]]], positional: bool = False,
                 total: int = 0, reads: dict[str, ExactReads] | None = None) -> None:
        self.parts = parts  # (document offset, arrays) per segment, in index order; first the joined set, if any
        self.reads = reads or {}  # the joined set's exact reads by part (see ask)
        self.positional = positional  # every segment keeps its positions too
        self.bounds = np.array([offset for offset, _ in parts] + [total], dtype=np.int64)  # segment i: [i], [i + 1]
        # (field, term) -> (segment, row, start, end per segment holding it; its postings over all).
        self.located: OrderedDict[tuple[str, str], tuple[np.ndarray, int]] = OrderedDict()  # see locate()
        self.located_rows = 0  # rows held in located
        self.lock = threading.Lock()

    @classmethod
    def open(cls, folder: Path, segments: list) -> PostingArrays | None:
        """Map the arrays of every segment; None when a segment has none (written by other tools)."""
        parts, offset, positional, reads = [], 0, True, None
        joined = _joined(folder, segments)
        if joined is not None:
            covered, arrays, reads = joined
            parts.append((0, arrays))
            offset = sum(seg.doc_count_all() for seg in segments[:covered])
            segments = segments[covered:]
        for seg in segments:
            names = array_files(seg)
            if not all((folder / name).is_file() for part, name in names.items() if part in ARRAY_PARTS):
                return None
            present = {part: name for part, name in names.items() if (folder / name).is_file()}
            positional = positional and len(present) == len(names)
            parts.append((offset, {part: _mapped(folder / name)[1] for part, name in present.items()}))
            offset += seg.doc_count_all()
        return cls(parts, positional, offset, reads if joined is not None else None)

    def close(self) -> None:
        """Let go of the mapped arrays: each file is unmapped once no array over it is left (call when
        no request reads them any more)."""
        with self.lock:
            self.parts, self.reads = [], {}
            self.located.clear()
            self.located_rows = 0

    def ask(self, i: int, part: str, starts, ends) -> None:
        """Ask for items [starts, ends) of a part's array in part i, before reading them (the joined set's only)."""
        if i == 0 and part in self.reads:
            self.reads[part].ask(starts, ends)

    def _offsets(self, i: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return where the encoded positions of the postings at rows begin and end in part i's bytes
        (asking for the offsets, then for the bytes, in the joined set)."""
        self.ask(i, "pvoffs", rows, rows + 2)
        offs = self.parts[i][1]["pvoffs"]
        begins, ends = offs[rows].astype(np.int64), offs[rows + 1].astype(np.int64)
        self.ask(i, "pvals", begins, ends)
        return begins, ends

    def _find(self, i: int, start: int, end: int, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return, for each of the sorted local documents, where it is in part i's list [start, end) (or
        near where it would be, inside the list) and whether it is there.

        A list short enough for the documents is asked for whole and searched;
        a longer one in the joined set is searched by its skip marks (SKIP) in
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
        first = -(-start // SKIP)
        marks = arrays["pskip"][first:-(-end // SKIP)]  # the list's documents at positions k * SKIP
        j = np.searchsorted(marks, local, side="right")  # a document is at or after mark j - 1, before mark j
        j = j[heads(j)]  # each page once (the one before the first mark may be empty)
        lo = np.where(j > 0, (first + j - 1) * SKIP, start)
        hi = np.where(j < len(marks), (first + j) * SKIP, end)
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
        searched in each segment's sorted keys all at once: one binary search per
        segment for the lot, not per term.
        """
        found: dict[str, tuple[np.ndarray, int]] = {}
        with self.lock:
            for t in terms:
                if (hit := self.located.get((field, t))) is not None:
                    self.located.move_to_end((field, t))
                    found[t] = hit
        missing = [t for t in dict.fromkeys(terms) if t not in found]
        if missing:
            keys = np.array([posting_key(field, t.encode("utf-8")) for t in missing], dtype=np.uint64)
            parts = []  # (term, segment, row, start, end) per segment holding a term
            for i, (_, arrays) in enumerate(self.parts):
                table = arrays["pkeys"]
                if not len(table):
                    continue
                at = np.minimum(np.searchsorted(table, keys), len(table) - 1)
                held = np.flatnonzero(table[at] == keys)
                spans = arrays["pspans"][at[held]].astype(np.int64).reshape(-1, 2)
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
                self.ask(i, "pfreqs", start + found[held], start + found[held] + 1)
                held_freqs.append(arrays["pfreqs"][start + found[held]].astype(np.float32))
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
        where = self._where(field, term)
        out: dict[int, list[int]] = {}
        for i, offset, arrays, local in self._segments_of(docs, where):
            row, start, end = where[i]
            first = int(arrays["pvterm"][row]) if self.positional else -1
            if first < 0:
                return None
            if end == start:
                continue
            at, held = self._find(i, start, end, local)
            begins, ends = self._offsets(i, at[held] + first)
            vals = arrays["pvals"]
            for doc, b, e in zip((local[held].astype(np.int64) + offset).tolist(), begins.tolist(), ends.tolist()):
                out[doc] = decode(vals[b:e].tobytes())
        return out

    def position_arrays(self, field: str, term: str, docs: np.ndarray, decode) -> tuple[np.ndarray, np.ndarray] | None:
        """Return a term's (document, position) pairs in those of the sorted docs that hold it; None when not kept.

        Only segments holding some of the docs are looked at; the positions are
        decoded in bulk (numpy over the packed deltas); decode, the field format's
        decoder of one posting, reads the rare wide ones.
        """
        where = self._where(field, term)
        held_docs, raw, counts, wide = [], [], [], []
        for i, offset, arrays, local in self._segments_of(docs, where):
            at, start, end = where[i]
            first = int(arrays["pvterm"][at]) if self.positional else -1
            if first < 0:
                return None
            if end == start:
                continue
            found, held = self._find(i, start, end, local)
            if not held.any():
                continue
            local = local.astype(np.int64)
            begins, ends = self._offsets(i, found[held] + first)
            vals = arrays["pvals"]
            narrow = vals[begins] == ord("H")
            for doc, b, e in zip((local[held][~narrow] + offset).tolist(), begins[~narrow].tolist(),
                                 ends[~narrow].tolist()):
                wide.append((doc, decode(vals[b:e].tobytes())))
            b, lengths = begins[narrow] + 1, ends[narrow] - begins[narrow] - 1
            raw.append(vals[runs(b, lengths)])
            counts.append(lengths // 2)
            held_docs.append(local[held][narrow] + offset)
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
            if ranges is None:
                at = slice(start, end)
                self.ask(i, "pdocs", start, end)
                if field not in UNWEIGHTED:
                    self.ask(i, "pfreqs", start, end)
            else:
                at = indexes_in(arrays["pdocs"][start:end], ranges - offset) + start
                self.ask(i, "pdocs", at, at + 1)
                if field not in UNWEIGHTED:
                    self.ask(i, "pfreqs", at, at + 1)
            docs.append(arrays["pdocs"][at].astype(np.int64) + offset)
            freqs.append(np.ones(len(docs[-1]), dtype=np.float32) if field in UNWEIGHTED else
                         arrays["pfreqs"][at].astype(np.float32))
        if not docs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(docs), np.concatenate(freqs)


def open_index(folder: str | Path) -> tuple[object, PostingArrays | None]:
    """Open a build's Whoosh index and map its posting arrays, checking first that its table of contents,
    each segment's term table and each segment's last stored document can be read.

    :raises store.DamagedFileError: naming the first file that cannot be read (cut short, of another
        version, missing).
    """
    folder = Path(folder)
    storage = _CheckedStorage(str(folder))
    generation = TOC._latest_generation(storage, INDEX_NAME)
    if generation < 0:
        raise store.DamagedFileError(folder / TOC._filename(INDEX_NAME, "*"), "missing: no table of contents")
    with _reading(storage, folder / TOC._filename(INDEX_NAME, generation)):
        ix = whoosh_index.FileIndex(storage, indexname=INDEX_NAME)
        segments = ix._segments()
    codec = W3Codec()
    for seg in segments:
        names = (folder / seg.make_filename(W3Codec.TERMS_EXT), folder / seg.make_filename(W3Codec.POSTS_EXT))
        with _reading(storage, *names):
            codec.terms_reader(storage, seg).close()
        if seg.doc_count_all():
            with _reading(storage, folder / W3Codec.column_filename(seg, "_stored")):
                reader = codec.per_document_reader(storage, seg)
                try:
                    reader.stored_fields(seg.doc_count_all() - 1)
                finally:
                    reader.close()
    return ix, PostingArrays.open(folder, segments)


class _CheckedStorage(FileStorage):
    """A FileStorage that, while a check reads through it, keeps the files it opens: Whoosh leaves them
    open when a read fails half-way, and the check closes them."""

    opened: list | None = None

    def open_file(self, name, *args, **kwargs):
        stream = super().open_file(name, *args, **kwargs)
        if self.opened is not None:
            self.opened.append(stream)
        return stream


@contextmanager
def _reading(storage: _CheckedStorage, *names: Path):
    """Turn a failure of Whoosh reading these files into a DamagedFileError naming the missing one, else the first."""
    storage.opened = []
    try:
        yield
    except Exception as exc:  # Whoosh's pickles and structs, cut short or of another version, raise anything
        for stream in storage.opened:
            if not stream.is_closed:
                stream.close()
        culprit = next((name for name in names if not name.is_file()), names[0])
        raise store.DamagedFileError(culprit, f"unreadable ({type(exc).__name__}: {exc})") from None
    finally:
        storage.opened = None


def indexes_in(docs: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Return the indexes of the sorted docs that fall in sorted, disjoint [start, end) rows."""
    bounds = np.clip(ranges, 0, np.iinfo(np.uint32).max).astype(np.uint32)
    at = np.searchsorted(docs, bounds.ravel()).reshape(-1, 2)
    lengths = at[:, 1] - at[:, 0]
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return runs(at[:, 0].astype(np.int64), lengths)


class _Keys:
    """Per-document keys and column values of a segment, saved as one .npz without pickles.

    ids, paths: NUL-free UTF-8 text joined, with end offsets (id_ends, path_ends);
    id_key, title_key, parent_key, path_key: 64-bit keys (key_of) of the id, the
    folded title, the parent article's id and the source path; story_title: the
    key of the title's words (stories.title_key); content: the
    content hash; kind: 1 for a headline-only entry; category, source: codes
    into category_labels, source_labels; published; title_len, body_len;
    bands: the body's story band keys (documents × stories.BANDS, zero rows for
    headline entries and bodies too short to group; indexer/stories.py).
    """

    NUMBERS = ("id_key", "title_key", "parent_key", "path_key", "content", "story_title")

    def __init__(self) -> None:
        self.text = {"ids": bytearray(), "paths": bytearray()}
        self.ends = {"id_ends": array("q"), "path_ends": array("q")}
        self.numbers = {name: array("Q") for name in self.NUMBERS}
        self.kind = array("B")
        self.labels: dict[str, dict[str, int]] = {CATEGORY: {}, SOURCE: {}}
        self.codes = {CATEGORY: array("i"), SOURCE: array("i")}
        self.values = {PUBLISHED: array("q"), TITLE_LEN: array("i"), BODY_LEN: array("i")}
        self.bands = array("Q")
        self.nbytes = 0

    def add(self, doc: dict, folded_title: str, title_len: int, body_len: int) -> None:
        doc_id, path = doc.get("id") or "", doc.get("path") or ""
        for (text, ends), value in zip(zip(self.text.values(), self.ends.values()), (doc_id, path)):
            text += value.encode("utf-8", "surrogatepass")
            ends.append(len(text))
        values = (key_of(doc_id), key_of(folded_title), key_of(doc.get("parent") or ""), key_of(path),
                  int(doc.get("content_hash") or "0", 16), stories.title_key(doc.get(TITLE) or ""))
        for name, value in zip(self.NUMBERS, values):
            self.numbers[name].append(value)
        self.kind.append(doc.get("kind") == HEADLINE)
        for name, codes in self.codes.items():
            labels = self.labels[name]
            codes.append(labels.setdefault(doc.get(name) or "", len(labels)))
        for name, value in zip(self.values, (doc.get(PUBLISHED) or 0, title_len, body_len)):
            self.values[name].append(value)
        headline = doc.get("kind") == HEADLINE
        keys = np.zeros(stories.BANDS, np.uint64) if headline else stories.band_keys(doc.get(BODY) or "")
        self.bands.frombytes(keys.tobytes())
        self.nbytes = len(self.text["ids"]) + len(self.text["paths"]) + len(self.kind) * (80 + 8 * stories.BANDS)

    def save(self, path: Path) -> None:
        arrays = {name: np.frombuffer(bytes(text), dtype=np.uint8) for name, text in self.text.items()}
        arrays.update((name, np.array(ends, dtype=np.int64)) for name, ends in self.ends.items())
        arrays.update((name, np.array(values, dtype=np.uint64)) for name, values in self.numbers.items())
        arrays["kind"] = np.array(self.kind, dtype=np.uint8)
        arrays["bands"] = np.frombuffer(self.bands, dtype=np.uint64).reshape(-1, stories.BANDS)
        arrays[PUBLISHED] = np.array(self.values[PUBLISHED], dtype=np.int64)
        arrays.update((name, np.array(self.values[name], dtype=np.int32)) for name in (TITLE_LEN, BODY_LEN))
        for name, codes in self.codes.items():
            arrays[f"{name}_labels"] = np.array(list(self.labels[name]) or [""], dtype=str)
            arrays[name] = np.array(codes, dtype=np.int32)
        with store.create_file(path) as stream:
            np.savez(stream, **arrays)


def _write_term(writer, btext: bytes, docs: list, freqs: list, values, lengths: array, weighted: bool) -> None:
    """Write one term's posting list, inline or in blocks, and its term-table row."""
    count = len(docs)
    weights = array("f", freqs) if weighted and any(f != 1 for f in freqs) else None
    if count <= INLINE_LIMIT:
        _add_row(writer._tindex, pack_ushort(writer._fieldid) + btext, _inlined_info(docs, weights, values, lengths))
        return
    terminfo = W3TermInfo()
    postfile = writer._postfile
    start = postfile.tell()
    postfile.write(WHOOSH3_HEADER_MAGIC)
    for first in range(0, count, BLOCK_LIMIT):
        last = min(first + BLOCK_LIMIT, count)
        _write_block(postfile, terminfo, docs[first:last], weights and weights[first:last],
                     values and values[first:last], lengths, last == count)
    terminfo.set_extent(start, postfile.tell() - start)
    writer._tindex.add(pack_ushort(writer._fieldid) + btext, terminfo.to_bytes())


def _inlined_info(docs: list, weights, values, lengths: array) -> bytes:
    """Return the term-table row of a posting list stored inline: W3TermInfo.to_bytes of what
    _account and set_inlined would give it (None for all-1.0 weights and for no values, which
    the reader's ListMatcher takes as such), without building the object."""
    found = [lengths[d] for d in docs]
    nonzero = [n for n in found if n]
    return _TERMINFO.pack(
        1, sum(weights) if weights else float(len(docs)), len(docs),
        length_to_byte(min(nonzero)) if nonzero else 0, length_to_byte(max(found)),
        max(weights) if weights else 1.0, docs[0], docs[-1],
    ) + dumps((tuple(docs), tuple(weights) if weights else None, tuple(values) if values else None), 2)


def _add_row(table, key: bytes, value: bytes) -> None:
    """Add a row to a term table as OrderedHashWriter.add does (keys come in order), in one write."""
    dbfile = table.dbfile
    position = dbfile.tell()
    table.index.append(position)
    dbfile.write(_ROW_LENGTHS.pack(len(key), len(value)) + key + value)
    hashed = table.hashfn(key)
    table.buckets[hashed & 255].append((hashed, position))
    table.lastkey = key


def _account(terminfo, docs, weights, lengths: array) -> tuple[int | None, int, float]:
    """Add a run of postings to a term's statistics; return its (min length, max length, max weight)."""
    block_lengths = [lengths[d] for d in docs]
    nonzero = [n for n in block_lengths if n]
    minlength = min(nonzero) if nonzero else None
    maxlength = max(block_lengths)
    maxweight = max(weights) if weights else 1.0
    terminfo._weight += sum(weights) if weights else float(len(docs))
    terminfo._df += len(docs)
    if minlength is not None:
        terminfo._minlength = minlength if terminfo._minlength is None else min(terminfo._minlength, minlength)
    terminfo._maxlength = max(terminfo._maxlength, maxlength)
    terminfo._maxweight = max(terminfo._maxweight, maxweight)
    if terminfo._minid is None:
        terminfo._minid = docs[0]
    terminfo._maxid = docs[-1]
    return minlength, maxlength, maxweight


def _compact_ids(docs) -> object:
    deltas = [b - a for a, b in zip([0, *docs], docs)]
    if len(deltas) < 24:
        return tuple(deltas)
    top = max(deltas)
    return array("B" if top < 256 else "H" if top < 65536 else "I", deltas)


def _compact_weights(weights):
    if weights is None:
        return None
    if all(w == weights[0] for w in weights):
        return float(weights[0])
    return weights if len(weights) >= 24 else tuple(weights)


def _write_block(postfile, terminfo, docs, weights, values, lengths: array, last: bool) -> None:
    """Write one block as Whoosh's reader expects it (see W3LeafMatcher)."""
    minlength, maxlength, maxweight = _account(terminfo, docs, weights, lengths)
    data = (_compact_ids(docs), _compact_weights(weights), tuple(values) if values else None)
    databytes = zlib.compress(dumps(data, 4), COMPRESSION)
    info = dumps((len(docs), docs[-1], maxweight, COMPRESSION,
                  length_to_byte(minlength), length_to_byte(maxlength)), 4)
    size = len(info) + len(databytes)
    postfile.write_int(-size if last else size)
    postfile.write(info)
    postfile.write(databytes)


class SegmentStream:
    """Build segments from a stream of documents in one folder, each within a memory budget.

    progress, if given, is a shared counter (multiprocessing.Value) of documents added.
    """

    def __init__(self, folder: str, budget: int | None = None, max_docs: int | None = None, progress=None) -> None:
        self.folder = folder
        self.budget = budget or SEGMENT_BYTES
        self.max_docs = max_docs or SEGMENT_DOCS
        self.progress = progress
        self.segments: list = []
        self.builder: SegmentBuilder | None = None
        self.added = 0

    def add(self, doc: dict) -> bool:
        """Add one document; return whether a frequency of it saturated (FREQ_MAX)."""
        if self.builder is None:
            self.builder = SegmentBuilder(FileStorage(self.folder))
        before = self.builder.saturated
        self.builder.add(doc)
        saturated = self.builder.saturated > before
        self.added += 1
        if self.progress is not None and self.added % 256 == 0:
            self._count(256)
        if self.builder.docnum >= self.max_docs or (self.builder.docnum % 64 == 0 and self.builder.nbytes() >= self.budget):
            self.segments.append(self.builder.finish())
            self.builder = None
        return saturated

    def finish(self) -> list:
        """Write the last segment; return every segment written."""
        if self.builder is not None and self.builder.docnum:
            self.segments.append(self.builder.finish())
        self.builder = None
        if self.progress is not None:
            self._count(self.added % 256)
        return self.segments

    def _count(self, n: int) -> None:
        with self.progress.get_lock():
            self.progress.value += n


def write_toc(folder: str, segments: list) -> None:
    """Publish segments as the index in folder (one new TOC generation)."""
    storage = FileStorage(folder)
    generation = TOC._latest_generation(storage, INDEX_NAME) + 1
    TOC(build_schema(), segments, generation).write(storage, INDEX_NAME)
    clean_files(storage, INDEX_NAME, generation, segments)
    scratch = Path(folder) / f"{INDEX_NAME}.tmp"  # Whoosh's per-document writer leaves it, empty
    if scratch.is_dir() and not any(scratch.iterdir()):
        scratch.rmdir()
