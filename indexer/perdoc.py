"""A segment's per-document data, for Whoosh and for us: compressed stored fields, the rest from keys.

Stored fields: each document's fields (``_encoded``: a count, then per field
its number in STORED, its kind and its byte length, then the values: UTF-8
text with surrogates passed, an int in decimal, anything else as JSON) are
compressed with raw deflate on their own but with a preset dictionary
(``zdict``) of the segment: the last DICT_BYTES of its first PRIME documents'
encodings. A document is then as small as in a block of 16 compressed
together (its field numbers, sources and the news' stock phrases are in the
dictionary) and is read alone: no neighbour decompressed, no cache, about as
fast as Whoosh's pickles (no pickle: an index's stored fields run no code).
Per segment:

    <segment id>.stored.npy       uint8: the documents' compressed bytes, back to back
    <segment id>.stored_ends.npy  uint32 (uint64 past 4 GB): where each document's bytes end
    <segment id>.stored_dict.npy  uint8: the preset dictionary

A value the segment's keys file holds (``FROM_KEYS``: id, kind, category,
source, published, path, content_hash) is not stored again: the reader
composes it from the keys file (``from_keys``). Only a document whose value
the keys would not give back as it is (``own_fields``) keeps it, or an
``ABSENT`` mark (kind 3, no bytes) when it has no such field.

``ArrayPerDocReader`` is our codec's per-document reader (codec.py): stored
fields from those files and the keys file; field lengths and Whoosh's columns
(title_len, body_len, category, source, published) from the segment's keys
file (segment.SegmentKeys), which keeps them once; deletions from the segment
itself, that is the TOC.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import weakref
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from whoosh.codec import base
from whoosh.columns import ColumnReader
from whoosh.util.numeric import byte_to_length, length_to_byte

from indexer import store
from indexer.keys import keys_file
from indexer.mapped import map_npy
from indexer.postings import raw_to_npy
from indexer.schema import ARTICLE, HEADLINE, build_schema

PRIME = 256  # documents whose JSON makes a segment's dictionary
DICT_BYTES = 32_768  # zlib's window: a longer dictionary is not used. 16 KB gave 7% more bytes
LEVEL = 6  # zlib's default
# Field lengths the keys file keeps exactly (word counts), and those it keeps as Whoosh's length byte.
EXACT_LENGTHS = {"title": "title_len", "body": "body_len"}
BYTE_LENGTHS = ("title_grams", "body_grams", "title_chars", "body_chars")
BYTE_TO_LENGTH = np.array([byte_to_length(b) for b in range(256)], dtype=np.int64)
COLUMNS = ("title_len", "body_len", "category", "source", "published")  # Whoosh's columns, served from keys
STORED = tuple(sorted(name for name, field in build_schema().items() if field.stored))  # numbered fields
STORED_INDEX = {name: i for i, name in enumerate(STORED)}
WBITS = -15  # raw deflate: no zlib header or checksum (10 bytes a document), and no dictionary round trip
TEXT, NUMBER, OTHER, NONE = 0, 1, 2, 3  # a value's kind; NONE: a field the document lacks, though its keys give one
# Stored fields composed from the keys file, and the keys file's arrays that make them.
FROM_KEYS = ("category", "content_hash", "id", "kind", "path", "published", "source")
KEY_ARRAYS = ("ids", "id_ends", "paths", "path_ends", "kind", "content", "published",
              "category", "category_labels", "source", "source_labels")


class _Absent:
    """The mark of a field a document lacks although its keys give a value (kept as kind NONE)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def length_bytes(lengths) -> np.ndarray:
    """Return Whoosh's length byte (length_to_byte) of each length."""
    return np.fromiter((length_to_byte(n) for n in lengths), dtype=np.uint8, count=len(lengths))


def stored_files(seg) -> dict[str, str]:
    """Return the names of a segment's stored-field files (kept and dropped with the segment)."""
    return {part: f"{seg.segment_id()}.{part}.npy" for part in ("stored", "stored_ends", "stored_dict")}


def from_keys(row: dict) -> dict:
    """Return the stored fields a document's keys give (row: its values, as segment.SegmentKeys keeps them)."""
    return {"category": row["category"], "content_hash": f"{row['content']:016x}", "id": row["id"],
            "kind": HEADLINE if row["kind"] else ARTICLE, "path": row["path"], "published": row["published"],
            "source": row["source"]}


