"""Contract of answers beside matching: they do not depend on the posting cache's state, and every path
outside matching (similar articles, completion, proximity, story lists) is capped by counts, stays under the
matcher's deadline and names each cap it hit in the answer's ``work``.

The index is 1,500 corpus items updated once: some items replaced by changed versions and some deleted with
their file, so the build has deleted documents. Caps are driven by setting small limits on it; the deadline by
a clock the test sets. Counts and outcomes are asserted, never times.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from conftest import corpus_items
from indexer.schema import BODY
from indexer.update import update_index
from indexer.writer import build_index
from search import Engine, SearchRequest, around, budget, ranking, spelling
from search.engine import STORY_CAPPED
from search.match import Matcher
from search.query import parse_query

QUERY = "经济 发展 会议"


def write(path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")


@pytest.fixture(scope="module")
def updated(tmp_path_factory):
    """Build 1,500 corpus items and reprints of three (a story of five copies each), then replace 120 items with
    changed versions and delete 60; return (index, items)."""
    folder = tmp_path_factory.mktemp("work")
    items = corpus_items(1500)
    kept, changed, gone = items[:1320], items[1320:1440], items[1440:]
    long = [i for i in kept if len(i["body"]) > 600][:3]
    kept = kept + [{**i, "id": f"{i['id']}-{k}", "source": f"转载{k}", "body": f"来源:转载{k}\n{i['body']}"}
                   for i in long for k in range(4)]
    for name, part in (("a", kept), ("b", changed), ("c", gone)):
        write(folder / f"{name}.jsonl", part)
    build_index([str(folder / f"{name}.jsonl") for name in "abc"], folder / "index", jobs=1)
    write(folder / "b.jsonl", [{**i, "body": i["body"] + "\n本条有更正。"} for i in changed])
    (folder / "c.jsonl").unlink()
    summary = update_index([str(folder / "a.jsonl"), str(folder / "b.jsonl")], folder / "index", jobs=1,
                           delete_missing=True)
    assert summary["deleted"] >= 60 and summary["replaced"] == 120, summary
    return folder / "index", {"kept": kept, "changed": changed, "gone": gone}


def scored(answer: dict) -> list[tuple[str, float]]:
    return [(h["id"], h["score"]) for h in answer["hits"]]


def test_scores_and_order_do_not_depend_on_what_ran_before(updated):
    index, items = updated
    request = SearchRequest(q=QUERY, size=50)
    cold_engine = Engine(index)
    warm_engine = Engine(index)
    try:
        cold = cold_engine.search(request)
        build = warm_engine.current()
        assert build.cache.deleted is not None and len(build.cache.deleted) >= 60
        build.cache.limit = 30_000  # a small cache: the warm-up below loads lists and evicts others
        for q in ["经济", "发展", "会议", "中国 经济", "国务院 会议", "发展 改革", "会议", "经济 发展"]:
            warm_engine.search(SearchRequest(q=q))
        cached = {key for key in build.cache.items}
        assert {(BODY, "经济"), (BODY, "会议")} & cached  # some of the query's lists are cached ...
        assert build.cache.size <= 30_000 + max(len(v[0]) for v in build.cache.items.values())
        with warm_engine.borrowed(build) as searcher:
            live = {w: len(build.cache.get(searcher, BODY, w)[0]) for w in QUERY.split()}
            counted = dict(zip(QUERY.split(), build.cache.arrays.counts(BODY, QUERY.split())))
        assert any(live[w] < counted[w] for w in live)  # ... and deleted documents are in them
        warm = warm_engine.search(request)
        again = cold_engine.search(request)
    finally:
        cold_engine.close()
        warm_engine.close()
    assert cold["total"] > 50 and scored(warm) == scored(cold) == scored(again)
    assert cold["total"] == warm["total"] and cold["facets"] == warm["facets"]
    # What must not match: a deleted item, or an item without all three words.
    gone = {i["id"] for i in items["gone"]}
    assert not gone & {h["id"] for h in cold["hits"]}
    held = {i["id"]: i for i in items["kept"] + items["changed"]}
    assert all(all(w in held[h["id"]]["title"] + held[h["id"]]["body"] for w in QUERY.split()) for h in cold["hits"])


def jumping(*moments: float):
    """Return a clock reading the given moments, then the last one for ever."""
    readings = itertools.chain(moments, itertools.repeat(moments[-1]))
    return lambda: next(readings)


@pytest.fixture()
def engine(updated):
    engine = Engine(updated[0])
    yield engine
    engine.close()


def largest_story(engine) -> tuple[str, np.ndarray]:
    """Return the id of the story with the most live copies and its copies, first published first."""
    build = engine.current()
    cols = build.columns
    code = int(np.argmax(cols.story_size))
    docs = np.flatnonzero(cols.story == code)
    docs = docs[~np.isin(docs, build.cache.deleted)]
    return f"{int(cols.story_keys[code]):016x}", docs[np.lexsort((docs, cols.published[docs]))]


def ids_of(engine, docs) -> list[str]:
    with engine.borrowed(engine.current()) as searcher:
        return [searcher.stored_fields(int(d))["id"] for d in docs]


def test_a_story_list_holds_its_first_published_copies_up_to_the_cap(engine, monkeypatch):
    story, docs = largest_story(engine)
    assert len(docs) >= 3
    whole = engine.search(SearchRequest(q="", story=story, size=50))
    assert whole["total"] == len(docs) and "story" not in whole["work"]["capped"]
    monkeypatch.setattr(around, "MAX_STORY", 2)
    cut = engine.search(SearchRequest(q="", story=story, size=50))
    assert [h["id"] for h in cut["hits"]] == ids_of(engine, docs[:2])
    assert cut["total"] == 2 and cut["work"]["capped"] == ["story"]
    assert STORY_CAPPED.format(cap=2) in cut["warnings"]
    assert not set(ids_of(engine, docs[2:])) & {h["id"] for h in cut["hits"]}  # later copies are not listed


def test_an_article_page_lists_copies_up_to_the_cap_and_the_deadline(engine, updated, monkeypatch):
    story, docs = largest_story(engine)
    first, second, third = ids_of(engine, docs[:3])
    page = engine.article(third)
    assert [c["id"] for c in page["copies"]][:2] == [first, second] and "story" not in page["work"]["capped"]
    monkeypatch.setattr(around, "MAX_COPIES", 1)
    cut = engine.article(third)
    assert [c["id"] for c in cut["copies"]] == [first] and cut["work"]["capped"][0] == "story"
    monkeypatch.undo()
    # The deadline is set at 0 (0.6 s), the first copy read at 0, then the clock reads 10 s: nothing more is read.
    late = Engine(updated[0], clock=jumping(0.0, 0.0, 10.0))
    try:
        answer = late.article(third)
    finally:
        late.close()
    assert [c["id"] for c in answer["copies"]] == [first] and answer["more_like_this"] == []
    assert answer["work"]["capped"] == ["story", "similar"] and answer["work"]["postings"] == 0


def similar_page(engine, items) -> dict:
    """Return the article page of the first sample item that has a full list of similar articles."""
    for item in items["kept"][:200]:
        page = engine.article(item["id"])
        if len(page["more_like_this"]) == around.MORE_LIKE_THIS:
            return page
    raise AssertionError("no sample item has similar articles")


def test_similar_articles_read_at_most_their_postings_cap(engine, updated, monkeypatch):
    index, items = updated
    page = similar_page(engine, items)
    work = page["work"]
    assert 0 < work["postings"] <= around.MLT_POSTINGS and "similar" not in work["capped"]
    story = {c["id"] for c in page["copies"]} | {page["id"]}
    assert not story & {s["id"] for s in page["more_like_this"]}  # never itself nor a copy
    monkeypatch.setattr(around, "MLT_POSTINGS", work["postings"] // 2)
    cut = engine.article(page["id"])
    assert 0 < cut["work"]["postings"] <= work["postings"] // 2 and cut["work"]["capped"][-1:] == ["similar"]
    assert not story & {s["id"] for s in cut["more_like_this"]}
    monkeypatch.setattr(around, "MLT_POSTINGS", 0)
    none = engine.article(page["id"])
    assert none["more_like_this"] == [] and none["work"]["postings"] == 0 and "similar" in none["work"]["capped"]


def test_similar_articles_weigh_the_first_characters_of_a_long_article(engine, updated, monkeypatch):
    page = similar_page(engine, updated[1])
    monkeypatch.setattr(around, "MLT_TEXT", len(page["title"]))  # the title's words only
    cut = engine.article(page["id"])
    assert cut["work"]["capped"][-1:] == ["similar"] and cut["work"]["postings"] <= page["work"]["postings"]
    story = {c["id"] for c in page["copies"]} | {page["id"]}
    assert not story & {s["id"] for s in cut["more_like_this"]}


def newest_holding(engine, char: str, share: float) -> set[str]:
    """Return the ids of the titles holding char in the newest share of the archive's blocks."""
    build = engine.current()
    rows = build.windows.ranges(share)[0]
    inside = np.zeros(len(build.columns.published), dtype=bool)
    for start, end in rows:
        inside[start:end] = True
    with engine.borrowed(build) as searcher:
        return {searcher.stored_fields(int(d))["title"] for d in np.flatnonzero(inside)
                if char in searcher.stored_fields(int(d))["title"]}


