"""Write Whoosh segments directly, in Whoosh's own on-disk format.

Whoosh's writer turns every token into an object, pushes every posting through
a sorting pool and pickles each block's postings as tuples of Python numbers.
Our fields produce ~4x the postings of a plain word index (words + character
pairs + characters), so that path is too slow and too big. ``SegmentBuilder``
instead computes each document's postings straight from the analysis streams,
keeps them per term in arrays, and writes each posting list in whole blocks:

- a block is what Whoosh's reader expects — a length, a pickled info tuple, and
  a zlib-compressed pickle of (ids, weights, values) — but written with pickle
  protocol 4 and compact containers: ids as a byte/short array of deltas,
  weights left out when all are 1.0;
- posting lists of at most INLINE_LIMIT documents are stored inline in the term
  table, a layout Whoosh's reader supports (its writer's switch for it is broken
  in 2.7.4).

Segments are left as separate files, not one compound file (see finish). The
result opens with plain ``whoosh.index.open_dir``. Each worker process
builds whole segments; the parent lists them in one TOC.
"""

from __future__ import annotations

import zlib
from array import array
from pathlib import Path
from pickle import dumps

from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3TermInfo
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC, clean_files
from whoosh.system import pack_ushort
from whoosh.util.numeric import length_to_byte

from indexer.analysis import WORD_RUN, iter_bigrams, iter_chars, iter_words, normalize
from indexer.schema import BODY, BODY_CHARS, BODY_GRAMS, LENGTH_OF, TITLE, TITLE_CHARS, TITLE_GRAMS, build_schema

INDEX_NAME = "MAIN"
INLINE_LIMIT = 8  # posting lists this short live in the term table
BLOCK_LIMIT = 128  # postings per block, as Whoosh's writer uses
COMPRESSION = 3  # zlib level of block data, as Whoosh's writer uses
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


def word_positions(folded: str) -> dict[str, list[int]]:
    """Return each word of folded text with its positions."""
    found: dict[str, list[int]] = {}
    for word, pos, _, _ in iter_words(folded):
        at = found.get(word)
        if at is None:
            found[word] = [pos]
        else:
            at.append(pos)
    return found

LENGTH_COLUMNS = {column: field for field, column in LENGTH_OF.items()}


class _Postings:
    """The postings of one term: document numbers, frequencies, encoded values."""

    __slots__ = ("docs", "freqs", "values")

    def __init__(self) -> None:
        self.docs = array("I")
        self.freqs = array("I")
        self.values: list[bytes] = []


