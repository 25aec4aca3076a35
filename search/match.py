"""Find exactly the documents a parsed query matches, and score them: the Matcher.

Matching does not go through Whoosh's query objects, which score every hit in
Python. Instead each term's posting list is read once into arrays
(search/postings.py), each read counted against the request's caps
(search/budget.py), and combined with sorted-array set operations
(search/sets.py):

- a word matches where the word index has it (scored with BM25), or where its
  exact characters occur (``substring``, search/exact.py; a flat, lower score);
- clauses AND together, OR alternatives unite, negated clauses subtract;
- clauses, and the words of a clause, are matched rarest first (by list
  lengths, known without reading a list); every later one only among the
  documents the earlier ones left: a list much longer than those is probed at
  them (a binary search per document in the mapped arrays), not read. Scores
  depend on list lengths only, so probing and reading score alike;
- a pass of matching that would pass the postings cap or its deadline is
  matched again over the newest blocks of the archive (``query``).

Matcher builds on ExactMatcher (search/exact.py), which builds on
BudgetedReader (search/budget.py).
"""

from __future__ import annotations

import math
import time

import numpy as np

from indexer.analysis import normalize, word_runs
from indexer.schema import BODY, CHARS_OF, GRAMS_OF, TITLE
from search.budget import LATE_SECONDS, LATE_SHARE, MAX_PASSES, MAX_POSTINGS, OutOfTime, OverBudget, Windows
from search.exact import ExactMatcher, is_passage, needs_stored
from search.postings import PostingCache
from search.query import KEYWORD_FIELDS, TEXT_FIELDS, Clause, ParsedQuery
from search.sets import EMPTY, Hits, minus

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


def idf(doc_count: int, df: int) -> float:
    """Return BM25's inverse document frequency."""
    return math.log(1.0 + (doc_count - df + 0.5) / (df + 0.5))


class Matcher(ExactMatcher):
    """Match and score parsed queries against one opened build."""

    def __init__(self, searcher, cache: PostingCache, lengths: dict[str, np.ndarray],
                 published: np.ndarray | None = None, windows: Windows | None = None,
                 max_postings: int = MAX_POSTINGS, deadline: float | None = None,
                 clock=time.perf_counter) -> None:
        super().__init__(searcher, cache, published, windows, max_postings, deadline, clock)
        self.lengths = lengths
        self.doc_count = max(searcher.doc_count_all(), 1)  # deleted documents count, as in list lengths
        self.avg = {f: max(float(lengths[f].mean()), 1.0) if len(lengths[f]) else 1.0 for f in lengths}

    def idf(self, df: int) -> float:
        """Return the inverse document frequency of df hits among the documents searched."""
        return idf(self.doc_count, max(round(df / max(self.share, 1e-9)), 1))

    def idf_count(self, count: int) -> float:
        """Return the inverse document frequency of a list of count postings over the whole archive."""
        return idf(self.doc_count, max(count, 1))

    def word_idf(self, word: str) -> float:
        """Return the inverse document frequency of a word in bodies."""
        return self.idf_count(self.count(BODY, word))

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
        if any(c.phrase and needs_stored(c.text) for c in parsed.positive):
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
