"""Answer requests from an OpenSearch cluster, in the embedded engine's answer shape.

``OpenSearchEngine`` has Engine's public methods (search, article, exists,
complete, stats, current, preload, close) and answers with the same plain
data, so web/ and the CLI do not know which backend answers. The query is
translated by search/opensearch_query.py; hits come with their stored title
and body, and our highlighter (search/highlight.py) marks them, as for the
embedded index. The alias names the live index: a rebuild moves it, and the
next request reads the new index.

A cluster that cannot be reached, or an alias with no index behind it, raises
IndexMissingError (the site answers 503, the CLI one line).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from indexer import analysis
from indexer.opensearch_index import DEFAULT_ALIAS, connect, search_fields
from indexer.schema import BODY, PUBLISHED, TITLE
from search import related
from search.answer import article_data, hit_data, iso_time, needles_of, selection_of
from search.engine import IndexMissingError, stale_warnings
from search.opensearch_query import aggregations, answer_facets, both, one_piece, ranked, selection_filters, text_query
from search.query import parse_query
from search.ranking import RECENCY_HALF_LIFE_DAYS, RECENCY_WEIGHT
from search.request import SearchRequest, now_epoch

STORY_LIST = 1_000  # copies a story=ID answer lists at most, first published first (as the embedded engine)
ARTICLE_COPIES = 50  # other copies an article page lists
SIMILAR = 5  # similar articles of other stories on an article page
META_SECONDS = 10.0  # how long the live index's meta is trusted before it is read again (a rebuild moves the alias)
NO_WORK = {"postings": 0, "positions": 0, "stored": 0, "sampled": 0, "capped": [], "searched": 1.0, "passes": 1}


class ClusterUnavailableError(IndexMissingError):
    """The cluster cannot be reached or answered with an error."""


@dataclass
class ClusterBuild:
    """What the live index behind the alias says of itself (as _Build for the embedded index)."""

    name: str
    meta: dict


class OpenSearchEngine:
    """Answer searches from the index an alias names in an OpenSearch cluster."""

    def __init__(self, url: str, alias: str = DEFAULT_ALIAS, recency_weight: float = RECENCY_WEIGHT,
                 half_life_days: float = RECENCY_HALF_LIFE_DAYS, clock=time.perf_counter) -> None:
        self.url = url
        self.alias = alias
        self.recency_weight = recency_weight
        self.half_life_days = half_life_days
        self.clock = clock
        self.client = connect(url, timeout=10.0)
        self._meta: tuple[float, list[str]] | None = None  # (read at, the live index's warnings)

    def _call(self, method, **kwargs):
        """Call the client; a cluster down or an index missing becomes IndexMissingError."""
        from opensearchpy.exceptions import ConnectionError as Unreachable, NotFoundError, TransportError

        try:
            return method(**kwargs)
        except NotFoundError as exc:
            if _missing_index(exc):
                raise IndexMissingError(f"no index {self.alias} in the OpenSearch cluster at {self.url}") from None
            raise
        except Unreachable:
            raise ClusterUnavailableError(f"cannot reach the OpenSearch cluster at {self.url}") from None
        except TransportError as exc:
            if isinstance(exc.status_code, int) and exc.status_code >= 500 or exc.status_code == "N/A":
                raise ClusterUnavailableError(f"the OpenSearch cluster at {self.url} failed: {exc.error}") from None
            raise

    def current(self) -> ClusterBuild:
        """Return the index the alias names now and its build's meta."""
        found = self._call(self.client.indices.get_mapping, index=self.alias)
        name = sorted(found)[-1]
        meta = found[name]["mappings"].get("_meta", {}).get("build", {})
        return ClusterBuild(name, meta)

    def _build_warnings(self) -> list[str]:
        """Return the live index's warnings (built by another analyzer or dictionary), read every META_SECONDS."""
        if self._meta is None or self.clock() - self._meta[0] > META_SECONDS:
            self._meta = (self.clock(), stale_warnings(self.current().meta, analysis.get_segmenter()))
        return self._meta[1]

    def preload(self) -> None:
        """Load the segmenter and the folding tables now, not at the first request."""
        analysis.get_segmenter()
        analysis.normalize("國")

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def search(self, request: SearchRequest, now: int | None = None) -> dict:
        """Answer one search request as plain data."""
        started = self.clock()
        now = now_epoch() if now is None else now
        parsed = parse_query(request.q)
        warnings = [*self._build_warnings(), *parsed.warnings]
        query, request = self._query(request, parsed, warnings, now)
        sel = selection_of(request, now)
        filters = selection_filters(sel)
        body = {"query": query, "post_filter": both(*filters.values()), "aggs": aggregations(filters, now),
                "from": (request.page - 1) * request.size, "size": request.size, "sort": _sort(request.sort, request.collapse),
                "track_total_hits": True, "track_scores": True}
        if request.collapse:
            body["collapse"] = {"field": "story"}
        found = self._call(self.client.search, index=self.alias, body=body)
        counts, timeline, stories = answer_facets(found["aggregations"], sel, now)
        total = int(found["hits"]["total"]["value"])
        if request.story is not None:
            total = min(total, STORY_LIST)
            if not total:
                warnings.append("没有这个新闻（可能已被删除或索引已重建）")
        needles = needles_of(parsed)
        shown = [_hit(h, needles) for h in found["hits"]["hits"]]
        return {
            "total": total,
            "stories": stories if request.collapse else total,
            "collapsed": request.collapse,
            "page": request.page,
            "size": request.size,
            "took_ms": round((self.clock() - started) * 1000, 2),
            "warnings": warnings,
            "suggestion": None,
            "hits": shown,
            "facets": counts,
            "timeline": timeline,
            "related": [] if request.story is not None or total < related.MIN_HITS else
            self._related(query, body["post_filter"], request.q, parsed),
            "work": dict(NO_WORK),
        }

    def _query(self, request: SearchRequest, parsed, warnings: list[str], now: int) -> tuple[dict, SearchRequest]:
        """Return the request's query (its story's copies, or the text ranked) and the request as answered."""
        if request.story is not None:
            return {"term": {"story": request.story}}, replace(request, sort="oldest", collapse=False)
        query = text_query(parsed)
        if query is None:
            if request.q.strip():
                warnings.append("查询中没有可搜索的文字（只有标点或符号）")
            return {"match_none": {}}, request
        if request.sort == "relevance":
            query = ranked(query, now, self.recency_weight, self.half_life_days)
        return query, request

    def _related(self, query: dict, post_filter: dict, q: str, parsed) -> list[dict]:
        """Return the related searches (search/related.py) read from the best matches, one per story."""
        body = {"query": {"bool": {"must": [query], "filter": [post_filter]}}, "size": related.SAMPLE,
                "sort": _sort("relevance", True), "collapse": {"field": "story"}, "_source": [TITLE, BODY]}
        hits = self._call(self.client.search, index=self.alias, body=body)["hits"]["hits"]
        texts = [related.sample_text(h["_source"].get(TITLE) or "", h["_source"].get(BODY) or "") for h in hits]
        return related.related_from_sample(texts, q, parsed, self._document_frequencies)

    def _document_frequencies(self, words: list[str]) -> tuple[list[int], int]:
        """Return each word's document frequency (the larger of title's and body's) and the index's size: one request."""
        if not words:
            return [], 1
        filters = {}
        for i, word in enumerate(words):
            filters[f"t{i}"] = {"term": {f"{TITLE}_words": word}}
            filters[f"b{i}"] = {"term": {f"{BODY}_words": word}}
        body = {"size": 0, "track_total_hits": True, "aggs": {"df": {"filters": {"filters": filters}}}}
        found = self._call(self.client.search, index=self.alias, body=body)
        buckets = found["aggregations"]["df"]["buckets"]
        counts = [max(buckets[f"t{i}"]["doc_count"], buckets[f"b{i}"]["doc_count"]) for i in range(len(words))]
        return counts, max(int(found["hits"]["total"]["value"]), 1)

    def exists(self, doc_id: str) -> bool:
        """Tell whether the live index holds a document with that id."""
        return bool(self._call(self.client.exists, index=self.alias, id=doc_id))

    def _stored(self, doc_id: str) -> dict | None:
        from opensearchpy.exceptions import NotFoundError

        try:
            return self._call(self.client.get, index=self.alias, id=doc_id)["_source"]
        except NotFoundError:
            return None

    def article(self, doc_id: str, q: str = "", around: bool = True) -> dict | None:
        """Return one document with its body, its query matches marked, or None (see Engine.article)."""
        stored = self._stored(doc_id)
        if stored is None:
            return None
        story = _story(stored)
        copies, alike = [], []
        if around and story is not None and story["size"] > 1:
            copies = self._copies(stored)
        if around:
            alike = self._similar(stored)
        needles = needles_of(parse_query(q)) if q else []
        return article_data(stored, needles, story, copies, alike, dict(NO_WORK))

    def _copies(self, stored: dict) -> list[dict]:
        """Return the other copies of a document's story, first published first."""
        body = {"query": {"bool": {"filter": [{"term": {"story": stored["story"]}}],
                                   "must_not": [{"ids": {"values": [stored["id"]]}}]}},
                "sort": _sort("oldest"), "size": ARTICLE_COPIES}
        return [h["_source"] for h in self._call(self.client.search, index=self.alias, body=body)["hits"]["hits"]]

    def _similar(self, stored: dict) -> list[dict]:
        """Return articles of other stories sharing a document's distinctive words."""
        words = search_fields(stored)  # its words are not in _source: made again, as the load made them
        like = {"more_like_this": {"fields": ["body_words", "title_words"],
                                   "like": [words["title_words"], words["body_words"]],
                                   "min_term_freq": 1, "min_doc_freq": 1, "max_query_terms": 25}}
        body = {"query": {"bool": {"must": [like], "must_not": [{"term": {"story": stored.get("story") or ""}}]}},
                "size": SIMILAR}
        return [h["_source"] for h in self._call(self.client.search, index=self.alias, body=body)["hits"]["hits"]]

    def complete(self, prefix: str, limit: int = 8) -> dict:
        """Return completions for what a user has typed so far: the newest titles holding it."""
        query = one_piece("title", prefix) if prefix.strip() else None
        if query is None:
            return {"suggestions": [], "work": dict(NO_WORK)}
        body = {"query": query, "sort": _sort("newest"), "size": limit * 2, "_source": ["title"]}
        titles = [h["_source"].get("title", "") for h in
                  self._call(self.client.search, index=self.alias, body=body)["hits"]["hits"]]
        out = list(dict.fromkeys(t for t in titles if t))[:limit]
        return {"suggestions": out, "work": dict(NO_WORK)}

    def stats(self) -> dict:
        """Return what the live index holds."""
        build = self.current()
        body = {"size": 0, "track_total_hits": True, "query": {"range": {PUBLISHED: {"gt": 0}}},
                "aggs": {"first": {"min": {"field": PUBLISHED}}, "last": {"max": {"field": PUBLISHED}}}}
        found = self._call(self.client.search, index=self.alias, body=body)["aggregations"]
        documents = self._call(self.client.count, index=self.alias)["count"]
        return {
            "build": f"{self.url} {self.alias} -> {build.name}",
            "documents": int(documents),
            "first": iso_time(int(found["first"]["value"])) if found["first"]["value"] is not None else None,
            "last": iso_time(int(found["last"]["value"])) if found["last"]["value"] is not None else None,
            "meta": build.meta,
            "warnings": [],
        }