def test_completion_searches_the_newest_titles_when_its_lists_pass_the_cap(engine, monkeypatch):
    whole = engine.complete("中", limit=8)
    assert len(whole["suggestions"]) == 8 and not whole["work"]["capped"]
    monkeypatch.setattr(spelling, "COMPLETE_POSTINGS", 20)
    cut = engine.complete("中", limit=8)
    build = engine.current()
    with engine.borrowed(build) as searcher:
        bound = Matcher(searcher, build.cache, build.lengths).chars_count("title", "中")
    share = max(20 / bound, 1 / len(build.windows.order))
    titles = [s for s in cut["suggestions"] if len(s) > 8]  # whole titles, after the words
    assert cut["work"]["capped"] == ["completion"] and titles
    assert set(titles) <= newest_holding(engine, "中", share)
    assert cut["work"]["postings"] < whole["work"]["postings"]


def test_completion_says_when_its_lexicon_scan_and_position_checks_are_cut(engine, monkeypatch):
    monkeypatch.setattr(spelling, "MAX_SPAN", 3)  # lexicon rows ranked: the first 3 words starting with 中
    scanned = engine.complete("中")
    assert "lexicon" in scanned["work"]["capped"]
    words = [s for s in scanned["suggestions"] if len(s) <= 8]
    assert words and len(words) <= 3 and all(w.startswith("中") for w in words)
    monkeypatch.undo()
    monkeypatch.setattr(budget, "MAX_POSITIONS", 1)
    checked = engine.complete("中国人")
    assert "positions" in checked["work"]["capped"]
    assert all("中国人" in s for s in checked["suggestions"] if len(s) > 8)


