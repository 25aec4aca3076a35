"""Answer a search as plain data; never imports Flask.

Parts: ``request`` (validated parameters), ``query`` (what users type, read
leniently, as Whoosh queries), ``postings`` (posting lists read into arrays,
cached per build), ``sets`` (sorted-array set operations, Hits), ``budget``
(one request's caps and the reads counted against them), ``exact`` (exact
characters: runs, passages, text in one piece), ``match`` (matching and
scoring a parsed query), ``ranking`` (BM25F and the recency prior),
``facets`` (counts from column arrays), ``highlight`` (exact spans, escaped
HTML), ``spelling`` (did-you-mean, autocomplete), ``around`` (an article's
copies and similar articles), ``related`` (related searches from the
matches), ``answer`` (hits and the answer's other parts
as plain data), ``engine`` (opens the live build and puts the answer
together); ``opensearch_query`` and ``opensearch_engine`` answer the same from
an OpenSearch cluster, and ``backends`` opens the one chosen.

The one entry point is ``Engine(index_dir).search(request)`` (or
``open_engine(backend, ...)``, the same methods from either backend); the web pages, the
JSON API and ``newsearch query`` all render its answer.
"""

from search.engine import Engine, IndexMissingError
from search.request import RequestError, SearchRequest, parse_request

__all__ = ["Engine", "IndexMissingError", "RequestError", "SearchRequest", "parse_request"]
