"""Open the live index build and answer requests as plain data.

``Engine`` follows the index path's link to the live build on every call and
reopens when a rebuild has swapped in a new one, so a long-running process
serves the new index without a restart. One thread opens the new build,
outside the engine's lock; the others are answered from the build before
meanwhile. A Whoosh searcher reads its files through one file position, so a
request borrows one for its answer and gives it back: a process holds as many
searchers as it ever answered requests at once, whatever number of threads it
has run, and a swapped-out build's searchers are closed as soon as no request
holds them. An engine holds the build it has open against pruning
(indexer/store.py hold_build) until it is swapped out and no request uses it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from indexer import analysis
from indexer.schema import ID_FIELD, LENGTH_OF
from indexer.columns import load_columns
from indexer.lexicon import Lexicon, open_lexicon
from indexer.opening import open_index
from indexer.perdoc import hold_keys
from indexer.store import USERDICT_FILE, DamagedFileError, hold_build, live_build, read_meta
from search import facets, ranking, related, spelling
from search.answer import article_data, hit_data, iso_time, needles_of, selection_of, story_id
from search.around import StoryIndex, copies_of, more_like_this, story_members
from search.budget import MATCH_SECONDS, MAX_POSTINGS, Windows
from search.match import Matcher
from search.postings import PostingCache
from search.query import parse_query
from search.ranking import RECENCY_HALF_LIFE_DAYS, RECENCY_WEIGHT
from search.request import SearchRequest, now_epoch
from search.sets import Hits, firsts, member

STORY_CAPPED = "这条新闻的副本过多：只列出了最早发布的 {cap} 篇"


class IndexMissingError(RuntimeError):
    """There is no index at the path (or none this code can read)."""


class IndexUnreadableError(IndexMissingError):
    """The index at the path was written by code this version cannot read: rebuild it."""


@dataclass
class _Build:
    """One opened index build and what was derived from it at open."""

    path: Path
    ix: object
    columns: facets.Columns
    lengths: dict
    headlines: np.ndarray
    meta: dict
    warnings: list[str]
    cache: PostingCache = field(default_factory=PostingCache)
    windows: Windows | None = None
    stories: StoryIndex | None = None  # the documents of each story (builds with stories)
    lexicon: Lexicon | None = None  # words, pinyin and initials for completion and did-you-mean
    keys: list = field(default_factory=list)  # the segments' keys values stored fields are composed of (held)
    idle: list = field(default_factory=list)  # searchers of this build no request holds
    lent: int = 0  # searchers of this build requests hold
    release: Callable[[], object] = lambda: None  # lets go of the hold against pruning (called once at most)


class Engine:
    """Answer searches over the live build of an index path."""

    def __init__(self, index_dir: str | os.PathLike, recency_weight: float = RECENCY_WEIGHT,
                 half_life_days: float = RECENCY_HALF_LIFE_DAYS, max_postings: int = MAX_POSTINGS,
                 clock=time.perf_counter, opener: Callable[[Path], _Build] | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.opener = opener or _open_build  # opens one build folder (tests wrap it to hold an open)
        self.max_postings = max_postings  # postings one pass of matching may use (search/budget.py)
        self.clock = clock  # seconds, for a request's deadline and its took_ms
        self.recency_weight = recency_weight
        self.half_life_days = half_life_days
        self._build: _Build | None = None
        self._lock = threading.Lock()  # held only for moments: to lend, take back and publish
        self._opening = threading.Lock()  # held by the one thread opening a new build
        self._open: list = []  # every searcher opened and not closed yet, idle or lent
        # A finalizer, not __del__: it holds the searchers itself, so when a
        # collected app takes the engine with it, the files are closed before
        # the garbage collector would finalize them unclosed.
        self._finalizer = weakref.finalize(self, _close_all, self._open, self._lock)

    # ---- opening --------------------------------------------------------

    def current(self) -> _Build:
        """Return the live build, opening it when it is new.

        While one thread opens a new build the others get the build before it,
        and wait only when there is none yet.
        """
        for _ in range(3):  # a build pruned between reading the link and holding it: read the link again
            path = live_build(self.index_dir)
            if path is None:
                raise IndexMissingError(f"no index at {self.index_dir}")
            build = self._build
            if build is not None and build.path == path:
                return build
            if not self._opening.acquire(blocking=build is None):
                return build
            try:
                build = self._build
                if build is None or build.path != path:  # not opened by another thread meanwhile
                    build = self._publish(path)
            finally:
                self._opening.release()
            if build is not None:
                return build
        raise IndexMissingError(f"no index at {self.index_dir} (its builds were removed while opening)")

    def _publish(self, path: Path) -> _Build | None:
        """Open a build, held against pruning, and make it the live one; None when it was removed first."""
        hold = hold_build(path)
        if hold is None:
            return None
        try:
            opened = self.opener(path)
            # One searcher ready before the build goes live: opening one reads every segment's tables
            # (0.1 s at a million items), which the first request would otherwise wait for.
            opened.idle.append(opened.ix.searcher())
        except Exception as exc:
            os.close(hold)
            why = f": {exc}" if isinstance(exc, DamagedFileError) else f" ({type(exc).__name__})"
            raise IndexUnreadableError(f"cannot read the index at {self.index_dir}{why}; it needs a rebuild") from exc
        opened.release = weakref.finalize(opened, os.close, hold)
        cols = opened.columns
        if cols.story is not None:
            opened.stories = StoryIndex(cols.story, len(cols.story_keys))
        with self._lock:
            self._open.extend(opened.idle)
            old, self._build = self._build, opened
            if old is not None:
                self._retire(old)
        return opened

    def _retire(self, build: _Build) -> None:
        """Close a replaced build's idle searchers (call under the lock); borrowed ones close on return."""
        for searcher in build.idle:
            self._open.remove(searcher)
            searcher.close()
        build.idle.clear()
        if not build.lent:
            build.release()

    @contextmanager
    def borrowed(self, build: _Build):
        """Lend one searcher of a build for one answer; it goes back to the build's idle list after.

        A new searcher opens its files outside the lock: other requests go on meanwhile.
        """
        with self._lock:
            searcher = build.idle.pop() if build.idle else None
            build.lent += 1
        try:
            if searcher is None:
                searcher = build.ix.searcher()
                with self._lock:
                    self._open.append(searcher)
            yield searcher
        finally:
            with self._lock:
                build.lent -= 1
                mine = searcher is not None and searcher in self._open  # not when the engine was closed meanwhile
                keep = mine and self._build is build
                if keep:
                    build.idle.append(searcher)
                elif mine:
                    self._open.remove(searcher)
                done = self._build is not build and not build.lent
            if mine and not keep:
                searcher.close()
            if done:
                build.release()

    def preload(self) -> None:
        """Load the live build's segmenter and the folding tables now, not at the first request.

        A server that forks its workers after loading the app (gunicorn
        --preload) then shares them; the index files are opened by each worker.
        """
        path = live_build(self.index_dir)
        userdict = path / USERDICT_FILE if path is not None else None
        try:
            analysis.load_segmenter(str(userdict) if userdict is not None and userdict.is_file() else None)
        except RuntimeError:  # another user dictionary is loaded: the open says so in its warnings
            pass
        analysis.normalize("國")  # traditional -> simplified loads OpenCC's table

    def open_searchers(self) -> int:
        """Return how many searchers this engine holds open (idle or lent)."""
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        """Close every searcher this engine opened and unmap its build's arrays (its files stay open until then)."""
        _close_all(self._open, self._lock)
        with self._lock:
            build, self._build = self._build, None
        if build is not None:
            build.idle.clear()
            build.release()
            if build.cache.arrays is not None:
                build.cache.arrays.close()
            build.lexicon = None  # its maps go with the last array over them

    # ---- answers --------------------------------------------------------

    def search(self, request: SearchRequest, now: int | None = None) -> dict:
        """Answer one search request as plain data."""
        started = self.clock()
        now = now_epoch() if now is None else now
        build = self.current()
        with self.borrowed(build) as searcher:  # the deadline counts from here: opening a new build is not matching
            return self._answer(build, self._matcher(build, searcher), request, now, started)

    def _matcher(self, build: _Build, searcher) -> Matcher:
        """Return a matcher for one request, its deadline counting from now."""
        return Matcher(searcher, build.cache, build.lengths, build.columns.published, build.windows,
                       self.max_postings, self.clock() + MATCH_SECONDS, self.clock)

    def _answer(self, build: _Build, matcher: Matcher, request: SearchRequest, now: int, started: float) -> dict:
        parsed = parse_query(request.q)
        warnings = [*build.warnings, *parsed.warnings]
        if request.story is not None:
            docs = story_members(build, int(request.story, 16), matcher.work)
            hits = Hits(docs, np.zeros(len(docs)))
            searchable = True
            if not len(hits.docs):
                warnings.append("没有这个新闻（可能已被删除或索引已重建）")
            if "story" in matcher.work.capped:
                warnings.append(STORY_CAPPED.format(cap=len(docs)))  # as many as the cap
            request = replace(request, sort="oldest", collapse=False)
        else:
            hits = matcher.query(parsed)
            warnings += matcher.work.warnings()
            searchable = hits is not None
            if not searchable:
                if request.q.strip():
                    warnings.append("查询中没有可搜索的文字（只有标点或符号）")
                hits = Hits.none()
        docs, kept, counts, timeline = facets.apply(build.columns, hits.docs, selection_of(request, now), now)
        if counts.pop(facets.SAMPLED) and "entities" not in matcher.work.capped:
            matcher.work.capped.append("entities")
        scores = hits.scores if kept is None else hits.scores[kept]
        collapsing = request.collapse and build.columns.story is not None
        page, stories = self._page(build, matcher, parsed, request, docs, scores, now, collapsing)
        needles = needles_of(parsed)
        stored = matcher.searcher.stored_fields
        answer = {
            "total": int(len(docs)),
            "stories": stories,
            "collapsed": collapsing,
            "page": request.page,
            "size": request.size,
            "took_ms": 0.0,
            "warnings": warnings,
            "suggestion": None,
            "hits": [{**hit_data(stored(int(d)), needles, score), "story": self._story_of(build, int(d))}
                     for d, score in page],
            "facets": counts,
            "timeline": timeline,
            "related": [] if request.story is not None else
            related.related_searches(matcher, build.columns.words, build.columns.story, request.q, parsed, docs, scores),
        }
        # Spelling repairs are tried only in the time the matching left (a late try ends them).
        few = searchable and len(hits.docs) < spelling.FEW_HITS and matcher.work.searched == 1.0
        if few and request.story is None:
            answer["suggestion"] = spelling.suggest(matcher, parsed, len(hits.docs), build.lexicon)
        answer["work"] = matcher.work.as_dict()
        answer["took_ms"] = round((self.clock() - started) * 1000, 2)
        return answer

    def _story_of(self, build: _Build, doc: int) -> dict | None:
        cols = build.columns
        if cols.story is None:
            return None
        code = int(cols.story[doc])
        return {"id": story_id(int(cols.story_keys[code])), "size": int(cols.story_size[code])}

    def _page(self, build, matcher, parsed, request, docs, scores, now,
              collapsing: bool) -> tuple[list[tuple[int, float]], int]:
        """Return the page's (document, score) pairs and, when collapsing, how many stories the hits hold.

        Collapsed, a story shows once: its first copy in the requested order
        (in relevance order the best-scoring one, the earliest published among
        equal scores). The order is worked out over a window of the best hits,
        grown until it holds enough stories for the page.
        """
        first = (request.page - 1) * request.size
        wanted = first + request.size
        story = build.columns.story
        stories = int(_distinct_count(story[docs], len(build.columns.story_keys))) if collapsing else int(len(docs))
        if first >= (stories if collapsing else len(docs)):
            return [], stories
        published = build.columns.published[docs]
        if request.sort == "relevance":
            scores = scores * ranking.recency(published, now, self.recency_weight, self.half_life_days)
            scores[member(docs, build.headlines)] *= ranking.HEADLINE_WEIGHT
        size = max(wanted, ranking.RERANK_WINDOW) if request.sort == "relevance" else wanted
        boosted = False
        while True:
            window = ranking.order(docs, scores, published, request.sort, size)
            if request.sort == "relevance":
                if not boosted:
                    top = window[: ranking.RERANK_WINDOW]
                    scores[top] += ranking.proximity(matcher, parsed, docs[top])
                    boosted = True
                tie = published[window] if collapsing else np.zeros(len(window))
                window = window[np.lexsort((docs[window], tie, -scores[window]))]
            if not collapsing:
                chosen = window
                break
            codes = story[docs[window]]
            chosen = window[np.sort(firsts(codes))]
            if len(chosen) >= wanted or size >= len(docs):
                break
            size *= 4
        return [(int(docs[i]), round(float(scores[i]), 4)) for i in chosen[first:wanted]], stories

    def exists(self, doc_id: str) -> bool:
        """Tell whether the live build holds a document with that id."""
        build = self.current()
        with self.borrowed(build) as searcher:
            return searcher.document_number(**{ID_FIELD: doc_id}) is not None

    def article(self, doc_id: str, q: str = "", around: bool = True) -> dict | None:
        """Return one document with its body, its query matches marked, or None.

        around: also the other copies of its story and similar articles of
        other stories, each path capped and under the request's deadline (work says which cut it).
        """
        build = self.current()
        with self.borrowed(build) as searcher:
            docnum = searcher.document_number(**{ID_FIELD: doc_id})
            if docnum is None:
                return None
            matcher = self._matcher(build, searcher)
            stored = searcher.stored_fields(docnum)
            story = self._story_of(build, docnum)
            copies, alike = [], []
            if around and story is not None and story["size"] > 1:
                copies = copies_of(matcher, build, docnum, int(story["id"], 16))
            if around:
                alike = more_like_this(matcher, build, docnum, stored)
        needles = needles_of(parse_query(q)) if q else []
        return article_data(stored, needles, story, copies, alike, matcher.work.as_dict())

    def complete(self, prefix: str, limit: int = 8) -> dict:
        """Return completions for what a user has typed so far (frequent words, then titles) and the work read."""
        build = self.current()  # one build for the words and the dates, even while a swap happens
        with self.borrowed(build) as searcher:
            matcher = self._matcher(build, searcher)
            found = spelling.complete(matcher, build.columns.published, prefix, limit, build.windows, build.lexicon)
        return {"suggestions": found, "work": matcher.work.as_dict()}

    def stats(self) -> dict:
        """Return what the live build holds."""
        build = self.current()
        cols = build.columns
        live = np.ones(len(cols.published), dtype=bool)
        if build.cache.deleted is not None:
            live[build.cache.deleted] = False
        known = cols.published[live & (cols.published > 0)]
        return {
            "build": str(build.path),
            "documents": int(live.sum()),
            "first": iso_time(int(known.min())) if len(known) else None,
            "last": iso_time(int(known.max())) if len(known) else None,
            "meta": build.meta,
            "warnings": build.warnings,
        }


