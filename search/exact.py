"""Find where text's exact characters stand: runs, passages, and text in one piece.

- ``substring`` of a run of characters: one character -> the character field;
  two -> the pair field; more -> documents holding every pair, of which those
  holding the run as a word are certain and the rest are checked by position;
  a pasted passage (PASSAGE_CHARS+): documents holding a few of its rarest
  pairs, checked in their stored text, so its length costs nothing;
- ``layout``: where text stands in one piece, punctuation and all: its runs
  where they stand beside each other (by position), then the stored text;
  typed without spaces, starting and ending with a word character, by position
  alone: its runs and the bridges over its punctuation (``下，各``), each in place.

Every read counts against the request's caps (search/budget.py); a check a cap
cuts covers the newest candidates.
"""

from __future__ import annotations

import re

import numpy as np

from indexer.analysis import WORD_RUN, bridges_of, normalize, word_runs
from indexer.schema import BODY, CHARS_OF, GRAMS_OF, TITLE
from indexer.postings import ARRAY_FIELDS
from search.budget import MAX_STORED, BudgetedReader
from search.sets import EMPTY, common, distinct, minus, union

# A pasted passage (this many letters, digits and ideographs or more: a span of
# 20 characters has 16 or more) is matched through a few of its rarest pairs and
# its candidates' stored text (ExactMatcher._passage): the cost follows the
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


def bridged(text: str) -> list[tuple[str, int]] | None:
    """Return the bridges that, with its runs, place text in one piece by position alone (bridges_of); else None.

    None also for one run (the run's own pairs place it) and for text typed
    with spaces (they do not count in the stored text, and positions would).
    """
    folded = normalize(text).strip()
    if len(word_runs(folded)) < 2 or any(ch.isspace() for ch in folded):
        return None
    return bridges_of(folded)


def needs_stored(text: str) -> bool:
    """Tell whether the embedded index needs the stored text to check that text stands in one piece."""
    return reads_stored(text) and bridged(text) is None


class ExactMatcher(BudgetedReader):
    """Find the documents holding text's exact characters, or holding it in one piece, for one request."""

    def __init__(self, *args, **kwargs) -> None:
        """Take BudgetedReader's arguments."""
        super().__init__(*args, **kwargs)
        self.texts: dict[tuple[int, str], str] = {}  # (document, field) -> its folded text without spaces
        self.folded: dict[tuple[int, str], str] = {}  # (document, field) -> its folded text, as indexed
        self.limit_to: np.ndarray | None = None  # only these documents can still be hits
        self.skip_layout = False  # stored text is not read: layout checks keep every candidate
        self.keep_unchecked = False  # a check cut by a cap keeps what it did not cover (to exclude it)

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
        bridges = bridged(text)
        if bridges is not None:  # the rarest bridges first: they narrow a stock phrase to its true holders
            within = self._holding_bridges(GRAMS_OF[textfield], [b for b, _ in bridges], within)
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
        bridges = bridged(text)
        if bridges is not None and self.positional(GRAMS_OF[textfield]):
            return self._placed(GRAMS_OF[textfield], text, bridges, docs)
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

    def _holding_bridges(self, grams: str, bridges: list[str], within: np.ndarray | None) -> np.ndarray:
        """Return the documents (of within) holding the rarest bridges, until they are few (PASSAGE_FEW)."""
        docs = within
        for bridge, _ in sorted(zip(bridges, self.counts(grams, bridges)), key=lambda bc: bc[1]):
            if docs is not None and len(docs) <= PASSAGE_FEW:
                break
            docs = self.postings(grams, bridge)[0] if docs is None else self.holding(grams, bridge, docs)[0]
        return docs

    def _placed(self, grams: str, text: str, bridges: list[tuple[str, int]], docs: np.ndarray) -> np.ndarray:
        """Keep the documents where text stands in one piece, read from positions alone.

        Every run of two characters or more where its pairs place it, every
        bridge where it stands, all from one start: that is the text, marks and
        all (the runs of one character are inside the bridges). The bridges,
        rare, go first and leave few documents for the runs' pairs.
        """
        core = normalize(text).strip()
        parts = [(off, bridge, False) for bridge, off in bridges]
        parts += [(m.start(), m.group(), True) for m in WORD_RUN.finditer(core) if len(m.group()) > 1]
        terms = sum(len(run) // 2 + 1 if is_run else 1 for _, run, is_run in parts)
        docs, unchecked = self.affordable("positions", docs, terms)
        whole = None
        for off, term, is_run in parts:
            found = self.run_starts(grams, term, docs) if is_run else self.term_starts(grams, term, docs)
            shifted = found[(found & 0xFFFFFFFF) >= off] - off
            whole = shifted if whole is None else common(whole, shifted)
            docs = distinct(whole >> 32)
            if not len(docs):
                break
        return self._checked(docs, unchecked)

    def positional(self, field: str) -> bool:
        """Tell whether the index keeps a field's positions as arrays (run_starts and term_starts read them)."""
        arrays = self.cache.arrays
        return arrays is not None and arrays.positional and field in ARRAY_FIELDS

    def term_starts(self, field: str, term: str, docs: np.ndarray) -> np.ndarray:
        """Return where a term stands in the given documents, as doc << 32 | position (counted as work)."""
        self._on_time()
        self.work.positions += len(docs)
        found = self.cache.arrays.position_arrays(field, term, docs, self.searcher.schema[field].format.decode_positions)
        if found is None:
            return EMPTY
        held, at = found
        return distinct((held.astype(np.int64) << 32) | at)

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
