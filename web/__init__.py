"""The search site and its JSON API: renderings of search/'s answer.

``create_app`` is the only thing here; pages live in ``pages.py``, the API in
``api.py``, templates in ``templates/<blueprint>/<view>.html``.
"""

from __future__ import annotations

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Create the app: defaults, then instance config.py, then NEWSEARCH_* env, then test_config."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(INDEX_DIR="index")
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("NEWSEARCH")
    if test_config:
        app.config.update(test_config)
    return app
