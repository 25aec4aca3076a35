"""Updates of the cluster: after the embedded build's (sync_build), or straight into it (update_cluster).

sync_build sends what an update of the embedded build changed, by id, and
deletes what it removed; check_in_step first checks that the cluster holds what
that build held.

An update straight into the cluster has no embedded build of the archive and
makes the same changes as indexer/update.py.

The sources are parsed, deduplicated and grouped among themselves by our own
rebuild, into a temporary build of just them (indexer/writer.py: the same
parser, analyzer and summary). Then, as the embedded update does it
(indexer/opensearch_changes.py): a new article the cluster holds under another
id (the same content hash) is a duplicate, not sent; the headline entries of
articles that did not change are not sent (the embedded update writes only
those of the articles it writes), nor the entries whose title an article of
the cluster has (the entry names that article); the documents the update
removes are deleted; a new or changed document is sent, numbered after the
cluster's last ``seq``. The summary counts as the embedded update's does.

A new or changed article joins a story the cluster already holds as
indexer/stories.py groups a build: candidates are the articles sharing one of
its MinHash band keys (stored as the keyword field ``bands``) and published
within WINDOW_DAYS of it (a terms query), confirmed on the exact shingle sets
of both bodies (``same_story``); it joins the story of the earliest-published
confirmed candidate, with the copies of its own story in the update. A
headline-only entry joins the story of the earliest-published article whose
title has its words. Stories are never renumbered. Every story that gained or
lost a document has its members sent again with the new size (their searched
fields are not in ``_source``, so an update-by-query would lose them: the
documents are made again).

With delete_missing, the articles whose source file is gone are deleted too,
with their headline entries, as the embedded update's --delete-missing does.

The words of the documents the update adds (not re-crawls, not replaced
articles) are added to the lexicon's counts (indexer/opensearch_lexicon.py
add_words). Deletions do not lower them: the documents deleted are not read
back, and the next rebuild, or an update from the embedded build
(sync_build), makes the counts exact again.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from indexer.documents import dropped_figures
from indexer.opensearch_changes import find_deletions, find_recrawls, headline_stories, name_archived, rename_related
from indexer.opensearch_index import (DEFAULT_ALIAS, KEY_FIELDS, ClusterError, _names_of, _stored_rows, _why, aliased,
                                      build_documents, cluster_document, connect, delete_documents, derived_fields,
                                      load_documents, publish_build)
from indexer.opensearch_lexicon import add_words, sync_lexicon
from indexer.opening import open_index
from indexer.schema import ARTICLE, HEADLINE
from indexer.stories import WINDOW_DAYS, same_story, shingles, story_text
from indexer.store import live_build
from indexer.writer import NothingIndexedError, build_index

CANDIDATES = 50  # confirmed on their shingle sets at most, earliest published first
_DAY = 86400


def update_cluster(sources, url: str, alias: str, jobs: int | None = None, progress: bool = False,
                   delete_missing: bool = False) -> dict:
    """Apply the sources to the alias's index as the embedded update applies them to a build; return the summary.

    :raises ClusterError: when the alias names no index, or the cluster cannot be reached or refuses.
    """
    from opensearchpy.exceptions import OpenSearchException

    started = time.perf_counter()
    client = connect(url)
    try:
        if not aliased(client, alias):
            raise ClusterError(f"{alias} at {url} names no index: rebuild with --backend opensearch first")
        with tempfile.TemporaryDirectory(prefix="newsearch-update-") as folder:
            try:
                summary = build_index(sources, Path(folder) / "index", jobs=jobs, progress=progress)
                documents = list(build_documents(live_build(Path(folder) / "index"))[1])
            except NothingIndexedError as exc:  # as the embedded update: nothing changed, the skips told
                summary, documents = dict(exc.report), []
        client.indices.put_mapping(index=alias, body={"properties": KEY_FIELDS})  # an index of before
        figures = _apply(client, alias, documents, progress, delete_missing)
    except OpenSearchException as exc:
        raise ClusterError(f"updating {alias} at {url} failed ({_why(exc)})") from exc
    summary["duplicates"] += figures.pop("recrawls")
    summary.update(figures, **dropped_figures(summary["inputs"], summary["skipped"], summary["duplicates"]),
                   index=f"{url} {alias}", elapsed_s=round(time.perf_counter() - started, 2))
    if not summary["changed"]:
        summary["message"] = "nothing changed"
    return summary


def _apply(client, alias: str, documents: list[dict], progress: bool, delete_missing: bool) -> dict:
    """Send what is new or changed, delete what the update removes, and bring stories up to date."""
    held = _held(client, alias, [d["id"] for d in documents])
    articles = [d for d in documents if d["kind"] == ARTICLE]
    recrawls = find_recrawls(client, alias, articles, held)
    gone = find_deletions(client, alias, articles, delete_missing)
    changed = {d["id"] for d in articles if d["id"] not in recrawls and _fresh(d, held, gone)}
    named = name_archived(client, alias, [d for d in articles if d["id"] in changed])
    for doc in articles:
        rename_related(doc, named)
    entries = [d for d in documents if d["kind"] == HEADLINE and d["parent"] in changed and d["title_key"] not in named]
    kept = [d for d in articles if d["id"] not in recrawls] + entries
    fresh = [d for d in kept if _fresh(d, held, gone)]
    if gone:
        delete_documents(client, alias, sorted(gone))
    joined = _send_fresh(client, alias, fresh, progress)
    moved = headline_stories(client, alias, {d["story_title"] for d in fresh if d.get("story_title")})
    load_documents(client, alias, iter([{**doc, **derived_fields(doc)} for doc, _ in moved]), len(moved), False)
    touched = ({d["story"] for d in fresh} | {held[d["id"]]["story"] for d in fresh if d["id"] in held}
               | set(gone.values()) | {doc["story"] for doc, _ in moved} | {old for _, old in moved})
    resized = resize_stories(client, alias, touched - {None})
    replaced = sum(d["id"] in held for d in fresh)
    words = add_words(client, alias, [d for d in fresh if d["id"] not in held], load_documents)
    articles_sent = sum(d["kind"] == ARTICLE for d in fresh)
    return {"articles": articles_sent, "headlines": len(fresh) - articles_sent,
            "added": len(fresh) - replaced, "replaced": replaced, "deleted": len(gone),
            "unchanged": len(kept) - len(fresh), "recrawls": len(recrawls), "changed": bool(fresh or gone),
            "joined": joined, "resized": resized, "lexicon_sent": words}


def _held(client, alias: str, ids: list[str]) -> dict[str, dict]:
    """Return {id: content hash and story} of the documents of these ids the cluster holds."""
    if not ids:
        return {}
    found = client.mget(index=alias, body={"ids": ids}, _source=["content_hash", "story"])
    return {d["_id"]: d["_source"] for d in found["docs"] if d.get("found")}


def _fresh(doc: dict, held: dict, gone: dict) -> bool:
    """Tell whether a document is sent: new, changed, or removed by this update and made again."""
    return doc["id"] in gone or held.get(doc["id"], {}).get("content_hash") != doc["content_hash"]


def _send_fresh(client, alias: str, fresh: list[dict], progress: bool) -> int:
    """Number the documents after the cluster's last seq, join their stories, send them; return how many joined."""
    last = client.search(index=alias, body={"size": 0, "aggs": {"seq": {"max": {"field": "seq"}}}})
    first = int(last["aggregations"]["seq"]["value"] or 0) + 1
    for number, doc in enumerate(fresh):
        doc["seq"] = first + number
    joined = join_stories(client, alias, fresh)
    load_documents(client, alias, iter(fresh), len(fresh), progress)
    client.indices.refresh(index=alias)
    return joined


