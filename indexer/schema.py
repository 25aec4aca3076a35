"""The index schema: the one contract between the indexer and the search layer.

Whoosh pickles this schema (and the tokenizers in it) into every index, so the
module path and the field names stay fixed; changing them means a rebuild.
"""

from whoosh.fields import ID, NUMERIC, STORED, TEXT, Schema

from indexer.analysis import GramTokenizer, WordTokenizer

# Field names, the only thing search/ imports from here besides the schema.
ID_FIELD = "id"
KIND = "kind"
TITLE = "title"
BODY = "body"
TITLE_GRAMS = "title_grams"
BODY_GRAMS = "body_grams"
CATEGORY = "category"
SOURCE = "source"
PUBLISHED = "published"

WORD_FIELDS = (TITLE, BODY)
GRAM_FIELDS = (TITLE_GRAMS, BODY_GRAMS)
GRAMS_OF = {TITLE: TITLE_GRAMS, BODY: BODY_GRAMS}

# Document kinds: a full article, or a related headline seen only in a list.
ARTICLE = "article"
HEADLINE = "headline"

# Category value for documents the source gave none.
NO_CATEGORY = ""


def build_schema() -> Schema:
    """Return the schema every index is written with."""
    return Schema(
        id=ID(stored=True, unique=True),
        kind=ID(stored=True),
        title=TEXT(analyzer=WordTokenizer(), stored=True, phrase=True),
        body=TEXT(analyzer=WordTokenizer(), stored=True, phrase=True),
        title_grams=TEXT(analyzer=GramTokenizer(), phrase=True),
        body_grams=TEXT(analyzer=GramTokenizer(), phrase=True),
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