def test_completion_reads_no_title_past_the_deadline(updated):
    late = Engine(updated[0], clock=jumping(0.0, 10.0))
    try:
        answer = late.complete("中")
    finally:
        late.close()
    assert answer["work"]["capped"] == ["completion"] and answer["work"]["stored"] == 0
    assert answer["suggestions"] and all(len(s) <= 8 for s in answer["suggestions"])  # words only, no title


def test_proximity_scores_the_best_hits_its_position_lists_allow(engine, monkeypatch):
    q = "经济 发展"
    whole = engine.search(SearchRequest(q=q, size=50))
    assert "proximity" not in whole["work"]["capped"] and whole["total"] > 50
    matching = whole["work"]["positions"] - 2 * 2 * 50  # proximity: 2 terms in 2 fields of the best 50 hits
    monkeypatch.setattr(ranking, "MAX_POSITIONS", matching + 2 * 2 * 3)
    cut = engine.search(SearchRequest(q=q, size=50))
    assert cut["work"]["capped"] == ["proximity"] and cut["total"] == whole["total"]
    assert cut["work"]["positions"] == matching + 2 * 2 * 3  # the best 3 hits checked, not the other 47
    monkeypatch.setattr(ranking, "PROXIMITY_POSITIONS", 2)
    few = engine.search(SearchRequest(q=q, size=50))
    assert "proximity" in few["work"]["capped"]


