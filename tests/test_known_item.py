"""Known-item check on a 20,000-item sample of the shared corpus: what a user copies out of an
article finds that article.

For 500 random items: a random exact 4-8 character span of the body that occurs in no other item
of the sample finds the item in the top 10 (>= 99 %, never an empty answer); the same span in
quotes finds it (100 %); the exact title finds it at rank 1 (>= 95 %; when several items share
the very same title, as the daily 联播快讯 round-ups do, no query can single one out, so rank 1
then means an item with that very title comes first; the strict figure is printed beside it).
The figures are printed (pytest -s shows them).
"""

import random

import pytest

from conftest import corpus_items
from indexer.writer import build_index
from search import Engine, SearchRequest

SAMPLE = 20_000
PROBES = 500
SEED = 20261130


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Build an index of a fixed random 20,000-item sample; return (engine, items)."""
    rng = random.Random(SEED)
    items = rng.sample(corpus_items(65_606), SAMPLE)
    folder = tmp_path_factory.mktemp("known")
    import json

    (folder / "sample.jsonl").write_text(
        "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    build_index([str(folder / "sample.jsonl")], folder / "index")
    return Engine(folder / "index"), items


def unique_span(rng, item, everything: str) -> str | None:
    """Return a 4-8 character span of the body found in no other item, or None."""
    body = item["body"]
    for _ in range(40):
        size = rng.randint(4, 8)
        start = rng.randrange(0, max(1, len(body) - size))
        span = body[start:start + size]
        if len(span) == size and "\n" not in span and span.strip() == span and everything.count(span) == body.count(span):
            return span
    return None


def rank_of(engine, q: str, item_id: str) -> tuple[int | None, list[dict]]:
    hits = engine.search(SearchRequest(q=q, size=10))["hits"]
    ids = [h["id"] for h in hits]
    return (ids.index(item_id) if item_id in ids else None), hits


def test_known_items_are_found_by_what_a_user_copies(sample):
    engine, items = sample
    rng = random.Random(SEED + 1)
    everything = "\x00".join(i["body"] for i in items)
    probes = [(item, unique_span(rng, item, everything)) for item in rng.sample(items, PROBES)]
    probes = [(item, span) for item, span in probes if span]
    span_top10 = quoted = empty = title_first = title_strict = 0
    for item, span in probes:
        rank, hits = rank_of(engine, span, item["id"])
        span_top10 += rank is not None
        empty += not hits
        quoted += rank_of(engine, f'"{span}"', item["id"])[0] is not None
        rank, hits = rank_of(engine, item["title"], item["id"])
        title_strict += rank == 0
        title_first += rank == 0 or (bool(hits) and hits[0]["title"] == item["title"])
    n = len(probes)
    print(f"\nknown-item check: {n} probes on {SAMPLE} items: span in top 10 {span_top10 / n:.1%}, "
          f"empty answers {empty}, quoted span found {quoted / n:.1%}, title at rank 1 {title_first / n:.1%} "
          f"(strictly first {title_strict / n:.1%})")
    assert n >= 490
    assert empty == 0
    assert span_top10 >= 0.99 * n
    assert quoted == n
    assert title_first >= 0.95 * n


def test_a_span_from_nowhere_in_the_sample_finds_nothing(sample):
    engine, items = sample
    everything = "\x00".join(i["title"] + i["body"] for i in items)
    for q in ("衢州锐能新能源", "马克·吐温", "银行发展农业"):
        assert q not in everything
        assert engine.search(SearchRequest(q=f'"{q}"'))["total"] == 0
