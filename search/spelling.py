"""Did-you-mean and autocomplete, both from the build's lexicon (indexer/lexicon.py).

The lexicon holds every word of the build with the documents holding it, its
full pinyin and its initials, sorted for prefix look-up: a Latin prefix is
completed by the words whose pinyin or initials start with it (``quzhou``,
``qz`` -> 衢州), ranked by documents, a name's (jieba's person, place and
organisation tags) counted NAME_WEIGHT times and a word whose whole key was
typed WHOLE_WEIGHT times: initials are typed mostly for names, and ``bj`` is
北京 before 比较.

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
  frequent (``新能原`` -> ``新能源``, ``金砖电吃`` -> ``金砖电池``);
- replacing a Latin term (or two joined: ``qu zhou``) with the words whose
  full pinyin it is (``quzhou`` -> 衢州).

A Latin term that is itself a word of the index (``gdp``, ``iphone``, ``5g``)
is never rewritten.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from indexer.analysis import normalize, word_runs
from indexer.lexicon import INITIALS, NAME, PINYIN, WORDS, Lexicon, keys_of, open_lexicon
from indexer.schema import BODY, TITLE, TITLE_GRAMS
from search.budget import OutOfTime, Windows
from search.query import Clause, ParsedQuery
from search.ranking import late

FEW_HITS = 3
MAX_CANDIDATES = 5  # corrections per unknown piece
MAX_SCAN = 3000  # known words a correction looks at per first character: the most frequent
MAX_SPAN = 1_000_000  # lexicon rows one look-up ranks (a one-letter prefix at a million items: ~300,000)
MAX_TRIES = 4  # repaired queries run, most promising first
MAX_CLAUSES_FOUND = 2  # terms of a query that found something and is still second-guessed
NAME_WEIGHT = 16  # a name's documents count this many times in ranking Latin completions
WHOLE_WEIGHT = 4  # and a word's whose whole pinyin or initials were typed
MAX_TAILS = 200  # second words looked at after a first word's whole key (zhejiang + q...)
MAX_COMPOUNDS = 8  # and pairs of words checked in the titles
COMPLETE_POSTINGS = 100_000  # postings completion's title search may read: past it, the newest titles only
_LATIN = re.compile(r"[a-z0-9]*[a-z][a-z0-9]*")  # what may be pinyin or initials (5g手机: 5gshouji, 5gsj)
_MIXED = re.compile(r"(.*[\u3400-\u9fff])([a-z]+)")  # 浙江q: Chinese typed, then the start of a word's pinyin


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


def lexicon_of(matcher, lexicon: Lexicon | None = None) -> Lexicon | None:
    """Return the given lexicon, or map the one of the build the matcher's searcher reads (None: it has none)."""
    if lexicon is not None:
        return lexicon
    # Whoosh's searcher keeps the index it was opened from as _ix; a FileStorage knows its folder.
    folder = getattr(getattr(getattr(matcher.searcher, "_ix", None), "storage", None), "folder", None)
    return open_lexicon(Path(folder)) if folder else None


def _rows(matcher, lexicon: Lexicon, table: int, prefix: str, exact: bool = False) -> np.ndarray:
    """Return the words of the table's rows that start with (exact: equal) prefix, at most MAX_SPAN ("lexicon")."""
    lo, hi = lexicon.span(table, prefix, exact)
    if hi - lo > MAX_SPAN:
        matcher.work.cap("lexicon")
        hi = lo + MAX_SPAN
    return lexicon.words_in(table, lo, hi)


