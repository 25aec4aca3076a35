"""Exact highlights from character spans: no re-segmentation of stored text.

A hit's stored text is folded with the index's ``normalize`` (one code point
for one code point), the query's literal strings are found in it with
``str.find``, overlapping spans are merged (the longest match wins), and the
original text is cut at those offsets. Every slice is HTML-escaped; the only
markup added is our own ``<mark>``.
"""

from __future__ import annotations

import re
from html import escape

from indexer.analysis import normalize

SNIPPET_CHARS = 120
MAX_FRAGMENTS = 3
_SENTENCE = re.compile(r"[^。！？；!?;\n]*[。！？；!?;]?")


def find_spans(folded: str, needles: list[str]) -> list[tuple[int, int]]:
    """Return the merged (start, end) spans where any needle occurs in folded text."""
    spans = []
    for needle in needles:
        if not needle:
            continue
        start = folded.find(needle)
        while start >= 0:
            spans.append((start, start + len(needle)))
            start = folded.find(needle, start + 1)
    return merge_spans(spans)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or touching spans."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def mark(text: str, spans: list[tuple[int, int]], offset: int = 0) -> str:
    """Return text as HTML with <mark> around the spans (given in text + offset coordinates)."""
    out, pos = [], 0
    for start, end in spans:
        start, end = max(start - offset, 0), min(end - offset, len(text))
        if end <= pos or start >= len(text):
            continue
        start = max(start, pos)
        out.append(escape(text[pos:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(escape(text[pos:]))
    return "".join(out)


def highlight(text: str, needles: list[str]) -> str:
    """Return the whole text as HTML with every match marked."""
    return mark(text, find_spans(normalize(text), needles))


def snippet(text: str, needles: list[str], width: int = SNIPPET_CHARS) -> str:
    """Return the best sentence fragments of text as HTML, matches marked, joined with …."""
    spans = find_spans(normalize(text), needles)
    if not spans:
        return escape(_clip(text.replace("\n", " "), width))
    folded = normalize(text)
    candidates = []
    for m in _SENTENCE.finditer(text):
        start, end = m.span()
        inside = [s for s in spans if s[0] >= start and s[1] <= end]
        if inside and text[start:end].strip():
            found = {folded[s:e] for s, e in inside}
            # Most distinct matched characters first (a whole phrase beats its
            # repeated parts), then most matches, then earliest.
            candidates.append((-sum(map(len, found)), -len(inside), start, end, inside))
    candidates.sort()
    pieces, used = [], 0
    for _, _, start, end, inside in candidates[:MAX_FRAGMENTS]:
        if pieces and used >= width:
            break
        start, end = _window(start, end, inside, width)
        pieces.append(mark(text[start:end].replace("\n", " "), spans, offset=start))
        used += end - start
    return " … ".join(pieces)


def _window(start: int, end: int, inside: list[tuple[int, int]], width: int) -> tuple[int, int]:
    """Clip a long sentence to about width characters around its first match."""
    if end - start <= width:
        return start, end
    first = inside[0][0]
    lo = max(start, min(first - width // 4, end - width))
    return lo, min(end, lo + width)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width] + "…"
