"""Contract of stop words (indexer/analysis.py, search/query.py, search/match.py): they never make an answer wrong.

A stop word (的, 是, the, it) is left out of the word field and weighs nothing
in ranking, but a query still requires it, by its characters: a query of stop
words only searches them, under the usual caps; one typed inside a run
(``it行业``) or beside other words must be present too. A Latin word written in
upper case (IT, AT) is a word, in the index and in the query, and its word
matches rank above matches of its characters inside other words (ITER). Case
never changes what matches, only how it ranks. The index is a corpus sample
holding IT articles, plus a few short items written here for the Latin cases.
"""

import json

import pytest

from conftest import corpus_items
from indexer.analysis import normalize, word_runs
from indexer.writer import build_index
from search import Engine, SearchRequest
from search.budget import CAPPED

IT_INDUSTRY = "xwlb-VIDEv7GIza8gC5gzw5aik5jN170321"  # IT行业 in its body
IT_PRODUCTS = "xwlb-VIDEupWGxhbV0M5UOKO5cnd2170917"  # IT产品, and no 行业
ITER = "xwlb-VIDE14Wtdet9yxQKvr7y0pq9170726"  # ITER, the reactor: i and t inside another word
# Latin cases, (id, title, body): a fixture of this test, not corpus text.
LATIN = [
    ("s-at", "新款车型搭载AT变速箱", "新款车型搭载AT变速箱，城市道路换挡平顺。"),
    ("s-at-lower", "英文课堂笔记", "老师讲解了介词的用法：meet at noon。"),
    ("s-us", "US公开赛在纽约开幕", "US公开赛今日开幕，多名选手参赛。"),
    ("s-the", "英文原句摘录", "报道引用了英文原句：the show must go on。"),
    ("s-th-he", "英文单词摘录", "两个单词：think 与 help。"),  # t-h and h-e, never t-h-e
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Build 2,500 corpus items and the Latin cases; return (engine, items by id)."""
    items = corpus_items(2500, start=21300)
    items += [{"id": i, "title": t, "body": b, "date": "2017-09-30 19:00:00"} for i, t, b in LATIN]
    folder = tmp_path_factory.mktemp("stopwords")
    source = folder / "sample.jsonl"
    source.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    build_index([str(source)], folder / "index", jobs=1)
    engine = Engine(folder / "index")
    yield engine, {item["id"]: item for item in items}
    engine.close()


def holds(item: dict, text: str) -> bool:
    """Tell whether a run of letters, digits or ideographs of the title or body holds text, folded."""
    return any(text in run for f in ("title", "body") for run in word_runs(normalize(item.get(f) or "")))


def holders(items: dict, *texts: str) -> set[str]:
    return {i for i, item in items.items() if all(holds(item, t) for t in texts)}


def search(engine, q: str, **kw) -> dict:
    return engine.search(SearchRequest(q=q, size=50, collapse=False, **kw))


def found(engine, q: str) -> list[str]:
    """Return the ids of every hit of every page, best first."""
    first = search(engine, q)
    ids = [h["id"] for h in first["hits"]]
    for page in range(2, first["total"] // 50 + 2):
        ids += [h["id"] for h in search(engine, q, page=page)["hits"]]
    assert len(ids) == first["total"] and first["warnings"] == []
    return ids


def test_upper_case_IT_is_a_word_and_ranks_above_its_letters_inside_other_words(sample):
    engine, items = sample
    ids = found(engine, "IT")
    assert set(ids) == holders(items, "it")  # every article holding i-t, and none without
    assert set(ids[:2]) == {IT_INDUSTRY, IT_PRODUCTS}  # the word IT first, ITER after
    assert ITER in ids[2:]
    assert "s-us" not in ids
    # Typed in lower case the stop word finds the same: case never changes what matches.
    assert set(found(engine, "it")) == set(ids)


def test_IT行业_needs_IT_as_well_as_行业(sample):
    engine, items = sample
    industry = holders(items, "行业")
    without_it = industry - holders(items, "it")
    assert IT_PRODUCTS not in industry and len(without_it) > 50
    for q in ("IT行业", "it行业", "ＩＴ行业", "IT 行业"):
        ids = found(engine, q)
        assert ids == [IT_INDUSTRY], q
        assert not set(ids) & without_it  # 行业 alone never matches
        assert IT_PRODUCTS not in ids  # IT alone neither
    assert set(found(engine, "行业")) == industry


def test_a_stop_word_alone_is_searched(sample):
    engine, items = sample
    ids = found(engine, "是")
    assert set(ids) == holders(items, "是")
    assert len(ids) > 1000 and len(items) - len(ids) > 500  # and the articles without 是 are not found
    answer = search(engine, "的 了")
    assert answer["total"] == len(holders(items, "的", "了")) < len(holders(items, "的"))


def test_the_alone_finds_what_holds_the(sample):
    engine, items = sample
    ids = found(engine, "the")
    assert "s-the" in ids and set(ids) == holders(items, "the")
    assert "s-th-he" not in ids  # its t-h and h-e are apart
    assert found(engine, "THE") == ids


def test_a_stop_word_beside_other_words_is_required(sample):
    engine, items = sample
    ids = set(found(engine, "行业 是"))
    assert ids == holders(items, "行业", "是")
    assert holders(items, "行业") - ids  # articles with 行业 and no 是 are not found
    assert set(found(engine, "the 英文")) == holders(items, "the", "英文") == {"s-the"}


@pytest.mark.parametrize("q", ["是否", '"是否"'])
def test_是否_typed_or_quoted_needs_是_and_否_together(sample, q):
    engine, items = sample
    apart = holders(items, "是", "否") - holders(items, "是否")
    assert len(apart) > 20
    ids = set(found(engine, q))
    assert ids == holders(items, "是否")
    assert not ids & apart


def test_AT_and_US_are_words(sample):
    engine, items = sample
    at = found(engine, "AT")
    assert at[0] == "s-at" and set(at) == holders(items, "at")
    assert "s-at-lower" in at and "s-us" not in at  # `at` in meet at noon, folded alike, ranked after
    us = found(engine, "US")
    assert us[0] == "s-us" and set(us) == holders(items, "us")
    assert "s-at" not in us
    assert found(engine, "AT变速箱") == ["s-at"]  # 变速箱 alone is in no other article of the sample


def test_a_stop_word_query_is_cut_by_the_postings_cap_and_says_so(sample):
    engine, items = sample
    small = Engine(engine.index_dir, max_postings=1000)
    try:
        answer = search(small, "的")
        assert "postings" in answer["work"]["capped"] and answer["work"]["searched"] < 1
        assert any(w.startswith(CAPPED["postings"].split("{")[0]) for w in answer["warnings"])
        assert 0 < answer["total"] < len(holders(items, "的"))
        assert all(holds(items[h["id"]], "的") for h in answer["hits"])
    finally:
        small.close()


def test_symbols_only_have_nothing_to_search(sample):
    engine, _ = sample
    answer = search(engine, "，。！")
    assert (answer["total"], answer["warnings"]) == (0, ["查询中没有可搜索的文字（只有标点或符号）"])
