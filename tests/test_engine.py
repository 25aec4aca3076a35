"""Contract of search/engine.py: one request in, one plain-data answer out.

On the seed index: every exact substring is found (and nothing else), quoted
phrases are exact, exclusions/OR/field restrictions work, full-width and
traditional text is folded, highlights cover exactly the matched characters.
On a hand-counted fixture: facet counts over all hits, OR within a facet with
its own counts unaffected, date presets, sorting, paging, did-you-mean.
"""

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NOW
from search import Engine, SearchRequest

QUZHOU_CAR = "衢州新能源汽车产业链加速成形 多个电池项目年内投产"
QUZHOU_SCHOOL = "新能源汽车维修专业走俏 职校学生未毕业就被“预订”"
BRIDGE = "南京长江大桥夜间检修 部分公交线路临时绕行"
ADBC = "中国农业发展银行一季度投放粮食收购贷款超千亿元"
HK_BANK = "本港銀行推出農業科技專項貸款 支持大灣區智慧農場"
CHARGER = "国产磁吸充电器通过新版快充认证 可兼容多款手机"
MARX = "高校思政课走出教室 大学生在田间地头上“大课”"
SEA = "东南亚经济一季度增长强劲 出口和旅游业双双回暖"


def ask(engine, q="", **kw):
    return engine.search(SearchRequest(q=q, **kw), now=NOW)


def titles(engine, q, **kw):
    return [h["title"] for h in ask(engine, q, **kw)["hits"] if h["kind"] == "article"]


def marks(html):
    return re.findall(r"<mark>(.*?)</mark>", html)


@pytest.mark.parametrize("q, expected", [
    ("公司", {QUZHOU_CAR, CHARGER}),           # a sub-word of 有限公司
    ("市长", {BRIDGE}),                        # across jieba's 南京市|长江大桥
    ("业发", {ADBC, HK_BANK}),                 # inside one word; 業發 folds
    ("衢", {QUZHOU_CAR, QUZHOU_SCHOOL}),       # a single character
    ("ABC", {CHARGER}), ("123", {CHARGER}),    # full-width ＡＢＣ１２３
    ("农业", {ADBC, HK_BANK}), ("農業", {ADBC, HK_BANK}),
    ("800V", {QUZHOU_CAR}), ("gdp", {SEA}), ("7.7%", {SEA}), ("IPHONE", {CHARGER}),
])
def test_exact_substrings_are_found_whatever_the_segmentation(engine, q, expected):
    assert set(titles(engine, q)) == expected


@pytest.mark.parametrize("q", ["长江大学", "马克·吐温", "ABC124", "衢州农业", "iPad"])
def test_absent_text_is_not_found(engine, q):
    assert titles(engine, q) == []


def test_quoted_phrases_are_exact_and_ordered(engine):
    assert titles(engine, '"发展银行"') == [ADBC]
    assert titles(engine, '"银行发展"') == []
    assert titles(engine, '"中等技术"') == [QUZHOU_SCHOOL]
    assert titles(engine, '"技术中等"') == []
    assert titles(engine, "“南京市长江大桥”") == [BRIDGE]
    assert titles(engine, '"南京市 长江大桥"') == [BRIDGE]
    assert titles(engine, '"型号ＡＢＣ１２３。"') == [CHARGER]   # punctuation is part of a quoted phrase
    assert titles(engine, '"型号ＡＢＣ１２３，"') == []


def test_exclusion_or_and_field_restriction(engine):
    assert set(titles(engine, "新能源")) == {QUZHOU_CAR, QUZHOU_SCHOOL}
    assert titles(engine, "新能源 -维修") == [QUZHOU_CAR]
    assert set(titles(engine, "金砖电池 OR 马克思")) == {QUZHOU_CAR, MARX}
    assert titles(engine, "金砖电池 马克思") == []
    assert titles(engine, "title:衢州") == [QUZHOU_CAR]
    assert set(titles(engine, "衢州")) == {QUZHOU_CAR, QUZHOU_SCHOOL}
    assert titles(engine, "source:光明网") == [MARX]
    assert titles(engine, "category:国际 经济") == [SEA]
    assert titles(engine, "category:教育 金砖电池") == []


