"""Chinese analysis shared by the indexer and the search layer.

Parts, in the order text flows through them:

- ``normalize``: a length-preserving fold (full-width -> half-width, Latin case,
  traditional -> simplified, one code point for one code point), so offsets in
  the folded text are offsets in the text the reader sees.
- ``Segmenter``: jieba's dictionary and algorithm, run through rjieba (the same
  output, ~25x faster; ``tests/test_analysis.py`` compares them on the corpus).
  Loaded once per process, with the index's user dictionary if it has one.
- ``iter_words``: whole jieba words plus the dictionary words inside longer
  words (公司 inside 有限公司), sub-words sharing the position of their word.
  Stop words (``is_stop_word``) are left out of this stream only: their
  characters and pairs stay in the recall streams, so a query can still find
  them. A Latin token written in upper case (IT, AT) is never a stop word:
  ``it`` is a pronoun, ``IT`` a trade.
- ``iter_bigrams`` / ``iter_chars``: the character-level recall streams: every
  pair of adjacent characters inside a run of letters, digits and ideographs,
  positioned by character (so a phrase of pairs is an exact substring), and
  every single such character (for one-character queries; no positions).
- ``iter_bridges``: the punctuation between two runs (up to BRIDGE_MAX marks,
  spaces not counting) with the characters either side, positioned at the first
  (``下，各``): indexed with the pairs, so a quoted text with punctuation is
  placed by position alone, however many documents hold its words.
- ``WordTokenizer`` / ``BigramTokenizer`` / ``CharTokenizer``: the streams as
  Whoosh tokenizers; Whoosh pickles them into the index schema, so their names
  stay fixed.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from whoosh.analysis import Token, Tokenizer

# Bump when any token stream changes: an index built with another version
# answers differently and must be rebuilt.
ANALYZER_VERSION = "3"  # 2: upper-case Latin stop words (IT, AT) are words; 3: bridges over punctuation
# Most punctuation marks (spaces not counting) between two runs that a bridge spans: ``”。“`` is three.
BRIDGE_MAX = 3

# Words that carry no meaning on their own: left out of the word field (they
# are in nearly every article) and out of a query's words for ranking. They stay
# in the character and pair fields, and a query still requires them there.
STOP_WORDS = frozenset(
    "的 了 和 与 及 或 是 在 也 就 都 而 着 之 于 被 把 让 对 从 以 其 这 那 个 "
    "啊 吗 呢 吧 a an and are as at be by for in is it of on or the to was".split()
)


class _FoldTable(dict):
    """Map each code point to its folded single code point, computed on first use."""

    def __init__(self) -> None:
        super().__init__()
        self._t2s = None

    def __missing__(self, code: int) -> int:
        ch = chr(code)
        folded = unicodedata.normalize("NFKC", ch)
        if len(folded) != 1:
            folded = ch
        lowered = folded.lower()
        if len(lowered) == 1:
            folded = lowered
        if "\u3400" <= folded <= "\u9fff" or "\uf900" <= folded <= "\ufaff":
            folded = self._to_simplified(folded)
        self[code] = ord(folded)
        return self[code]

    def _to_simplified(self, ch: str) -> str:
        if self._t2s is None:
            import opencc

            self._t2s = opencc.OpenCC("t2s")
        converted = self._t2s.convert(ch)
        return converted if len(converted) == 1 else ch


_FOLD = _FoldTable()


def normalize(text: str) -> str:
    """Fold width, case and script, keeping one code point per code point."""
    return text.translate(_FOLD)


# A word character is a letter, digit or ideograph: exactly str.isalnum().
WORD_RUN = re.compile(r"[^\W_]+")


def word_runs(text: str) -> list[str]:
    """Return the runs of letters, digits and ideographs in already-folded text."""
    return WORD_RUN.findall(text)


class Segmenter:
    """jieba segmentation, loaded once per process."""

    def __init__(self, userdict: str | None = None) -> None:
        import rjieba

        self._jieba = rjieba
        self.userdict_bytes = b""
        if userdict:
            self.userdict_bytes = Path(userdict).read_bytes()
            for word, freq, tag in parse_userdict(self.userdict_bytes):
                rjieba.add_word(word, freq, tag)

    @property
    def dict_hash(self) -> str:
        """Return a hash naming the dictionary: rjieba's built-in one plus the user's."""
        from importlib.metadata import version

        digest = hashlib.sha1(f"rjieba-{version('rjieba')}\0".encode())
        digest.update(self.userdict_bytes)
        return digest.hexdigest()[:16]

    def cut(self, text: str) -> list[tuple[str, int, int]]:
        """Return (word, start, end) for each jieba word of already-folded text."""
        tokens = self._jieba.tokenize(text)
        if "-" in text:
            tokens = [piece for token in tokens for piece in _split_hyphen(token)]
        return tokens

    def has_word(self, word: str) -> bool:
        """Tell whether the dictionary holds the word."""
        return self._jieba.has_word(word)


def _split_hyphen(token: tuple[str, int, int]) -> list[tuple[str, int, int]]:
    """Split a-18 into a, -, 18 as jieba does (rjieba keeps it whole)."""
    word, start, _ = token
    if "-" not in word or len(word) == 1:
        return [token]
    pieces, pos = [], start
    for piece in re.split(r"(-+)", word):
        if piece:
            pieces.append((piece, pos, pos + len(piece)))
            pos += len(piece)
    return pieces


def parse_userdict(data: bytes) -> Iterator[tuple[str, int | None, str | None]]:
    """Yield (word, freq, tag) from a jieba user dictionary."""
    for line in data.decode("utf-8-sig").splitlines():
        parts = line.strip().split()
        if not parts:
            continue
        word = normalize(parts[0])
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        tag = parts[-1] if len(parts) > 1 and not parts[-1].isdigit() else None
        yield word, freq, tag


_segmenter: Segmenter | None = None
_segmenter_lock = threading.Lock()


def get_segmenter() -> Segmenter:
    """Return the process's segmenter, loading it on first use."""
    global _segmenter
    if _segmenter is None:
        with _segmenter_lock:
            if _segmenter is None:
                _segmenter = Segmenter()
    return _segmenter