def _missing_index(exc) -> bool:
    """Tell whether a 404 is an index (or alias) missing, not a document."""
    info = exc.info if isinstance(exc.info, dict) else {}
    kind = (info.get("error") or {}).get("type") if isinstance(info.get("error"), dict) else exc.error
    return kind in ("index_not_found_exception", "alias_missing_exception") or "no such index" in str(exc)


def _sort(sort: str, collapsing: bool = False) -> list:
    """Return the order of hits: by relevance, or publish time with ties by relevance; then the build's order.

    Collapsed, among equal scores the earliest published copy stands for its story.
    """
    tail = [{"_score": "desc"}, {"seq": "asc"}]
    if sort == "relevance":
        return [{"_score": "desc"}, *([{PUBLISHED: "asc"}] if collapsing else []), {"seq": "asc"}]
    return [{PUBLISHED: "desc" if sort == "newest" else "asc"}, *tail]


def _story(stored: dict) -> dict | None:
    return {"id": stored["story"], "size": int(stored.get("story_size") or 1)} if stored.get("story") else None


def _hit(hit: dict, needles: list[str]) -> dict:
    """Return one hit's plain data from the cluster's answer."""
    score = hit.get("_score")
    return {**hit_data(hit["_source"], needles, round(float(score), 4) if score is not None else 0.0),
            "story": _story(hit["_source"])}
