"""Contract of related searches (相关搜索, search/related.py) on an index of a real corpus sample.

For real queries the answer's ``related`` holds 6-10 searches; each finds at
least one article when run through the engine, none is the query, a word of
it or a word holding one (folded: width, case, script), a stop word, the
broadcast's boilerplate (新闻联播, 央视网, 编辑) or a number or date. A search
with no match or one gets an empty list and the page no block. The list is the
same for the same request; its cost is capped (a sample of the matches, a
share of the time left: "related" in work.capped). The page shows it under the
results as escaped links keeping the filters, the API as ``related``, and
``newsearch query`` as one line.
"""

from __future__ import annotations

import json
import re
from contextlib import closing

import pytest

from conftest import corpus_lines
from indexer import analysis, related_words
from indexer.writer import build_index
from search import Engine, SearchRequest, related
from search.query import parse_query
from web import create_app
from web.cli import cli

SAMPLE_STRIDE = 33  # every 33rd corpus item: ~2,000 articles over every year of the archive
QUERIES = ["疫情", "俄罗斯", "经济", "习近平"]
# Words no related search may be made of, written here independently of the module's own lists.
STOP = {"的", "了", "是", "在", "和", "我们", "他们", "进行", "已经", "表示", "一个", "这些", "今年", "目前"}
BOILERPLATE = {"新闻联播", "央视网", "编辑", "责任编辑", "中国网络电视台", "消息", "本台", "记者"}
NUMBER_OR_DATE = re.compile(r"[\d.%年月日号时分]+")


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory):
    """Build an index of a sample of the shared corpus (read at run time, never copied); return its path."""
    folder = tmp_path_factory.mktemp("related")
    source = folder / "items.jsonl"
    source.write_text("".join(corpus_lines(66_000)[::SAMPLE_STRIDE]), encoding="utf-8")
    build_index([str(source)], folder / "index", jobs=1)
    return folder / "index"


@pytest.fixture(scope="module")
def sample_engine(sample_index):
    with closing(Engine(sample_index)) as engine:
        yield engine


@pytest.fixture()
def sample_client(sample_index):
    return create_app({"TESTING": True, "INDEX_DIR": str(sample_index)}).test_client()


def search(engine, q: str, **params) -> dict:
    return engine.search(SearchRequest(q=q, **params))


def folded(text: str) -> str:
    return analysis.normalize(text).replace(" ", "")


@pytest.mark.parametrize("q", QUERIES)
def test_each_related_search_finds_articles_and_is_no_variant_of_the_query(sample_engine, q):
    answer = search(sample_engine, q)
    found = answer["related"]
    assert answer["total"] > 50 and 6 <= len(found) <= 10, found
    for entry in found:
        word = folded(entry["word"])
        assert entry["q"] in (f"{q} {entry['word']}", entry["word"])
        assert search(sample_engine, entry["q"])["total"] >= 1, entry  # never an empty search
        assert folded(entry["q"]) != folded(q) and q not in word and word not in q, entry
        assert word not in STOP and word not in BOILERPLATE and not NUMBER_OR_DATE.fullmatch(word), entry
        assert len(word) >= 2
    words = [folded(e["word"]) for e in found]
    assert len(set(words)) == len(words) and not any(a in b for a in words for b in words if a != b)


