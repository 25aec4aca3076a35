"""Did-you-mean and autocomplete, both from the index's own word lexicon.

Did-you-mean runs only when a query finds fewer than FEW_HITS documents. It
tries two repairs, the MAX_TRIES most promising, and keeps the one that finds the most documents, offered
when the query found nothing, or when the repair finds at least five times as
many (and at least 2 * FEW_HITS), so an exact rare word is not second-guessed.
A query that found something is second-guessed only when it has at most
MAX_CLAUSES_FOUND terms: one with more (a pasted headline) found what it names.
The repairs:

- joining two neighbouring words into one the index knows (``衢 州`` -> ``衢州``);
- replacing a term, or (when nothing was found) a 2-3 character piece of it,
  with a known word one edit away (same first character), preferring the most
  frequent (``新能原`` -> ``新能源``, ``金砖电吃`` -> ``金砖电池``).
"""

from __future__ import annotations

import itertools

import numpy as np
from whoosh.reading import MultiReader

from indexer.analysis import normalize, word_runs
from indexer.schema import BODY, TITLE
from search.budget import OutOfTime, Windows
from search.query import Clause, ParsedQuery
from search.ranking import late

FEW_HITS = 3
MAX_CANDIDATES = 5  # corrections per unknown piece
MAX_SCAN = 3000  # lexicon words looked at per first character and field
MAX_TRIES = 4  # repaired queries run, most promising first
MAX_CLAUSES_FOUND = 2  # terms of a query that found something and is still second-guessed
LEXICON_DOCS = 30_000  # documents whose words are scanned: the largest segments', and as many the newest's
COMPLETE_POSTINGS = 100_000  # postings completion's title search may read: past it, the newest titles only


def _doc_frequency(matcher, word: str) -> int:
    return max(matcher.count(TITLE, word), matcher.count(BODY, word))


