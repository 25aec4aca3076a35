"""Find exactly the documents a parsed query matches, scored, with numpy over posting lists.

Whoosh stores the postings; matching does not go through Whoosh's query
objects, which score every hit in Python. Instead each term's posting list is
read once into arrays (document numbers, term frequencies) — a slice of the
segment's mapped posting arrays (indexer/segment.py), or Whoosh's blocks
decoded straight into numpy for segments without them — cached per build, and
combined with sorted-array set operations:

- a word matches where the word index has it (scored with BM25), or where its
  exact characters occur (``substring``; a flat, lower score);
- ``substring`` of a run of characters: one character -> the character field;
  two -> the pair field; more -> documents holding every pair, of which those
  holding the run as a word are certain and the rest are checked by position;
  a pasted passage (PASSAGE_CHARS+): documents holding a few of its rarest
  pairs, checked in their stored text, so its length costs nothing;
- clauses AND together, OR alternatives unite, negated clauses subtract;
- clauses, and the words of a clause, are matched rarest first (by list
  lengths, known without reading a list); every later one only among the
  documents the earlier ones left: a list much longer than those is probed at
  them (a binary search per document in the mapped arrays), not read. Scores
  depend on list lengths only, so probing and reading score alike.
"""

from __future__ import annotations

import math
import re
import time

import numpy as np

from indexer.analysis import WORD_RUN, normalize, word_runs
from indexer.schema import BODY, CHARS_OF, GRAMS_OF, TITLE
from indexer.segment import ARRAY_FIELDS
from search.budget import (LATE_SECONDS, LATE_SHARE, MAX_PASSES, MAX_POSTINGS, MAX_STORED, BudgetedReader, OutOfTime,
                           OverBudget, Windows)
from search.postings import PostingCache
from search.query import KEYWORD_FIELDS, TEXT_FIELDS, Clause, ParsedQuery
from search.sets import EMPTY, Hits, common, distinct, minus, union

BM25_K1 = 1.2
BM25_B = 0.75
# Relative weights of the ways a term can match.
WORD_BOOST = {TITLE: 3.0, BODY: 1.0}
CHARS_BOOST = {TITLE: 1.2, BODY: 0.35}
CHARS_UNDER_WORD = 0.5  # a characters-only match scores at most this share of the field's lowest word score
LENGTH_CAP = 4.0  # BM25 takes a field longer than this many times its average as this long: a floor for scores
PHRASE_BONUS = {TITLE: 1.5, BODY: 1.0}  # quoted: times idf; unquoted in one piece: times the best score
EXACT_CHECK = 1000  # best hits checked for holding an unquoted query in one piece
TITLE_SHARE = 1.0  # extra lift, times the best score, for a title the text covers whole
# A pasted passage (this many letters, digits and ideographs or more: a span of
# 20 characters has 16 or more) is matched through a few of its rarest pairs and
# its candidates' stored text (Matcher._passage): the cost follows the
# candidates, not the passage's length.
PASSAGE_CHARS = 16
PASSAGE_FEW = 8  # candidates few enough to stop intersecting pairs
PASSAGE_PAIRS = 4  # pairs intersected before one that narrows nothing stops it
PASSAGE_READS = 64  # most candidates whose stored text is read to check a passage


def _run_starts(found: list[dict[int, list[int]]], doc: int) -> set[int]:
    """Return where consecutive pairs stand at consecutive positions in a document."""
    starts = set(found[0].get(doc, ()))
    for i, later in enumerate(found[1:], start=1):
        starts &= {p - i for p in later.get(doc, ())}
        if not starts:
            break
    return starts


def _starts(found: list[dict[int, list[int]]]) -> dict[int, set[int]]:
    """Return, per document, where a run of pairs starts."""
    return {doc: starts for doc in found[0] if (starts := _run_starts(found, doc))}


def idf(doc_count: int, df: int) -> float:
    """Return BM25's inverse document frequency."""
    return math.log(1.0 + (doc_count - df + 0.5) / (df + 0.5))


