"""The index schema: the one contract between the indexer and the search layer.

Whoosh pickles this schema (with the tokenizers and formats in it) into every
index, so this module's path, its class names and the field names stay fixed;
changing them means a rebuild.

Text is indexed three ways, for the title and the body each:

- words (``title``, ``body``): jieba words and their sub-words, weighted by
  frequency; no positions (nothing needs them: phrases and proximity are
  answered by the bigram fields);
- bigrams (``title_grams``, ``body_grams``): adjacent character pairs with
  character positions, so a phrase of pairs is an exact substring;
- characters (``title_chars``, ``body_chars``): single characters, presence only,
  for one-character queries.
"""

import sys
from array import array
from itertools import accumulate

from whoosh.columns import NumericColumn
from whoosh.fields import COLUMN, ID, NUMERIC, STORED, TEXT, Schema
from whoosh.formats import Existence, Positions

from indexer.analysis import BigramTokenizer, CharTokenizer, WordTokenizer

# Field names, the only thing search/ imports from here besides the schema.
ID_FIELD = "id"
KIND = "kind"
TITLE = "title"
BODY = "body"
TITLE_GRAMS = "title_grams"
BODY_GRAMS = "body_grams"
TITLE_CHARS = "title_chars"
BODY_CHARS = "body_chars"
CATEGORY = "category"
SOURCE = "source"
PUBLISHED = "published"

TITLE_LEN = "title_len"
BODY_LEN = "body_len"

WORD_FIELDS = (TITLE, BODY)
# Word count of each document's title and body, for BM25's length normalisation.
LENGTH_OF = {TITLE: TITLE_LEN, BODY: BODY_LEN}
GRAM_FIELDS = (TITLE_GRAMS, BODY_GRAMS)
CHAR_FIELDS = (TITLE_CHARS, BODY_CHARS)
# The recall fields made from each text field.
GRAMS_OF = {TITLE: TITLE_GRAMS, BODY: BODY_GRAMS}
CHARS_OF = {TITLE: TITLE_CHARS, BODY: BODY_CHARS}

# Document kinds: a full article, or a related headline seen only in a list.
ARTICLE = "article"
HEADLINE = "headline"

# Category value for documents the source gave none.
NO_CATEGORY = ""


class PackedPositions(Positions):
    """Positions as a typecode byte and little-endian deltas: compact, decoded in C.

    Whoosh's own Positions pickles a list per posting (~14 bytes for one
    position); this is 3 bytes for one position under 65,536.
    """

    def encode(self, poslist):
        if len(poslist) == 1:
            first = poslist[0]
            return b"H" + first.to_bytes(2, "little") if first < 65536 else b"I" + first.to_bytes(4, "little")
        deltas = [b - a for a, b in zip([0, *poslist], poslist)]
        code = "H" if max(deltas) < 65536 else "I"
        packed = array(code, deltas)
        if sys.byteorder == "big":
            packed.byteswap()
        return code.encode() + packed.tobytes()

    def decode_positions(self, valuestring):
        packed = array(chr(valuestring[0]))
        packed.frombytes(valuestring[1:])
        if sys.byteorder == "big":
            packed.byteswap()
        return list(accumulate(packed))

    def decode_frequency(self, valuestring):
        return (len(valuestring) - 1) // array(chr(valuestring[0])).itemsize

    def decode_weight(self, valuestring):
        return self.decode_frequency(valuestring) * self.field_boost


def _text(tokenizer, fmt, stored: bool = False) -> TEXT:
    field = TEXT(analyzer=tokenizer, stored=stored)
    field.format = fmt
    return field


def build_schema() -> Schema:
    """Return the schema every index is written with."""
    return Schema(
        id=ID(stored=True, unique=True),
        kind=ID(stored=True),
        title=_text(WordTokenizer(), Existence(), stored=True),
        body=_text(WordTokenizer(), Existence(), stored=True),
        title_grams=_text(BigramTokenizer(), PackedPositions()),
        body_grams=_text(BigramTokenizer(), PackedPositions()),
        title_chars=_text(CharTokenizer(), Existence()),
        body_chars=_text(CharTokenizer(), Existence()),
        title_len=COLUMN(NumericColumn("I")),
        body_len=COLUMN(NumericColumn("I")),
        category=ID(stored=True, sortable=True),
        source=ID(stored=True, sortable=True),
        # Publish time as seconds since 1970-01-01 00:00 of Beijing wall-clock time.
        published=NUMERIC(int, bits=64, signed=True, stored=True, sortable=True),
        path=ID(stored=True),
        content_hash=ID(stored=True),
        url=STORED,
        origin=STORED,
        snapshot_time=STORED,
        related=STORED,
        parent=STORED,
    )
