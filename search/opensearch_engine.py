"""Answer requests from an OpenSearch cluster, in the embedded engine's answer shape.

``OpenSearchEngine`` has Engine's public methods (search, article, exists,
complete, stats, current, preload, close) and answers with the same plain
data, so web/ and the CLI do not know which backend answers. The query is
translated by search/opensearch_query.py; hits come with their stored title
and body, and our highlighter (search/highlight.py) marks them, as for the
embedded index. The alias names the live index: a rebuild moves it, and the
next request reads the new index.

Every call to the cluster is held to the request's deadline
(search/opensearch_calls.py): the search itself to SEARCH_SECONDS, with
OpenSearch's own ``timeout`` a little under it (an answer its shards cut is
flagged "time" in ``work``), the paths beside it (related searches,
did-you-mean, an article's copies and similar articles, completion's titles)
to what is left, each cut one named in ``work.capped`` as the embedded engine
names its own. A cluster that cannot be reached or does not answer in time,
or an alias with no index behind it, raises IndexMissingError (the site
answers 503, the CLI one line).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from indexer import analysis, related_words
from indexer.analysis import normalize
from indexer.opensearch_index import DEFAULT_ALIAS, connect, search_fields
from indexer.schema import BODY, PUBLISHED, TITLE
from search import opensearch_spelling, related, spelling
from search.answer import article_data, hit_data, iso_time, needles_of, selection_of
from search.budget import OutOfTime, Work
from search.engine import stale_warnings
from search.opensearch_calls import (REQUEST_SECONDS, SEARCH_SECONDS, SHARD_SECONDS, ClusterCaller, ClusterTimeoutError,
                                     ClusterUnavailableError, Deadline)
from search.opensearch_query import aggregations, answer_facets, both, ranked, runs_query, selection_filters, text_query
from search.query import parse_query
from search.ranking import RECENCY_HALF_LIFE_DAYS, RECENCY_WEIGHT
from search.request import SearchRequest, now_epoch

__all__ = ["ClusterBuild", "ClusterUnavailableError", "OpenSearchEngine"]

STORY_LIST = 1_000  # copies a story=ID answer lists at most, first published first (as the embedded engine)
ARTICLE_COPIES = 50  # other copies an article page lists
SIMILAR = 5  # similar articles of other stories on an article page
META_SECONDS = 10.0  # how long the live index's meta is trusted before it is read again (a rebuild moves the alias)
SHARDS_LATE = "查询用时过长：集群只返回了限时内找到的结果，结果可能不全"


@dataclass
class ClusterBuild:
    """What the live index behind the alias says of itself (as _Build for the embedded index)."""

    name: str
    meta: dict


class OpenSearchEngine:
    """Answer searches from the index an alias names in an OpenSearch cluster."""

    def __init__(self, url: str, alias: str = DEFAULT_ALIAS, recency_weight: float = RECENCY_WEIGHT,
                 half_life_days: float = RECENCY_HALF_LIFE_DAYS, clock=time.perf_counter,
                 seconds: float = REQUEST_SECONDS) -> None:
        self.url = url
        self.alias = alias
        self.recency_weight = recency_weight
        self.half_life_days = half_life_days
        self.clock = clock
        self.seconds = seconds  # one request's deadline, every call to the cluster included
        self.shares = (SEARCH_SECONDS * seconds / REQUEST_SECONDS, SHARD_SECONDS * seconds / REQUEST_SECONDS)
        self.client = connect(url, timeout=seconds, retries=0)  # retried within the deadline by the caller
        self.caller = ClusterCaller(self.client, url, alias)
        self._meta: tuple[float, list[str]] | None = None  # (read at, the live index's warnings)

    def _deadline(self) -> Deadline:
        return Deadline(self.clock, self.seconds)

    def _call(self, deadline: Deadline, method, within: float | None = None, **kwargs):
        """Call the client within the request's deadline (search/opensearch_calls.py)."""
        return self.caller.call(deadline, method, within, **kwargs)

    def _search(self, deadline: Deadline, body: dict, within: float | None = None) -> dict:
        return self._call(deadline, self.client.search, within, index=self.alias, body=body)

    def current(self, deadline: Deadline | None = None) -> ClusterBuild:
        """Return the index the alias names now and its build's meta."""
        found = self._call(deadline or self._deadline(), self.client.indices.get_mapping, index=self.alias)
        name = sorted(found)[-1]
        meta = found[name]["mappings"].get("_meta", {}).get("build", {})
        return ClusterBuild(name, meta)

    def _build_warnings(self, deadline: Deadline) -> list[str]:
        """Return the live index's warnings (built by another analyzer or dictionary), read every META_SECONDS."""
        if self._meta is None or self.clock() - self._meta[0] > META_SECONDS:
            self._meta = (self.clock(), stale_warnings(self.current(deadline).meta, analysis.get_segmenter()))
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
        deadline = self._deadline()
        now = now_epoch() if now is None else now
        parsed = parse_query(request.q)
        warnings = [*self._build_warnings(deadline), *parsed.warnings]
        query, request = self._query(request, parsed, warnings, now)
        sel = selection_of(request, now)
        body = _search_body(request, query, selection_filters(sel), now, self.shares[1])
        found = self._search(deadline, body, self.shares[0])
        work = Work(passes=1)
        if found.get("timed_out"):
            work.cap("time")
            warnings.append(SHARDS_LATE)
        counts, timeline, stories = answer_facets(found["aggregations"], sel, now)
        total = int(found["hits"]["total"]["value"])
        if request.story is not None:
            total = min(total, STORY_LIST)
            if not total:
                warnings.append("没有这个新闻（可能已被删除或索引已重建）")
        needles = needles_of(parsed)
        answer = {
            "total": total,
            "stories": stories if request.collapse else total,
            "collapsed": request.collapse,
            "page": request.page,
            "size": request.size,
            "took_ms": 0.0,
            "warnings": warnings,
            "suggestion": self._suggestion(deadline, work, request, parsed, query, found),
            "hits": [_hit(h, needles) for h in found["hits"]["hits"]],
            "facets": counts,
            "timeline": timeline,
            "related": [] if request.story is not None or total < related.MIN_HITS else
            self._related(deadline, work, query, body["post_filter"], request.q, parsed),
        }
        answer["work"] = work.as_dict()  # after the paths beside the search: their cuts are in it
        answer["took_ms"] = round((self.clock() - deadline.started) * 1000, 2)
        return answer

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

    def _suggestion(self, deadline: Deadline, work: Work, request: SearchRequest, parsed, query: dict,
                    found: dict) -> str | None:
        """Return did-you-mean (search/opensearch_spelling.py) for a query finding few articles, in the time left."""
        matched = int(found["aggregations"]["matched"]["doc_count"])
        if request.story is not None or "match_none" in query or found.get("timed_out") or \
                matched >= spelling.FEW_HITS:
            return None
        matcher = opensearch_spelling.ClusterMatcher(self.caller, deadline)
        try:
            return opensearch_spelling.suggest(matcher, parsed, matched)
        except OutOfTime:
            work.cap("repairs")
            return None
        finally:
            for kind in matcher.work.capped:
                work.cap(kind)

    def _related(self, deadline: Deadline, work: Work, query: dict, post_filter: dict, q: str, parsed) -> list[dict]:
        """Return the related searches (search/related.py) read from the best matches, one per story; none when
        the time is up ("related")."""
        body = {"query": {"bool": {"must": [query], "filter": [post_filter]}}, "size": related.SAMPLE,
                "sort": _sort("relevance", True), "collapse": {"field": "story"}, "_source": [TITLE, BODY]}
        try:
            hits = self._search(deadline, body)["hits"]["hits"]
            samples = [related_words.words_of(h["_source"].get(TITLE) or "", h["_source"].get(BODY) or "") for h in hits]
            return related.related_from_sample(samples, q, parsed, lambda words: self._document_frequencies(deadline, words))
        except ClusterTimeoutError:
            work.cap("related")
            return []

    def _document_frequencies(self, deadline: Deadline, words: list[str]) -> tuple[list[int], int]:
        """Return each word's document frequency (the larger of title's and body's) and the index's size: one request."""
        if not words:
            return [], 1
        filters = {}
        for i, word in enumerate(words):
            filters[f"t{i}"] = {"term": {f"{TITLE}_words": word}}
            filters[f"b{i}"] = {"term": {f"{BODY}_words": word}}
        body = {"size": 0, "track_total_hits": True, "aggs": {"df": {"filters": {"filters": filters}}}}
        found = self._search(deadline, body)
        buckets = found["aggregations"]["df"]["buckets"]
        counts = [max(buckets[f"t{i}"]["doc_count"], buckets[f"b{i}"]["doc_count"]) for i in range(len(words))]
        return counts, max(int(found["hits"]["total"]["value"]), 1)

    def exists(self, doc_id: str) -> bool:
        """Tell whether the live index holds a document with that id."""
        return bool(self._call(self._deadline(), self.client.exists, index=self.alias, id=doc_id))

    def _stored(self, deadline: Deadline, doc_id: str) -> dict | None:
        from opensearchpy.exceptions import NotFoundError

        try:
            return self._call(deadline, self.client.get, index=self.alias, id=doc_id)["_source"]
        except NotFoundError:
            return None

    def article(self, doc_id: str, q: str = "", around: bool = True) -> dict | None:
        """Return one document with its body, its query matches marked, or None (see Engine.article).

        Its story's copies and similar articles come in the time the request has left ("story", "similar").
        """
        deadline, work = self._deadline(), Work(passes=1)
        stored = self._stored(deadline, doc_id)
        if stored is None:
            return None
        story = _story(stored)
        copies, alike = [], []
        if around and story is not None and story["size"] > 1:
            copies = self._around(deadline, work, "story", _copies_body(stored))
        if around:
            alike = self._around(deadline, work, "similar", _similar_body(stored))
        needles = needles_of(parse_query(q)) if q else []
        return article_data(stored, needles, story, copies, alike, work.as_dict())

    def _around(self, deadline: Deadline, work: Work, kind: str, body: dict) -> list[dict]:
        """Return the stored documents a search beside the article finds; none when the time is up (kind capped)."""
        try:
            return [h["_source"] for h in self._search(deadline, body)["hits"]["hits"]]
        except ClusterTimeoutError:
            work.cap(kind)
            return []

    def complete(self, prefix: str, limit: int = 8) -> dict:
        """Return completions for what a user has typed so far: the lexicon's words (search/spelling.py's
        ranking over the cluster's lexicon), then the newest titles holding it; a cut is "completion"."""
        folded = normalize(prefix.strip())
        matcher = opensearch_spelling.ClusterMatcher(self.caller, self._deadline())
        if not folded:
            return {"suggestions": [], "work": matcher.work.as_dict()}
        out: list[str] = []
        try:
            out = opensearch_spelling.complete_words(matcher, folded, limit)[:spelling.word_share(folded, limit)]
            if len(out) < limit:
                out += [t for t in self._titles(matcher, folded, limit) if t not in out]
        except OutOfTime:
            matcher.work.cap("completion")
        return {"suggestions": out[:limit], "work": matcher.work.as_dict()}

    def _titles(self, matcher, folded: str, limit: int) -> list[str]:
        """Return the newest titles holding the text's characters (as search/spelling.py's complete reads them)."""
        query = runs_query(TITLE, folded)
        if query is None:
            return []
        body = {"query": query, "sort": _sort("newest"), "size": limit * 2, "_source": [TITLE]}
        hits = matcher.call(self.client.search, index=self.alias, body=body)["hits"]["hits"]
        return list(dict.fromkeys(t for t in (h["_source"].get(TITLE, "") for h in hits) if t))

    def stats(self) -> dict:
        """Return what the live index holds."""
        deadline = self._deadline()
        build = self.current(deadline)
        body = {"size": 0, "track_total_hits": True, "query": {"range": {PUBLISHED: {"gt": 0}}},
                "aggs": {"first": {"min": {"field": PUBLISHED}}, "last": {"max": {"field": PUBLISHED}}}}
        found = self._search(deadline, body)["aggregations"]
        documents = self._call(deadline, self.client.count, index=self.alias)["count"]
        return {
            "build": f"{self.url} {self.alias} -> {build.name}",
            "documents": int(documents),
            "first": iso_time(int(found["first"]["value"])) if found["first"]["value"] is not None else None,
            "last": iso_time(int(found["last"]["value"])) if found["last"]["value"] is not None else None,
            "meta": build.meta,
            "warnings": [],
        }


