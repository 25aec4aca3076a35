"""Did-you-mean and autocomplete, both from the index's own word lexicon.

Did-you-mean runs only when a query finds fewer than FEW_HITS documents. It
tries two repairs and keeps the one that finds the most documents, offered
when the query found nothing, or when the repair finds at least five times as
many (and at least 2 * FEW_HITS), so an exact rare word is not second-guessed:

- joining two neighbouring words into one the index knows (``衢 州`` -> ``衢州``);
- replacing a word with a known word one edit away (same first character),
  preferring the most frequent (``新能原`` -> ``新能源``).
"""

from __future__ import annotations


from indexer.analysis import normalize, word_runs
from indexer.schema import BODY, TITLE
import numpy as np

from search.query import Clause, ParsedQuery

FEW_HITS = 3
MAX_CANDIDATES = 5  # corrections per unknown piece
MAX_TRIES = 16  # repaired queries tried per clause


def _doc_frequency(reader, word: str) -> int:
    return max(reader.doc_frequency(TITLE, word), reader.doc_frequency(BODY, word))


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


def _corrections(reader, text: str) -> list[str]:
    """Return known words one edit from text, most frequent first."""
    if len(text) < 2 or len(text) > 12:
        return []
    found: dict[str, int] = {}
    for fieldname in (TITLE, BODY):
        for raw in reader.expand_prefix(fieldname, text[0]):
            word = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if abs(len(word) - len(text)) <= 1 and _within_one_edit(text, word):
                found[word] = max(found.get(word, 0), _doc_frequency(reader, word))
    return [w for w, _ in sorted(found.items(), key=lambda kv: -kv[1])[:MAX_CANDIDATES]]


def _repairs(reader, text: str) -> list[str]:
    """Return texts with one unknown piece (the whole, or 2-4 characters) replaced by a known word."""
    folded = "".join(word_runs(normalize(text)))
    out = [c for c in _corrections(reader, folded)]
    for size in (2, 3, 4):
        for i in range(len(folded) - size + 1):
            piece = folded[i:i + size]
            if size < len(folded) and not _doc_frequency(reader, piece):
                out += [folded[:i] + c + folded[i + size:] for c in _corrections(reader, piece) if len(c) == size]
    return list(dict.fromkeys(out))[:MAX_TRIES]


def _plain(clause: Clause) -> bool:
    return not (clause.phrase or clause.field or clause.negated or clause.alternatives)


def _candidates(reader, parsed: ParsedQuery) -> list[list[Clause]]:
    clauses = parsed.clauses
    out = []
    for i in range(len(clauses) - 1):
        a, b = clauses[i], clauses[i + 1]
        if _plain(a) and _plain(b):
            joined = normalize(a.text + b.text)
            if _doc_frequency(reader, joined):
                out.append([*clauses[:i], Clause(joined), *clauses[i + 2:]])
    for i, clause in enumerate(clauses):
        if _plain(clause):
            for word in _repairs(reader, clause.text):
                out.append([*clauses[:i], Clause(word), *clauses[i + 1:]])
    return out


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
    """Return a better query than the one that found few hits, or None."""
    best, best_hits = None, hits
    for clauses in _candidates(matcher.searcher.reader(), parsed):
        found = matcher.query(ParsedQuery(clauses, []))
        count = 0 if found is None else len(found.docs)
        if count > best_hits and (hits == 0 or count >= max(2 * FEW_HITS, 5 * hits)):
            best, best_hits = render(clauses), count
    return best


def complete(matcher, published: np.ndarray, prefix: str, limit: int = 8) -> list[str]:
    """Return up to limit completions: frequent title words, then the newest titles holding the text."""
    folded = normalize(prefix.strip())
    if not folded:
        return []
    reader = matcher.searcher.reader()
    words = []
    for raw in reader.expand_prefix(TITLE, folded):
        word = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if word != folded:
            words.append((reader.doc_frequency(TITLE, word), word))
    words.sort(key=lambda item: (-item[0], item[1]))
    out = [w for _, w in words[: limit // 2]]
    docs = matcher.substring(TITLE, folded)
    for doc in docs[np.argsort(-published[docs], kind="stable")][: limit * 2].tolist():
        title = matcher.searcher.stored_fields(doc).get(TITLE, "")
        if title and title not in out:
            out.append(title)
        if len(out) >= limit:
            break
    return out[:limit]
