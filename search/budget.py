"""Bound one request's work: its caps, what it has read, and the reads that count against them.

The caps are counts, the same on any machine (MAX_STORED, MAX_POSITIONS,
MAX_POSTINGS), and one in time for what counts cannot foresee
(MATCH_SECONDS). A check that would pass a cap covers the newest candidates
only; a pass of matching that would pass MAX_POSTINGS or its deadline stops
(OverBudget, OutOfTime), and the matcher (search/match.py) matches again over
the newest blocks of the archive (Windows). Work records what a request read
and which caps it hit; BudgetedReader reads a build's lists, their lengths
and positions for one request, each read counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from indexer.analysis import normalize, word_runs
from indexer.schema import CHARS_OF, GRAMS_OF
from indexer.postings import ARRAY_FIELDS
from search.postings import PostingCache, positions
from search.sets import EMPTY, common_at, distinct

PROBE_SHARE = 4  # a list at least this many times longer than the documents asked about is probed, not read
# Caps on one request's work, in counts (the same on any machine). A check that
# would pass a cap covers the newest candidates only, and the answer says so.
MAX_STORED = 300  # stored documents read to check a phrase's punctuation and spaces
MAX_POSITIONS = 40_000  # position lists decoded (one term in one document each)
# Postings one pass of matching may use (each use of a list counts its length).
# A query that needs more is matched again over the newest part of the archive
# only, a share of its document blocks small enough to fit, at most MAX_PASSES
# times; the last pass covers nothing.
MAX_POSTINGS = 3_000_000
MAX_PASSES = 6
WINDOW_BLOCKS = 256  # the archive's parts, by document number, that a cut search keeps or drops whole
# A cap in time, for what counts cannot foresee (a disk slow to answer, a
# machine busy with other work): matching still running MATCH_SECONDS after it
# began (the build open, a searcher lent) stops, and the query is matched again
# over the newest LATE_SHARE of the archive with LATE_SECONDS more; a pass late
# again leaves the answer covering nothing. Both together leave room in a
# second for the rest of the answer.
MATCH_SECONDS = 0.6
LATE_SECONDS = 0.15
LATE_SHARE = 0.125
CAPPED = {
    "stored": "短语含标点或空格，候选文档过多：只核对了最新的 {cap} 篇，结果可能不全",
    "positions": "候选文档过多：只按位置核对了其中最新的一部分，结果可能不全",
    "postings": "查询涉及的文档过多：只检索了最新的约 {share} 的文档，结果可能不全",
    "time": "查询用时过长：只检索了最新的约 {share} 的文档，结果可能不全",
}


@dataclass
class Work:
    """What one request has read: postings, position lists, stored documents; and the caps it hit.

    capped names matching's caps (CAPPED: stored, positions, postings, time)
    and those of the paths beside it: proximity (search/ranking.py), story and
    similar (search/around.py), lexicon, repairs and completion (search/spelling.py).
    """

    postings: int = 0
    positions: int = 0
    stored: int = 0
    sampled: int = 0  # stored documents the related searches read (search/related.py), beside matching's
    capped: list[str] = field(default_factory=list)
    searched: float = 1.0  # the share of the archive's documents matching covered
    passes: int = 0  # passes of matching (more than one when the postings cap cut the search)

    def cap(self, kind: str) -> None:
        """Note that a cap was hit (once, in the order hit)."""
        if kind not in self.capped:
            self.capped.append(kind)

    def warnings(self) -> list[str]:
        """Return what the answer must say about matching's caps hit (the other paths' caps say their own)."""
        share = f"{self.searched:.1%}" if self.searched >= 0.001 else f"{self.searched:.2%}"
        shown = [k for k in self.capped if k in CAPPED and not (k == "postings" and "time" in self.capped)]
        return [CAPPED[kind].format(cap=MAX_STORED, share=share) for kind in shown]  # one share, said once

    def as_dict(self) -> dict:
        """Return the counts as plain data."""
        return {"postings": self.postings, "positions": self.positions, "stored": self.stored,
                "sampled": self.sampled, "capped": list(self.capped), "searched": round(self.searched, 6), "passes": self.passes}


class OverBudget(Exception):
    """A pass of matching would use more postings than MAX_POSTINGS."""


class OutOfTime(Exception):
    """A pass of matching ran past its deadline (MATCH_SECONDS, then LATE_SECONDS)."""


class Windows:
    """The archive cut into WINDOW_BLOCKS runs of document numbers, newest first (by median publish time).

    A search cut by the postings cap covers the newest blocks whole: its
    answer is exact for those documents and holds nothing from the others.
    """

    def __init__(self, published: np.ndarray, blocks: int = WINDOW_BLOCKS) -> None:
        count = len(published)
        self.edges = distinct(np.linspace(0, count, min(blocks, count) + 1).astype(np.int64))
        medians = [float(np.median(published[a:b])) for a, b in zip(self.edges[:-1], self.edges[1:])]
        self.order = np.argsort(-np.asarray(medians), kind="stable")
        self.count = count

    def ranges(self, share: float) -> tuple[np.ndarray, float]:
        """Return the [start, end) rows of the newest blocks making at most share of the documents, and their share."""
        chosen = np.sort(self.order[: int(share * len(self.order))])
        rows = np.stack([self.edges[chosen], self.edges[chosen + 1]], axis=1) if len(chosen) else \
            np.zeros((0, 2), dtype=np.int64)
        if len(rows) > 1:  # neighbouring blocks become one range
            starts = np.concatenate([[True], rows[1:, 0] != rows[:-1, 1]])
            ends = np.concatenate([rows[1:, 0] != rows[:-1, 1], [True]])
            rows = np.stack([rows[starts, 0], rows[ends, 1]], axis=1)
        covered = int((rows[:, 1] - rows[:, 0]).sum())
        return rows, covered / max(self.count, 1)


class BudgetedReader:
    """Read one request's posting lists, their lengths and positions, each read counted against its caps."""

    def __init__(self, searcher, cache: PostingCache, published: np.ndarray | None = None,
                 windows: Windows | None = None, max_postings: int = MAX_POSTINGS,
                 deadline: float | None = None, clock=time.perf_counter) -> None:
        self.searcher = searcher
        self.cache = cache
        self.published = published  # publish times by document: which candidates a capped check covers
        self.windows = windows  # the archive's blocks newest first; None: the postings cap is not applied
        self.counted: dict[tuple[str, str], int] = {}  # list lengths over the archive, looked up once
        self.work = Work()
        self.ranking = False  # checks made for a ranking bonus: a cut is not reported, nothing unchecked is kept
        self.window: np.ndarray | None = None  # [start, end) rows of the documents a cut search covers
        self.share = 1.0  # the share of documents the window holds
        self.lists: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # this pass's lists, read once
        self.spent = 0  # postings this pass has used
        self.budgeted = False  # inside query(): the postings cap applies
        self.max_postings = max_postings
        self.deadline = deadline  # clock() past which a pass of matching stops; None: no cap in time
        self.clock = clock

    def postings(self, field: str, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Return a term's (document numbers, frequencies), inside the window when the search is cut."""
        key = (field, term)
        found = self.lists.get(key)
        if found is None:  # read whole (one list is at most the archive), then counted against the cap
            self._on_time()
            if self.window is None:
                found = self.cache.get(self.searcher, field, term)
            else:
                found = self.cache.get_within(self.searcher, field, term, self.window)
            self.lists[key] = found
        self._spend(len(found[0]))
        self.work.postings += len(found[0])
        return found

    def holding(self, field: str, term: str, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (those of the sorted docs a term's list holds, their frequencies).

        A list much longer than the documents asked about (PROBE_SHARE) is probed
        at them, not read: the work then grows with the candidates, not with the
        archive, and counts as that many postings.
        """
        if (field, term) not in self.lists and len(docs) * PROBE_SHARE < self.count(field, term):
            self._on_time()
            self.work.postings += len(docs)
            self._spend(len(docs))
            return self.cache.probe(self.searcher, field, term, docs)
        found = self.postings(field, term)
        mine, theirs = common_at(docs, found[0])
        return docs[mine], found[1][theirs]

    def count(self, field: str, term: str) -> int:
        """Return the length of a term's list over the archive, without reading it."""
        return self.counts(field, [term])[0]

    def counts(self, field: str, terms: list[str]) -> list[int]:
        """Return the lengths of terms' lists over the archive, without reading them (looked up once each)."""
        missing = [t for t in dict.fromkeys(terms) if (field, t) not in self.counted]
        if missing:
            self.counted.update(((field, t), n) for t, n in zip(missing, self.cache.counts(self.searcher, field, missing)))
        return [self.counted[field, t] for t in terms]

    def chars_count(self, textfield: str, text: str) -> int:
        """Return a bound on the documents holding text's characters: the length of its rarest pair's or character's list."""
        counts = []
        for run in word_runs(normalize(text)):
            if len(run) == 1:
                counts.append(self.count(CHARS_OF[textfield], run))
            else:
                counts.extend(self.counts(GRAMS_OF[textfield], sorted({run[i:i + 2] for i in range(len(run) - 1)})))
        return min(counts) if counts else 0

    def _spend(self, count: int) -> None:
        """Count postings used; raise OverBudget past the cap (what the pass wanted is remembered)."""
        self.spent += count
        if self.budgeted and self.spent > self.max_postings:
            raise OverBudget

    def _on_time(self) -> None:
        """Raise OutOfTime when a pass of matching is past its deadline."""
        if self.budgeted and self.deadline is not None and self.clock() > self.deadline:
            raise OutOfTime

    def positions(self, field: str, term: str, docs: np.ndarray) -> dict[int, list[int]]:
        """Return a term's positions in those of the given documents that hold it (counted as work)."""
        self._on_time()
        self.work.positions += len(docs)
        arrays = self.cache.arrays
        if arrays is not None and arrays.positional and field in ARRAY_FIELDS and len(docs):
            found = arrays.positions(field, term, docs, self.searcher.schema[field].format.decode_positions)
            if found is not None:
                return found
        return positions(self.searcher, field, term, docs)

    def affordable(self, kind: str, docs: np.ndarray, each: int) -> tuple[np.ndarray, np.ndarray]:
        """Split docs into (the newest the request's cap still allows, at each units a document; the rest)."""
        cap = MAX_STORED if kind == "stored" else MAX_POSITIONS
        room = max(0, cap - getattr(self.work, kind)) // max(each, 1)
        if room >= len(docs):
            return docs, EMPTY
        if not self.ranking and kind not in self.work.capped:
            self.work.capped.append(kind)
        order = np.argsort(-self.published[docs], kind="stable") if self.published is not None else np.arange(len(docs))
        return np.sort(docs[order[:room]]), np.sort(docs[order[room:]])
