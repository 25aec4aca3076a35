"""Relevance: BM25F over the word and character fields, times a mild recency prior.

How a document's score is made (weights in search/query.py):

- each term scores BM25F in the field it matched; a whole-word match in the
  title counts 3x one in the body, and a characters-only match (the term is a
  substring of some longer word) counts far less than a whole-word match;
- a quoted phrase, or an unspaced run of Chinese found in one piece, adds a
  bonus, and so do plain terms standing close together (a sloppy phrase);
- in relevance order the score is multiplied by
  ``1 + RECENCY_WEIGHT * 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)``:
  today's article gets up to +15 %, one a half-life old +7.5 %, an old one
  nearly nothing. ``recency_weight=0`` switches it off.
"""

from __future__ import annotations

import numpy as np
from whoosh.scoring import BM25F

RECENCY_WEIGHT = 0.15
RECENCY_HALF_LIFE_DAYS = 180.0


class RecencyWeighting(BM25F):
    """BM25F whose final score leans mildly towards recent news."""

    use_final = True

    def __init__(self, published: np.ndarray, now: int, weight: float = RECENCY_WEIGHT,
                 half_life_days: float = RECENCY_HALF_LIFE_DAYS) -> None:
        super().__init__()
        self.published = published
        self.now = now
        self.weight = weight
        self.half_life = half_life_days * 86400.0

    def final(self, searcher, docnum, score):
        age = max(self.now - int(self.published[docnum]), 0)
        return score * (1.0 + self.weight * 0.5 ** (age / self.half_life))


def make_weighting(published: np.ndarray, now: int, weight: float, half_life_days: float):
    """Return the weighting model for relevance order (plain BM25F when the prior is off)."""
    if weight <= 0:
        return BM25F()
    return RecencyWeighting(published, now, weight, half_life_days)