def _search_body(request: SearchRequest, query: dict, filters: dict, now: int, shard_seconds: float) -> dict:
    """Return the search of a request's page, facets, timeline and stories; OpenSearch stops collecting after
    shard_seconds."""
    body = {"query": query, "post_filter": both(*filters.values()), "aggs": aggregations(filters, now),
            "from": (request.page - 1) * request.size, "size": request.size, "sort": _sort(request.sort, request.collapse),
            "track_total_hits": True, "track_scores": True, "timeout": f"{round(shard_seconds * 1000)}ms"}
    body["aggs"]["matched"] = {"filter": {"match_all": {}}}  # the query's matches before the filters
    if request.collapse:
        body["collapse"] = {"field": "story"}
    return body


def _copies_body(stored: dict) -> dict:
    """Return the search of the other copies of a document's story, first published first."""
    return {"query": {"bool": {"filter": [{"term": {"story": stored["story"]}}],
                               "must_not": [{"ids": {"values": [stored["id"]]}}]}},
            "sort": _sort("oldest"), "size": ARTICLE_COPIES}


def _similar_body(stored: dict) -> dict:
    """Return the search of articles of other stories sharing a document's distinctive words."""
    words = search_fields(stored)  # its words are not in _source: made again, as the load made them
    like = {"more_like_this": {"fields": ["body_words", "title_words"],
                               "like": [words["title_words"], words["body_words"]],
                               "min_term_freq": 1, "min_doc_freq": 1, "max_query_terms": 25}}
    return {"query": {"bool": {"must": [like], "must_not": [{"term": {"story": stored.get("story") or ""}}]}},
            "size": SIMILAR}


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