def is_passage(text: str) -> bool:
    """Tell whether text is a pasted passage: PASSAGE_CHARS word characters or more."""
    return sum(map(len, word_runs(normalize(text)))) >= PASSAGE_CHARS


def _spaced(runs: list[tuple[int, str]]) -> str:
    """Return a pattern of runs at their offsets, any characters between them."""
    end, parts = runs[0][0], []
    for off, run in runs:
        parts.append(f".{{{off - end}}}{re.escape(run)}" if parts else re.escape(run))
        end = off + len(run)
    return "".join(parts)


def reads_stored(text: str) -> bool:
    """Tell whether checking that text stands in one piece needs the stored text.

    True unless it is one run of word characters: the index knows where runs
    stand, not the punctuation and spaces between them.
    """
    folded = normalize(text).strip()
    core = "".join(folded.split())
    runs = [m.group() for m in WORD_RUN.finditer(core)]
    return bool(runs) and not (folded == core and len(runs) == 1 and runs[0] == core)


class Matcher(BudgetedReader):
    """Match and score parsed queries against one opened build."""

    def __init__(self, searcher, cache: PostingCache, lengths: dict[str, np.ndarray],
                 published: np.ndarray | None = None, windows: Windows | None = None,
                 max_postings: int = MAX_POSTINGS, deadline: float | None = None,
                 clock=time.perf_counter) -> None:
        super().__init__(searcher, cache, published, windows, max_postings, deadline, clock)
        self.lengths = lengths
        self.doc_count = max(searcher.doc_count_all(), 1)  # deleted documents count, as in list lengths
        self.avg = {f: max(float(lengths[f].mean()), 1.0) if len(lengths[f]) else 1.0 for f in lengths}
        self.texts: dict[tuple[int, str], str] = {}  # (document, field) -> its folded text without spaces
        self.folded: dict[tuple[int, str], str] = {}  # (document, field) -> its folded text, as indexed
        self.limit_to: np.ndarray | None = None  # only these documents can still be hits
        self.skip_layout = False  # stored text is not read: layout checks keep every candidate
        self.keep_unchecked = False  # a check cut by a cap keeps what it did not cover (to exclude it)

    def idf(self, df: int) -> float:
        """Return the inverse document frequency of df hits among the documents searched."""
        return idf(self.doc_count, max(round(df / max(self.share, 1e-9)), 1))

    def idf_count(self, count: int) -> float:
        """Return the inverse document frequency of a list of count postings over the whole archive."""
        return idf(self.doc_count, max(count, 1))

    def run_starts(self, field: str, run: str, docs: np.ndarray) -> np.ndarray | None:
        """Return where a run of characters stands in the given documents, as doc << 32 | position.

        Its pairs' positions are read in bulk and intersected (pair i at p + i);
        None when the index keeps no position arrays (then positions() is used).
        Counted as work like positions().
        """
        arrays = self.cache.arrays
        if arrays is None or not arrays.positional or field not in ARRAY_FIELDS:
            return None
        decode = self.searcher.schema[field].format.decode_positions
        starts = None
        # Pairs are positioned by character: pairs 0, 2, 4, ... and the last one in place put every
        # character of the run in place. Each is looked for only where the ones before left a start.
        for i in sorted({*range(0, len(run) - 1, 2), len(run) - 2}):
            self._on_time()
            self.work.positions += len(docs)
            found = arrays.position_arrays(field, run[i:i + 2], docs, decode)
            if found is None:
                return None
            held, at = found
            keep = at >= i
            keys = distinct((held[keep] << 32) | (at[keep] - i))
            starts = keys if starts is None else common(starts, keys)
            if not len(starts):
                break
            docs = distinct(starts >> 32)
        return starts if starts is not None else EMPTY

    def _read_docs(self) -> np.ndarray:
        return np.array(sorted({d for d, _ in self.texts}), dtype=np.int64)

    def _checked(self, kept: np.ndarray, unchecked: np.ndarray) -> np.ndarray:
        """Return what a cut check matched: what it kept, plus what it did not cover when excluding."""
        keep = self.keep_unchecked and not self.ranking and len(unchecked)
        return union(kept, unchecked) if keep else kept

    def word_idf(self, word: str) -> float:
        """Return the inverse document frequency of a word in bodies."""
        return self.idf_count(self.count(BODY, word))

    def substring(self, textfield: str, text: str, within: np.ndarray | None = None) -> np.ndarray:
        """Return the documents (of within, if given) whose title or body holds text's exact characters.

        A passage (PASSAGE_CHARS word characters or more) is found through a few
        of its rarest pairs and its candidates' stored text (_passage); other
        text run by run, the rarest run first.
        """
        if is_passage(text):
            found = self._passage(textfield, word_runs(normalize(text)), within)
            if found is not None:
                return found
        return self._run_by_run(textfield, word_runs(normalize(text)), within)

    def _run_by_run(self, textfield: str, runs: list[str], within: np.ndarray | None) -> np.ndarray:
        """Return the documents (of within) holding every run: all its pairs, then checked by position."""
        runs = sorted(runs, key=lambda run: self.chars_count(textfield, run))
        result = within
        for run in runs:  # rarest first: the first list read whole is the shortest
            result = self._candidates(textfield, run, result)
        if result is None or not len(result):
            return EMPTY
        for run in runs:
            result = self._verify_run(textfield, run, result)
        return result

    def _candidates(self, textfield: str, run: str, within: np.ndarray | None = None) -> np.ndarray:
        """Return the documents (of within) that may hold a run: its one character, or all its pairs.

        Pairs are intersected rarest first (their lengths known without reading
        them), and no more lists are read once no candidate is left. Stopping
        earlier with a few candidates left costs more than it saves: the
        position check then decodes a block of every pair for each of them.
        """
        if len(run) == 1:
            name = CHARS_OF[textfield]
            return self.postings(name, run)[0] if within is None else self.holding(name, run, within)[0]
        grams = GRAMS_OF[textfield]
        pairs = sorted({run[i:i + 2] for i in range(len(run) - 1)})
        docs = within
        for pair, _ in sorted(zip(pairs, self.counts(grams, pairs)), key=lambda pc: pc[1]):
            if docs is not None and not len(docs):
                break
            docs = self.postings(grams, pair)[0] if docs is None else self.holding(grams, pair, docs)[0]
        return docs

    def _verify_run(self, textfield: str, run: str, docs: np.ndarray) -> np.ndarray:
        """Keep the candidates where the run's pairs stand one after another."""
        if len(run) < 3 or not len(docs):
            return docs
        sure = self.holding(textfield, run, docs)[0]
        unsure = minus(docs, sure)
        if not len(unsure):
            return sure
        grams = GRAMS_OF[textfield]
        unsure, unchecked = self.affordable("positions", unsure, len(run) - 1)
        starts = self.run_starts(grams, run, unsure)
        if starts is not None:
            checked = distinct(starts >> 32)
        else:
            found = [self.positions(grams, run[i:i + 2], unsure) for i in range(len(run) - 1)]
            checked = np.array([d for d in unsure.tolist() if _run_starts(found, d)], dtype=np.int64)
        return union(sure, self._checked(checked, unchecked))

    def _passage(self, textfield: str, runs: list[str], within: np.ndarray | None) -> np.ndarray | None:
        """Return the documents (of within) holding every run of a passage, or None to match it run by run.

        Its candidates hold a few of its rarest pairs (_rare_candidates); each is
        then checked in its stored text, one read a document whatever the
        passage's length, where a check by position reads half the passage's
        pairs in each. Holding a run there is holding it by position: the pairs
        are indexed from the same folded text. Too many candidates to read
        (PASSAGE_READS, or the request's MAX_STORED) are checked run by run.
        """
        docs = self._rare_candidates(textfield, runs, within)
        if docs is None:
            return None
        if not self._read_all(docs):
            return self._run_by_run(textfield, runs, docs)
        keep = [d for d in docs.tolist() if all(run in self.folded[d, textfield] for run in runs)]
        return np.array(keep, dtype=np.int64)

    def _rare_candidates(self, textfield: str, runs: list[str], within: np.ndarray | None) -> np.ndarray | None:
        """Return the documents (of within) holding the rarest pairs of a passage's runs, until they are few.

        Pairs far apart in the text are taken first, rarest first: neighbours
        (衢州, 州锐) narrow down the same documents. Intersecting stops at
        PASSAGE_FEW candidates, or once PASSAGE_PAIRS pairs are used and one more
        no longer narrows them (the passage's own copies, or boilerplate, hold
        every pair). None when the passage has no pair (runs of one character).
        """
        grams = GRAMS_OF[textfield]
        first: dict[str, int] = {}  # each pair at its first place in the runs, as if they were one text
        taken = 0
        for run in runs:
            for i in range(len(run) - 1):
                first.setdefault(run[i:i + 2], taken + i)
            taken += len(run)
        if not first:
            return None
        pairs = list(first)
        order, used = [], set()
        for pair, _ in sorted(zip(pairs, self.counts(grams, pairs)), key=lambda pc: pc[1]):
            spread = first[pair] not in used and first[pair] + 1 not in used
            if spread:
                used.update((first[pair], first[pair] + 1))
            order.append((not spread, len(order), pair))
        docs = within
        for n, (_, _, pair) in enumerate(sorted(order)):
            if docs is not None and len(docs) <= PASSAGE_FEW:
                break
            before = -1 if docs is None else len(docs)
            docs = self.postings(grams, pair)[0] if docs is None else self.holding(grams, pair, docs)[0]
            if n + 1 >= PASSAGE_PAIRS and len(docs) == before:
                break
        return docs

    def _read_all(self, docs: np.ndarray) -> bool:
        """Read the stored text of docs when they are few enough (PASSAGE_READS) and the cap allows; tell if done."""
        unread = np.array([d for d in docs.tolist() if (d, TITLE) not in self.folded], dtype=np.int64)
        if len(unread) > min(PASSAGE_READS, MAX_STORED - self.work.stored):
            return False
        self.read_texts(unread)
        return True

    def _in_one_piece(self, textfield: str, text: str, within: np.ndarray | None) -> np.ndarray:
        """Return the documents (of within) where text stands in one piece: layout() of substring().

        For a passage whose candidates' text was read, the check by position of
        layout() is made on that text, not on half its pairs' positions in each.
        """
        docs = self.substring(textfield, text, within)
        if not (is_passage(text) and len(docs) and reads_stored(text)) or self.skip_layout or \
                not all((d, textfield) in self.folded for d in docs.tolist()):
            return self.layout(textfield, text, docs)
        folded = normalize(text).strip()
        core = "".join(folded.split())
        if self.limit_to is not None:
            docs = common(docs, self.limit_to)
        if folded == core:  # as _layout_by_position: each run of 2+ characters where it stands beside the others
            runs = [(m.start(), m.group()) for m in WORD_RUN.finditer(core) if len(m.group()) > 1]
            if len(runs) > 1:
                pattern = re.compile(_spaced(runs), re.S)
                docs = np.array([d for d in docs.tolist() if pattern.search(self.folded[d, textfield])], dtype=np.int64)
        return self._read_check(textfield, core, docs)

    def word(self, word: str, fields: tuple[str, ...], within: np.ndarray | None = None) -> Hits:
        """Match a word (in within, if given) by its word postings (BM25) or, failing that, its characters.

        Scores use only list lengths, never the lists themselves, so a document
        scores the same whether its word was found by reading lists or by
        probing them at candidates.
        """
        parts = []
        for f in fields:
            df = self.count(f, word)
            docs, freqs = self.postings(f, word) if within is None else self.holding(f, word, within)
            if len(docs):
                parts.append(Hits(docs, WORD_BOOST[f] * self._bm25(f, docs, freqs, df)))
            rest = None if within is None else minus(within, docs)
            chars = minus(self.substring(f, word, within=rest), docs) if rest is None or len(rest) else EMPTY
            if len(chars):
                parts.append(Hits(chars, np.full(len(chars), self.chars_score(f, word, df))))
        return Hits.sum(parts)

    def chars_score(self, field: str, word: str, df: int) -> float:
        """Return the score of a match of a word's characters only: by how rare they are, below any word match.

        Rare characters must not outrank the word: 美国家庭 holds 国家's
        characters, not the word. No word match in the field scores less than
        BM25 with frequency 1 at the capped length (LENGTH_CAP).
        """
        rare = CHARS_BOOST[field] * self.idf_count(self.chars_count(field, word))
        if not df:
            return rare
        floor = (BM25_K1 + 1) / (1 + BM25_K1 * (1 - BM25_B + BM25_B * LENGTH_CAP))
        return min(rare, CHARS_UNDER_WORD * WORD_BOOST[field] * self.idf_count(df) * floor)

    def word_count(self, word: str, fields: tuple[str, ...]) -> int:
        """Return a bound on the documents a word can match: its lists' lengths and its characters' bound."""
        return sum(self.count(f, word) + self.chars_count(f, word) for f in fields)

    def _bm25(self, field: str, docs: np.ndarray, freqs: np.ndarray, df: int) -> np.ndarray:
        """Return BM25 of a list of df postings over the archive; lengths past LENGTH_CAP times the average count as that."""
        lengths = np.minimum(self.lengths[field][docs], LENGTH_CAP * self.avg[field])
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / self.avg[field])
        return self.idf_count(df) * freqs * (BM25_K1 + 1) / (freqs + norm)

    def layout(self, textfield: str, text: str, docs: np.ndarray) -> np.ndarray:
        """Keep the documents where text stands in one piece, punctuation and all.

        Matching goes run by run (``来，把思`` is 来 and 把思); to find where the
        whole stands, runs of two or more characters are checked by position, and
        when punctuation, spaces or one-character runs remain, the candidates'
        stored text is searched, spaces not counting (so ``"新能源 汽车"`` finds
        新能源汽车 as well as 新能源 汽车). Stored reads are capped per request
        (MAX_STORED, newest candidates first).
        """
        if not len(docs) or self.skip_layout or not reads_stored(text):
            return docs
        folded = normalize(text).strip()
        core = "".join(folded.split())
        runs = [(m.start(), m.group()) for m in WORD_RUN.finditer(core)]
        if self.limit_to is not None:
            docs = common(docs, self.limit_to)
        long_runs = [(off, run) for off, run in runs if len(run) > 1]
        if folded == core and len(long_runs) > 1:
            docs = self._layout_by_position(textfield, long_runs, docs)
        return self._read_check(textfield, core, docs)

    def _read_check(self, textfield: str, core: str, docs: np.ndarray) -> np.ndarray:
        """Keep the docs whose stored text holds core, spaces not counting; read no more than the cap allows."""
        known = np.array([(d, textfield) in self.texts for d in docs.tolist()], dtype=bool)
        fresh, unchecked = self.read_texts(docs[~known])
        covered = union(docs[known], fresh)
        kept = np.array([d for d in covered.tolist() if core in self.texts[d, textfield]], dtype=np.int64)
        return self._checked(kept, unchecked)

    def read_texts(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Read the stored text of the newest docs the cap allows; return (those read, the rest)."""
        fresh, rest = self.affordable("stored", docs, 1)
        stored = self.searcher.stored_fields
        for d in fresh.tolist():
            self._on_time()
            fields = stored(d)
            self.work.stored += 1
            for name in (TITLE, BODY):
                self.folded[d, name] = normalize(fields.get(name, ""))
                self.texts[d, name] = "".join(self.folded[d, name].split())
        return fresh, rest

    def _layout_by_position(self, textfield: str, runs: list[tuple[int, str]], docs: np.ndarray) -> np.ndarray:
        grams = GRAMS_OF[textfield]
        pairs = sum(len(run) - 1 for _, run in runs)
        docs, unchecked = self.affordable("positions", docs, pairs)
        base = runs[0][0]
        bulk = [self.run_starts(grams, run, docs) for _, run in runs]
        if all(found is not None for found in bulk):
            # Run j must start (offset_j - base) characters after run 0 does.
            whole = bulk[0]
            for (off, _), found in zip(runs[1:], bulk[1:]):
                shifted = found[(found & 0xFFFFFFFF) >= off - base] - (off - base)
                whole = common(whole, shifted)
            return union(distinct(whole >> 32), unchecked)  # the stored text decides the rest
        starts = [_starts([self.positions(grams, run[i:i + 2], docs) for i in range(len(run) - 1)])
                  for _, run in runs]
        keep = [d for d in docs.tolist()
                if any(all(s + off - base in found.get(d, ()) for (off, _), found in zip(runs[1:], starts[1:]))
                       for s in starts[0].get(d, ()))]
        return union(np.array(keep, dtype=np.int64), unchecked)  # the stored text decides the rest

    def exact(self, text: str, fields: tuple[str, ...], within: np.ndarray | None = None) -> Hits:
        """Match text's exact characters (in within, if given), scored by how rare they are (chars_count)."""
        return self._holders(text, fields, within)[0]

    def _exact_bonus(self, hits: Hits, text: str, words: int, fields: tuple[str, ...]) -> Hits:
        """Lift the hits holding text in one piece above all others: an exact phrase beats scattered terms.

        The lift is the best score so far; in the title it grows with the share of
        the title the text covers, so the item whose title is the query comes first.
        Only the EXACT_CHECK best hits are checked: the lift is about the top;
        of those, no more stored texts are read than the request's cap allows.
        """
        top = float(hits.scores.max()) if len(hits.docs) else 0.0
        best = hits.docs
        if len(best) > EXACT_CHECK:
            best = np.sort(hits.docs[np.argpartition(-hits.scores, EXACT_CHECK)[:EXACT_CHECK]])
        whole = np.zeros(len(hits.docs), dtype=bool)
        share = np.zeros(len(hits.docs))
        self.ranking = True  # the caps still count; a cut only costs some hits the lift
        try:
            for f in fields:
                docs = self._in_one_piece(f, text, best)
                at = np.searchsorted(hits.docs, docs)
                whole[at] = True
                if f == TITLE:
                    share[at] = np.minimum(words / np.maximum(self.lengths[f][docs], 1), 1.0)
        finally:
            self.ranking = False
        return Hits(hits.docs, hits.scores + top * (whole + TITLE_SHARE * share))

    def _as_passage(self, text: str, terms: list[str], fields: tuple[str, ...],
                    within: np.ndarray | None, words: int) -> Hits | None:
        """Match an unquoted passage held in one piece somewhere as such; None when no document holds it so.

        The hits are those of its terms' AND, as ever: a document holding the
        text in one piece holds every term's characters, so the AND is only
        worked out for the others, rarest term first, and stops once none is
        left (one list or probe a term until then, not one for each term). The
        holders score as a quoted phrase (exact) lifted above every other hit
        as _exact_bonus lifts them (words: the text's words without stop words,
        for the share of a title it covers); the others score as before.
        """
        # Checked as for a bonus: a holder a cap left unchecked is still found by its words, unlifted.
        whole, title = self._holders(text, fields, within, ranking=True)
        if not len(whole.docs):
            return None
        rest = None
        for term in sorted(terms, key=lambda w: self.word_count(w, fields)):
            found = self.word(term, fields, within if rest is None else rest.docs)
            rest = found.without(whole.docs) if rest is None else rest.both(found)
            if not len(rest.docs):
                break
        top = max(float(whole.scores.max()), float(rest.scores.max()) if len(rest.docs) else 0.0)
        share = np.zeros(len(whole.docs))
        at = np.searchsorted(whole.docs, title)
        share[at] = np.minimum(words / np.maximum(self.lengths[TITLE][title], 1), 1.0)
        return Hits.sum([rest, Hits(whole.docs, whole.scores + top * (1 + TITLE_SHARE * share))])

    def _holders(self, text: str, fields: tuple[str, ...], within: np.ndarray | None,
                 ranking: bool = False) -> tuple[Hits, np.ndarray]:
        """Return the documents (of within) holding text in one piece, scored by how rare its characters are,
        and those of them holding it in the title; ranking: checked for a ranking bonus (see self.ranking)."""
        whole, title = Hits.none(), EMPTY
        before, self.ranking = self.ranking, self.ranking or ranking
        try:
            for f in fields:
                docs = self._in_one_piece(f, text, within)
                if len(docs):
                    rare = PHRASE_BONUS[f] * self.idf_count(self.chars_count(f, text))
                    whole = whole.either(Hits(docs, np.full(len(docs), rare)))
                    title = docs if f == TITLE else title
        finally:
            self.ranking = before
        return whole, title

    def clause(self, clause: Clause, within: np.ndarray | None = None) -> Hits | None:
        """Match one clause with its OR alternatives (in within, if given); None when it has nothing to match."""
        options = [h for h in (self._single(c, within) for c in [clause, *clause.alternatives]) if h is not None]
        if not options:
            return None
        hits = options[0]
        for other in options[1:]:
            hits = hits.either(other)
        return hits

    def estimate(self, clause: Clause) -> int:
        """Return a bound on the documents a clause can match, from list lengths only."""
        own = 0
        if clause.field in KEYWORD_FIELDS:
            own = self.count(KEYWORD_FIELDS[clause.field], clause.text.strip())
        else:
            fields = TEXT_FIELDS.get(clause.field or "", (TITLE, BODY))
            if clause.phrase:
                own = sum(self.chars_count(f, clause.text) for f in fields)
            else:
                own = min((self.word_count(w, fields) for w in clause.terms()), default=0)
        return own + sum(self.estimate(alt) for alt in clause.alternatives)

    def _single(self, clause: Clause, within: np.ndarray | None = None) -> Hits | None:
        """Match one clause without its alternatives; None when it holds no letter, digit or ideograph.

        Every term must match, stop words too (a query of stop words only
        searches them); a stop word weighs only by its characters' rarity.
        """
        if clause.field in KEYWORD_FIELDS:
            name, text = KEYWORD_FIELDS[clause.field], clause.text.strip()
            docs = self.postings(name, text)[0] if within is None else self.holding(name, text, within)[0]
            return Hits(docs, np.zeros(len(docs)))
        fields = TEXT_FIELDS.get(clause.field or "", (TITLE, BODY))
        if clause.phrase:
            return self.exact(clause.text, fields, within) if word_runs(normalize(clause.text)) else None
        terms = clause.terms()
        if not terms:
            return None
        if len(terms) > 1 and is_passage(clause.text):  # held in one piece somewhere: matched as such
            hits = self._as_passage(clause.text, terms, fields, within, max(len(clause.words()), 1))
            if hits is not None:
                return hits
        # Rarest first; every later term is looked for among the documents left (probing long lists).
        hits = None
        for word in sorted(terms, key=lambda w: self.word_count(w, fields)):
            found = self.word(word, fields, within if hits is None else hits.docs)
            hits = found if hits is None else hits.both(found)
        if len(hits.docs) and (len(terms) > 1 or normalize(clause.text).strip() != terms[0]):
            # A title's length counts its words without stop words: so does the share the text covers.
            hits = self._exact_bonus(hits, clause.text, max(len(clause.words()), 1), fields)
        return hits

    def query(self, parsed: ParsedQuery, late_passes: bool = True) -> Hits | None:
        """Match a whole query; None when nothing in it can be searched.

        A pass that would use more than MAX_POSTINGS postings stops, and the
        query is matched again over the newest blocks of the archive only, as
        large a share as the postings the stopped pass wanted leave room for
        (halved at least each time; after MAX_PASSES - 1 cut passes, none).
        A pass past the deadline stops too: the next covers LATE_SHARE of what
        it did, with LATE_SECONDS more; a pass late again is followed by one
        covering nothing. Without late_passes, OutOfTime is raised instead.
        """
        self.window, self.share = None, 1.0
        for attempt in range(1, MAX_PASSES + 1):
            self.lists, self.spent = {}, 0
            self.budgeted = self.windows is not None
            self.work.passes += 1
            try:
                return self._matched(parsed)
            except OutOfTime:
                if not late_passes:
                    raise
                last = "time" in self.work.capped or attempt >= MAX_PASSES - 1
                self._cut("time", 0.0 if last else self.share * LATE_SHARE)
                if self.deadline is not None:
                    self.deadline = self.clock() + LATE_SECONDS
            except OverBudget:
                wanted = self.share if attempt < MAX_PASSES - 1 else 0.0
                self._cut("postings", wanted * min(0.5 ** attempt, 0.7 * self.max_postings / max(self.spent, 1)))
            finally:
                self.budgeted = False
        raise AssertionError("the last pass covers no document and cannot pass the cap")

    def _cut(self, kind: str, wanted: float) -> None:
        """Narrow the next pass to the newest blocks making at most the wanted share; note the cap hit."""
        self.window, self.share = self.windows.ranges(wanted)
        self.work.searched = min(self.work.searched, self.share)
        if kind not in self.work.capped:
            self.work.capped.append(kind)
        if not len(self.window):
            self.deadline = None  # a pass covering nothing is quick, and must not be cut again

    def prepare(self, parsed: ParsedQuery) -> None:
        """Find every list a query may touch in the term tables, one pass per field for them all."""
        wanted: dict[str, set[str]] = {}
        for clause in parsed.clauses:
            for c in (clause, *clause.alternatives):
                if c.field in KEYWORD_FIELDS:
                    wanted.setdefault(KEYWORD_FIELDS[c.field], set()).add(c.text.strip())
                    continue
                texts = [c.text] if c.phrase else [c.text, *c.terms()]
                for f in TEXT_FIELDS.get(c.field or "", (TITLE, BODY)):
                    for text in texts:
                        wanted.setdefault(f, set()).add(text)
                        for run in word_runs(normalize(text)):
                            wanted[f].add(run)
                            if len(run) == 1:
                                wanted.setdefault(CHARS_OF[f], set()).add(run)
                            wanted.setdefault(GRAMS_OF[f], set()).update(run[i:i + 2] for i in range(len(run) - 1))
        for name, terms in wanted.items():
            self.counts(name, sorted(terms))

    def _matched(self, parsed: ParsedQuery) -> Hits | None:
        """Match a whole query in one pass.

        When a phrase needs its stored text read, the clauses are first matched
        without reading it; only documents every clause may match are read.
        """
        self.prepare(parsed)
        self.limit_to = None
        if any(c.phrase and reads_stored(c.text) for c in parsed.positive):
            self.skip_layout = True
            try:
                candidates = self._all_of(parsed)
            finally:
                self.skip_layout = False
            if candidates is None:
                return None
            self.limit_to = candidates.docs
            self.read_texts(minus(candidates.docs, self._read_docs()))  # newest first
        hits = self._all_of(parsed)
        if hits is None:
            return None
        self.keep_unchecked = True  # a cut check of an excluded phrase excludes what it did not cover
        try:
            for clause in _distinct(c for c in parsed.clauses if c.negated):
                if len(hits.docs):
                    excluded = self.clause(clause, hits.docs)
                    if excluded is not None:
                        hits = hits.without(excluded.docs)
        finally:
            self.keep_unchecked = False
        return hits

    def _all_of(self, parsed: ParsedQuery) -> Hits | None:
        """Match the positive clauses, rarest first, each among the documents the ones before left."""
        hits = None
        for clause in sorted(_distinct(c for c in parsed.clauses if not c.negated), key=self.estimate):
            found = self.clause(clause, None if hits is None else hits.docs)
            if found is not None:
                hits = found if hits is None else hits.both(found)
        return hits


def _distinct(clauses) -> list[Clause]:
    """Return the clauses without repeats: a clause asked twice is matched once (AND of the same is the same)."""
    return list({repr(c): c for c in clauses}.values())