def test_every_related_search_of_the_benchmark_mix_finds_articles_with_its_filters(sample_engine, sample_index):
    from bench.queries import make_queries

    docs = [json.loads(line) for line in (sample_index.parent / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    checked = 0
    for item in make_queries(docs, 30):  # words, pairs, phrases, spans and whole titles; filters and sorts
        params = dict(categories=(item.category,) if item.category else (), date_from=item.date_from,
                      date_to=item.date_to, sort=item.sort)
        answer = search(sample_engine, item.q, **params)
        assert answer["total"] >= 2 or answer["related"] == []
        for entry in answer["related"]:
            assert folded(entry["q"]) != folded(item.q)
            assert search(sample_engine, entry["q"], **params)["total"] >= 1, (item, entry)
            checked += 1
    assert checked >= 60


def test_boilerplate_in_nearly_every_article_never_appears(sample_engine):
    everywhere = search(sample_engine, "新闻联播")["total"]
    assert everywhere > 0.5 * sample_engine.stats()["documents"]  # the rule has something to keep out
    for q in QUERIES:
        words = {folded(e["word"]) for e in search(sample_engine, q)["related"]}
        assert not words & (BOILERPLATE | STOP | {q}), words


def test_a_query_in_another_width_case_or_script_gets_no_variant_of_itself(sample_engine):
    for q, itself in (("經濟", "经济"), ("ＧＤＰ", "gdp"), ("gdp", "gdp")):
        answer = search(sample_engine, q)
        assert answer["total"] >= 2
        for entry in answer["related"]:
            word = folded(entry["word"])
            assert itself not in word and word not in itself, entry
            assert search(sample_engine, entry["q"])["total"] >= 1, entry


def test_no_match_or_one_gives_an_empty_list(sample_engine, sample_client):
    assert search(sample_engine, "zzqqxxnomatch")["related"] == []
    title = next(t for t in _titles(sample_engine, "疫情") if search(sample_engine, f'"{t}"')["total"] == 1)
    assert search(sample_engine, f'"{title}"')["related"] == []
    for q in ("zzqqxxnomatch", f'"{title}"'):
        html = sample_client.get("/search", query_string={"q": q}).get_data(as_text=True)
        assert "相关搜索" not in html
    assert "相关搜索" in sample_client.get("/search", query_string={"q": "疫情"}).get_data(as_text=True)


def test_a_story_s_list_has_none(sample_engine, monkeypatch):
    monkeypatch.setattr(related, "MIN_HITS", 1)  # even one article would give some: the list of copies gives none
    monkeypatch.setattr(related, "MIN_HELD", ((0, 1),))
    title = next(t for t in _titles(sample_engine, "疫情") if search(sample_engine, f'"{t}"')["total"] == 1)
    alone = search(sample_engine, f'"{title}"')
    assert alone["related"]
    hit = alone["hits"][0]
    listed = search(sample_engine, "", story=hit["story"]["id"])
    assert listed["total"] == hit["story"]["size"] and listed["related"] == []


def _titles(engine, q: str) -> list[str]:
    return [hit["title"] for hit in search(engine, q, size=20)["hits"] if len(hit["title"]) >= 8]


def test_the_same_request_gives_the_same_list(sample_engine, sample_index):
    first = search(sample_engine, "经济", sort="newest")["related"]
    again = Engine(sample_index)
    try:
        assert again.search(SearchRequest(q="经济", sort="newest"))["related"] == first
    finally:
        again.close()
    assert search(sample_engine, "经济")["related"] == first  # the sample is by score, whatever the order shown


def test_the_sample_and_the_time_are_capped(sample_engine, monkeypatch):
    whole = search(sample_engine, "习近平")
    assert whole["work"]["sampled"] == related.SAMPLE and "related" not in whole["work"]["capped"]
    monkeypatch.setattr(related, "SAMPLE", 20)
    smaller = search(sample_engine, "习近平")
    assert smaller["work"]["sampled"] == 20 and smaller["related"] and smaller["related"] != whole["related"]
    monkeypatch.setattr(related, "TIME_SHARE", 0.0)  # no time left for it: nothing read, said in work
    late = search(sample_engine, "习近平")
    assert late["related"] == [] and late["work"]["sampled"] == 0 and late["work"]["capped"] == ["related"]
    assert late["total"] == whole["total"] and late["hits"] == whole["hits"]  # matching is untouched


@pytest.mark.parametrize(("q", "word", "expected"), [
    ("疫情", "疫苗", "疫情 疫苗"),
    ("  疫情   防控 ", "疫苗", "疫情 防控 疫苗"),
    ("习近平 OR 李克强", "总理", "习近平 OR 李克强 总理"),  # OR binds the two names; the word is a clause of its own
    ("疫情 OR", "疫苗", "疫苗"),  # a dangling OR would join the word: alone
    ('"疫情', "疫苗", "疫苗"),  # an unclosed quote: alone
    ("疫情 防控 常态化 措施 落实", "疫苗", "疫苗"),  # not a short query
    ("疫情", "OR", "OR"),  # the operator would join the query's last clause to nothing: alone
    ("title:疫情 -防控", "疫苗", "title:疫情 -防控 疫苗"),
])
def test_a_word_is_added_to_a_short_simple_query_else_alone(q, word, expected):
    assert related.phrase_of(q, parse_query(q), word) == expected


def test_candidates_leave_out_stop_words_numbers_and_variants():
    terms = related._query_terms(parse_query("ＧＤＰ 增長"))
    assert terms >= {"gdp", "增长"}
    for word in ("gdp", "增长率", "增", "的", "我们", "新闻联播", "2023年", "十二月", "3000万元", "31", "个省", "一条条"):
        assert not related.is_candidate(word, terms), word
    for word in ("5g", "g20", "国家统计局", "消费"):
        assert related.is_candidate(word, terms), word
    assert related_words.is_named("国家统计局") and related_words.is_named("GDP") and not related_words.is_named("彼此")


def test_each_article_keeps_the_nouns_and_names_of_its_title_and_lead(sample_engine):
    """The words related searches count are fixed at index time: those words_of finds in the stored text, no others."""
    build = sample_engine.current()
    words, read = build.columns.words, 0
    assert words.df.sum() == len(words.codes)
    with sample_engine.borrowed(build) as searcher:
        assert words.size == searcher.doc_count_all()
        texts = [searcher.stored_fields(doc) for doc in range(0, words.size, 97)]
    for doc, stored in zip(range(0, words.size, 97), texts):
        expected = related_words.words_of(stored.get("title") or "", stored.get("body") or "")
        codes = words.codes[words.offsets[doc]:words.offsets[doc + 1]]
        assert sorted(words.labels[codes].tolist()) == sorted(expected), stored["id"]
        read += bool(expected)
        lead = related_words.lead(stored.get("body") or "")
        assert len(lead) <= related_words.SAMPLE_CHARS and (stored.get("body") or "").startswith(lead)
        for word in expected:  # each is in the title or the lead, folded; none is a verb, a stop word or a number
            assert word in analysis.normalize(f"{stored.get('title')}\n{lead}") and word not in STOP | BOILERPLATE
            assert related_words.is_named(word) and not NUMBER_OR_DATE.fullmatch(word)
    assert read > 10
    assert related_words.words_of("习近平出席", "彼此共同") == {"习近平": "习近平"}  # verbs, pronouns, adverbs: no subject
    assert related_words.words_of("ＧＤＰ增长", "") == {"gdp": "ＧＤＰ"}  # folded, kept as written


def test_the_page_shows_escaped_links_keeping_the_filters(sample_engine, sample_client):
    q = "疫情 -<x>"
    expected = search(sample_engine, q, categories=("国际资讯",))["related"]
    assert expected and any(e["q"].startswith(q) for e in expected)
    html = sample_client.get("/search", query_string={"q": q, "category": "国际资讯"}).get_data(as_text=True)
    block = html[html.index('<nav class="related-searches"'):]
    block = block[:block.index("</nav>")]
    assert "<x>" not in block and "&lt;x&gt;" in block
    links = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', block)
    assert [text for _, text in links] == [e["q"].replace("<", "&lt;").replace(">", "&gt;") for e in expected]
    href, _ = links[0]
    assert href.startswith("/search?q=") and "category=%E5%9B%BD%E9%99%85%E8%B5%84%E8%AE%AF" in href
    follow = sample_client.get(href.replace("&amp;", "&")).get_data(as_text=True)
    assert "没有找到" not in follow and 'class="hits"' in follow


def test_the_api_and_the_cli_give_the_same_list(sample_engine, sample_index, sample_client, runner):
    body = sample_client.get("/api/search", query_string={"q": "俄罗斯"}).get_json()
    assert body["related"] == search(sample_engine, "俄罗斯")["related"]
    assert all(set(entry) == {"q", "word"} for entry in body["related"])
    assert sample_client.get("/api/search", query_string={"q": "zzqqxxnomatch"}).get_json()["related"] == []
    result = runner.invoke(cli, ["query", "俄罗斯", "--index", str(sample_index)])
    assert result.exit_code == 0
    assert "\n相关搜索: " + " · ".join(e["q"] for e in body["related"]) + "\n" in result.output
    shown = json.loads(runner.invoke(cli, ["query", "俄罗斯", "--index", str(sample_index), "--json"]).output)
    assert shown["related"] == body["related"]
    none = runner.invoke(cli, ["query", "zzqqxxnomatch", "--index", str(sample_index)])
    assert none.exit_code == 0 and "相关搜索" not in none.output