def test_highlights_cover_exactly_the_matched_characters(engine):
    hit = ask(engine, "马克思")["hits"][0]
    assert set(marks(hit["snippet_html"])) == {"马克思"}
    hit = ask(engine, "市长")["hits"][0]
    assert "南京<mark>市长</mark>江大桥" in hit["snippet_html"]
    hit = ask(engine, "农业")["hits"]
    hk = next(h for h in hit if h["title"] == HK_BANK)
    assert hk["title_html"] == "本港銀行推出<mark>農業</mark>科技專項貸款 支持大灣區智慧農場"
    charger = ask(engine, "abc123")["hits"][0]
    assert "型号<mark>ＡＢＣ１２３</mark>。" in charger["snippet_html"]
    assert ask(engine, '"发展银行"')["hits"][0]["title_html"] == "中国农业<mark>发展银行</mark>一季度投放粮食收购贷款超千亿元"


def test_title_matches_rank_above_body_matches_and_words_above_substrings(engine):
    assert titles(engine, "衢州")[0] == QUZHOU_CAR
    ranked = ask(engine, "发展")["hits"]
    assert ranked[0]["score"] >= ranked[-1]["score"]


def test_symbols_only_give_an_empty_answer(engine):
    for q in ("，。！", ""):
        answer = ask(engine, q)
        assert (answer["total"], answer["hits"]) == (0, [])
    assert ask(engine, "，。！")["warnings"] == ["查询中没有可搜索的文字（只有标点或符号）"]
    assert ask(engine, "")["warnings"] == []
    assert ask(engine, "的")["total"] > 0  # stop words are searched: tests/test_stop_words.py


def test_article_lookup_marks_query_terms_and_escapes(engine):
    hit = ask(engine, "金砖电池")["hits"][0]
    article = engine.article(hit["id"], q="金砖电池")
    assert any("<mark>金砖电池</mark>" in p for p in article["body_html"])
    assert article["url"] and article["related"]
    assert engine.article("no-such-id") is None


# ---- a hand-counted fixture for facets, dates, sorting, paging -----------

FIXTURE = [
    # title, category, date, source; every body but the last holds 电池
    ("电池一", "汽车", "2026-01-15 10:00:00", "新华网"),
    ("电池二", "汽车", "2026-01-12 09:00:00", "人民网"),
    ("电池三", "财经", "2025-12-20 08:00:00", "新华网"),
    ("电池四", "财经", "2025-06-01 08:00:00", "人民网"),
    ("电池五", "科技", "2024-03-01 08:00:00", "新华网"),
    ("电池六", None, "2023-05-05 08:00:00", "央视网"),
    ("电池七", "财经", "2026-01-15 11:00:00", "央视网"),
    ("其他八", "汽车", "2026-01-14 08:00:00", "新华网"),
]


# 国家 as a word (many documents: its idf is low) and only as characters (two documents: rare).
WORD_TITLES = ["国家统计局发布十月份国民经济运行情况", "国家发展改革委部署今冬明春能源保供", "国家医保局公布新版药品目录",
               "国家防总启动防汛四级应急响应", "国家林草局通报秋冬季森林防火形势", "国家航天局发布月球样品研究成果",
               "国家文物局公布考古中国重大项目进展", "国家市场监管总局抽查儿童用品质量", "国家铁路集团开行冬季旅客列车",
               "国家体育总局发布全民健身活动指南"]
CHARS_TITLES = ["美国家庭平均收入连续三年增长", "中华人民共和国家庭教育促进法今起施行"]


