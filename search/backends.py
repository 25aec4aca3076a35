"""Open the engine of the chosen backend: the embedded index (the default) or an OpenSearch cluster.

Both answer with the same methods and the same plain data, so what calls
``open_engine`` never asks which one it got.
"""

from __future__ import annotations

import os

from indexer.opensearch_index import BACKENDS, DEFAULT_ALIAS
from search.engine import Engine
from search.opensearch_engine import OpenSearchEngine


def default_backend() -> str:
    """Return the backend: NEWSEARCH_BACKEND, else embedded."""
    return os.environ.get("NEWSEARCH_BACKEND") or "embedded"


def open_engine(backend: str, index_dir: str | os.PathLike, url: str | None = None, alias: str | None = None,
                **kwargs) -> Engine | OpenSearchEngine:
    """Return an engine over the embedded index at index_dir, or over the cluster at url.

    :raises ValueError: for an unknown backend, or opensearch without a URL.
    """
    if backend == "opensearch":
        if not url:
            raise ValueError("the opensearch backend needs the cluster's URL (--url or NEWSEARCH_URL)")
        return OpenSearchEngine(url, alias or DEFAULT_ALIAS, **kwargs)
    if backend != "embedded":
        raise ValueError(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
    return Engine(index_dir, **kwargs)