def cluster_story(client, alias: str, doc: dict) -> str | None:
    """Return the story in the cluster that an article is a copy of (its earliest-published confirmed candidate's)."""
    if not doc.get("bands"):
        return None
    published = int(doc.get("published") or 0)
    window = WINDOW_DAYS * _DAY
    when = ({"range": {"published": {"gte": published - window, "lte": published + window}}} if published
            else {"term": {"published": 0}})  # unknown times pair only with unknown times, as in a build
    body = {"query": {"bool": {"filter": [{"terms": {"bands": doc["bands"]}}, when],
                               "must_not": [{"ids": {"values": [doc["id"]]}}]}},
            "size": CANDIDATES, "sort": [{"published": "asc"}, {"seq": "asc"}], "_source": ["body", "story"]}
    mine = shingles(story_text(doc.get("body") or ""))
    for hit in client.search(index=alias, body=body)["hits"]["hits"]:
        if hit["_source"].get("story") and same_story(mine, shingles(story_text(hit["_source"].get("body") or ""))):
            return hit["_source"]["story"]
    return None


def join_stories(client, alias: str, documents: list[dict]) -> int:
    """Move each story of the documents into the cluster's story one of its articles is a copy of; return how many moved."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for doc in documents:
        groups[doc.get("story") or doc["id"]].append(doc)
    moved = 0
    for members in groups.values():
        story = next((found for doc in members if (found := cluster_story(client, alias, doc))), None)
        if story is not None:
            for doc in members:
                moved += doc.get("story") != story
                doc["story"] = story
    return moved


def resize_stories(client, alias: str, touched: set[str]) -> int:
    """Send again, with their story's size now, the members of the touched stories whose size changed; return how many."""
    if not touched:
        return 0
    from opensearchpy.helpers import scan

    client.indices.refresh(index=alias)
    members = [hit["_source"] for hit in scan(client, index=alias, query={"query": {"terms": {"story": sorted(touched)}}})]
    sizes: dict[str, int] = defaultdict(int)
    for source in members:
        sizes[source["story"]] += 1
    again = [{**source, "story_size": sizes[source["story"]], **derived_fields(source)}
             for source in members if source.get("story_size") != sizes[source["story"]]]
    load_documents(client, alias, iter(again), len(again), False)
    client.indices.refresh(index=alias)
    return len(again)