def own_fields(stored: dict, given: dict) -> dict:
    """Return the stored fields to keep of a document whose keys give these: those they do not give as they are."""
    own = {name: value for name, value in stored.items()
           if name not in given or type(value) is not type(given[name]) or value != given[name]}
    own.update((name, ABSENT) for name in given if name not in stored)
    return own


def composed(own: dict, given: dict) -> dict:
    """Return a document's stored fields from its own and those its keys give (own_fields' inverse), in STORED order."""
    out = {}
    for name in STORED:
        value = own.get(name, given.get(name, ABSENT))
        if value is not ABSENT:
            out[name] = value
    return out


def _encoded(fields: dict) -> bytes:
    """Return a document's stored fields as bytes (see the module's docstring)."""
    heads, values = [len(fields)], []
    for name, value in fields.items():
        if value is ABSENT:
            kind, data = NONE, b""
        elif isinstance(value, str):
            kind, data = TEXT, value.encode("utf-8", "surrogatepass")
        elif isinstance(value, int) and not isinstance(value, bool):
            kind, data = NUMBER, str(value).encode()
        else:
            kind, data = OTHER, json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
        heads += (STORED_INDEX[name], kind, len(data))
        values.append(data)
    return struct.pack(f"<B{'BBI' * len(fields)}", *heads) + b"".join(values)


def _decoded(data: bytes) -> dict:
    """Return the stored fields of a document's bytes (_encoded's inverse)."""
    count = data[0]
    heads = struct.unpack_from(f"<{'BBI' * count}", data, 1)
    at, out = 1 + 6 * count, {}
    for i in range(0, 3 * count, 3):
        value = data[at:at + heads[i + 2]]
        at += heads[i + 2]
        kind = heads[i + 1]
        out[STORED[heads[i]]] = (value.decode("utf-8", "surrogatepass") if kind == TEXT else
                                 int(value) if kind == NUMBER else ABSENT if kind == NONE else
                                 json.loads(value.decode("utf-8", "surrogatepass")))
    if at != len(data):
        raise ValueError(f"{len(data) - at} bytes past the fields")
    return out


class StoredWriter:
    """Write a segment's stored fields, one document after another (see the module's docstring)."""

    def __init__(self, folder: Path, seg) -> None:
        self.names = {part: Path(folder) / name for part, name in stored_files(seg).items()}
        self.raw = self.names["stored"].with_suffix(".raw")
        self.stream = store.create_file(self.raw)
        self.pending: list[bytes] | None = []  # the first PRIME documents, until the dictionary is made
        self.primed = None  # a compressor that has read the dictionary: each document starts from a copy
        self.ends: list[int] = []
        self.at = 0

    def add(self, fields: dict) -> None:
        """Add the next document's stored fields."""
        if self.pending is None:
            self._write(_encoded(fields))
            return
        self.pending.append(_encoded(fields))
        if len(self.pending) == PRIME:
            self._prime()

    def _prime(self) -> None:
        pending, self.pending = self.pending, None
        self.zdict = b"".join(pending)[-DICT_BYTES:]  # zlib matches nearer the end with shorter distances
        self.primed = zlib.compressobj(LEVEL, zlib.DEFLATED, WBITS, zdict=self.zdict)  # hashed once, not per document
        for data in pending:
            self._write(data)

    def _write(self, data: bytes) -> None:
        packer = self.primed.copy()
        packed = packer.compress(data) + packer.flush()
        self.stream.write(packed)
        self.at += len(packed)
        self.ends.append(self.at)

    def close(self) -> None:
        """Write the documents still held, then the ends and the dictionary."""
        if self.pending is not None:
            self._prime()
        self.stream.close()
        raw_to_npy(self.raw, self.names["stored"], np.uint8)
        for part, values in (("stored_ends", np.array(self.ends, dtype=np.uint32 if self.at < 1 << 32 else np.uint64)),
                             ("stored_dict", np.frombuffer(self.zdict, dtype=np.uint8))):
            with store.create_file(self.names[part]) as stream:
                np.save(stream, values)


