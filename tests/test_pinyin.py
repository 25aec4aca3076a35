"""Pinyin and initials in completion and did-you-mean, read from the build's lexicon (indexer/lexicon.py).

Contract: a Latin prefix completes the index's words whose full pinyin or initials start with it (and
nothing whose keys do not), the frequent place and person words of a real sample within the top 5 both
ways; polyphones read as in pypinyin's phrase dictionary; a Latin query that finds nothing is answered
with the word whose pinyin it is; a Latin query that is itself a word of the index is never rewritten;
the lexicon holds every word of the build and follows updates.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from bench.completion import frequent_names
from conftest import NOW, corpus_lines
from indexer.lexicon import INITIALS, PINYIN, WORDS, keys_of, lexicon_files, open_lexicon
from indexer.store import DamagedFileError
from indexer.update import update_index
from indexer.writer import build_index
from search import Engine, spelling
from search.match import Matcher
from search.query import parse_query
from search.request import SearchRequest

STRIDE = 40  # every 40th corpus item: 1,640 items from every year
NAMES = 100  # the most frequent place and person words checked


def _sample() -> tuple[list[str], list[str]]:
    """Return (every STRIDE-th corpus line, the lines naming 衢州 or iPhone not among them)."""
    lines = corpus_lines(70_000)
    picked = lines[::STRIDE]
    extra = [line for i, line in enumerate(lines) if i % STRIDE and re.search("衢州|iphone", line, re.I)]
    return picked, extra


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Build the sample's index (with the extra lines); return (engine, index path)."""
    folder = tmp_path_factory.mktemp("pinyin")
    picked, extra = _sample()
    (folder / "sample.jsonl").write_text("".join(picked + extra), encoding="utf-8")
    build_index([str(folder / "sample.jsonl")], folder / "index", jobs=1)
    engine = Engine(folder / "index")
    yield engine, folder / "index"
    engine.close()


def _keys(word: str) -> list[str]:
    keys = keys_of(word)
    return [word] if keys is None else [word, keys[0], keys[1]]


def test_frequent_places_and_people_complete_from_their_pinyin_and_initials(sample):
    engine, _ = sample
    names = frequent_names(engine.current().lexicon, NAMES)
    assert len(names) == NAMES and {"北京", "上海", "中国"} <= set(names)
    missed = []
    for word in names:
        full, initials, _ = keys_of(word)
        for typed in (full, initials):
            if word not in engine.complete(typed)["suggestions"][:5]:
                missed.append((word, typed))
    assert missed == []


@pytest.mark.parametrize("typed", ["quzhou", "qz", "bj", "beij", "shanghai", "sh", "xjp", "x", "zhongg", "gdp",
                                   "zhejiangquzhou", "zjqz"])
def test_latin_completions_are_words_whose_keys_start_with_what_was_typed(sample, typed):
    engine, _ = sample
    found = engine.complete(typed)["suggestions"]
    assert found
    for suggestion in found:  # a word by one of its keys, or a title holding the letters
        assert any(k.startswith(typed) for k in _keys(suggestion)) or typed in suggestion.lower(), suggestion


def test_the_examples_complete_and_rank_by_documents(sample):
    engine, _ = sample
    assert engine.complete("quzhou")["suggestions"][0] == "衢州"
    assert "衢州" in engine.complete("qz")["suggestions"][:5]
    assert engine.complete("beijing")["suggestions"][0] == "北京"
    assert engine.complete("bj")["suggestions"][0] == "北京"
    assert "不仅" in engine.complete("bj")["suggestions"]  # common words too, after the names
    assert engine.complete("iph")["suggestions"][0] == "iphone"  # a Latin word by its letters
    assert engine.complete("zhejiangquzhou")["suggestions"] == ["浙江衢州"]  # two words a title holds together


def test_a_prefix_that_is_no_words_key_completes_nothing(sample):
    engine, _ = sample
    for typed in ("qqxq", "vvv", "zzzzzz"):
        answer = engine.complete(typed)
        assert answer["suggestions"] == [] and answer["work"]["capped"] == []
    assert "衢州" not in engine.complete("quzhuo")["suggestions"]
    assert "衢州" not in engine.complete("zq")["suggestions"]  # initials in their order only


def test_polyphones_read_as_in_the_phrase_dictionary(sample):
    engine, _ = sample
    assert keys_of("重庆")[:2] == ("chongqing", "cq")
    assert keys_of("银行")[:2] == ("yinhang", "yh")
    assert keys_of("行长")[:2] == ("hangzhang", "hz")
    assert keys_of("长江")[:2] == ("changjiang", "cj")
    assert keys_of("5g手机")[:2] == ("5gshouji", "5gsj")
    assert keys_of("gdp") is None and keys_of("衢") == ("qu", "", 0)
    assert engine.complete("chongqing")["suggestions"][0] == "重庆"
    assert engine.complete("yinhang")["suggestions"][0] == "银行"
    assert "重庆" not in engine.complete("zhongqing")["suggestions"]
    assert "银行" not in engine.complete("yinxing")["suggestions"]


def test_chinese_then_latin_completes_the_words_starting_with_the_chinese(sample):
    engine, _ = sample
    found = engine.complete("浙江s")["suggestions"]
    assert "浙江省" in found
    assert all(w.startswith("浙江") and keys_of(w)[0].startswith("zhejiangs") for w in found)
    assert "浙江省" not in engine.complete("浙江x")["suggestions"]


