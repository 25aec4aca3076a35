"""What an update straight into the cluster changes besides sending documents, as indexer/update.py does.

Each step looks documents up by a keyword field with ``terms`` queries:

- re-crawls (``content_hash``): a new article whose content hash an article of
  the cluster holds under another id is a duplicate of that article, never sent;
- related headlines naming an article of the cluster (``title_key``, the key
  of the folded title): the entry names that article and no headline-only
  entry is made for it;
- deletions (``id``, ``path``): the headline-only entry of a title a full
  article of the update has, an article whose snapshot file (a path without
  ":") now holds another article, with --delete-missing an article whose
  source file is gone (its paths read by a composite aggregation), and the
  headline entries of those articles;
- headline stories (``story_title``, the key of a title's words): a
  headline-only entry joins the story of the earliest-published article whose
  title has the same words, as a build's stories do (indexer/stories.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from indexer.documents import headline_id
from indexer.keys import key_of
from indexer.opensearch_index import title_keys
from indexer.schema import ARTICLE, HEADLINE

TERMS = 10_000  # values per terms query (the cluster's default limit is 65,536)
PAGE = 1000  # paths per page of a composite aggregation


def held_where(client, alias: str, field: str, values: Iterable[str], kind: str | None = None,
               fields: list[str] | None = None) -> list[dict]:
    """Return the _source (fields of it, when given) of the documents whose field holds one of the values."""
    from opensearchpy.helpers import scan

    values = sorted({v for v in values if v})
    found = []
    for start in range(0, len(values), TERMS):
        filters = [{"terms": {field: values[start:start + TERMS]}}] + ([{"term": {"kind": kind}}] if kind else [])
        hits = scan(client, index=alias, query={"query": {"bool": {"filter": filters}}}, size=1000,
                    **({"_source": fields} if fields else {}))
        found.extend({**hit["_source"], "id": hit["_id"]} for hit in hits)
    return found


def find_recrawls(client, alias: str, articles: list[dict], held: dict) -> set[str]:
    """Return the ids of the new articles whose content an article of the cluster holds under another id."""
    new = [doc for doc in articles if doc["id"] not in held]
    holders = held_where(client, alias, "content_hash", (d["content_hash"] for d in new), ARTICLE, ["content_hash"])
    hashes = {hit["content_hash"] for hit in holders}
    return {doc["id"] for doc in new if doc["content_hash"] in hashes}


def name_archived(client, alias: str, articles: list[dict]) -> dict[str, str]:
    """Return {title_key: article id} of the related headlines of these articles that name an article of the
    cluster: its folded title is the headline's title (or teaser, for an entry without a title).

    Of several articles with the title, the last loaded (highest seq) names it, as a build's TitleIndex does.
    """
    keys = {_entry_key(entry) for doc in articles for entry in _headlines_of(doc)}
    named: dict[str, str] = {}
    hits = held_where(client, alias, "title_key", keys, ARTICLE, ["title_key", "seq"])
    for hit in sorted(hits, key=lambda h: int(h.get("seq") or 0)):
        named[hit["title_key"]] = hit["id"]
    return named


def rename_related(article: dict, named: dict[str, str]) -> None:
    """Make the related headlines that name an article of the cluster say so (kind article, the article's id)."""
    entries = json.loads(article.get("related") or "[]")
    renamed = [e for e in entries if e.get("kind") == HEADLINE and _entry_key(e) in named]
    for entry in renamed:
        entry.update(id=named[_entry_key(entry)], kind=ARTICLE)
    if renamed:
        article["related"] = json.dumps(entries, ensure_ascii=False)


def _headlines_of(article: dict) -> list[dict]:
    return [e for e in json.loads(article.get("related") or "[]") if e.get("kind") == HEADLINE]


def _entry_key(entry: dict) -> str:
    return title_keys(entry.get("title") or entry.get("teaser") or "")["title_key"]


def find_deletions(client, alias: str, articles: list[dict], delete_missing: bool = False) -> dict[str, str | None]:
    """Return {id: story} of the documents the update's articles remove (see the module's docstring), and with
    delete_missing those of articles whose source file is gone."""
    ids = {doc["id"] for doc in articles}
    fields = ["story"]
    titled = (headline_id(d["title"]) for d in articles if d["title"])
    gone = {hit["id"]: hit.get("story") for hit in held_where(client, alias, "id", titled, HEADLINE, fields)}
    paths = [d["path"] for d in articles if ":" not in d["path"]]
    paths += missing_paths(client, alias) if delete_missing else []
    removed = [hit for hit in held_where(client, alias, "path", paths, ARTICLE, fields) if hit["id"] not in ids]
    entries = held_where(client, alias, "path", (hit["id"] for hit in removed), HEADLINE, fields)
    gone.update((hit["id"], hit.get("story")) for hit in removed + entries if hit["id"] not in ids)
    return gone


def missing_paths(client, alias: str) -> list[str]:
    """Return the paths of the cluster's articles whose source file is gone (a JSON Lines path is file:line)."""
    exists: dict[str, bool] = {}
    missing, after = [], None
    while True:
        paths = {"size": PAGE, "sources": [{"path": {"terms": {"field": "path"}}}]}
        paths.update({"after": after} if after else {})
        body = {"size": 0, "query": {"term": {"kind": ARTICLE}}, "aggs": {"paths": {"composite": paths}}}
        found = client.search(index=alias, body=body)["aggregations"]["paths"]
        for bucket in found["buckets"]:
            path = bucket["key"]["path"]
            file = path.rsplit(":", 1)[0]
            if file not in exists:
                exists[file] = Path(file).exists()
            if not exists[file]:
                missing.append(path)
        after = found.get("after_key")
        if not found["buckets"] or after is None:
            return missing


def headline_stories(client, alias: str, titles: set[str]) -> list[tuple[dict, str | None]]:
    """Return (document, its story before) of the headline entries with these title words whose story is
    no longer the one of the earliest-published article with the same words (documents carry the new one)."""
    first: dict[str, tuple] = {}
    for hit in held_where(client, alias, "story_title", titles, ARTICLE, ["story_title", "published", "story"]):
        words = hit["story_title"]
        rank = (int(hit.get("published") or 0), key_of(hit["id"]))
        if words not in first or rank < first[words][0]:
            first[words] = (rank, hit.get("story"))
    moved = []
    for hit in held_where(client, alias, "story_title", first, HEADLINE):
        story = first[hit["story_title"]][1]
        if story and hit.get("story") != story:
            moved.append(({**hit, "story": story}, hit.get("story")))
    return moved