def sync_build(build: Path, url: str, alias: str = DEFAULT_ALIAS, progress: bool = False) -> dict:
    """Bring the alias's index in line with a build after an update: send what changed, delete what is gone.

    A document is sent again (by its id) when it is new, its content changed,
    or its story or the story's size did; the others are left as they are.
    Their numbers in the build (seq) move with an update's merges, so only
    sent documents carry the new one: ties in the cluster's orders may fall
    out differently from the embedded index's after an update.
    """
    from opensearchpy.exceptions import OpenSearchException
    from opensearchpy.helpers import scan

    client = connect(url)
    try:
        if not aliased(client, alias):  # nothing in the cluster yet: the build goes in whole
            return publish_build(build, url, alias=alias, progress=progress)
        held = {hit["_id"]: _sameness(hit["_source"]) for hit in
                scan(client, index=alias, _source=["content_hash", "story", "story_size"], size=2000)}
        count, rows = _stored_rows(build)
        names = _names_of(build)
        seen: set[str] = set()

        def changed() -> Iterator[dict]:
            for seq, stored, sid, size in rows:
                seen.add(stored["id"])
                if held.get(stored["id"]) != (stored.get("content_hash"), sid, size):
                    yield cluster_document(stored, seq, sid, size, names(seq))

        sent = load_documents(client, alias, changed(), count, progress)
        gone = [doc_id for doc_id in held if doc_id not in seen]
        if gone:
            delete_documents(client, alias, gone)
        client.indices.refresh(index=alias)
        lexicon = sync_lexicon(client, alias, build, load_documents, delete_documents)
    except OpenSearchException as exc:
        raise ClusterError(f"updating {url} failed ({_why(exc)})") from exc
    return {"url": url, "alias": alias, "sent": sent, "deleted": len(gone), "unchanged": count - sent,
            "lexicon": lexicon}


def check_in_step(index_dir: Path, url: str, alias: str = DEFAULT_ALIAS) -> None:
    """Check that the cluster's alias holds what the index at index_dir holds, before an update changes either.

    An update sends what changed against the local build and deletes in the
    cluster what the build no longer holds: from another index (or none) it
    would delete the archive.

    :raises ClusterError: when the counts differ, or the cluster cannot be read.
    """
    from opensearchpy.exceptions import OpenSearchException

    build = live_build(Path(index_dir))
    client = connect(url)
    try:
        if not aliased(client, alias):
            return
        held = client.count(index=alias)["count"]
    except OpenSearchException as exc:
        raise ClusterError(f"cannot read {alias} at {url} ({_why(exc)})") from exc
    local = _doc_count(build) if build is not None else 0
    if held != local:
        raise ClusterError(f"{alias} at {url} holds {held} documents and the index at {index_dir} {local}: update "
                           f"from the index the cluster was loaded from, or rebuild with --backend opensearch")


def _doc_count(build: Path) -> int:
    ix, postings = open_index(build)
    if postings is not None:
        postings.close()
    with ix.reader() as reader:
        return reader.doc_count()


def _sameness(source: dict) -> tuple:
    return source.get("content_hash"), source.get("story"), int(source.get("story_size") or 1)
