"""An update straight into the cluster: no embedded build of the archive, stories found in the cluster.

The sources are parsed, deduplicated and grouped among themselves by our own
rebuild, into a temporary build of just them (indexer/writer.py: the same
parser, analyzer and summary). Each of its documents is then looked up by id
in the cluster: one with the same content hash is left alone; a new or
changed one is sent, numbered after the cluster's last ``seq``.

A new or changed article joins a story the cluster already holds as
indexer/stories.py groups a build: candidates are the articles sharing one of
its MinHash band keys (stored as the keyword field ``bands``) and published
within WINDOW_DAYS of it (a terms query), confirmed on the exact shingle sets
of both bodies (``same_story``); it joins the story of the earliest-published
confirmed candidate, with the copies of its own story in the update. Stories
are never renumbered. Every story that gained or lost a copy has its members
sent again with the new size (their searched fields are not in ``_source``,
so an update-by-query would lose them: the documents are made again).

The new articles' words are added to the lexicon's counts
(indexer/opensearch_lexicon.py add_words). Not done here: deleting
documents whose source is gone (that needs the list of sources the embedded
build keeps), and the story of a headline-only entry by its title (it keeps
the one of its update).
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path

from indexer.opensearch_index import (BANDS_FIELD, ClusterError, _why, aliased, band_terms, build_documents, connect,
                                      load_documents, search_fields)
from indexer.opensearch_lexicon import add_words
from indexer.stories import WINDOW_DAYS, same_story, shingles, story_text
from indexer.store import live_build
from indexer.writer import build_index

CANDIDATES = 50  # confirmed on their shingle sets at most, earliest published first
_DAY = 86400


def update_cluster(sources, url: str, alias: str, jobs: int | None = None, progress: bool = False) -> dict:
    """Add the sources' new and changed documents to the alias's index, each in its story; return the summary.

    :raises ClusterError: when the alias names no index, or the cluster cannot be reached or refuses.
    """
    from opensearchpy.exceptions import OpenSearchException

    started = time.perf_counter()
    client = connect(url)
    try:
        if not aliased(client, alias):
            raise ClusterError(f"{alias} at {url} names no index: rebuild with --backend opensearch first")
        with tempfile.TemporaryDirectory(prefix="newsearch-update-") as folder:
            summary = build_index(sources, Path(folder) / "index", jobs=jobs, progress=progress)
            documents = list(build_documents(live_build(Path(folder) / "index"))[1])
        client.indices.put_mapping(index=alias, body={"properties": {"bands": BANDS_FIELD}})  # an index of before
        figures = _send(client, alias, documents, progress)
    except OpenSearchException as exc:
        raise ClusterError(f"updating {alias} at {url} failed ({_why(exc)})") from exc
    summary.update(figures, index=f"{url} {alias}", elapsed_s=round(time.perf_counter() - started, 2))
    return summary


def _send(client, alias: str, documents: list[dict], progress: bool) -> dict:
    """Send the documents that are new or changed, in their stories, and resize the stories touched."""
    found = client.mget(index=alias, body={"ids": [d["id"] for d in documents]}, _source=["content_hash", "story"])
    held = {d["_id"]: d["_source"] for d in found["docs"] if d.get("found")}
    fresh = [d for d in documents if held.get(d["id"], {}).get("content_hash") != d["content_hash"]]
    last = client.search(index=alias, body={"size": 0, "aggs": {"seq": {"max": {"field": "seq"}}}})
    first = int(last["aggregations"]["seq"]["value"] or 0) + 1
    for number, doc in enumerate(fresh):
        doc["seq"] = first + number
    joined = join_stories(client, alias, fresh)
    load_documents(client, alias, iter(fresh), len(fresh), progress)
    touched = {d["story"] for d in fresh} | {held[d["id"]]["story"] for d in fresh if d["id"] in held}
    resized = resize_stories(client, alias, touched - {None})
    replaced = sum(d["id"] in held for d in fresh)
    words = add_words(client, alias, [d for d in fresh if d["id"] not in held], load_documents)
    return {"added": len(fresh) - replaced, "replaced": replaced, "unchanged": len(documents) - len(fresh),
            "changed": bool(fresh), "joined": joined, "resized": resized, "lexicon_sent": words}


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
    again = [{**source, "story_size": sizes[source["story"]], "bands": band_terms(source.get("body")),
              **search_fields(source)} for source in members if source.get("story_size") != sizes[source["story"]]]
    load_documents(client, alias, iter(again), len(again), False)
    client.indices.refresh(index=alias)
    return len(again)