def test_a_whole_word_ranks_above_its_characters_inside_other_words(tmp_path):
    from indexer.writer import build_index

    docs = [(t, f"{t}。记者从有关部门了解到，{t[:8]}相关工作正在有序推进，各地按照部署抓好落实，"
                f"确保各项措施落到实处，群众反映良好。") for t in WORD_TITLES]
    docs += [(t, f"{t}。据介绍，{t}，受到社会关注。") for t in CHARS_TITLES]
    docs.append(("美国大选进入最后阶段", "美国大选进入最后阶段，两党候选人在摇摆州密集造势。"))
    lines = [json.dumps({"id": f"w{i}", "title": t, "body": b, "date": "2024-05-01 19:00:00"}, ensure_ascii=False)
             for i, (t, b) in enumerate(docs)]
    (tmp_path / "words.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_index([str(tmp_path / "words.jsonl")], tmp_path / "index", jobs=1)
    engine = Engine(tmp_path / "index")
    try:
        ranked = titles(engine, "国家", size=50)
        assert set(ranked[:len(WORD_TITLES)]) == set(WORD_TITLES)  # every word match first
        assert set(ranked[len(WORD_TITLES):]) == set(CHARS_TITLES)  # the characters are still found, after
        assert "美国大选进入最后阶段" not in ranked  # 美国 alone holds no 国家
        top = ask(engine, "国家", size=50)["hits"]
        assert min(h["score"] for h in top if h["title"] in WORD_TITLES) > max(
            h["score"] for h in top if h["title"] in CHARS_TITLES)
        assert titles(engine, "家庭")[:2] != [] and set(titles(engine, "家庭")) == set(CHARS_TITLES)
    finally:
        engine.close()


@pytest.fixture(scope="module")
def fixture_engine(tmp_path_factory):
    from indexer.writer import build_index

    folder = tmp_path_factory.mktemp("facets")
    lines = [json.dumps({"id": f"f{i}", "title": t, "body": ("这是关于电池的报道。" if "电池" in t else "这是别的报道。") * 3,
                         "category": c, "date": d, "source": s}, ensure_ascii=False)
             for i, (t, c, d, s) in enumerate(FIXTURE, start=1)]
    (folder / "fixture.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_index([str(folder / "fixture.jsonl")], folder / "index", jobs=1)
    return Engine(folder / "index")


def counts(answer, facet):
    return {v["value"]: v["count"] for v in answer["facets"][facet]}


def test_facet_counts_cover_all_hits_not_the_page(fixture_engine):
    answer = ask(fixture_engine, "电池", size=2)
    assert answer["total"] == 7 and len(answer["hits"]) == 2
    assert "其他八" not in [h["title"] for h in answer["hits"]]
    assert counts(answer, "category") == {"财经": 3, "汽车": 2, "科技": 1}
    assert counts(answer, "source") == {"新华网": 3, "人民网": 2, "央视网": 2}
    assert counts(answer, "year") == {"2026": 3, "2025": 2, "2024": 1, "2023": 1}
    assert counts(answer, "month")["2026-01"] == 3
    assert counts(answer, "range") == {"1d": 2, "1w": 3, "1m": 4, "1y": 5}


def test_within_a_facet_or_across_facets_and(fixture_engine):
    answer = ask(fixture_engine, "电池", categories=("汽车", "财经"))
    assert answer["total"] == 5
    assert counts(answer, "category") == {"财经": 3, "汽车": 2, "科技": 1}
    assert [v["value"] for v in answer["facets"]["category"] if v["selected"]] == ["财经", "汽车"]
    assert counts(answer, "source") == {"新华网": 2, "人民网": 2, "央视网": 1}
    both = ask(fixture_engine, "电池", categories=("汽车", "财经"), sources=("新华网",))
    assert sorted(h["title"] for h in both["hits"]) == ["电池一", "电池三"]
    assert counts(both, "category") == {"汽车": 1, "财经": 1, "科技": 1}


def test_date_presets_and_custom_ranges(fixture_engine):
    from datetime import date

    assert sorted(h["title"] for h in ask(fixture_engine, "电池", range="1d")["hits"]) == ["电池一", "电池七"]
    assert ask(fixture_engine, "电池", range="1w")["total"] == 3
    assert [v["selected"] for v in ask(fixture_engine, "电池", range="1w")["facets"]["range"]] == [False, True, False, False]
    custom = ask(fixture_engine, "电池", date_from=date(2025, 1, 1), date_to=date(2025, 12, 20))
    assert sorted(h["title"] for h in custom["hits"]) == ["电池三", "电池四"]


def test_sorting_by_time_and_paging_past_the_end(fixture_engine):
    newest = [h["title"] for h in ask(fixture_engine, "电池", sort="newest")["hits"]]
    assert newest == ["电池七", "电池一", "电池二", "电池三", "电池四", "电池五", "电池六"]
    oldest = [h["title"] for h in ask(fixture_engine, "电池", sort="oldest")["hits"]]
    assert oldest == newest[::-1]
    assert [h["title"] for h in ask(fixture_engine, "电池", sort="newest", size=3, page=3)["hits"]] == ["电池六"]
    past = ask(fixture_engine, "电池", page=9, size=3)
    assert (past["total"], past["hits"]) == (7, [])


def test_did_you_mean_offers_a_query_that_finds_more(fixture_engine, engine):
    assert ask(fixture_engine, "电 池")["suggestion"] is None  # found all 7 already
    assert ask(fixture_engine, "电他")["suggestion"] == "电池"
    assert ask(engine, "金砖电吃")["suggestion"] == "金砖电池"
    assert ask(engine, "金砖电池")["suggestion"] is None
    # A query that found something is second-guessed only with one or two terms: more is a pasted headline.
    assert ask(fixture_engine, "电池一")["suggestion"] == "电池"
    assert ask(fixture_engine, "电池一 报道")["suggestion"] == "电池 报道"
    assert ask(fixture_engine, "电池一 报道 电池")["total"] == 1
    assert ask(fixture_engine, "电池一 报道 电池")["suggestion"] is None


def hostile_queries():
    """Return 200 odd things people paste into a search box."""
    base = ['"', '""', '"""', "“", "”", "(", ")", "()", "[", "]", "{", "}", "*", "?", "~", "^", ":", "::", "-", "--",
            "+", "AND", "OR", "NOT", "AND OR NOT", "OR 衢州", "衢州 OR", "title:", "title:\"", ":衢州", "foo:bar",
            "source:", "category:", "-\"\"", "-衢州", "- 衢州", "衢州^3", "衢州~2", "衢*", "*州", "a" * 300,
            "衢" * 8000, "😀", "😀衢州😀", "\u200b", "\ufeff衢州", "\x00", "\t\n\r", "%", "%%", "\\", "\\\"", "'",
            "<script>alert(1)</script>", "</mark><script>", "&lt;", "&amp;", "<b>衢州</b>", "SELECT * FROM",
            "../../etc/passwd", "${7*7}", "{{7*7}}", "NaN", "-1", "1e308", "衢州 " * 200, "新能源" + " " * 500]
    symbols = "\"'()[]{}*?~^:-+!/\\|&<>@#$%=，。！？；：“”‘’（）【】《》、·…—"
    out = list(base)
    for i in range(200 - len(base)):
        a, b = symbols[i % len(symbols)], symbols[(i * 7 + 3) % len(symbols)]
        words = ["衢州", "电池", "AND", "OR", "title", "马克思", "800V", "ＡＢＣ"]
        out.append(f"{a}{words[i % len(words)]}{b}{words[(i + 3) % len(words)]}{a * (i % 4)}")
    return out


def test_two_hundred_hostile_queries_all_answer_escaped(engine):
    queries = hostile_queries()
    assert len(queries) == 200
    for q in queries:
        answer = ask(engine, q)
        assert isinstance(answer["total"], int)
        for hit in answer["hits"]:
            assert "<script" not in hit["title_html"] + hit["snippet_html"]
    assert ask(engine, "<script>alert(1)</script>")["total"] == 0
    assert ask(engine, "(衢州)")["total"] == ask(engine, "衢州")["total"] == 2


@settings(max_examples=200, deadline=None)
@given(q=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80),
       page=st.integers(1, 1000), size=st.integers(1, 50))
def test_any_query_answers_with_escaped_hits(engine, q, page, size):
    answer = engine.search(SearchRequest(q=q, page=page, size=size), now=NOW)
    assert answer["total"] >= len(answer["hits"])
    assert all("<script" not in h["title_html"] + h["snippet_html"] for h in answer["hits"])


def test_an_index_from_another_analyzer_says_it_needs_a_rebuild(tmp_path):
    from conftest import SEEDS
    from indexer.store import META_FILE, live_build
    from indexer.writer import build_index

    build_index([str(SEEDS / "001_4cc39e73fcc59f5b.txt")], tmp_path / "index", jobs=1)
    meta_path = live_build(tmp_path / "index") / META_FILE
    assert ask(Engine(tmp_path / "index"), "衢州")["warnings"] == []
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["dict_hash"] = "0000000000000000"
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    answer = ask(Engine(tmp_path / "index"), "衢州")
    assert answer["warnings"] == ["索引由另一版本的分析器或词典构建，需要重建（newsearch rebuild）"]
    assert answer["total"] == 1


def test_a_user_dictionary_travels_with_the_index(tmp_path):
    import subprocess
    import sys

    from conftest import SEEDS

    userdict = tmp_path / "dict.txt"
    userdict.write_text("锐能新能源 10 nz\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    subprocess.run([sys.executable, "-m", "indexer", "rebuild", str(SEEDS / "001_4cc39e73fcc59f5b.txt"),
                    "--index", str(index_dir), "--userdict", str(userdict), "--jobs", "1"], check=True,
                   capture_output=True)
    code = ("import json, sys; from search import Engine, SearchRequest; e = Engine(sys.argv[1]); "
            "a = e.search(SearchRequest(q='锐能新能源')); print(json.dumps([a['total'], a['warnings']]))")
    out = subprocess.run([sys.executable, "-c", code, str(index_dir)], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == [1, []]
    from indexer.store import USERDICT_FILE, live_build
    assert (live_build(index_dir) / USERDICT_FILE).read_text(encoding="utf-8") == "锐能新能源 10 nz\n"


def test_the_posting_cache_counts_exactly_when_threads_miss_at_once(seed_index):
    import threading

    from search.postings import PostingCache

    engine = Engine(seed_index)
    try:
        build = engine.current()
        cache = PostingCache()
        terms = [("body_grams", a + b) for a, b in zip("新能源汽车电池充电", "能源汽车电池充电器")]
        terms += [("body_chars", ch) for ch in "新能源汽车电池"]
        start = threading.Barrier(8)

        def ask():
            with engine.borrowed(build) as searcher:  # a searcher per request in flight, as serving has
                start.wait()
                for _ in range(20):
                    for field, term in terms:
                        cache.get(searcher, field, term)

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache.items) == len(terms)
        assert cache.size == sum(len(docs) for docs, _ in cache.items.values()) > 0
        with engine.borrowed(build) as searcher:
            assert cache.get(searcher, "body_grams", "𠀀𠀁")[0].size == 0  # a pair no document holds
    finally:
        engine.close()


