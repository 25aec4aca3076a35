"""How the corpus's vocabulary grows with its items, and Heaps' law fitted to it.

Distinct terms of the index's word fields (jieba words and the dictionary words inside them, title and
body together) and of its character-pair fields, counted on prefixes of the corpus in its own order
(by date), and V(n) = K · n^β fitted to each by least squares on log V against log n. The growth
benchmark (bench/scale.py) makes its copies bring new terms along that curve.

Run as ``python -m bench.vocabulary [CORPUS]`` to print the table and both fits.
"""

from __future__ import annotations

import math
import random
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from indexer.analysis import STOP_WORDS, get_segmenter, iter_words, normalize, word_runs

FIRST_PREFIX = 1000
# Heaps' exponents of the corpus (`python -m bench.vocabulary`), fitted over its last four doublings
# (prefixes of 8,000 … 65,606 items): what the growth beyond the corpus extends.
WORDS_BETA = 0.4267
PAIRS_BETA = 0.4282
RARE_ITEMS = 2  # a word in at most this many base items may be rewritten into a new term


@dataclass(frozen=True)
class Heaps:
    """Heaps' law V(n) = k · n^beta: distinct terms after n items."""

    k: float
    beta: float

    def __call__(self, n: float) -> float:
        return self.k * n ** self.beta


def item_words(doc: dict) -> set[str]:
    """Return the distinct terms an item gives the word fields (title and body together)."""
    words: set[str] = set()
    for text in (doc.get("title") or "", doc.get("body") or ""):
        words.update(word for word, _, _, _ in iter_words(normalize(text)))
    return words


def item_pairs(doc: dict) -> set[str]:
    """Return the distinct character pairs an item gives the pair fields (title and body together)."""
    pairs: set[str] = set()
    for text in (doc.get("title") or "", doc.get("body") or ""):
        for run in word_runs(normalize(text)):
            pairs.update(run[i:i + 2] for i in range(len(run) - 1))
    return pairs


def prefixes(total: int, first: int = FIRST_PREFIX) -> list[int]:
    """Return the prefix sizes measured: first, twice that, … while below total, then total."""
    sizes = []
    size = first
    while size < total:
        sizes.append(size)
        size *= 2
    return [*sizes, total]


def measure_growth(docs: Iterable[dict], sizes: list[int]) -> Iterator[tuple[int, int, int]]:
    """Yield (items, distinct words, distinct pairs) after each prefix size of docs, in their order."""
    words: set[str] = set()
    pairs: set[str] = set()
    wanted = iter(sorted(sizes))
    target = next(wanted, None)
    for count, doc in enumerate(docs, 1):
        words |= item_words(doc)
        pairs |= item_pairs(doc)
        while target is not None and count == target:
            yield count, len(words), len(pairs)
            target = next(wanted, None)