def _within_one_edit(a: str, b: str) -> bool:
    """Tell whether b is a one-character substitution, insertion, deletion or swap of a."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _lexicon(reader):
    """Return a reader of the words scanned for corrections and completions: the largest segments holding
    LEXICON_DOCS documents, and the newest segments holding as many.

    An index's reader merges every segment's sorted words one by one, and at a
    million documents that is fifty segments; the largest few hold every word
    common enough to suggest, at a fraction of the cost, and the newest the
    words that came with the latest updates (a name in today's news). A
    smaller index is read whole.
    """
    if reader.is_atomic():
        return reader
    leaves = [leaf for leaf, _ in reader.leaf_readers()]  # in index order: updates' segments last
    chosen: dict[int, object] = {}
    for order in (sorted(leaves, key=lambda leaf: -leaf.doc_count_all()), leaves[::-1]):
        held = 0
        for leaf in order:
            chosen.setdefault(id(leaf), leaf)
            held += leaf.doc_count_all()
            if held >= LEXICON_DOCS:
                break
    picked = [leaf for leaf in leaves if id(leaf) in chosen]
    return picked[0] if len(picked) == 1 else MultiReader(picked)


def _scan(matcher, field: str, prefix: str) -> list[str]:
    """Return the lexicon's words that start with prefix, at most MAX_SCAN (more: "lexicon" is capped)."""
    words = [raw.decode("utf-8") if isinstance(raw, bytes) else raw for raw in
             itertools.islice(_lexicon(matcher.searcher.reader()).expand_prefix(field, prefix), MAX_SCAN + 1)]
    if len(words) > MAX_SCAN:
        matcher.work.cap("lexicon")
    return words[:MAX_SCAN]


def _corrections(matcher, text: str) -> list[tuple[int, str]]:
    """Return (documents, word) for known words one edit from text, most frequent first (MAX_CANDIDATES).

    The words come from the lexicon (at most MAX_SCAN of them) and are counted
    in the index's arrays all at once, not through every segment's term file.
    """
    if len(text) < 2 or len(text) > 12:
        return []
    found = [w for w in _scan(matcher, BODY, text[0]) if abs(len(w) - len(text)) <= 1 and _within_one_edit(text, w)]
    if len(found) > MAX_CANDIDATES:
        matcher.work.cap("repairs")
    return sorted(zip(matcher.counts(BODY, found), found), reverse=True)[:MAX_CANDIDATES]


def _repairs(matcher, text: str, pieces: bool) -> list[tuple[int, str]]:
    """Return (documents, text) with the whole text, or (pieces) an unknown 2-3 character piece, corrected."""
    folded = "".join(word_runs(normalize(text)))
    out = list(_corrections(matcher, folded))
    for size in (2, 3) if pieces else ():
        for i in range(len(folded) - size + 1):
            piece = folded[i:i + size]
            if size < len(folded) and not _doc_frequency(matcher, piece):
                out += [(df, folded[:i] + c + folded[i + size:]) for df, c in _corrections(matcher, piece)
                        if len(c) == size]
    return out


def _plain(clause: Clause) -> bool:
    return not (clause.phrase or clause.field or clause.negated or clause.alternatives)


def _candidates(matcher, parsed: ParsedQuery, pieces: bool) -> list[list[Clause]]:
    """Return repaired clause lists, the most promising (most frequent repair) first."""
    clauses = parsed.clauses
    out: list[tuple[int, int, list[Clause]]] = []
    for i in range(len(clauses) - 1):
        a, b = clauses[i], clauses[i + 1]
        if _plain(a) and _plain(b):
            joined = normalize(a.text + b.text)
            df = _doc_frequency(matcher, joined)
            if df:
                out.append((df, len(out), [*clauses[:i], Clause(joined), *clauses[i + 2:]]))
    for i, clause in enumerate(clauses):
        if _plain(clause):
            repairs: dict[str, int] = {}
            for df, text in _repairs(matcher, clause.text, pieces):
                repairs[text] = max(df, repairs.get(text, 0))
            for text, df in repairs.items():
                out.append((df, len(out), [*clauses[:i], Clause(text), *clauses[i + 1:]]))
    out.sort(key=lambda item: (-item[0], item[1]))
    return [c for _, _, c in out]


def render(clauses: list[Clause]) -> str:
    """Write clauses back as query text."""
    parts = []
    for c in clauses:
        text = f'"{c.text}"' if c.phrase else c.text
        if c.field:
            text = f"{c.field}:{text}"
        if c.negated:
            text = "-" + text
        parts.append(" OR ".join([text, *(render([alt]) for alt in c.alternatives)]))
    return " ".join(parts)


def suggest(matcher, parsed: ParsedQuery, hits: int) -> str | None:
    """Return a better query than the one that found few hits, or None.

    Repairs of pieces inside a term (the costly part) are tried only when the
    query found nothing; tries stop at the matcher's deadline. The tries'
    postings and reads count in the matcher's work, their passes and caps do
    not (they are not the answer's); "repairs" is capped when not every
    repair was tried, "lexicon" when the words scanned were cut.
    """
    best, best_hits = None, hits
    if hits and len(parsed.clauses) > MAX_CLAUSES_FOUND:
        return None
    work = matcher.work
    capped, searched, passes = list(work.capped), work.searched, work.passes
    candidates = _candidates(matcher, parsed, pieces=hits == 0)
    own = [k for k in work.capped if k not in capped]  # lexicon, repairs
    if len(candidates) > MAX_TRIES:
        own.append("repairs")
    try:
        for clauses in candidates[:MAX_TRIES]:
            try:
                found = matcher.query(ParsedQuery(clauses, []), late_passes=False)
            except OutOfTime:
                own.append("repairs")
                break
            count = 0 if found is None else len(found.docs)
            if count > best_hits and (hits == 0 or count >= max(2 * FEW_HITS, 5 * hits)):
                best, best_hits = render(clauses), count
    finally:
        work.capped, work.searched, work.passes = capped, searched, passes
        for kind in own:
            work.cap(kind)
    return best


def complete(matcher, published: np.ndarray, prefix: str, limit: int = 8, windows: Windows | None = None) -> list[str]:
    """Return up to limit completions: frequent title words, then the newest titles holding the text.

    The words come from the lexicon corrections use (at most MAX_SCAN of them)
    and are counted in the index's arrays all at once: a common first character
    has hundreds of title words, and counting each through every segment's
    term file took seconds at a million documents (fifty segments). Titles are
    searched in the newest part of the archive whose lists fit
    COMPLETE_POSTINGS (given windows), and read until the matcher's deadline;
    either cut is named "completion" in the matcher's work.
    """
    folded = normalize(prefix.strip())
    if not folded:
        return []
    found = [w for w in _scan(matcher, TITLE, folded) if w != folded]
    words = sorted(zip(matcher.counts(TITLE, found), found), key=lambda item: (-item[0], item[1]))
    out = [w for _, w in words[: limit // 2]]
    docs = _titles_holding(matcher, folded, windows)
    newest = docs[np.argsort(-published[docs], kind="stable")[: limit * 2]] if len(docs) else docs
    for doc in newest.tolist():
        if late(matcher):
            matcher.work.cap("completion")
            break
        title = matcher.searcher.stored_fields(doc).get(TITLE, "")
        matcher.work.stored += 1
        if title and title not in out:
            out.append(title)
        if len(out) >= limit:
            break
    return out[:limit]


def _titles_holding(matcher, folded: str, windows: Windows | None) -> np.ndarray:
    """Return the documents whose title holds the text, searched in the newest part whose lists fit the cap."""
    if late(matcher):
        matcher.work.cap("completion")
        return np.zeros(0, dtype=np.int64)
    bound = matcher.chars_count(TITLE, folded)
    if windows is not None and bound > COMPLETE_POSTINGS:
        matcher.work.cap("completion")
        matcher.window = windows.ranges(max(COMPLETE_POSTINGS / bound, 1 / len(windows.order)))[0]
    return matcher.substring(TITLE, folded)
