"""Write Whoosh segments of our codec (codec.py) directly: our posting arrays, stored fields and keys.

Whoosh's writer turns every token into an object, pushes every posting through
a sorting pool and pickles each block's postings as tuples of Python numbers.
Our fields produce ~4x the postings of a plain word index (words + character
pairs + characters), so that path is too slow and too big. ``SegmentBuilder``
instead computes each document's postings straight from the analysis streams,
keeps them in flat arrays per field (postings.FieldPostings), and at finish
writes the term dictionary and posting arrays (postings.PostingArraysWriter),
the only copy of the postings, the segment's keys file (``SegmentKeys``: its
per-document values and field lengths, Whoosh's columns too) and its stored
fields less the values the keys file holds, each compressed alone with a
dictionary (perdoc.StoredWriter). No
Whoosh 3 file is written.

Segments are left as separate files, not one compound file (see finish). The
result opens with plain ``whoosh.index.open_dir``. Each worker process
builds whole segments; the parent lists them in one TOC (``write_toc``).
``SegmentStream`` starts a new segment whenever the postings held reach a
memory budget, so a process's memory does not grow with the archive.
"""

from __future__ import annotations

from array import array
from pathlib import Path

import numpy as np
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC, clean_files

from indexer import entities, related_words, store, stories
from indexer.analysis import WORD_RUN, get_segmenter, iter_bigrams, iter_bridges, iter_chars, iter_words, normalize
from indexer.codec import ArrayCodec
from indexer.perdoc import BYTE_LENGTHS, StoredWriter, from_keys, length_bytes, own_fields
from indexer.keys import key_of, keys_file
from indexer.postings import FREQ_MAX, TEXT_FIELDS, WEIGHTED, FieldPostings, PostingArraysWriter
from indexer.schema import (
    BODY, BODY_LEN, CATEGORY, HEADLINE, PUBLISHED, SOURCE, TITLE, TITLE_LEN, build_schema,
)

INDEX_NAME = "MAIN"
SEGMENT_BYTES = 400_000_000  # postings one process holds before it writes them out as a segment
SEGMENT_DOCS = 60_000  # and at most this many documents in one segment


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


def bridge_positions(folded: str) -> dict[str, list[int]]:
    """Return each bridge over punctuation of folded text with its positions."""
    found: dict[str, list[int]] = {}
    for bridge, pos in iter_bridges(folded):
        found.setdefault(bridge, []).append(pos)
    return found


def word_positions(folded: str, original: str | None = None, tokens: list | None = None) -> dict[str, list[int]]:
    """Return each word of folded text with its positions (original: the text before folding; tokens: its cut)."""
    found: dict[str, list[int]] = {}
    for word, pos, _, _ in iter_words(folded, original, tokens):
        at = found.get(word)
        if at is None:
            found[word] = [pos]
        else:
            at.append(pos)
    return found