def test_a_latin_query_that_finds_nothing_is_answered_with_the_word_of_its_pinyin(sample):
    engine, _ = sample
    for typed in ("quzhou", "QuZhou", "qu zhou"):
        answer = engine.search(SearchRequest(q=typed))
        assert answer["total"] == 0 and answer["suggestion"] == "衢州", typed
    assert engine.search(SearchRequest(q="衢州"))["total"] > 0
    assert engine.search(SearchRequest(q="qqxqzz"))["suggestion"] is None
    assert engine.search(SearchRequest(q="qz"))["suggestion"] != "衢州"  # initials are completed, never a rewrite


def test_the_page_says_did_you_mean(sample):
    from web import create_app

    _, index = sample
    client = create_app({"TESTING": True, "INDEX_DIR": str(index), "FIXED_NOW": NOW}).test_client()
    page = client.get("/search?q=quzhou").get_data(as_text=True)
    assert "您是不是要找：<a" in page and ">衢州</a>" in page
    assert "您是不是要找" not in client.get("/search?q=GDP").get_data(as_text=True)


@pytest.mark.parametrize("word", ["GDP", "iPhone", "5G"])
def test_a_latin_word_of_the_index_is_never_rewritten(sample, word):
    engine, _ = sample
    answer = engine.search(SearchRequest(q=word))
    assert answer["total"] > 0 and answer["suggestion"] is None
    build = engine.current()
    with engine.borrowed(build) as searcher:
        matcher = Matcher(searcher, build.cache, build.lengths, build.columns.published, build.windows)
        # As if it had found nothing: the repairs are tried, and none rewrites it.
        assert spelling.suggest(matcher, parse_query(word), 0, build.lexicon) is None
        assert spelling.suggest(matcher, parse_query("quzhou"), 0, build.lexicon) == "衢州"


def test_the_lexicon_holds_every_word_with_its_documents(sample):
    engine, index = sample
    lexicon = engine.current().lexicon
    build = engine.current()
    with engine.borrowed(build) as searcher:
        words = [w.decode("utf-8") for w in searcher.reader().lexicon("body")]
        step = max(1, len(words) // 300)
        counts = {w: max(searcher.doc_frequency("title", w), searcher.doc_frequency("body", w)) for w in words[::step]}
    assert len(lexicon) >= len(words)
    assert {w: int(lexicon.df[lexicon.find(w)]) for w in counts} == counts
    lo, hi = lexicon.span(PINYIN, "quzhou", exact=True)
    assert [lexicon.word(n) for n in lexicon.words_in(PINYIN, lo, hi)] == ["衢州"]
    assert lexicon.df[lexicon.owner[PINYIN]].min() >= 2  # a word of one article has no keys
    lo, hi = lexicon.span(INITIALS, "qz")
    assert "衢州" in [lexicon.word(n) for n in lexicon.words_in(INITIALS, lo, hi)]
    lo, hi = lexicon.span(WORDS, "衢州衢州")
    assert lo == hi and lexicon.find("衢州衢州") is None  # no word: an empty span
    for name in lexicon_files():
        if name.endswith(".npy"):
            np.load(index.resolve() / name, allow_pickle=False)  # plain arrays, no pickles


def test_a_damaged_lexicon_is_named(sample, tmp_path):
    _, index = sample
    copy = tmp_path / "build"
    copy.mkdir()
    for name in lexicon_files():
        shutil.copy(index.resolve() / name, copy / name)
    assert len(open_lexicon(copy)) > 0
    rows = copy / "lexicon.rows.npy"
    rows.write_bytes(rows.read_bytes()[:-8])
    with pytest.raises(DamagedFileError, match="lexicon.rows.npy"):
        open_lexicon(copy)
    (copy / "lexicon.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(DamagedFileError, match="lexicon.json"):
        open_lexicon(copy)
    assert open_lexicon(tmp_path) is None  # a build written before the lexicon: none


def test_an_update_brings_its_words_into_the_lexicon(tmp_path):
    picked, extra = _sample()
    source = tmp_path / "first.jsonl"
    source.write_text("".join(line for line in picked[:150] if "衢州" not in line), encoding="utf-8")
    build_index([str(source)], tmp_path / "index", jobs=1)
    engine = Engine(tmp_path / "index")
    try:
        assert "衢州" not in engine.complete("quzhou")["suggestions"]
        naming = [line for line in extra if "衢州" in line][:12]
        (tmp_path / "more.jsonl").write_text("".join(naming), encoding="utf-8")
        update_index([str(tmp_path / "more.jsonl")], tmp_path / "index", jobs=1)
        assert engine.complete("quzhou")["suggestions"][0] == "衢州"
        assert engine.complete("beijing")["suggestions"][0] == "北京"  # the keys the first build had made
        build = engine.current()
        with engine.borrowed(build) as searcher:
            holding = max(searcher.doc_frequency("title", "衢州"), searcher.doc_frequency("body", "衢州"))
        assert holding > 1 and int(build.lexicon.df[build.lexicon.find("衢州")]) == holding
    finally:
        engine.close()


def test_the_completion_benchmark_prints_names_latency_and_size(sample, capsys):
    """bench.completion checks the names and prints a row per kind of prefix; it asserts nothing about time."""
    from bench import completion

    _, index = sample
    completion.main([str(index), "--names", "20", "--prefixes", "40"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("20 most frequent place and person words, each completed from its full pinyin and "
                      "its initials: 40 of 40 in the top 5")
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in out if line.startswith("| ")}
    assert set(rows) == {"prefixes", "pinyin", "initials", "chinese", "mixed", "all"}
    assert int(rows["all"][1]) == sum(int(rows[k][1]) for k in ("pinyin", "initials", "chinese", "mixed")) > 0
    assert all(rows[k][6] == "— |" for k in ("pinyin", "initials", "chinese", "mixed", "all"))  # nothing capped
    assert out[-1].startswith("lexicon ") and " MB of an index of " in out[-1]