class StoredReader:
    """Read a segment's stored fields by document number."""

    def __init__(self, folder: Path, seg) -> None:
        self.paths = {part: Path(folder) / name for part, name in stored_files(seg).items()}
        self.data, self.ends = map_npy(self.paths["stored"])[1], map_npy(self.paths["stored_ends"])[1]
        self.zdict = map_npy(self.paths["stored_dict"])[1].tobytes()
        self.count = seg.doc_count_all()
        if len(self.ends) != self.count or (self.count and int(self.ends[-1]) != len(self.data)):
            raise store.DamagedFileError(self.paths["stored_ends"], f"not the ends of {self.count} documents")

    def get(self, docnum: int) -> dict:
        """Return a document's stored fields (a new dict: the caller may change it)."""
        if not 0 <= docnum < self.count:
            raise IndexError(f"document {docnum} of {self.count}")
        start, end = (int(self.ends[docnum - 1]) if docnum else 0), int(self.ends[docnum])
        try:
            unpacker = zlib.decompressobj(WBITS, zdict=self.zdict)
            data = unpacker.decompress(self.data[start:end])
            if not unpacker.eof or unpacker.unused_data:  # raw deflate keeps no checksum: its end must be exact
                raise ValueError("not one whole deflate stream")
            return _decoded(data)
        except (zlib.error, ValueError, struct.error, IndexError, KeyError) as exc:
            raise store.DamagedFileError(self.paths["stored"], f"document {docnum} unreadable ({exc})") from None

    def close(self) -> None:
        self.data = self.ends = None


class KeysValues:
    """A segment's keys file's arrays, each read at its first use and then held; one per file in a process."""

    _shared: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # (device, inode, size, time): values
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.arrays: dict[str, np.ndarray] = {}
        self._rows: tuple | None = None  # the arrays row reads, in Python's forms

    @classmethod
    def of(cls, path: Path) -> KeysValues:
        """Return the values of a keys file, shared with the readers that hold them already (searchers of one build,
        and of the next, which links the file): each segment's arrays are in memory once."""
        try:
            info = os.stat(path)
        except OSError as exc:
            raise store.DamagedFileError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)  # its link in the next build: the same file
        with cls._lock:
            values = cls._shared.get(key)
            if values is None:
                values = cls._shared[key] = cls(path)
        return values

    def read(self, names) -> dict[str, np.ndarray]:
        """Return the arrays, with these among them (each read from the file once)."""
        missing = [name for name in names if name not in self.arrays]
        if missing:
            with self._opened() as data:
                self.arrays.update({name: data[name] for name in missing})
        return self.arrays

    def check(self, names) -> None:
        """Check that the file lists these arrays, decompressing none (a cut file has no list)."""
        with self._opened() as data:
            if not set(names) <= set(data.files):
                raise ValueError(f"no {sorted(set(names) - set(data.files))}")

    @contextmanager
    def _opened(self):
        try:
            with open(self.path, "rb") as stream, np.load(stream, allow_pickle=False) as data:  # closed if not a zip
                yield data
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise store.DamagedFileError(self.path, f"unreadable ({type(exc).__name__}: {exc})") from None

    def rows(self) -> tuple:
        """Read the arrays rows are made of (once), and return their views."""
        if self._rows is None:
            keys = self.read(KEY_ARRAYS)
            # Python's indexing of memoryviews (of the arrays held: no copy) and label lists: a row in ~1 us,
            # not numpy's ~3.
            self._rows = ({name: (memoryview(keys[name + "s"]), memoryview(keys[name + "_ends"]))
                           for name in ("id", "path")},
                          {name: (keys[f"{name}_labels"].tolist(), memoryview(keys[name]))
                           for name in ("category", "source")},
                          {name: memoryview(keys[name]) for name in ("kind", "content", "published")})
        return self._rows

    def row(self, docnum: int) -> dict:
        """Return a document's values, as from_keys takes them."""
        texts, labelled, numbers = self.rows()
        out = {}
        for name, (text, ends) in texts.items():
            out[name] = str(text[ends[docnum - 1] if docnum else 0:ends[docnum]], "utf-8", "surrogatepass")
        for name, (labels, codes) in labelled.items():
            out[name] = labels[codes[docnum]]
        for name, values in numbers.items():
            out[name] = values[docnum]
        return out


def hold_keys(folder: Path, segments: list) -> list[KeysValues]:
    """Read what composes the segments' stored fields from their keys files; it stays shared while the list is held.

    A build holds it from its open: a segment's first stored read would otherwise decompress its keys file
    (~8 ms, the larger part of a cold passage's answer at a million items, where a few hits touch a dozen
    segments). It is what a process holds anyway once its requests have read a document of every segment:
    ~100 bytes a document (108 MB at a million items), most of it the ids and paths.
    """
    held = [KeysValues.of(Path(folder) / keys_file(seg)) for seg in segments]
    for values in held:
        values.rows()
    return held


