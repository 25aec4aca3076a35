"""The JSON API: the search answer, one article, autocomplete, health.

Every answer is ``{"ok": true, ...}``; every error is ``error_body``'s one
shape, named parameter included, whatever the status.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, jsonify, request

from search import IndexMissingError, RequestError, parse_request
from search.budget import Work
from web import get_article, get_engine, get_now, unavailable_message

bp = Blueprint("api", __name__)
MAX_PREFIX = 64  # longer "prefixes" are pasted text, not typing: nothing to complete


def error_body(status: int, message: str, errors: list[dict] | None = None) -> dict:
    """Return the one JSON shape of an error."""
    return {"ok": False, "error": message, "errors": errors or [], "status": status}


def error_response(status: int, message: str, errors: list[dict] | None = None):
    """Return an error as a JSON response with its status."""
    response = jsonify(error_body(status, message, errors))
    response.status_code = status
    return response


def check_params(*known: str) -> None:
    """Refuse parameters an endpoint does not take.

    :raises RequestError: naming the first unknown parameter.
    """
    unknown = sorted(set(request.args) - set(known))
    if unknown:
        raise RequestError(unknown[0], f"unknown parameter; known: {', '.join(known)}")


@bp.get("/api/search")
def search():
    """Answer a search: the same answer as `newsearch query --json`."""
    search_request = parse_request(request.args, strict=True)
    return {"ok": True, **get_engine().search(search_request, now=get_now())}


@bp.get("/api/article/<doc_id>")
def article(doc_id: str):
    """Return one article, its body's matches of q marked."""
    check_params("q")
    return {"ok": True, **get_article(doc_id, request.args.get("q", ""))}


@bp.get("/api/suggest")
def suggest():
    """Return completions of what has been typed into the box."""
    check_params("q")
    q = request.args.get("q", "")
    limit = int(current_app.config["SUGGEST_LIMIT"])
    if q.strip() and len(q) <= MAX_PREFIX:
        return {"ok": True, "q": q, **get_engine().complete(q, limit=limit)}
    return {"ok": True, "q": q, "suggestions": [], "work": Work().as_dict()}  # nothing to complete: nothing read


@bp.get("/healthz")
def healthz():
    """Tell whether the site can answer: the live build and its size."""
    try:
        stats = get_engine().stats()
    except IndexMissingError as exc:
        return error_response(503, unavailable_message(exc))
    return {"ok": True, "documents": stats["documents"], "build": Path(stats["build"]).name}
