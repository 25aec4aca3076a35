"""The archive in an OpenSearch cluster: its mapping, its documents, bulk loading and the alias swap.

The documents sent are the embedded build's own (indexer/writer.py made them:
parsed, deduplicated, grouped into stories by our code), each with the token
streams of indexer/analysis.py laid out so that OpenSearch's plain tokenizers
give the same tokens at the same positions:

- ``*_words``: our jieba words and sub-words, separated by spaces, read by the
  ``whitespace`` tokenizer (scored with BM25, as the word fields are);
- ``*_text``: the folded text with every character that is not a letter, digit
  or ideograph replaced by a space, read by an n-gram tokenizer of 2 over every
  character: a pair's position is its character offset, as in our pair fields,
  and no pair spans punctuation or a space (those pairs hold a space, which no
  query pair does); its ``chars`` sub-field, n-grams of 1, holds single
  characters;
- ``*_compact``: the folded text without whitespace, in pairs with positions:
  a quoted phrase with punctuation or spaces in it is one phrase of pairs
  there, as our engine checks it in the stored text "spaces not counting".

A rebuild writes a new index named with a stamp and the build's lexicon
beside it (indexer/opensearch_lexicon.py), loads them in batches (retried on
429), checks their counts and then moves both aliases in one ``_aliases``
request; anything failing before that deletes both new indexes and leaves the
aliases where they were.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from indexer import analysis, stories
from indexer.columns import load_columns
from indexer.entities import KINDS, load_entities
from indexer.keys import key_of
from indexer.opening import open_index
from indexer.opensearch_lexicon import SUFFIX, build_entries, lexicon_alias, lexicon_body
from indexer.schema import BODY, HEADLINE, TITLE
from indexer.store import live_build, read_meta

DEFAULT_ALIAS = "newsearch"
BACKENDS = ("embedded", "opensearch")  # where the archive is searched: --backend
BATCH = 500  # documents per bulk request
RETRIES = 6  # a batch answered 429 (the cluster's queues full) is sent again, backing off from 2 s
MAX_WINDOW = 50_000  # pages x size the API allows (search/request.py: 1,000 x 50)
# Fields only searched, never shown: left out of _source (they are derived from
# title and body, so storing them would double the index for nothing).
DERIVED = [*(f"{name}_{part}" for name in (TITLE, BODY) for part in ("words", "text", "compact")), "bands"]
SHOWN = ("id", "kind", TITLE, BODY, "category", "source", "published", "path", "content_hash", "url",
         "origin", "snapshot_time", "related", "parent")


# A body's MinHash band keys (indexer/stories.py), "band:key": an update finds a new article's story by them
BANDS_FIELD = {"type": "keyword", "doc_values": False, "norms": False}
# The keys an update straight into the cluster looks documents up by (indexer/opensearch_changes.py): the
# folded title's (which article a related headline names) and the title words' (a headline entry's story),
# kept in _source (16 characters each) so that a look-up reads them back.
KEY_FIELDS = {"bands": BANDS_FIELD, "title_key": {"type": "keyword", "doc_values": False, "norms": False},
              "story_title": {"type": "keyword", "doc_values": False, "norms": False}}


class ClusterError(RuntimeError):
    """The cluster cannot be reached, or refused what was sent."""


def connect(url: str, timeout: float = 30.0, retries: int = 2):
    """Return an OpenSearch client for a cluster URL (http://host:port, user:password@ allowed).

    Several nodes' URLs separated by commas spread the requests over them; a node that stops answering
    is left aside and the request sent to the next one (retries: 0 leaves that to the caller).
    """
    from opensearchpy import OpenSearch

    hosts = [part.strip() for part in url.split(",") if part.strip()]
    return OpenSearch(hosts, timeout=timeout, max_retries=retries, retry_on_timeout=retries > 0)


def reach(url: str) -> dict:
    """Return the cluster's own description (name, version), checking it answers.

    :raises ClusterError: when it does not.
    """
    from opensearchpy.exceptions import OpenSearchException

    try:
        return connect(url, timeout=10.0).info()
    except OpenSearchException as exc:
        raise ClusterError(f"{url}: {_why(exc)}") from exc


def index_body(shards: int = 2, meta: dict | None = None) -> dict:
    """Return the settings and mapping every index of ours is created with."""
    pairs = {"type": "text", "analyzer": "ns_pairs", "index_options": "positions", "norms": False}
    text = {**pairs, "fields": {"chars": {"type": "text", "analyzer": "ns_chars", "index_options": "docs",
                                          "norms": False}}}
    words = {"type": "text", "analyzer": "whitespace", "index_options": "freqs", "similarity": "BM25"}
    keyword = {"type": "keyword"}
    unindexed = {"type": "keyword", "index": False, "doc_values": False}
    properties = {
        "id": keyword, "kind": keyword, "category": keyword, "source": keyword, "path": keyword,
        "content_hash": keyword, "story": keyword, "published": {"type": "long"}, "seq": {"type": "long"},
        "story_size": {"type": "integer"}, **{kind: keyword for kind in KINDS},
        **KEY_FIELDS,
        TITLE: {"type": "text", "index": False}, BODY: {"type": "text", "index": False},
        "url": unindexed, "origin": unindexed, "snapshot_time": unindexed, "parent": unindexed,
        "related": {"type": "text", "index": False},
    }
    for name in (TITLE, BODY):
        properties.update({f"{name}_words": words, f"{name}_text": text, f"{name}_compact": pairs})
    return {
        "settings": {
            "number_of_shards": shards,
            "auto_expand_replicas": "0-1",  # one copy of each shard on another node, when there is one
            "max_result_window": MAX_WINDOW,
            "refresh_interval": "-1",  # while loading; set to 1s before the swap
            "analysis": {"tokenizer": {
                "ns_pair": {"type": "ngram", "min_gram": 2, "max_gram": 2},
                "ns_char": {"type": "ngram", "min_gram": 1, "max_gram": 1},
            }, "analyzer": {
                "ns_pairs": {"type": "custom", "tokenizer": "ns_pair"},
                "ns_chars": {"type": "custom", "tokenizer": "ns_char"},
            }},
        },
        "mappings": {"dynamic": "strict", "_source": {"excludes": DERIVED}, "_meta": meta or {},
                     "properties": properties},
    }


def spaced(folded: str) -> str:
    """Return folded text with each character that is not a letter, digit or ideograph made a space."""
    return "".join(ch if ch.isalnum() else " " for ch in folded)


def search_fields(stored: dict) -> dict:
    """Return the searched fields of a document from its title and body, made by our analyzer."""
    out = {}
    for name in (TITLE, BODY):
        original = stored.get(name) or ""
        folded = analysis.normalize(original)
        out[f"{name}_words"] = " ".join(word for word, _, _, _ in analysis.iter_words(folded, original))
        out[f"{name}_text"] = spaced(folded)
        out[f"{name}_compact"] = "".join(folded.split())
    return out


def cluster_document(stored: dict, seq: int, story: str | None, story_size: int,
                     names: dict[str, list[str]] | None = None) -> dict:
    """Return the document sent to the cluster for one stored document of a build, with its people, places and
    organisations (names: kind -> names, as the build's entities.npz holds them)."""
    doc = {name: stored.get(name, "") for name in SHOWN}
    doc["published"] = int(stored.get("published") or 0)
    doc.update(seq=seq, story=story, story_size=story_size, **derived_fields(stored))
    doc.update({kind: (names or {}).get(kind, []) for kind in KINDS})
    return doc


def derived_fields(stored: dict) -> dict:
    """Return what a document sends but does not keep in _source: the searched fields and the look-up keys."""
    headline = stored.get("kind") == HEADLINE  # no band keys, as in a build's keys files
    return {**search_fields(stored), "bands": [] if headline else band_terms(stored.get(BODY)),
            **title_keys(stored.get(TITLE) or "")}


def title_keys(title: str) -> dict[str, str | None]:
    """Return the keys of a title: its folded text's (title_key) and its words' (story_title, None without any)."""
    words = stories.title_key(title)
    return {"title_key": f"{key_of(analysis.normalize(title)):016x}", "story_title": f"{words:016x}" if words else None}


def _names_of(build: Path) -> Callable[[int], dict[str, list[str]]]:
    """Return a function giving document d's names of each kind, from the build's entities.npz (none without)."""
    arrays = load_entities(build)
    if not arrays:
        return lambda d: {}

    def names(d: int) -> dict[str, list[str]]:
        out = {}
        for kind in KINDS:
            offsets = arrays[f"{kind}_offsets"]
            codes = arrays[f"{kind}_codes"][offsets[d]:offsets[d + 1]]
            out[kind] = [str(name) for name in arrays[f"{kind}_labels"][codes]]
        return out

    return names


def band_terms(body: str | None) -> list[str]:
    """Return a body's band keys as "band:key" terms (none for a body too short to group)."""
    keys = stories.band_keys(body or "")
    return [] if not keys[0] else [f"{band}:{int(key):x}" for band, key in enumerate(keys)]


def _stored_rows(build: Path) -> tuple[int, Iterator[tuple[int, dict, str | None, int]]]:
    """Return how many live documents a build holds and (number, stored fields, story id, story size) of each."""
    ix, postings = open_index(build)
    reader = ix.reader()
    arrays = load_columns(build, reader)
    story, keys, sizes = arrays.get("story"), arrays.get("story_keys"), arrays.get("story_size")

    def rows() -> Iterator[tuple[int, dict, str | None, int]]:
        try:
            for docnum, stored in reader.iter_docs():
                code = None if story is None else int(story[docnum])
                sid = None if code is None else f"{int(keys[code]):016x}"
                yield docnum, stored, sid, 1 if code is None else int(sizes[code])
        finally:
            reader.close()
            if postings is not None:
                postings.close()

    return reader.doc_count(), rows()


def build_documents(build: Path) -> tuple[int, Iterator[dict]]:
    """Return how many live documents a build holds and an iterator over their cluster documents.

    seq is the document's number in the build: ties in an order fall back on
    it, as the embedded engine breaks them by document number.
    """
    count, rows = _stored_rows(build)
    names = _names_of(build)
    return count, (cluster_document(stored, seq, sid, size, names(seq)) for seq, stored, sid, size in rows)


def new_index_name(alias: str) -> str:
    """Return a new index name: the alias and a stamp (sortable, to the microsecond)."""
    return f"{alias}-{datetime.now().strftime('%Y%m%d%H%M%S%f')}"


def load_documents(client, name: str, documents: Iterator[dict], total: int, progress: bool) -> int:
    """Send documents in batches (each retried on 429); return how many the cluster took.

    :raises ClusterError: when a document was refused.
    """
    from opensearchpy.helpers import streaming_bulk
    from tqdm import tqdm

    actions = ({"_index": name, "_id": doc["id"], "_source": doc} for doc in documents)
    sent = 0
    with tqdm(total=total, unit="doc", disable=not progress, desc="opensearch") as bar:
        for ok, item in streaming_bulk(client, actions, chunk_size=BATCH, max_retries=RETRIES,
                                       initial_backoff=2, raise_on_error=False, raise_on_exception=True):
            if not ok:
                raise ClusterError(f"the cluster refused a document: {item}")
            sent += 1
            bar.update(1)
    return sent


def delete_documents(client, name: str, ids: list[str]) -> None:
    """Delete documents by id in bulk batches (each retried on 429), then refresh: delete-by-query is a
    module (reindex) a cluster may not load."""
    from opensearchpy.helpers import bulk

    actions = ({"_op_type": "delete", "_index": name, "_id": doc_id} for doc_id in ids)
    bulk(client, actions, chunk_size=BATCH, max_retries=RETRIES, initial_backoff=2)
    client.indices.refresh(index=name)


def aliased(client, alias: str) -> list[str]:
    """Return the indexes an alias points at now (none when it does not exist)."""
    if not client.indices.exists_alias(name=alias):
        return []
    return sorted(client.indices.get_alias(name=alias))


def swap_alias(client, alias: str, name: str, lexicon: str | None = None) -> list[str]:
    """Point the alias at one index, and its lexicon's alias at the lexicon given, in one request (readers see
    the old pair or the new one); return the indexes the alias named before."""
    old = aliased(client, alias)
    actions = [{"remove": {"index": index, "alias": alias}} for index in old]
    actions.append({"add": {"index": name, "alias": alias}})
    if lexicon is not None:
        actions += [{"remove": {"index": index, "alias": lexicon_alias(alias)}}
                    for index in aliased(client, lexicon_alias(alias))]
        actions.append({"add": {"index": lexicon, "alias": lexicon_alias(alias)}})
    client.indices.update_aliases(body={"actions": actions})
    return old


def prune_indexes(client, alias: str, keep: list[str]) -> list[str]:
    """Delete this alias's older stamped indexes but those kept (the live one and the one before)."""
    found = client.indices.get(index=f"{alias}-*", expand_wildcards="open,closed")
    stamped = re.compile(re.escape(alias) + r"-\d{20}")  # not another alias's indexes (newsearch-test-…)
    gone = [name for name in sorted(found) if stamped.fullmatch(name) and name not in keep]
    for name in gone:
        client.indices.delete(index=f"{name},{name}{SUFFIX}", ignore_unavailable=True)  # with its lexicon
    return gone


def publish_build(build: Path, url: str, alias: str = DEFAULT_ALIAS, shards: int = 2,
                  progress: bool = False, fail_after: int | None = None) -> dict:
    """Load a build's documents into a new stamped index, its lexicon into one beside it
    (indexer/opensearch_lexicon.py), and move both aliases to them.

    A failure before the swap deletes both new indexes; the aliases stay where
    they were. fail_after stops loading after that many documents (how tests make a
    rebuild fail half-way).

    :raises ClusterError: when the cluster cannot be reached or refuses a document.
    """
    from opensearchpy.exceptions import OpenSearchException

    started = time.perf_counter()
    client = connect(url)
    name = new_index_name(alias)
    count, documents = build_documents(build)
    if fail_after is not None:
        documents = _failing(documents, fail_after)
    try:
        client.indices.create(index=name, body=index_body(shards, {"build": read_meta(build)}))
        client.indices.create(index=name + SUFFIX, body=lexicon_body())
        sent = load_documents(client, name, documents, count, progress)
        words, entries = build_entries(build)
        load_documents(client, name + SUFFIX, entries, words, False)
        for index, wanted in ((name, count), (name + SUFFIX, words)):
            client.indices.put_settings(index=index, body={"index": {"refresh_interval": "1s"}})
            client.indices.refresh(index=index)
            if (held := client.count(index=index)["count"]) != wanted:
                raise ClusterError(f"the new index {index} holds {held} documents, {wanted} were sent")
        old = swap_alias(client, alias, name, name + SUFFIX)
    except (OpenSearchException, ClusterError, RuntimeError) as exc:
        _drop(client, f"{name},{name}{SUFFIX}")
        raise ClusterError(f"loading {url} failed ({_why(exc)}); the alias {alias} is unchanged") from exc
    prune_indexes(client, alias, [name, *old[-1:]])
    elapsed = time.perf_counter() - started
    return {"url": url, "alias": alias, "opensearch_index": name, "sent": sent, "replaced": old,
            "load_s": round(elapsed, 2), "load_docs_per_s": round(sent / elapsed, 1) if elapsed else 0.0}


def _why(exc: Exception) -> str:
    """Return what went wrong, in a few words: the cluster unreachable, or its own error."""
    from opensearchpy.exceptions import ConnectionError as Unreachable

    if isinstance(exc, Unreachable):
        return "the cluster cannot be reached"
    return str(exc)[:300]


def _failing(documents: Iterator[dict], after: int) -> Iterator[dict]:
    for n, doc in enumerate(documents):
        if n == after:
            raise RuntimeError(f"stopped after {after} documents")
        yield doc


def _drop(client, name: str) -> None:
    """Delete a half-loaded index; a cluster gone meanwhile leaves it for the next prune."""
    from opensearchpy.exceptions import OpenSearchException

    try:
        client.indices.delete(index=name, ignore_unavailable=True)
    except OpenSearchException:
        pass


def publish_live(index_dir: str | Path, url: str, **kwargs) -> dict:
    """Publish the live build of an index path to the cluster (see publish_build)."""
    build = live_build(Path(index_dir))
    if build is None:
        raise ClusterError(f"no index at {index_dir} to load into the cluster")
    return publish_build(build, url, **kwargs)


def cluster_stats(url: str, alias: str = DEFAULT_ALIAS) -> dict:
    """Return what the alias's index holds: counts by kind, category and source, dates, stories, size."""
    from opensearchpy.exceptions import OpenSearchException

    client = connect(url)
    terms = {name: {"terms": {"field": name, "size": 10_000}} for name in ("kind", "category", "source")}
    body = {"size": 0, "track_total_hits": True, "aggs": {
        **terms, "dated": {"filter": {"range": {"published": {"gt": 0}}}, "aggs": {
            "first": {"min": {"field": "published"}}, "last": {"max": {"field": "published"}}}},
        "copies": {"filter": {"range": {"story_size": {"gt": 1}}}, "aggs": {
            "stories": {"cardinality": {"field": "story", "precision_threshold": 40_000}}}},
        "stories": {"cardinality": {"field": "story", "precision_threshold": 40_000}}}}
    try:
        found = client.search(index=alias, body=body)
        name = sorted(client.indices.get_alias(name=alias))[-1]
        meta = client.indices.get_mapping(index=name)[name]["mappings"].get("_meta", {}).get("build", {})
        size = client.indices.stats(index=name, metric="store")["_all"]["primaries"]["store"]["size_in_bytes"]
    except OpenSearchException as exc:
        raise ClusterError(f"cannot read {alias} at {url} ({_why(exc)})") from exc
    aggs = found["aggregations"]
    counted = {k: {b["key"]: b["doc_count"] for b in aggs[k]["buckets"]} for k in terms}
    dated = aggs["dated"]
    return {
        "index": f"{url} {alias}", "build": name, "documents": found["hits"]["total"]["value"],
        "kinds": counted["kind"], "categories": counted["category"], "sources": counted["source"],
        "first": _iso(dated["first"]["value"]), "last": _iso(dated["last"]["value"]),
        "stories": {"stories": aggs["stories"]["value"], "with_copies": aggs["copies"]["stories"]["value"],
                    "documents_in_them": aggs["copies"]["doc_count"]},
        "size_bytes": size, "analyzer_version": meta.get("analyzer_version"), "dict_hash": meta.get("dict_hash"),
        "built_at": meta.get("built_at"), "build_seconds": meta.get("build_seconds"),
    }


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if epoch else None