def test_proximity_adds_nothing_past_the_deadline(engine):
    build = engine.current()
    parsed = parse_query("经济 发展")
    with engine.borrowed(build) as searcher:
        hits = Matcher(searcher, build.cache, build.lengths).query(parsed)
        top = hits.docs[np.argsort(-hits.scores, kind="stable")[:50]]
        on_time = Matcher(searcher, build.cache, build.lengths, deadline=1.0, clock=jumping(0.0))
        late = Matcher(searcher, build.cache, build.lengths, deadline=1.0, clock=jumping(2.0))
        bonus = ranking.proximity(on_time, parsed, top)
        none = ranking.proximity(late, parsed, top)
    assert bonus.max() > 0 and not on_time.work.capped
    assert not none.any() and late.work.capped == ["proximity"] and late.work.positions == 0


def test_did_you_mean_says_when_its_scan_and_tries_are_cut(engine, monkeypatch):
    found = engine.search(SearchRequest(q="经挤"))
    assert found["total"] == 0 and found["suggestion"] == "经济"
    monkeypatch.setattr(spelling, "MAX_TRIES", 1)
    tried = engine.search(SearchRequest(q="经挤"))
    assert "repairs" in tried["work"]["capped"]
    monkeypatch.setattr(spelling, "MAX_SCAN", 3)  # the 3 most frequent words starting with 经 are looked at
    scanned = engine.search(SearchRequest(q="经挤"))
    assert "lexicon" in scanned["work"]["capped"] and scanned["suggestion"] == "经济"
    monkeypatch.setattr(spelling, "MAX_SCAN", 0)
    none = engine.search(SearchRequest(q="经挤"))
    assert "lexicon" in none["work"]["capped"] and none["suggestion"] is None  # 经济 was not looked at
    assert not any(w for w in scanned["warnings"] if "lexicon" in w)


def test_the_hostile_benchmark_prints_every_paths_caps(updated, monkeypatch, capsys):
    """bench.hostile asks every path beside matching too, and its rows name the caps each answer hit."""
    from bench import hostile

    monkeypatch.setattr(around, "MAX_STORY", 2)
    monkeypatch.setattr(around, "MLT_POSTINGS", 0)
    monkeypatch.setattr(spelling, "COMPLETE_POSTINGS", 10)
    monkeypatch.setattr(ranking, "PROXIMITY_POSITIONS", 4)
    hostile.main([str(updated[0]), "--load", "2"])
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]}
    capped = {name: row[7] for name, row in rows.items()}
    assert capped["autocomplete 中"] == capped["autocomplete 中国"] == "completion"
    assert "proximity" in capped["经济 发展 改革 开放 (proximity of the best 50 hits)"]
    assert capped["the longest article's page (copies, similar articles)"] == "similar"
    assert capped["the largest story's list (5 copies)"] == "story" and rows["the largest story's list (5 copies)"][3] == "2"
    assert capped["经济"] == "—" and capped['24 quoted "中 国"'] == "stored"  # a search that hit no cap says so
    assert len(rows) == len(hostile.shapes("")) + 6
