"""Answer a search as plain data; never imports Flask.

Parts: ``request`` (validated parameters), ``query`` (what users type, read
leniently, as Whoosh queries), ``ranking`` (BM25F and the recency prior),
``facets`` (counts from column arrays), ``highlight`` (exact spans, escaped
HTML), ``spelling`` (did-you-mean, autocomplete), ``around`` (an article's
copies and similar articles), ``engine`` (opens the live build and puts the
answer together).

The one entry point is ``Engine(index_dir).search(request)``; the web pages, the
JSON API and ``newsearch query`` all render its answer.
"""

from search.engine import Engine, IndexMissingError
from search.request import RequestError, SearchRequest, parse_request

__all__ = ["Engine", "IndexMissingError", "RequestError", "SearchRequest", "parse_request"]
