"""Write a term's posting list in Whoosh's own format: inline in the term table, or in blocks.

Whoosh's writer pickles each block's postings as tuples of Python numbers, one
object per posting. ``write_term`` writes the same blocks from lists of
document numbers, frequencies and encoded positions:

- a block is what Whoosh's reader expects (its W3LeafMatcher) — a length, a
  pickled info tuple, and a zlib-compressed pickle of (ids, weights, values) —
  but written with pickle protocol 4 and compact containers: ids as a
  byte/short array of deltas, weights left out when all are 1.0;
- posting lists of at most INLINE_LIMIT documents are stored inline in the term
  table, a layout Whoosh's reader supports (its writer's switch for it is broken
  in 2.7.4).
"""

from __future__ import annotations

import struct
import zlib
from array import array
from pickle import dumps

from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3TermInfo
from whoosh.system import pack_ushort
from whoosh.util.numeric import length_to_byte

INLINE_LIMIT = 8  # posting lists this short live in the term table
BLOCK_LIMIT = 128  # postings per block, as Whoosh's writer uses
COMPRESSION = 3  # zlib level of block data, as Whoosh's writer uses
_TERMINFO = W3TermInfo._struct  # a term-table row's fixed part
_ROW_LENGTHS = struct.Struct("!ii")  # a hash table row's key and value lengths, as whoosh.filedb.filetables


def write_term(writer, btext: bytes, docs: list, freqs: list, values, lengths: array, weighted: bool) -> None:
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
