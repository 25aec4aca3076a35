"""What users type into the box, read leniently, turned into Whoosh queries.

The language: words separated by spaces must all match; ``"quoted text"`` (also
“…” and ＂…＂) is an exact phrase; ``-word`` excludes; ``OR`` between two
words; ``title:`` ``source:`` ``category:`` restrict a word to a field. Anything
else is literal text. Parsing never raises: where text had to be reinterpreted
or cut, a warning says so.

How clauses match is search/match.py's business: a term matches when its words
match or when its exact characters occur. Chinese typed without spaces is
segmented by the index's analyzer; each of its words must match, and the whole
run in one piece ranks higher.

Stop words (的, 是, the, it) are required like any other word: a clause's
``terms`` hold them, and matching finds them by their characters (the word
field leaves them out). They are left out only where that cannot change what
matches: of a clause's ``words``, which weigh ranking, proximity and
highlights, and of its ``terms`` when another term holds their characters
(的确的 needs only 的确). A Latin word typed in upper case (IT, AT) is no stop
word: it is a word of its own, as in the index. So ``是`` or ``the`` alone
search for 是 or the, and ``IT行业`` needs IT as well as 行业.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dataclass_field

from indexer.analysis import get_segmenter, is_stop_word, normalize
from indexer.schema import BODY, CATEGORY, SOURCE, TITLE

MAX_QUERY_CHARS = 256
MAX_TERMS = 24


TEXT_FIELDS = {"title": (TITLE,), "body": (BODY,)}
KEYWORD_FIELDS = {"source": SOURCE, "category": CATEGORY}
_QUOTES = {'"': '"', "“": "”", "＂": "＂", "「": "」"}
_TOKEN = re.compile(r'(-?)(?:(\w+):)?(["“＂「])|(\S+)')


@dataclass
class Clause:
    """One thing the user asked for: a term or a phrase, maybe in a field, maybe excluded."""

    text: str
    phrase: bool = False
    field: str | None = None  # "title", "body", "source", "category"
    negated: bool = False
    alternatives: list[Clause] = dataclass_field(default_factory=list)  # for `a OR b`: [b, ...]

    def words(self) -> list[str]:
        """Return the clause's top-level words that weigh in ranking: stop words left out."""
        return query_words(self.text)

    def terms(self) -> list[str]:
        """Return the distinct words a match must hold: stop words too, unless another term holds them."""
        terms = list(dict.fromkeys(query_words(self.text, stop_words=True)))
        meant = set(self.words())
        return [t for t in terms if t in meant or not any(t in other for other in terms if other != t)]


@dataclass
class ParsedQuery:
    """The clauses of a query, and what had to be reinterpreted."""

    clauses: list[Clause]
    warnings: list[str]

    @property
    def positive(self) -> list[Clause]:
        """Return the clauses a hit must satisfy, OR alternatives included."""
        out = []
        for c in self.clauses:
            if not c.negated:
                out.append(c)
                out.extend(c.alternatives)
        return out


def query_words(text: str, stop_words: bool = False) -> list[str]:
    """Return the top-level words of text as the index segments them, stop words only if asked for.

    A word counts as a stop word as the index counts it: by its folded text
    and the case it was typed in (IT is a word, it a stop word).
    """
    folded = normalize(text)
    words = []
    for word, start, end in get_segmenter().cut(folded):
        if any(ch.isalnum() for ch in word) and (stop_words or not is_stop_word(word, text[start:end])):
            words.append(word)
    return words


def parse_query(text: str) -> ParsedQuery:
    """Read what a user typed into clauses; never raises."""
    warnings: list[str] = []
    text = text or ""
    if len(text) > MAX_QUERY_CHARS:
        text = text[:MAX_QUERY_CHARS]
        warnings.append(f"查询过长，只使用了前 {MAX_QUERY_CHARS} 个字符")
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    clauses = _read_clauses(text, warnings)
    clauses = _join_or(clauses, warnings)
    if len(clauses) > MAX_TERMS:
        clauses = clauses[:MAX_TERMS]
        warnings.append(f"查询词过多，只使用了前 {MAX_TERMS} 个")
    return ParsedQuery(clauses, list(dict.fromkeys(warnings)))  # each warning once


def _read_clauses(text: str, warnings: list[str]) -> list[Clause]:
    clauses: list[Clause] = []
    pos = 0
    while True:
        match = _TOKEN.search(text, pos)
        if not match:
            return clauses
        neg, fieldname, quote, bare = match.groups()
        if quote:
            close = text.find(_QUOTES[quote], match.end())
            if close < 0:
                warnings.append("引号不成对，已按普通文字处理")
                bare = text[match.start():].replace(quote, " ")
                clauses.extend(_bare_clause(part, warnings) for part in bare.split())
                return [c for c in clauses if c]
            phrase = text[match.end():close]
            clauses.append(_field_clause(Clause(phrase, phrase=True, negated=bool(neg)), fieldname, warnings))
            pos = close + 1
            continue
        clause = _bare_clause(bare, warnings)
        if clause:
            clauses.append(clause)
        pos = match.end()


def _bare_clause(token: str, warnings: list[str]) -> Clause | None:
    negated = token.startswith("-") and len(token) > 1
    if negated:
        token = token[1:]
    name, sep, rest = token.partition(":")
    if not sep:
        name, sep, rest = token.partition("：")
    if sep and rest and name.lower() in {*TEXT_FIELDS, *KEYWORD_FIELDS}:
        return _field_clause(Clause(rest, negated=negated), name, warnings)
    if token.strip("-") == "":
        return None
    return Clause(token, negated=negated)


def _field_clause(clause: Clause, fieldname: str | None, warnings: list[str]) -> Clause:
    if fieldname is None:
        return clause
    if fieldname.lower() in {*TEXT_FIELDS, *KEYWORD_FIELDS}:
        clause.field = fieldname.lower()
        return clause
    warnings.append(f"不支持的字段 {fieldname}:，已按普通文字处理")
    clause.text = f"{fieldname} {clause.text}"
    return clause


def _join_or(clauses: list[Clause], warnings: list[str]) -> list[Clause]:
    out: list[Clause] = []
    i = 0
    while i < len(clauses):
        c = clauses[i]
        is_or = c.text == "OR" and not c.phrase and not c.field and not c.negated
        if is_or and out and i + 1 < len(clauses) and not out[-1].negated and not clauses[i + 1].negated:
            out[-1].alternatives.append(clauses[i + 1])
            i += 2
            continue
        if is_or:
            warnings.append("OR 需要放在两个词之间，已按普通文字处理")
        out.append(c)
        i += 1
    return out