def load_segmenter(userdict: str | None) -> Segmenter:
    """Load the process's segmenter with a user dictionary, before any segmentation."""
    global _segmenter
    with _segmenter_lock:
        current = _segmenter
        wanted = Path(userdict).read_bytes() if userdict else b""
        if current is None or current.userdict_bytes != wanted:
            if current is not None and current.userdict_bytes:
                # rjieba has no way to remove words: a second, different user
                # dictionary in one process would mix with the first.
                raise RuntimeError("a different user dictionary is already loaded")
            _segmenter = Segmenter(userdict)
        return _segmenter


def is_stop_word(word: str, original: str | None = None) -> bool:
    """Tell whether a folded word is a stop word, given the text it was folded from if known.

    Written in upper case (IT, AT, ＩＴ) a Latin word is not one: case folding
    must not turn an abbreviation into the pronoun or preposition.
    """
    return word in STOP_WORDS and not (original and original.isupper())


def _is_cjk(word: str) -> bool:
    return all("\u3400" <= ch <= "\u9fff" for ch in word)


def iter_words(text: str, original: str | None = None, tokens: list | None = None) -> Iterator[tuple[str, int, int, int]]:
    """Yield (word, pos, start, end) for the words of already-folded text.

    :param original: the text before folding (same offsets); without it every
        stop word is left out, upper case or not.
    :param tokens: Segmenter.cut of the text, when the caller has it.
    """
    seg = get_segmenter()
    pos = 0
    for word, start, end in seg.cut(text) if tokens is None else tokens:
        if not any(ch.isalnum() for ch in word):
            continue
        if not is_stop_word(word, original and original[start:end]):
            yield word, pos, start, end
        if len(word) > 2 and _is_cjk(word):
            yield from _iter_subwords(seg, word, pos, start)
        pos += 1


