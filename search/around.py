"""What surrounds one article: its story's copies and similar articles of other stories, each path capped.

Every path here is bounded by counts, the same on any machine, and stops at
the matcher's deadline; a path cut either way is named in the answer's
``work.capped`` ("story", "similar").
"""

from __future__ import annotations

import numpy as np

from indexer import analysis
from indexer.schema import BODY, TITLE
from search.match import WORD_BOOST, Matcher
from search.ranking import late
from search.sets import EMPTY, Hits, member

MAX_STORY = 1_000  # copies a story's list holds: the first published
MAX_COPIES = 50  # other copies an article page lists (the story's own list holds MAX_STORY)
MORE_LIKE_THIS = 5  # related articles of other stories an article page lists
MLT_TERMS = 12  # distinctive words they are found by
MLT_MAX_SHARE = 0.05  # a word in more of the documents than this is not distinctive
MLT_TEXT = 5_000  # characters of an article (title, then body) whose words are weighed
MLT_POSTINGS = 100_000  # postings similar articles may read: every candidate they score is one


class StoryIndex:
    """The documents of every story, by story code: one sort of the story column, made once per build.

    A story's members are then a slice, not a pass over the whole archive.
    """

    def __init__(self, story: np.ndarray, stories: int) -> None:
        self.order = np.argsort(story, kind="stable").astype(np.int64)  # document order within a story
        self.bounds = np.concatenate(([0], np.cumsum(np.bincount(story, minlength=stories))))

    def members(self, code: int) -> np.ndarray:
        """Return a story's documents (deleted ones too), in document order."""
        return self.order[self.bounds[code]:self.bounds[code + 1]]


def story_code(columns, key: int) -> int | None:
    """Return the code of the story with that key, or None."""
    if columns.story is None or not len(columns.story_keys):
        return None
    code = int(np.searchsorted(columns.story_keys, np.uint64(key)))
    return code if code < len(columns.story_keys) and int(columns.story_keys[code]) == key else None


def story_members(build, key: int, work) -> np.ndarray:
    """Return the live documents of the story with that key, the first MAX_STORY published, in document order."""
    code = story_code(build.columns, key)
    if code is None:
        return EMPTY
    docs = build.stories.members(code)
    if build.cache.deleted is not None:
        docs = docs[~member(docs, build.cache.deleted)]
    if len(docs) > MAX_STORY:
        work.cap("story")
        docs = np.sort(docs[np.lexsort((docs, build.columns.published[docs]))[:MAX_STORY]])
    return docs


def copies_of(matcher: Matcher, build, docnum: int, key: int) -> list[dict]:
    """Return the stored fields of the story's other copies, first published first (MAX_COPIES, on time)."""
    others = story_members(build, key, matcher.work)
    others = others[others != docnum]
    others = others[np.lexsort((others, build.columns.published[others]))]
    if len(others) > MAX_COPIES:
        matcher.work.cap("story")
    return read_stored(matcher, others[:MAX_COPIES], "story")


def read_stored(matcher: Matcher, docs: np.ndarray, kind: str) -> list[dict]:
    """Return the stored fields of docs in order, as many as the deadline allows (cut: kind is capped)."""
    out = []
    for doc in docs.tolist():
        if late(matcher):
            matcher.work.cap(kind)
            break
        out.append(matcher.searcher.stored_fields(doc))
        matcher.work.stored += 1
    return out


def more_like_this(matcher: Matcher, build, docnum: int, stored: dict) -> list[dict]:
    """Return the stored fields of up to MORE_LIKE_THIS documents of other stories that share an article's
    distinctive words.

    The words of the article's first MLT_TEXT characters are weighed by
    count × idf; the MLT_TERMS best that other documents hold (but not more
    than MLT_MAX_SHARE of them) are matched as an OR by their word postings,
    scored with BM25 as a search is: no more than MLT_POSTINGS postings (a word
    whose lists do not fit is left out, the most distinctive first kept), no list read after the deadline.
    """
    original = f"{stored.get(TITLE, '')}\n{stored.get(BODY, '')}"
    if len(original) > MLT_TEXT:
        matcher.work.cap("similar")
        original = original[:MLT_TEXT]
    counts: dict[str, int] = {}
    for word, *_ in analysis.iter_words(analysis.normalize(original), original):  # as indexed: IT is a word
        if len(word) > 1 and not word.isdigit():
            counts[word] = counts.get(word, 0) + 1
    words = list(counts)
    most = MLT_MAX_SHARE * matcher.doc_count
    weighed = sorted(((counts[w] * matcher.idf(df), w) for w, df in zip(words, matcher.counts(BODY, words))
                      if 1 < df <= most), reverse=True)[:MLT_TERMS]
    hits = _scored(matcher, [w for _, w in weighed])
    cols = build.columns
    keep = hits.docs != docnum
    if cols.story is not None:
        keep &= cols.story[hits.docs] != cols.story[docnum]
    docs, scores = hits.docs[keep], hits.scores[keep]  # (the cache's lists hold live documents only)
    codes = cols.story[docs] if cols.story is not None else docs
    chosen: list[int] = []
    seen: set[int] = set()
    for i in np.argsort(-scores, kind="stable").tolist():  # one document per story
        if int(codes[i]) not in seen:
            seen.add(int(codes[i]))
            chosen.append(int(docs[i]))
            if len(chosen) == MORE_LIKE_THIS:
                break
    return read_stored(matcher, np.array(chosen, dtype=np.int64), "similar")


def _scored(matcher: Matcher, words: list[str]) -> Hits:
    """Return the documents holding any of the words, scored with BM25, within MLT_POSTINGS and the deadline."""
    parts = []
    room = MLT_POSTINGS
    for word in words:
        for name in (TITLE, BODY):
            count = matcher.count(name, word)
            if count > room or late(matcher):
                matcher.work.cap("similar")
                continue
            room -= count
            docs, freqs = matcher.postings(name, word)
            if len(docs):
                parts.append(Hits(docs, WORD_BOOST[name] * matcher._bm25(name, docs, freqs, count)))
    return Hits.sum(parts)