class SegmentBuilder:
    """Build one segment of an index from document dicts."""

    def __init__(self, storage, schema=None) -> None:
        self.storage = storage
        self.schema = schema or build_schema()
        self.codec = W3Codec()
        self.segment = self.codec.new_segment(storage, INDEX_NAME)
        self.perdoc = self.codec.per_document_writer(storage, self.segment)
        self.terms: dict[str, dict] = {name: {} for name in self.schema.names() if self.schema[name].indexed}
        self.lengths: dict[str, array] = {name: array("I") for name in self.terms}
        self.docnum = 0

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
                length = self._index_text(name, folded[TEXT_FIELDS[name][0]], docnum)
            elif value is None:
                self.lengths.get(name, array("I")).append(0)
                continue
            elif field.indexed:
                length = self._index_other(name, field, value, docnum)
            self.perdoc.add_field(name, field, value if field.stored else None, length)
            if field.column_type is not None and value is not None:
                self.perdoc.add_column_value(name, field.column_type, field.to_column_value(value))
        self.perdoc.finish_doc()
        self.docnum += 1

    def _index_text(self, name: str, folded: str, docnum: int) -> int:
        _, stream, positional, _ = TEXT_FIELDS[name]
        if stream is iter_chars:
            chars = word_chars(folded)
            self._add_postings(name, docnum, ((ch, 1, None) for ch in set(chars)))
            self.lengths[name].append(len(chars))
            return len(chars)
        found = bigram_positions(folded) if stream is iter_bigrams else word_positions(folded)
        encode = self.schema[name].format.encode if positional else _no_value
        length = sum(len(plist) for plist in found.values())
        self._add_postings(name, docnum, ((text, len(plist), encode(plist)) for text, plist in found.items()))
        self.lengths[name].append(length)
        return length

    def _add_postings(self, name: str, docnum: int, items) -> None:
        terms = self.terms[name]
        for text, freq, value in items:
            postings = terms.get(text)
            if postings is None:
                postings = terms[text] = _Postings()
            postings.docs.append(docnum)
            postings.freqs.append(freq)
            if value is not None:
                postings.values.append(value)

    def _index_other(self, name: str, field, value, docnum: int) -> int:
        terms = self.terms[name]
        length = 0
        for btext, freq, _, vbytes in field.index(value):
            postings = terms.get(btext)
            if postings is None:
                postings = terms[btext] = _Postings()
            postings.docs.append(docnum)
            postings.freqs.append(freq)
            length += freq
        self.lengths[name].append(length if field.scorable else 0)
        return length if field.scorable else 0

    def finish(self):
        """Write the postings and close the segment; return it for a TOC."""
        self.perdoc.close()
        writer = self.codec.field_writer(self.storage, self.segment)
        for name in sorted(self.terms):
            writer.start_field(name, self.schema[name])
            weighted = TEXT_FIELDS.get(name, (None, None, False, True))[3]
            lengths = self.lengths[name]
            terms = self.terms[name]
            for term in sorted(terms):
                btext = term if isinstance(term, bytes) else term.encode("utf-8")
                _write_term(writer, btext, terms[term], lengths, weighted)
            writer.finish_field()
            terms.clear()
        writer.close()
        self.segment.set_doc_count(self.docnum)
        # No compound file: Whoosh reads a compound segment's parts through
        # BytesIO copies of the mapped file (~100 MB per term table, per
        # process); separate files are read in place and shared in the page cache.
        return self.segment


def _write_term(writer, btext: bytes, postings: _Postings, lengths: array, weighted: bool) -> None:
    """Write one term's posting list, inline or in blocks, and its term-table row."""
    terminfo = W3TermInfo()
    docs, count = postings.docs, len(postings.docs)
    weights = array("f", postings.freqs) if weighted and any(f != 1 for f in postings.freqs) else None
    values = postings.values or None
    if count <= INLINE_LIMIT:
        _account(terminfo, docs, weights, lengths)
        # As W3TermInfo.set_inlined, but with None for all-1.0 weights and no
        # values, which the reader's ListMatcher takes as such.
        terminfo._inlined = (tuple(docs), tuple(weights) if weights else None, tuple(values) if values else None)
    else:
        postfile = writer._postfile
        start = postfile.tell()
        postfile.write(WHOOSH3_HEADER_MAGIC)
        for first in range(0, count, BLOCK_LIMIT):
            last = min(first + BLOCK_LIMIT, count)
            _write_block(postfile, terminfo, docs[first:last], weights and weights[first:last],
                         values and values[first:last], lengths, last == count)
        terminfo.set_extent(start, postfile.tell() - start)
    writer._tindex.add(pack_ushort(writer._fieldid) + btext, terminfo.to_bytes())


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


def build_segment(folder: str, documents: list[dict], progress=None):
    """Build one segment of the index in folder from documents; return the segment.

    progress, if given, is a shared counter (multiprocessing.Value) of documents added.
    """
    builder = SegmentBuilder(FileStorage(folder))
    for i, doc in enumerate(documents, start=1):
        builder.add(doc)
        if progress is not None and i % 256 == 0:
            with progress.get_lock():
                progress.value += 256
    if progress is not None:
        with progress.get_lock():
            progress.value += len(documents) % 256
    return builder.finish()


def write_toc(folder: str, segments: list) -> None:
    """Publish segments as the index in folder (one new TOC generation)."""
    storage = FileStorage(folder)
    generation = TOC._latest_generation(storage, INDEX_NAME) + 1
    TOC(build_schema(), segments, generation).write(storage, INDEX_NAME)
    clean_files(storage, INDEX_NAME, generation, segments)
    scratch = Path(folder) / f"{INDEX_NAME}.tmp"  # Whoosh's per-document writer leaves it, empty
    if scratch.is_dir() and not any(scratch.iterdir()):
        scratch.rmdir()