def _iter_subwords(seg: Segmenter, word: str, pos: int, start: int) -> Iterator[tuple[str, int, int, int]]:
    for size in range(2, len(word)):
        for i in range(len(word) - size + 1):
            sub = word[i : i + size]
            if seg.has_word(sub) and sub not in STOP_WORDS:
                yield sub, pos, start + i, start + i + size


def iter_bigrams(text: str) -> Iterator[tuple[str, int, int, int]]:
    """Yield (pair, pos, start, end) for each two adjacent word characters, positioned by character."""
    for match in WORD_RUN.finditer(text):
        run, base = match.group(), match.start()
        for i in range(len(run) - 1):
            yield run[i : i + 2], base + i, base + i, base + i + 2


def iter_bridges(text: str) -> Iterator[tuple[str, int]]:
    """Yield (bridge, pos) for each gap of 1..BRIDGE_MAX marks between two runs: 下，各 at 下's position.

    Spaces in a gap do not count (as they do not in a quoted phrase), so a
    bridge is never a pair: it always holds a mark.
    """
    before = None
    for match in WORD_RUN.finditer(text):
        if before is not None:
            gap = "".join(text[before:match.start()].split())
            if 0 < len(gap) <= BRIDGE_MAX:
                yield text[before - 1] + gap + match.group()[0], before - 1
        before = match.end()


def bridges_of(core: str) -> list[tuple[str, int]] | None:
    """Return the bridges of a text without spaces and their offsets, when they place all of it; else None.

    They do when it starts and ends with a letter, digit or ideograph and no
    gap between its runs is longer than BRIDGE_MAX: then its runs (by their
    pairs) and its bridges, each where it stands, are the whole text.
    """
    runs = list(WORD_RUN.finditer(core))
    if not runs or runs[0].start() or runs[-1].end() != len(core) or any(ch.isspace() for ch in core):
        return None
    if any(b.start() - a.end() > BRIDGE_MAX for a, b in zip(runs, runs[1:])):
        return None
    return list(iter_bridges(core))


def iter_chars(text: str) -> Iterator[tuple[str, int, int, int]]:
    """Yield (char, pos, start, end) for each word character (letter, digit, ideograph)."""
    for match in WORD_RUN.finditer(text):
        base = match.start()
        for i, ch in enumerate(match.group()):
            yield ch, base + i, base + i, base + i + 1


class _StreamTokenizer(Tokenizer):
    """Turn one of the (text, pos, start, end) streams into Whoosh tokens."""

    stream = staticmethod(iter_words)

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True,
                 mode="", **kwargs):
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        folded = normalize(value)
        for text, pos, start, end in self.tokens(folded, value):
            t.text = text
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = value[start:end]
            if positions:
                t.pos = start_pos + pos
            if chars:
                t.startchar = start_char + start
                t.endchar = start_char + end
            yield t

    def tokens(self, folded: str, original: str) -> Iterator[tuple[str, int, int, int]]:
        """Return the stream's (text, pos, start, end) tokens of folded text."""
        return self.stream(folded)


class WordTokenizer(_StreamTokenizer):
    """Whoosh tokenizer for whole words and their dictionary sub-words."""

    stream = staticmethod(iter_words)

    def tokens(self, folded: str, original: str) -> Iterator[tuple[str, int, int, int]]:
        """Return the words of folded text, upper-case Latin stop words kept (they are read in original)."""
        return iter_words(folded, original)


class BigramTokenizer(_StreamTokenizer):
    """Whoosh tokenizer for the character-pair recall fields (phrases, substrings)."""

    stream = staticmethod(iter_bigrams)


class CharTokenizer(_StreamTokenizer):
    """Whoosh tokenizer for the single-character recall fields."""

    stream = staticmethod(iter_chars)


def explain(text: str) -> dict[str, list[tuple[str, int, int, int]]]:
    """Return each field stream's tokens for a text, as (text, pos, start, end)."""
    folded = normalize(text)
    return {
        "normalized": folded,
        "words": list(iter_words(folded, text)),
        "bigrams": list(iter_bigrams(folded)),
        "chars": list(iter_chars(folded)),
    }