def fit_heaps(points: list[tuple[int, int]]) -> Heaps:
    """Fit V(n) = K · n^β to (n, V) points by least squares on log V against log n."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(v) for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    beta = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return Heaps(math.exp(my - beta * mx), beta)


def render(rows: list[tuple[int, int, int]], fits: dict[str, tuple[Heaps, Heaps, float]]) -> str:
    """Return the growth table (measured counts, and each fit's) and the fitted laws, as markdown."""
    header = ["items", "distinct words", *fits, "distinct pairs", *fits]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for n, w, p in rows:
        cells = [f"{n:,}", f"{w:,}", *(f"{words(n):,.0f}" for words, _, _ in fits.values()),
                 f"{p:,}", *(f"{pairs(n):,.0f}" for _, pairs, _ in fits.values())]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for name, (words, pairs, first) in fits.items():
        kept = [row for row in rows if row[0] >= first]
        off = [max(abs(law(n) / v - 1) for n, v in zip((r[0] for r in kept), (r[i] for r in kept)))
               for i, law in ((1, words), (2, pairs))]
        lines.append(f"{name}: words V(n) = {words.k:.2f} · n^{words.beta:.4f}, pairs V(n) = {pairs.k:.2f} · "
                     f"n^{pairs.beta:.4f} (off the counts it fits by at most {off[0]:.1%} and {off[1]:.1%})")
    return "\n".join(lines)


def corpus_growth(docs: list[dict]) -> tuple[list[tuple[int, int, int]], dict[str, tuple[Heaps, Heaps, float]]]:
    """Measure docs' growth on doubling prefixes; return the rows and the fits (words, pairs, first prefix
    fitted) over every prefix and over the last four doublings (from a sixteenth of docs on: what growth
    beyond docs extends)."""
    rows = list(measure_growth(docs, prefixes(len(docs))))
    fits = {}
    for name, first in (("fit, every prefix", 0), ("fit, last four doublings", len(docs) / 16)):
        kept = [row for row in rows if row[0] >= first]
        fits[name] = fit_heaps([(n, w) for n, w, _ in kept]), fit_heaps([(n, p) for n, _, p in kept]), first
    return rows, fits


def _is_cjk(text: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in text)


def rare_words(base: list[dict]) -> set[str]:
    """Return the whole jieba words (ideographs, two or more) found in at most RARE_ITEMS base items."""
    seg, found = get_segmenter(), Counter()
    for doc in base:
        words = set()
        for text in (doc.get("title") or "", doc.get("body") or ""):
            words.update(w for w, _, _ in seg.cut(normalize(text)) if len(w) > 1 and _is_cjk(w))
        found.update(words - STOP_WORDS)
    return {word for word, items in found.items() if items <= RARE_ITEMS}


class VocabularyGrowth:
    """Rewrite rare words of copies into new terms, so an archive of k copies has the distinct words and
    pairs of Heaps' law: the base's counts times k^β.

    A copy's rewritten word is the same new word wherever it stands in that copy, of the same length
    (so an item's text keeps its size), its characters drawn from the base's by a hash of the copy and
    the word. Each copy is counted as it is written, through the index's own word and pair streams: an
    item rewrites as many words as the archive's count lags behind the copy's share of its target, so
    what the segmenter makes of the new words (one word, or pieces, merged with a neighbour) is what
    is counted. When the pairs run ahead of their target, a new word's characters follow pairs the base
    already has instead, so it adds words and few pairs.
    """

    def __init__(self, base: list[dict]) -> None:
        self.words: set[str] = set()
        self.pairs: set[str] = set()
        for doc in base:
            self.words |= item_words(doc)
            self.pairs |= item_pairs(doc)
        self.first = (len(self.words), len(self.pairs))
        self.rare = rare_words(base)
        self.chars = sorted({ch for pair in self.pairs for ch in pair if _is_cjk(ch)})
        self.follows: dict[str, list[str]] = {}
        for pair in sorted(self.pairs):
            if _is_cjk(pair):
                self.follows.setdefault(pair[0], []).append(pair[1])

    def targets(self, factor: int) -> tuple[float, float]:
        """Return the distinct words and pairs an archive of factor copies is to have."""
        return self.first[0] * factor ** WORDS_BETA, self.first[1] * factor ** PAIRS_BETA

    def grow(self, docs: list[dict], copy: int) -> list[dict]:
        """Return copy number copy's items (copies before it grown already) with rare words made new."""
        if copy == 0:
            return docs
        start, goal = (len(self.words), len(self.pairs)), self.targets(copy + 1)
        made: dict[str, str] = {}
        grown = []
        for i, doc in enumerate(docs, 1):
            share = i / len(docs)
            lag_words = start[0] + (goal[0] - start[0]) * share - len(self.words)
            few_pairs = len(self.pairs) > start[1] + (goal[1] - start[1]) * share
            changed = dict(doc)
            for field in ("title", "body"):
                if doc.get(field):
                    changed[field], lag_words = self._rewrite(doc[field], made, copy, lag_words, few_pairs)
            self.words |= item_words(changed)
            self.pairs |= item_pairs(changed)
            grown.append(changed)
        return grown

    def _rewrite(self, text: str, made: dict[str, str], copy: int, lag: float, few_pairs: bool) -> tuple[str, float]:
        """Return text with its rare words rewritten (those made before, and new ones while lag > 0)."""
        pieces, at = [], 0
        for word, start, end in get_segmenter().cut(normalize(text)):
            if word not in made and lag > 0 and word in self.rare:
                made[word] = self._new_word(word, copy, few_pairs)
                lag -= 1
            if word in made:
                pieces += [text[at:start], made[word]]
                at = end
        return "".join([*pieces, text[at:]]), lag

    def _new_word(self, word: str, copy: int, few_pairs: bool) -> str:
        """Return copy's new word for a word: as long, its characters drawn by a hash of both."""
        draw = random.Random(f"{copy}\0{word}")  # seeded by a string: the same draws in every process
        chars = [draw.choice(self.chars)]
        while len(chars) < len(word):
            nexts = self.follows.get(chars[-1]) if few_pairs else None
            chars.append(draw.choice(nexts or self.chars))
        return "".join(chars)


def main(argv: list[str]) -> None:
    """Print the corpus's vocabulary growth and the fitted laws."""
    from bench import corpus

    docs = corpus.read_docs(argv[0] if argv else corpus.DEFAULT_CORPUS)
    print(render(*corpus_growth(docs)))


if __name__ == "__main__":
    main(sys.argv[1:])