def _corrections(matcher, lexicon: Lexicon, text: str) -> list[tuple[int, str]]:
    """Return (documents, word) for known words one edit from text, most frequent first (MAX_CANDIDATES).

    The words looked at are the MAX_SCAN most frequent starting with text's first character.
    """
    if len(text) < 2 or len(text) > 12:
        return []
    words = _rows(matcher, lexicon, WORDS, text[0])
    if len(words) > MAX_SCAN:
        matcher.work.cap("lexicon")
    scanned = lexicon.top(words, MAX_SCAN).tolist()
    # A correction of one character would find every article holding it: more than any word (衢洲 -> 衢).
    found = [(int(lexicon.df[n]), w) for n, w in ((n, lexicon.word(n)) for n in scanned)
             if len(w) > 1 and abs(len(w) - len(text)) <= 1 and _within_one_edit(text, w)]
    if len(found) > MAX_CANDIDATES:
        matcher.work.cap("repairs")
    return found[:MAX_CANDIDATES]


def _held_latin(lexicon: Lexicon, text: str) -> bool:
    """Tell whether text is a Latin word (letters, digits) the index holds: never rewritten."""
    return bool(_LATIN.fullmatch(text)) and lexicon.find(text) is not None


def _pinyin_words(matcher, lexicon: Lexicon, text: str) -> list[tuple[int, str]]:
    """Return (documents, word) for the words of two characters or more whose full pinyin is text, names
    first (MAX_CANDIDATES): one syllable typed alone (``qu``) is too often no Chinese word at all."""
    if not _LATIN.fullmatch(text) or lexicon.find(text) is not None:
        return []
    words = _rows(matcher, lexicon, PINYIN, text, exact=True)
    best = lexicon.top(words, 2 * MAX_CANDIDATES, _weights(lexicon, words, None)).tolist()
    return [(int(lexicon.df[n]), w) for n, w in ((n, lexicon.word(n)) for n in best) if len(w) > 1][:MAX_CANDIDATES]


def _weights(lexicon: Lexicon, words: np.ndarray, whole: np.ndarray | None) -> np.ndarray:
    """Return the factor of each word's documents in ranking Latin completions (NAME_WEIGHT, WHOLE_WEIGHT)."""
    weight = np.where(lexicon.flags[words] & NAME, NAME_WEIGHT, 1)
    return weight if whole is None else weight * np.where(whole, WHOLE_WEIGHT, 1)


def _repairs(matcher, lexicon: Lexicon, text: str, pieces: bool) -> list[tuple[int, str]]:
    """Return (documents, text) with the whole text, or (pieces) an unknown 2-3 character piece, corrected."""
    folded = "".join(word_runs(normalize(text)))
    if _held_latin(lexicon, folded):
        return []
    out = _corrections(matcher, lexicon, folded) + _pinyin_words(matcher, lexicon, folded)
    for size in (2, 3) if pieces else ():
        for i in range(len(folded) - size + 1):
            piece = folded[i:i + size]
            if size < len(folded) and not _doc_frequency(matcher, piece):
                out += [(df, folded[:i] + c + folded[i + size:]) for df, c in _corrections(matcher, lexicon, piece)
                        if len(c) == size]
    return out


def _plain(clause: Clause) -> bool:
    return not (clause.phrase or clause.field or clause.negated or clause.alternatives)


def _candidates(matcher, lexicon: Lexicon, parsed: ParsedQuery, pieces: bool) -> list[list[Clause]]:
    """Return repaired clause lists, the most promising (most frequent repair) first."""
    clauses = parsed.clauses
    out: list[tuple[int, int, list[Clause]]] = []
    for i in range(len(clauses) - 1):
        a, b = clauses[i], clauses[i + 1]
        if _plain(a) and _plain(b):
            joined = normalize(a.text + b.text)
            df = _doc_frequency(matcher, joined)
            found = [(df, joined)] if df else _pinyin_words(matcher, lexicon, joined)[:1]  # qu zhou: 衢州
            for df, text in found:
                out.append((df, len(out), [*clauses[:i], Clause(text), *clauses[i + 2:]]))
    for i, clause in enumerate(clauses):
        if _plain(clause):
            repairs: dict[str, int] = {}
            for df, text in _repairs(matcher, lexicon, clause.text, pieces):
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


