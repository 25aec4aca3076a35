"""Pasted passages on a 3,000-item sample of the shared corpus: found, exact, and cheap whatever their length.

A passage is the beginning (20, 50, 100 or 256 characters; a quoted one at most
254, as a query is read up to 256) of a 256-character span of one paragraph of
an article. Pasted unquoted or quoted it finds that article in the top 10 with
no cap hit. Its answer equals the one of matching it run by run and word by
word (search.exact.PASSAGE_CHARS out of reach, the way shorter text is
matched): the same articles match, quoted in the same order, unquoted with the
same ones first (those holding it in one piece). The same passage with one
character changed, or a comma made a full stop, finds the article no more
(quoted), and answers as matching run by run does. The postings and position
lists a 256-character passage takes are at most WORK_BOUND times those of its
own 20-character beginning, plus WORK_SLACK.
"""

from __future__ import annotations

import json

import pytest

import search.exact as exact
import search.match as match
from bench.passages import LENGTHS, draw_passages, pasted
from conftest import corpus_lines
from indexer.writer import build_index
from search import Engine, SearchRequest
from search.query import Clause, ParsedQuery, parse_query

SAMPLE_STRIDE = 22  # every 22nd corpus item: 2,983 items over every year and category
ARTICLES = 10
WORK_BOUND = 2
WORK_SLACK = 20


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Build an index of every SAMPLE_STRIDE-th corpus item; return (engine, [(article fields, span)])."""
    folder = tmp_path_factory.mktemp("passages")
    lines = corpus_lines(70_000)[::SAMPLE_STRIDE]
    (folder / "sample.jsonl").write_text("".join(lines), encoding="utf-8")
    build_index([str(folder / "sample.jsonl")], folder / "index", jobs=1)
    engine = Engine(folder / "index")
    with engine.borrowed(engine.current()) as searcher:
        passages = draw_passages(searcher, ARTICLES)
    assert len(passages) == ARTICLES
    yield engine, passages
    engine.close()


def answer(engine, q: str, collapse: bool = False) -> dict:
    """Return the engine's answer to q, its posting cache emptied first (the work counted in full)."""
    build = engine.current()
    with build.cache.lock:
        build.cache.items.clear()
        build.cache.size = 0
    return engine.search(SearchRequest(q=q, size=10, collapse=collapse))


def matched(engine, parsed: ParsedQuery) -> set[str]:
    """Return the ids of every article a parsed query matches."""
    build = engine.current()
    with engine.borrowed(build) as searcher:
        matcher = match.Matcher(searcher, build.cache, build.lengths, build.columns.published, build.windows)
        hits = matcher.query(parsed)
        return {searcher.stored_fields(d)["id"] for d in ([] if hits is None else hits.docs.tolist())}


def assert_same_answer(engine, q: str, monkeypatch) -> dict:
    """Assert q matches the articles it matches run by run, in the same order (unquoted: the holders of the
    passage in one piece first in both, in an order of their own, then the same others); return the answer."""
    new, found = answer(engine, q), matched(engine, parse_query(q))
    with monkeypatch.context() as m:
        m.setattr(exact, "PASSAGE_CHARS", 10 ** 9)
        old, old_found = answer(engine, q), matched(engine, parse_query(q))
    assert found == old_found
    assert new["total"] == old["total"] and new["facets"] == old["facets"]
    ids, old_ids = [h["id"] for h in new["hits"]], [h["id"] for h in old["hits"]]
    if q.startswith('"'):
        assert ids == old_ids
        return new
    whole = matched(engine, ParsedQuery([Clause(q, phrase=True)], []))
    lifted = min(len(whole), len(ids))
    assert set(ids[:lifted]) | set(old_ids[:lifted]) <= whole
    if len(whole) <= len(ids):
        assert set(ids[:lifted]) == set(old_ids[:lifted]) and ids[lifted:] == old_ids[lifted:]
    return new


@pytest.mark.parametrize("quoted", [False, True], ids=["unquoted", "quoted"])
def test_a_pasted_passage_finds_its_article_as_matching_run_by_run_does(sample, monkeypatch, quoted):
    engine, passages = sample
    for fields, span in passages:
        for length in LENGTHS:
            q = pasted(span, length, quoted)
            got = assert_same_answer(engine, q, monkeypatch)
            assert fields["id"] in [h["id"] for h in got["hits"]], q
            assert got["work"]["capped"] == [] and got["work"]["searched"] == 1.0
            story = next(h["story"]["id"] for h in got["hits"] if h["id"] == fields["id"])
            assert story in [h["story"]["id"] for h in answer(engine, q, collapse=True)["hits"]]


def changed(span: str) -> str:
    """Return the span with its middle ideograph replaced by one in no article of the sample."""
    middle = next(i for i in range(len(span) // 2, len(span)) if "\u4e00" <= span[i] <= "\u9fff")
    return span[:middle] + "龘" + span[middle + 1:]


@pytest.mark.parametrize("length", LENGTHS)
def test_a_passage_changed_by_one_character_does_not_find_its_article(sample, monkeypatch, length):
    engine, passages = sample
    for fields, span in passages:
        for q in (pasted(changed(span[:length]), length, True), pasted(changed(span[:length]), length, False)):
            got = assert_same_answer(engine, q, monkeypatch)
            if q.startswith('"'):
                assert fields["id"] not in [h["id"] for h in got["hits"]], q
        comma = span[:length].find("，")
        if comma > 0:
            q = pasted(span[:comma] + "。" + span[comma + 1:length], length, True)
            got = assert_same_answer(engine, q, monkeypatch)
            assert fields["id"] not in [h["id"] for h in got["hits"]], q


@pytest.mark.parametrize("quoted", [False, True], ids=["unquoted", "quoted"])
def test_a_long_passage_costs_about_what_a_short_one_does(sample, quoted):
    engine, passages = sample
    for fields, span in passages:
        works = {}
        for length in (LENGTHS[0], LENGTHS[-1]):
            work = answer(engine, pasted(span, length, quoted))["work"]
            assert work["capped"] == []
            works[length] = work["postings"] + work["positions"]
        print(f"\n{fields['id']}: work {works}")
        assert works[LENGTHS[-1]] <= WORK_BOUND * works[LENGTHS[0]] + WORK_SLACK