def test_term_locations_stay_within_their_row_cap_when_threads_miss_at_once(seed_index, monkeypatch):
    import threading

    engine = Engine(seed_index)
    try:
        arrays = engine.current().cache.arrays
        assert arrays is not None
        text = "新能源汽车电池充电器市场发展"
        terms = sorted({text[i:i + 2] for i in range(len(text) - 1)})
        expected = {t: arrays.locate("body_grams", [t])[0] for t in terms}  # before the cap is lowered
        held = [t for t in terms if len(expected[t][0])]
        assert held and len(held) < len(terms)  # some pairs are in the seeds, some are not
        arrays.located.clear()
        arrays.located_rows = 0
        monkeypatch.setattr("indexer.arrays.CACHE_LOCATION_ROWS", 3)
        start = threading.Barrier(8)
        seen = []

        def ask():
            start.wait()
            for _ in range(20):
                for t in terms:
                    seen.append((t, arrays.locate("body_grams", [t])[0]))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert arrays.located_rows == sum(len(where) for where, _ in arrays.located.values()) <= 3
        assert 0 < len(arrays.located) < len(terms)  # evicted down to the cap, absent pairs cost no rows
        for t, (where, total) in seen:  # evictions never change an answer
            assert total == expected[t][1] and np.array_equal(where, expected[t][0])
    finally:
        engine.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=60),
       st.sampled_from(["relevance", "newest", "oldest"]), st.integers(1, 70))