def worth_repairing(parsed: ParsedQuery, hits: int) -> bool:
    """Tell whether a query that found hits documents is second-guessed at all (MAX_CLAUSES_FOUND)."""
    return not (hits and len(parsed.clauses) > MAX_CLAUSES_FOUND)


def repaired_texts(parsed: ParsedQuery, hits: int) -> tuple[list[str], list[str], list[str]]:
    """Return the texts suggest() looks up: neighbouring plain terms joined, plain terms folded, and (when
    nothing was found) their 2-3 character pieces."""
    clauses = parsed.clauses
    joined = [normalize(a.text + b.text) for a, b in zip(clauses, clauses[1:]) if _plain(a) and _plain(b)]
    terms = ["".join(word_runs(normalize(c.text))) for c in clauses if _plain(c)]
    pieces = [t[i:i + size] for t in terms for size in ((2, 3) if not hits else ()) if size < len(t)
              for i in range(len(t) - size + 1)]
    return joined, terms, pieces


def suggest(matcher, parsed: ParsedQuery, hits: int, lexicon: Lexicon | None = None) -> str | None:
    """Return a better query than the one that found few hits, or None.

    Repairs of pieces inside a term (the costly part) are tried only when the
    query found nothing; tries stop at the matcher's deadline. The tries'
    postings and reads count in the matcher's work, their passes and caps do
    not (they are not the answer's); "repairs" is capped when not every
    repair was tried, "lexicon" when the words scanned were cut.
    """
    best, best_hits = None, hits
    lexicon = lexicon_of(matcher, lexicon)
    if lexicon is None or not worth_repairing(parsed, hits):
        return None
    work = matcher.work
    capped, searched, passes = list(work.capped), work.searched, work.passes
    candidates = _candidates(matcher, lexicon, parsed, pieces=hits == 0)
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


def complete(matcher, published: np.ndarray, prefix: str, limit: int = 8, windows: Windows | None = None,
             lexicon: Lexicon | None = None) -> list[str]:
    """Return up to limit completions: frequent words, then the newest titles holding the text.

    The words are the lexicon's that start with the text, and for Latin text
    those whose pinyin or initials start with it (completions_of); they take
    half the list, all of it for Latin text (typed for its words; a title
    holding ``qz`` is rare). Titles are searched in the newest part of the
    archive whose lists fit COMPLETE_POSTINGS (given windows), and read until
    the matcher's deadline; either cut is named "completion" in the matcher's work.
    """
    folded = normalize(prefix.strip())
    if not folded:
        return []
    lexicon = lexicon_of(matcher, lexicon)
    words = completions_of(matcher, lexicon, folded, limit) if lexicon is not None else []
    out = words[:word_share(folded, limit)]
    docs = _titles_holding(matcher, folded, windows) if len(out) < limit else np.zeros(0, dtype=np.int64)
    newest = docs[np.argsort(-published[docs], kind="stable")[: limit * 2]] if len(docs) else docs
    for doc in newest.tolist():
        if len(out) >= limit:
            break
        if late(matcher):
            matcher.work.cap("completion")
            break
        title = matcher.searcher.stored_fields(doc).get(TITLE, "")
        matcher.work.stored += 1
        if title and title not in out:
            out.append(title)
    return out[:limit]


def word_share(folded: str, limit: int) -> int:
    """Return how many of limit completions of folded text may be words: all for Latin text, else half."""
    return limit if is_latin(folded) else limit // 2


def is_latin(folded: str) -> bool:
    """Tell whether folded text (spaces dropped) may be pinyin or initials."""
    return bool(_LATIN.fullmatch(folded.replace(" ", "")))


def is_mixed(folded: str) -> re.Match | None:
    """Return the match of Chinese followed by the start of a word's pinyin (浙江q), or None."""
    return _MIXED.fullmatch(folded)


