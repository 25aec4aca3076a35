"""The search site and its JSON API: renderings of search/'s answer.

``create_app`` builds the app; pages live in ``pages.py``, the API in
``api.py``, templates in ``templates/<blueprint>/<view>.html``. The few helpers
both blueprints share (the engine, the clock, the one article lookup) sit here
beside it, as flaskr keeps ``get_db`` beside its app.
"""

from __future__ import annotations

import os

from flask import Flask, abort, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, InternalServerError

from search import IndexMissingError, RequestError
from search.backends import open_engine
from search.opensearch_calls import ClusterUnavailableError
from search.ranking import RECENCY_HALF_LIFE_DAYS, RECENCY_WEIGHT
from search.request import now_epoch

# Every setting: name -> (default, help). Set one as NEWSEARCH_<NAME> in the
# environment (values are read as JSON when they parse, else as text), in the
# instance folder's config.py, or in create_app(test_config).
SETTINGS = {
    "INDEX_DIR": ("index", "Index path: the link `newsearch rebuild` swaps; the site follows it to each new build "
                           "without a restart. NEWSEARCH_INDEX, which the CLI reads, is honoured too."),
    "BACKEND": ("embedded", "Where the archive is searched: `embedded` (the index at INDEX_DIR) or `opensearch` "
                            "(the cluster at URL, the index its ALIAS names)."),
    "URL": (None, "The OpenSearch cluster's URL, e.g. http://127.0.0.1:9200, for BACKEND opensearch."),
    "ALIAS": ("newsearch", "The alias naming the live index in the OpenSearch cluster."),
    "RECENCY_WEIGHT": (RECENCY_WEIGHT, "How far relevance order leans towards recent news: today's gets up to "
                                       "this fraction more score; 0 turns the prior off."),
    "RECENCY_HALF_LIFE_DAYS": (RECENCY_HALF_LIFE_DAYS, "Age in days at which the recency boost has halved."),
    "SUGGEST_LIMIT": (8, "Most autocomplete suggestions /api/suggest returns."),
    "SITE_NAME": ("新闻搜索", "Site name in the header, page titles and the OpenSearch description."),
    "FIXED_NOW": (None, "Pretend it is this moment (epoch seconds of the Beijing wall clock) for date presets and "
                        "relative dates; for tests and demos. Unset: the real clock."),
}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


class SafeJSONProvider(DefaultJSONProvider):
    """JSON with Chinese as is, keys in answer order, and <, >, & as \\u escapes."""

    ensure_ascii = False
    sort_keys = False

    def dumps(self, obj, **kwargs) -> str:
        """Serialize obj; outside strings JSON never uses <, > or &, so escaping them is lossless."""
        text = super().dumps(obj, **kwargs)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def create_app(test_config: dict | None = None) -> Flask:
    """Create the app: defaults, then instance config.py, then NEWSEARCH_* env, then test_config."""
    app = Flask(__name__, instance_relative_config=True)
    app.json = SafeJSONProvider(app)
    app.config.from_mapping({name: default for name, (default, _) in SETTINGS.items()})
    app.config.from_pyfile("config.py", silent=True)
    if os.environ.get("NEWSEARCH_INDEX"):
        app.config["INDEX_DIR"] = os.environ["NEWSEARCH_INDEX"]
    app.config.from_prefixed_env("NEWSEARCH")
    if test_config:
        app.config.update(test_config)
    engine = app.extensions["newsearch"] = open_engine(
        app.config["BACKEND"], str(app.config["INDEX_DIR"]), app.config["URL"], app.config["ALIAS"],
        recency_weight=float(app.config["RECENCY_WEIGHT"]),
        half_life_days=float(app.config["RECENCY_HALF_LIFE_DAYS"]),
    )
    engine.preload()  # so that gunicorn --preload shares the segmenter with its workers

    from web import api, pages

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    for error in (HTTPException, RequestError, IndexMissingError, InternalServerError):
        app.register_error_handler(error, handle_error)
    app.after_request(set_security_headers)
    return app


def get_engine():
    """Return the app's search engine."""
    return current_app.extensions["newsearch"]


def get_now() -> int:
    """Return the moment searches are answered at: FIXED_NOW, else the Beijing wall clock."""
    fixed = current_app.config.get("FIXED_NOW")
    return int(fixed) if fixed is not None else now_epoch()


def get_article(doc_id: str, q: str = "") -> dict:
    """Return one article, its query matches marked.

    :raises NotFound: when no document has this id.
    """
    article = get_engine().article(doc_id, q=q)
    if article is None:
        abort(404, f"no article with id {doc_id}")
    return article


def describe_error(error: Exception) -> tuple[int, str, list[dict]]:
    """Return status, message and per-parameter errors of an exception."""
    if isinstance(error, RequestError):
        return 400, str(error), [{"param": error.param, "message": error.message}]
    if isinstance(error, IndexMissingError):
        return 503, unavailable_message(error), []
    if isinstance(error, HTTPException) and error.code:
        custom = error.description and error.description != type(error).description
        return error.code, f"{error.name}: {error.description}" if custom else error.name, []
    return 500, InternalServerError.name, []


def unavailable_message(error: IndexMissingError) -> str:
    """Return the message of an index that cannot answer: a missing one says to rebuild it; a cluster down or too
    slow does not, as a rebuild would not help it."""
    if isinstance(error, ClusterUnavailableError):
        return str(error)
    return f"{error}; run: newsearch rebuild"


def handle_error(error: Exception):
    """Answer an error as JSON under /api/ and as an HTML page elsewhere."""
    from web import api, pages

    status, message, errors = describe_error(error)
    if request.path.startswith("/api/"):
        response = api.error_response(status, message, errors)
    else:
        response = pages.error_page(status, message, errors, unavailable=isinstance(error, ClusterUnavailableError))
    if isinstance(error, HTTPException):
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
    return response


def set_security_headers(response):
    """Add the security headers every response carries."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