def test_the_first_hits_of_an_order_are_those_of_a_full_sort(rows, sort, wanted):
    import numpy as np

    from search.ranking import order

    docs = np.arange(len(rows), dtype=np.int64) * 3
    scores = np.array([float(r[0]) for r in rows])  # few values: many ties
    published = np.array([r[1] * 1000 for r in rows], dtype=np.int64)
    keys = {"relevance": (docs, -scores), "newest": (docs, -scores, -published),
            "oldest": (docs, -scores, published)}[sort]
    chosen = order(docs, scores, published, sort, wanted).tolist()
    assert chosen == np.lexsort(keys)[:wanted].tolist()
    assert len(chosen) == len(set(chosen)) == min(wanted, len(rows))  # no hit twice, none past the end


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 300), max_size=200), st.sets(st.integers(0, 300), max_size=200))
def test_a_union_of_hits_is_the_same_dense_or_sparse(left, right):
    import numpy as np

    from search.sets import Hits

    a, b = np.array(sorted(left), dtype=np.int64), np.array(sorted(right), dtype=np.int64)
    got = Hits(a, a * 0.5 + 1).either(Hits(b, b * 0.25 + 2))
    union = sorted(left | right)
    assert got.docs.tolist() == union
    expected = [(d * 0.5 + 1 if d in left else 0) + (d * 0.25 + 2 if d in right else 0) for d in union]
    assert np.allclose(got.scores, expected)
    assert not set(got.docs.tolist()) - (left | right)  # nothing that neither holds


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sets(st.integers(0, 300), max_size=200), max_size=5))
def test_a_sum_of_hits_adds_every_part_once(parts):
    import numpy as np

    from search.sets import Hits, common_at, member

    arrays = [np.array(sorted(p), dtype=np.int64) for p in parts]
    got = Hits.sum([Hits(a, a * 0.5 + i + 1) for i, a in enumerate(arrays)])
    union = sorted(set().union(*parts))
    assert got.docs.tolist() == union
    expected = [sum(d * 0.5 + i + 1 for i, p in enumerate(parts) if d in p) for d in union]
    assert np.allclose(got.scores, expected)
    if len(arrays) >= 2:  # the set operations agree with Python's sets, dense or by binary search
        a, b = arrays[0], arrays[1]
        assert a[member(a, b)].tolist() == sorted(parts[0] & parts[1])
        mine, theirs = common_at(a, b)
        assert a[mine].tolist() == b[theirs].tolist() == sorted(parts[0] & parts[1])