class _ValuesReader(ColumnReader):
    """A Whoosh column over values held in memory (in the column's form: what to_column_value gives)."""

    def __init__(self, values: list) -> None:
        super().__init__(None, 0, 0, len(values))
        self.values, self.reverse = values, False

    def __getitem__(self, docnum):
        return self.values[docnum]

    def __iter__(self):
        return iter(self.values)

    def sort_key(self, docnum):
        value = self.values[docnum]
        return -value if self.reverse else value

    def set_reverse(self):
        if self.values and not isinstance(self.values[0], (int, float)):
            raise NotImplementedError("only numeric columns sort in reverse")
        self.reverse = not self.reverse


class ArrayPerDocReader(base.PerDocumentReader):
    """Whoosh's per-document reader of a segment of our codec (see the module's docstring)."""

    def __init__(self, storage, segment) -> None:
        self._folder, self._segment = Path(storage.folder), segment
        self._count = segment.doc_count_all()
        self._stored = StoredReader(self._folder, segment) if self._count else None
        self._keys: KeysValues | None = None

    def keys(self) -> dict[str, np.ndarray]:
        """Return the segment's keys file's per-document arrays that Whoosh's columns and lengths read."""
        return self._values().read((*COLUMNS, "category_labels", "source_labels", "lengths"))

    def _values(self) -> KeysValues:
        if self._keys is None:
            self._keys = KeysValues.of(self._folder / keys_file(self._segment))
        return self._keys

    def close(self):
        if self._stored is not None:
            self._stored.close()
        self._keys = None

    def check(self, docnum: int) -> None:
        """Read a document's own stored bytes, and check the keys file lists what composes the rest.

        Unlike stored_fields, this reads no array of the keys file: a reader that opens the build
        next reads them (a check that did would decompress every segment's twice).

        :raises store.DamagedFileError: naming the file that cannot be read.
        """
        if self._stored is not None:
            self._stored.get(docnum)
        KeysValues(self._folder / keys_file(self._segment)).check(KEY_ARRAYS)

    def doc_count(self):
        return self._count - self._segment.deleted_count()

    def doc_count_all(self):
        return self._count

    def has_deletions(self):
        return self._segment.has_deletions()

    def is_deleted(self, docnum):
        return self._segment.is_deleted(docnum)

    def deleted_docs(self):
        return self._segment.deleted_docs()

    def supports_columns(self):
        return True

    def has_column(self, fieldname):
        return fieldname in COLUMNS

    def column_reader(self, fieldname, column):
        field, keys = build_schema()[fieldname], self.keys()
        if f"{fieldname}_labels" in keys:
            labels = [field.to_column_value(str(label)) for label in keys[f"{fieldname}_labels"].tolist()]
            return _ValuesReader([labels[code] for code in keys[fieldname].tolist()])
        return _ValuesReader([field.to_column_value(int(v)) for v in keys[fieldname].tolist()])

    def doc_field_length(self, docnum, fieldname, default=0):
        lengths = self._lengths(fieldname)
        return default if lengths is None else int(lengths[docnum])

    def _lengths(self, fieldname: str) -> np.ndarray | None:
        keys = self.keys()
        if fieldname in EXACT_LENGTHS:
            return keys[EXACT_LENGTHS[fieldname]]
        if fieldname in BYTE_LENGTHS:
            return BYTE_TO_LENGTH[keys["lengths"][:, BYTE_LENGTHS.index(fieldname)]]
        return None

    def field_length(self, fieldname):
        return self._segment._fieldlengths.get(fieldname, 0)

    def min_field_length(self, fieldname):
        lengths = self._lengths(fieldname)
        return int(lengths.min()) if lengths is not None and len(lengths) else 0

    def max_field_length(self, fieldname):
        lengths = self._lengths(fieldname)
        return int(lengths.max()) if lengths is not None and len(lengths) else 0

    def has_vector(self, docnum, fieldname):
        return False

    def stored_fields(self, docnum):
        if self._stored is None:
            raise IndexError(f"document {docnum} of an empty segment")
        own = self._stored.get(docnum)
        return composed(own, from_keys(self._values().row(docnum)))

