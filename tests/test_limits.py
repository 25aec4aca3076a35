"""Contract of search/budget.py's caps: every request's work is bounded, and a cut answer says so.

Hostile query shapes run against the whole shared corpus (65,606 items), and
each answer's ``work`` (postings taken, position lists decoded, stored
documents read) stays under the caps. Where a cap cut a check, ``warnings``
says so and the answer is exact for what the check covered: the newest
candidates are checked, every hit is a true match, every true match newer than
the oldest hit is a hit, and an excluded phrase excludes whatever was not
checked. A query whose matching would use more postings than the cap is
matched over the newest blocks of the archive only, and is exact for them.
Counts, not times: the same on any machine. The cap in time is driven by a
clock the test sets, so it too is the same on any machine.
"""

import itertools
import json

import numpy as np
import pytest

from conftest import corpus_items
from indexer.analysis import normalize
from indexer.writer import build_index
from search import Engine, SearchRequest
from search import spelling
from search.budget import CAPPED, LATE_SHARE, MAX_PASSES, MAX_POSITIONS, MAX_STORED
from search.match import Matcher
from search.query import parse_query

LETTERS = "中国人大会议发展经济社会主义建设工作时间新闻联播"  # 24 characters


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Build the whole shared corpus; return (engine, items by id)."""
    items = corpus_items(65_606)
    folder = tmp_path_factory.mktemp("limits")
    source = folder / "corpus.jsonl"
    source.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    build_index([str(source)], folder / "index")
    engine = Engine(folder / "index")
    yield engine, {item["id"]: item for item in items}
    engine.close()


def text_of(item: dict, field: str) -> str:
    return "".join(normalize(item.get(field) or "").split())


def holds(item: dict, core: str) -> bool:
    return core in text_of(item, "title") or core in text_of(item, "body")


def every_hit(engine, q: str, **kw) -> tuple[dict, list[dict]]:
    """Return the first page's answer and every hit of every page."""
    first = engine.search(SearchRequest(q=q, size=50, **kw))
    hits = list(first["hits"])
    for page in range(2, min(first["total"] // 50 + 2, 40)):
        hits += engine.search(SearchRequest(q=q, size=50, page=page, **kw))["hits"]
    return first, hits


def test_24_quoted_phrases_with_spaces_read_at_most_the_cap(corpus):
    engine, items = corpus
    answer, hits = every_hit(engine, " ".join(['"中 国"'] * 24))
    work = answer["work"]
    assert work["stored"] == MAX_STORED and "stored" in work["capped"]
    assert CAPPED["stored"].format(cap=MAX_STORED) in answer["warnings"]
    assert 0 < answer["total"] <= MAX_STORED and len(hits) == answer["total"]
    found = {h["id"] for h in hits}
    assert all(holds(items[i], "中国") for i in found)  # 中 and 国 apart (中美两国) never match
    # Exact for what it covered: the newest candidates. A true match newer than the oldest hit is a hit.
    oldest = min(h["published"] for h in hits)
    newer = {i for i, item in items.items() if (item.get("date") or "") > oldest and holds(item, "中国")}
    assert newer and newer <= found
    apart = [i for i, item in items.items() if (item.get("date") or "") > oldest and not holds(item, "中国")
             and "中" in item["body"] and "国" in item["body"]]
    assert apart and not found & set(apart)


def test_a_quoted_stock_phrase_with_a_comma_finds_every_holder_however_many_hold_its_words(corpus):
    """More articles hold the phrase's words than the stored-text cap reads; its bridge (下，各) places it."""
    engine, items = corpus
    phrase = "以习近平同志为核心的党中央坚强领导下，各"
    words = {i for i, item in items.items() if holds(item, phrase[:-2])}
    holders = {i for i, item in items.items() if holds(item, normalize(phrase))}
    assert len(words) > 2 * MAX_STORED and 0 < len(holders) < len(words)
    answer, hits = every_hit(engine, f'"{phrase}"', collapse=False)
    assert {h["id"] for h in hits} == holders and answer["total"] == len(holders)
    assert not answer["work"]["capped"] and not answer["warnings"]
    # The same words with a full stop for the comma: none of the comma's holders, only that text's own.
    stop = phrase.replace("，", "。")
    answer, hits = every_hit(engine, f'"{stop}"', collapse=False)
    assert {h["id"] for h in hits} == {i for i, item in items.items() if holds(item, normalize(stop))}
    assert not {h["id"] for h in hits} & holders


def test_an_excluded_phrase_cut_by_the_cap_excludes_what_it_did_not_check(corpus):
    engine, items = corpus
    answer, hits = every_hit(engine, '会议 -"中 国"')
    assert answer["work"]["stored"] <= MAX_STORED and "stored" in answer["work"]["capped"]
    assert CAPPED["stored"].format(cap=MAX_STORED) in answer["warnings"]
    assert hits and not any(holds(items[h["id"]], "中国") for h in hits)
    assert all(holds(items[h["id"]], "会议") for h in hits)


def test_a_256_character_clause_finds_its_article_within_the_caps(corpus):
    engine, items = corpus
    item = next(i for i in items.values() if len(i["body"].replace("\n", "")) > 600)
    clause = item["body"].replace("\n", "")[100:356]
    assert len(clause) == 256
    answer = engine.search(SearchRequest(q=clause))
    assert answer["hits"][0]["id"] == item["id"]
    assert answer["work"]["positions"] <= MAX_POSITIONS and answer["work"]["stored"] <= MAX_STORED
    reversed_clause = engine.search(SearchRequest(q=f'"{clause[::-1]}"'))
    assert reversed_clause["total"] == 0 and reversed_clause["work"]["positions"] <= MAX_POSITIONS


def test_24_single_characters_read_each_posting_list_once(corpus):
    engine, items = corpus
    answer, hits = every_hit(engine, " ".join(LETTERS))
    assert len(LETTERS) == 24 and answer["total"] > 0
    assert all(all(ch in item_text for ch in LETTERS)
               for item_text in (text_of(items[h["id"]], "title") + text_of(items[h["id"]], "body") for h in hits))
    # Each character: its word list and its character list in title and body, once each.
    assert answer["work"]["postings"] <= 24 * 4 * len(items)
    assert answer["work"]["stored"] == 0 and not answer["work"]["capped"]
    missing = engine.search(SearchRequest(q=" ".join(LETTERS[:23] + "龘")))
    assert missing["total"] == 0  # no item holds 龘


def test_minus_and_or_everywhere_answer_once_each_warning(corpus):
    engine, items = corpus
    q = " OR ".join(["中国", "-美国", "经济", "-发展", "会议", "-工作"] * 4)
    answer, hits = every_hit(engine, q)
    assert len(answer["warnings"]) == len(set(answer["warnings"]))
    assert not any(holds(items[h["id"]], w) for h in hits for w in ("美国", "发展", "工作"))
    assert answer["work"]["stored"] <= MAX_STORED and answer["work"]["positions"] <= MAX_POSITIONS


def test_a_page_past_the_end_reads_no_stored_document(corpus):
    engine, _ = corpus
    first = engine.search(SearchRequest(q="国务院 会议"))
    past = engine.search(SearchRequest(q="国务院 会议", page=1000, size=50))
    assert past["hits"] == [] and past["total"] == first["total"] > 0
    assert past["work"]["stored"] == 0


def test_every_facet_selected_counts_only_the_selected(corpus):
    engine, items = corpus
    first = engine.search(SearchRequest(q="经济"))
    categories = tuple(f["value"] for f in first["facets"]["category"])
    sources = tuple(f["value"] for f in first["facets"]["source"])
    every = engine.search(SearchRequest(q="经济", categories=categories, sources=sources, size=50))
    some = engine.search(SearchRequest(q="经济", categories=categories[:1], size=50))
    assert 0 < some["total"] < every["total"] <= first["total"]
    assert all(h["category"] == categories[0] for h in some["hits"])
    assert all(h["category"] in categories for h in every["hits"])
    assert every["work"]["stored"] == 0 and not every["work"]["capped"]


WORDS = ["中国", "经济", "发展", "会议", "工作", "建设"]


def test_a_search_past_the_postings_cap_covers_the_newest_part_exactly(corpus):
    engine, items = corpus
    cap = 100_000  # the whole corpus at the default cap answers it whole; this engine's cap cuts it
    small = Engine(engine.index_dir, max_postings=cap)
    q = " OR ".join(WORDS)
    try:
        whole_answer = engine.search(SearchRequest(q=q))
        answer = small.search(SearchRequest(q=q, size=50))
        # A query that found nothing tries spelling repairs too; their passes are not the answer's.
        few = small.search(SearchRequest(q="衢洲"))
        build = small.current()
        with small.borrowed(build) as searcher:
            cut = Matcher(searcher, build.cache, build.lengths, build.columns.published, build.windows, cap)
            hits = cut.query(parse_query(q))
            whole = Matcher(searcher, build.cache, build.lengths).query(parse_query(q))  # no cap
            ids = [searcher.stored_fields(int(d))["id"] for d in np.setdiff1d(whole.docs, hits.docs)[:200]]
    finally:
        small.close()
    assert not whole_answer["work"]["capped"] and whole_answer["total"] == len(whole.docs)
    work = answer["work"]
    assert "postings" in work["capped"] and 0 < work["searched"] < 1 and work["passes"] > 1
    assert few["total"] == 0 and few["suggestion"] and few["work"]["passes"] == 1 and not few["work"]["capped"]
    assert any(w.startswith(CAPPED["postings"].split("{")[0]) for w in answer["warnings"])
    assert work["postings"] <= MAX_PASSES * cap and cut.work.postings <= MAX_PASSES * cap
    # Exact for what it covers: every match inside the window, nothing outside it.
    inside = np.zeros(len(build.columns.published), dtype=bool)
    for start, end in cut.window:
        inside[start:end] = True
    assert np.array_equal(hits.docs, whole.docs[inside[whole.docs]])
    assert answer["total"] == len(hits.docs) < len(whole.docs)
    assert abs(inside.mean() - work["searched"]) < 1e-6
    # The newest part: the covered documents are newer than the rest.
    published = build.columns.published
    assert np.median(published[inside]) > np.median(published[~inside])
    assert all(any(holds(items[h["id"]], w) for w in WORDS) for h in answer["hits"])
    # What it left out are true matches outside the window, never hits.
    assert ids and all(any(holds(items[i], w) for w in WORDS) for i in ids)
    assert not {h["id"] for h in answer["hits"]} & set(ids)


def test_every_shape_at_a_small_postings_cap_stays_within_its_passes_and_matches(corpus):
    engine, items = corpus
    cap = 20_000
    small = Engine(engine.index_dir, max_postings=cap)
    shapes = {
        " ".join(LETTERS): lambda item: all(ch in text_of(item, "title") + text_of(item, "body") for ch in LETTERS),
        " OR ".join(LETTERS): lambda item: any(ch in text_of(item, "title") + text_of(item, "body") for ch in LETTERS),
        " ".join(['"中 国"'] * 24): lambda item: holds(item, "中国"),
        '会议 -"中 国"': lambda item: holds(item, "会议") and not holds(item, "中国"),
    }
    try:
        for q, matches in shapes.items():
            answer = small.search(SearchRequest(q=q, size=50))
            work = answer["work"]
            assert "postings" in work["capped"] and work["passes"] <= MAX_PASSES, q
            assert work["postings"] <= MAX_PASSES * cap, q
            assert all(matches(items[h["id"]]) for h in answer["hits"]), q
    finally:
        small.close()


def jumping(*moments: float):
    """Return a clock reading the given moments, then the last one for ever."""
    readings = itertools.chain(moments, itertools.repeat(moments[-1]))
    return lambda: next(readings)


def test_a_search_past_its_deadline_covers_the_newest_part_exactly(corpus):
    engine, items = corpus
    q = "经济 发展"
    # The request begins at 0, and so does its matching; matching finds it 10 s later.
    late = Engine(engine.index_dir, clock=jumping(0.0, 0.0, 10.0))
    try:
        answer = late.search(SearchRequest(q=q, size=50))
        build = late.current()
        with late.borrowed(build) as searcher:
            cut = Matcher(searcher, build.cache, build.lengths, build.columns.published, build.windows,
                          deadline=0.6, clock=jumping(10.0))
            hits = cut.query(parse_query(q))
            whole = Matcher(searcher, build.cache, build.lengths).query(parse_query(q))  # no deadline
            ids = [searcher.stored_fields(int(d))["id"] for d in np.setdiff1d(whole.docs, hits.docs)[:200]]
    finally:
        late.close()
    work = answer["work"]
    assert work["capped"] == ["time"] and work["passes"] == 2 and cut.work.capped == ["time"]
    assert answer["warnings"] == [CAPPED["time"].format(share=f"{work['searched']:.1%}")]
    inside = np.zeros(len(build.columns.published), dtype=bool)
    for start, end in cut.window:
        inside[start:end] = True
    assert np.array_equal(cut.window, build.windows.ranges(LATE_SHARE)[0])  # the newest eighth, by whole blocks
    assert abs(inside.mean() - work["searched"]) < 1e-6 and 0 < work["searched"] < 2 * LATE_SHARE
    assert np.median(build.columns.published[inside]) > np.median(build.columns.published[~inside])
    # Exact for what it covers: every match inside the window, nothing outside it.
    assert np.array_equal(hits.docs, whole.docs[inside[whole.docs]])
    assert answer["total"] == len(hits.docs) < len(whole.docs)
    assert all(holds(items[h["id"]], "经济") and holds(items[h["id"]], "发展") for h in answer["hits"])
    assert ids and not {h["id"] for h in answer["hits"]} & set(ids)


def test_a_search_late_twice_covers_nothing_and_says_so(corpus):
    engine, _ = corpus
    ticking = itertools.count(0.0, 10.0)  # every reading 10 s after the one before: each pass is late
    late = Engine(engine.index_dir, clock=lambda: next(ticking))
    try:
        answer = late.search(SearchRequest(q="衢州 经济"))
        on_time = engine.search(SearchRequest(q="衢州 经济"))
    finally:
        late.close()
    work = answer["work"]
    assert on_time["total"] > 0 and not on_time["work"]["capped"]
    assert answer["total"] == 0 and not answer["hits"] and answer["suggestion"] is None
    assert work["capped"] == ["time"] and work["searched"] == 0 and work["passes"] == 3
    assert answer["warnings"] == [CAPPED["time"].format(share="0.00%")]


def test_spelling_repairs_stop_at_the_deadline(corpus):
    engine, _ = corpus
    parsed = parse_query("衢洲")
    build = engine.current()
    with engine.borrowed(build) as searcher:
        found = spelling.suggest(Matcher(searcher, build.cache, build.lengths, build.columns.published,
                                         build.windows, deadline=1.0, clock=jumping(0.0)), parsed, 0)
        late = spelling.suggest(Matcher(searcher, build.cache, build.lengths, build.columns.published,
                                        build.windows, deadline=1.0, clock=jumping(2.0)), parsed, 0)
    assert found and "衢州" in found
    assert late is None