def _close_all(searchers: list, lock: threading.Lock) -> None:
    with lock:
        held = list(searchers)
        searchers.clear()
    for searcher in held:
        searcher.close()


def stale_warnings(meta: dict, segmenter) -> list[str]:
    """Return the warning an index built by another analyzer version or dictionary gets (none when it matches)."""
    if meta.get("analyzer_version") != analysis.ANALYZER_VERSION or meta.get("dict_hash") != segmenter.dict_hash:
        return ["索引由另一版本的分析器或词典构建，需要重建（newsearch rebuild）"]
    return []


def _open_build(path: Path) -> _Build:
    meta = read_meta(path)
    warnings = []
    userdict = path / USERDICT_FILE
    try:
        segmenter = analysis.load_segmenter(str(userdict) if userdict.is_file() else None)
    except RuntimeError:
        segmenter = analysis.get_segmenter()
        warnings.append("索引使用的用户词典与本进程已加载的不同，查询切分可能不一致")
    warnings += stale_warnings(meta, segmenter)
    ix, postings = open_index(path)
    if postings is not None:
        postings.warm()
    with ix.reader() as reader:
        arrays = load_columns(path, reader)
        held = hold_keys(path, [leaf.segment() for leaf, _ in reader.leaf_readers()])
    lengths = {f: arrays[c].astype(np.float32) for f, c in LENGTH_OF.items()}
    deleted = arrays["deleted"] if len(arrays["deleted"]) else None
    columns = facets.load_columns(arrays)
    lexicon = open_lexicon(path)
    if lexicon is None:
        warnings.append("索引没有词表，自动补全和纠错只用标题，需要重建（newsearch rebuild）")
    return _Build(path, ix, columns, lengths, arrays["headlines"], meta, warnings,
                  PostingCache(deleted, arrays=postings), windows=Windows(columns.published), lexicon=lexicon,
                  keys=held)


def _distinct_count(codes: np.ndarray, count: int) -> int:
    """Return how many distinct values of range(count) codes holds (a mask, not a sort)."""
    seen = np.zeros(count, dtype=bool)
    seen[codes] = True
    return int(seen.sum())