class SegmentBuilder:
    """Build one segment of an index from document dicts.

    Besides Whoosh's files, finish writes the segment's keys and per-document
    values into ``<segment id>.keys.npz`` (see SegmentKeys), which updates and the
    search side read instead of unpickling every stored document.
    """

    def __init__(self, storage, schema=None) -> None:
        self.storage = storage
        self.schema = schema or build_schema()
        self.codec = ArrayCodec()
        self.segment = self.codec.new_segment(storage, INDEX_NAME)
        self.stored = StoredWriter(Path(storage.folder), self.segment)
        self.fields: dict[str, FieldPostings] = {
            name: FieldPostings(name in TEXT_FIELDS and TEXT_FIELDS[name][2])
            for name in self.schema.names() if self.schema[name].indexed}
        self.lengths: dict[str, array] = {name: array("I") for name in self.fields}
        self.keys = SegmentKeys()
        self.entities = entities.SegmentEntities()
        self.docnum = 0
        self.saturated = 0  # postings of weighted fields whose frequency is past FREQ_MAX

    def nbytes(self) -> int:
        """Return an estimate of the memory this segment holds so far."""
        return sum(f.nbytes() for f in self.fields.values()) + self.keys.nbytes + self.entities.nbytes

    def add(self, doc: dict) -> None:
        """Add one document; the character fields are derived from title and body."""
        docnum = self.docnum
        folded = {name: normalize(doc.get(name) or "") for name in (TITLE, BODY)}
        cut = get_segmenter().cut
        tokens = {name: cut(text) for name, text in folded.items()}  # once: the word fields and the related words
        stored = {}
        for name in self.schema.names():
            field = self.schema[name]
            value = doc.get(name)
            if name in TEXT_FIELDS:
                source = TEXT_FIELDS[name][0]
                self._index_text(name, folded[source], docnum, doc.get(source) or "", tokens[source])
            elif value is None:
                self.lengths.get(name, array("I")).append(0)
                continue
            elif field.indexed:
                self._index_other(name, field, value, docnum)
            if field.stored and value is not None:
                stored[name] = value
        row = self.keys.add(doc, folded[TITLE], self.lengths[TITLE][docnum], self.lengths[BODY][docnum], folded[BODY])
        self.stored.add(own_fields(stored, from_keys(row)))  # what the keys file holds is not stored again
        words = related_words.words_of(doc.get(TITLE) or "", doc.get(BODY) or "", tokens[TITLE], tokens[BODY])
        self.entities.add(folded[TITLE], folded[BODY], words)
        self.docnum += 1

    def _index_text(self, name: str, folded: str, docnum: int, original: str, tokens: list) -> int:
        _, stream, positional, _ = TEXT_FIELDS[name]
        postings = self.fields[name]
        if stream is iter_chars:
            chars = word_chars(folded)
            postings.add_document(dict.fromkeys(chars, 1), docnum, counted=True)
            self.lengths[name].append(len(chars))
            return len(chars)
        found = bigram_positions(folded) if stream is iter_bigrams else word_positions(folded, original, tokens)
        encode = self.schema[name].format.encode if positional else None
        length = postings.add_document(found, docnum, encode)
        if TEXT_FIELDS[name][3] and length > FREQ_MAX:  # weighted: a frequency past FREQ_MAX saturates
            self.saturated += sum(len(plist) > FREQ_MAX for plist in found.values())
        if stream is iter_bigrams:  # the bridges go with the pairs; a field's length counts the pairs only
            postings.add_document(bridge_positions(folded), docnum, encode)
        self.lengths[name].append(length)
        return length

    def _index_other(self, name: str, field, value, docnum: int) -> int:
        length = self.fields[name].add_document({btext: freq for btext, freq, _, _ in field.index(value)}, docnum,
                                                counted=True)
        self.lengths[name].append(length if field.scorable else 0)
        return length if field.scorable else 0

    def finish(self):
        """Write the term dictionary and posting arrays and the keys file and close the segment; return it for a TOC."""
        self.stored.close()
        self.segment._fieldlengths = {name: total for name, lengths in self.lengths.items()
                                      if (total := sum(lengths))}  # Whoosh's field_length: a field's total
        arrays = PostingArraysWriter(Path(self.storage.folder), self.segment)
        for name in sorted(self.fields):  # the dictionary's order (terms.FIELDS)
            self.fields.pop(name).write_to(arrays, name, name in WEIGHTED)
        arrays.close()
        self.segment.set_doc_count(self.docnum)
        lengths = np.zeros((self.docnum, len(BYTE_LENGTHS)), dtype=np.uint8)
        for i, name in enumerate(BYTE_LENGTHS):
            lengths[:, i] = length_bytes(self.lengths[name])
        self.keys.save(Path(self.storage.folder) / keys_file(self.segment), lengths)
        self.entities.save(Path(self.storage.folder) / entities.entities_file(self.segment))
        # No compound file: Whoosh reads a compound segment's parts through
        # BytesIO copies of the mapped file (~100 MB per term table, per
        # process); separate files are read in place and shared in the page cache.
        return self.segment


class SegmentKeys:
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

    def add(self, doc: dict, folded_title: str, title_len: int, body_len: int, folded_body: str | None = None) -> dict:
        """Add a document's keys and values; return its values as perdoc.from_keys reads them back."""
        doc_id, path = doc.get("id") or "", doc.get("path") or ""
        for (text, ends), value in zip(zip(self.text.values(), self.ends.values()), (doc_id, path)):
            text += value.encode("utf-8", "surrogatepass")
            ends.append(len(text))
        values = (key_of(doc_id), key_of(folded_title), key_of(doc.get("parent") or ""), key_of(path),
                  int(doc.get("content_hash") or "0", 16), stories.title_key(doc.get(TITLE) or ""))
        for name, value in zip(self.NUMBERS, values):
            self.numbers[name].append(value)
        self.kind.append(doc.get("kind") == HEADLINE)
        row = {"id": doc_id, "path": path, "kind": self.kind[-1], "content": values[4]}
        for name, codes in self.codes.items():
            labels, label = self.labels[name], doc.get(name) or ""
            codes.append(labels.setdefault(label, len(labels)))
            row[name] = str(label).rstrip("\0")  # as the keys file gives it back: numpy's str arrays drop trailing NULs
        for name, value in zip(self.values, (doc.get(PUBLISHED) or 0, title_len, body_len)):
            self.values[name].append(value)
        row[PUBLISHED] = self.values[PUBLISHED][-1]
        headline = doc.get("kind") == HEADLINE
        keys = np.zeros(stories.BANDS, np.uint64) if headline else stories.band_keys(doc.get(BODY) or "", folded_body)
        self.bands.frombytes(keys.tobytes())
        self.nbytes = len(self.text["ids"]) + len(self.text["paths"]) + len(self.kind) * (80 + 8 * stories.BANDS)
        return row

    def save(self, path: Path, lengths: np.ndarray) -> None:
        """Save the keys, and the lengths of the perdoc.BYTE_LENGTHS fields (Whoosh's length bytes)."""
        arrays = {"lengths": lengths}
        arrays.update({name: np.frombuffer(bytes(text), dtype=np.uint8) for name, text in self.text.items()})
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
            np.savez_compressed(stream, **arrays)  # ids and paths are text: ~0.6 MB less at 5,000 items


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