def completions_of(matcher, lexicon: Lexicon, folded: str, limit: int) -> list[str]:
    """Return up to limit words completing folded text, best first (other than the text itself).

    Chinese text: the words starting with it, by documents. Latin text
    (spaces dropped): also the words whose full pinyin or initials start with
    it; Chinese then Latin (``浙江q``): the words starting with the Chinese
    whose pinyin starts with its pinyin and the letters. Among Latin
    completions, names and words whose whole key the text is weigh more (_weights).
    """
    mixed = _MIXED.fullmatch(folded)
    key = folded.replace(" ", "")
    if not (mixed or _LATIN.fullmatch(key)):
        best = lexicon.top(_rows(matcher, lexicon, WORDS, folded), limit + 1).tolist()
    else:
        spans, within = [(WORDS, key), (PINYIN, key), (INITIALS, key)], None
        if mixed:
            keys = keys_of(mixed.group(1))
            spans = [(PINYIN, keys[0] + mixed.group(2))] if keys else []
            within = lexicon.span(WORDS, mixed.group(1))  # the words starting with the Chinese typed
        ranks: dict[int, int] = {}
        for table, typed in spans:  # each table's best, merged: a word's rank is its best in any table
            for word, rank in zip(*(a.tolist() for a in _ranked(matcher, lexicon, table, typed, limit + 1, within))):
                ranks[word] = max(rank, ranks.get(word, 0))
        best = sorted(ranks, key=ranks.__getitem__, reverse=True)
    found = [w for w in (lexicon.word(n) for n in best) if w != folded][:limit]
    if len(found) < limit and not mixed and _LATIN.fullmatch(key):
        found += [w for w in _compounds(matcher, lexicon, key, limit - len(found)) if w not in found]
    return found


def _compounds(matcher, lexicon: Lexicon, key: str, limit: int) -> list[str]:
    """Return two words that titles hold together and whose keys start with key (浙江衢州 for zhejiangq,
    zjqz): a word whose whole key is a head of key (the longest first), then a word whose key starts
    with the rest, among the best MAX_TAILS whose first character follows the first word's last in some
    title (the pair's list length, nothing read); at most MAX_COMPOUNDS pairs are checked in the titles
    (their postings count in the work)."""
    out: list[str] = []
    checked = 0
    for table in (PINYIN, INITIALS):
        for cut in range(len(key) - 1, 1, -1):
            heads = _rows(matcher, lexicon, table, key[:cut], exact=True)
            head = [w for w in map(lexicon.word, lexicon.top(heads, 2, _weights(lexicon, heads, None)).tolist())
                    if len(w) > 1][:1]
            if not head:
                continue
            tails = [w for w in map(lexicon.word, _ranked(matcher, lexicon, table, key[cut:], MAX_TAILS, None)[0]
                                    .tolist()) if len(w) > 1]
            held = matcher.counts(TITLE_GRAMS, [head[0][-1] + w[0] for w in tails])
            for tail in [w for w, n in zip(tails, held) if n]:
                if len(out) >= limit or checked >= MAX_COMPOUNDS or late(matcher):
                    return out
                checked += 1
                if head[0] + tail not in out and len(matcher.substring(TITLE, head[0] + tail)):
                    out.append(head[0] + tail)
    return out


def _ranked(matcher, lexicon: Lexicon, table: int, typed: str, k: int,
            within: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the k best words of a table's rows starting with typed (and numbered within), with their ranks."""
    words = _rows(matcher, lexicon, table, typed)
    whole = np.arange(len(words)) < np.subtract(*lexicon.span(table, typed, exact=True)[::-1])  # equal rows first
    if table == WORDS:
        whole[:] = False  # a Latin word is completed by its letters, not weighed as a key
    if within is not None:
        kept = (words >= within[0]) & (words < within[1])
        words, whole = words[kept], whole[kept]
    return lexicon.ranked(words, k, _weights(lexicon, words, whole))


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
