"""Contract of indexer/analysis.py: the token streams both index and queries use.

Folding keeps one code point per code point (offsets stay valid) and maps
full-width to half-width, Latin to lower case and traditional to simplified.
Words are jieba's, plus the dictionary words inside longer words at the same
position, stop words left out unless written in upper case (IT); Latin and
number tokens stay whole. Grams are every word character and
every adjacent pair, positioned by character. rjieba segments as jieba does.
"""

import subprocess
import sys

import jieba
import pytest

from conftest import corpus_items
from indexer.analysis import (WordTokenizer, bridges_of, explain, get_segmenter, iter_bigrams, iter_bridges, iter_chars,
                              iter_words, normalize)


def words(text):
    return list(iter_words(normalize(text), text))


def test_normalize_folds_width_case_and_script_one_for_one():
    text = "ＡＢＣ１２３　農業發展銀行ＧＤＰ增長７．７％，iPhone"
    folded = normalize(text)
    assert folded == "abc123 农业发展银行gdp增长7.7%,iphone"
    assert len(folded) == len(text)
    assert normalize("中国农业发展银行") == "中国农业发展银行"


def test_normalize_leaves_what_has_no_single_fold():
    # ㈠ folds to three characters under NFKC and İ lower-cases to two: both stay.
    assert normalize("①㈠İ") == "1㈠İ"


def test_words_carry_jieba_words_and_their_dictionary_subwords():
    assert words("南京市长江大桥") == [
        ("南京市", 0, 0, 3), ("南京", 0, 0, 2), ("京市", 0, 1, 3),
        ("长江大桥", 1, 3, 7), ("长江", 1, 3, 5), ("大桥", 1, 5, 7),
    ]
    assert words("有限公司") == [("有限公司", 0, 0, 4), ("有限", 0, 0, 2), ("公司", 0, 2, 4)]
    # 市长 is not a word of this sentence: only the character field can find it.
    assert "市长" not in {w for w, *_ in words("南京市长江大桥")}


def test_words_keep_latin_and_numbers_whole_and_unstemmed():
    assert words("800V快充 GDP增长7.7% iPhone") == [
        ("800v", 0, 0, 4), ("快充", 1, 4, 6), ("gdp", 2, 7, 10),
        ("增长", 3, 10, 12), ("7.7%", 4, 12, 16), ("iphone", 5, 17, 23),
    ]
    assert words("ＡＢＣ１２３") == [("abc123", 0, 0, 6)]


def test_words_drop_stop_words_but_keep_their_position():
    assert words("发展的银行") == [("发展", 0, 0, 2), ("银行", 2, 3, 5)]


def test_an_upper_case_latin_stop_word_is_a_word():
    # IT the trade is a word; it and It the pronoun are stop words. Full-width ＩＴ is upper case too.
    assert words("IT行业 it It ＩＴ") == [("it", 0, 0, 2), ("行业", 1, 2, 4), ("it", 4, 11, 13)]
    assert words("A股AT&T") == [("a", 0, 0, 1), ("股", 1, 1, 2), ("at", 2, 2, 4), ("t", 3, 5, 6)]
    # Without the text before folding, case is unknown: every stop word is left out.
    assert list(iter_words(normalize("IT行业"))) == [("行业", 1, 2, 4)]
    # Whoosh's tokenizer reads the same words from the original text.
    tokens = WordTokenizer()("IT行业 it", positions=True, chars=True)
    assert [(t.text, t.pos, t.startchar, t.endchar) for t in tokens] == [("it", 0, 0, 2), ("行业", 1, 2, 4)]
    assert explain("IT行业")["words"] == [("it", 0, 0, 2), ("行业", 1, 2, 4)]


def test_recall_streams_are_pairs_and_characters_within_runs():
    folded = normalize("衢州，Ａ1")
    assert list(iter_bigrams(folded)) == [("衢州", 0, 0, 2), ("a1", 3, 3, 5)]
    assert list(iter_chars(folded)) == [("衢", 0, 0, 1), ("州", 1, 1, 2), ("a", 3, 3, 4), ("1", 4, 4, 5)]
    # No pair crosses punctuation.
    assert "州a" not in {g for g, *_ in iter_bigrams(folded)}


def test_bridges_span_punctuation_between_runs_spaces_not_counting():
    folded = normalize("坚强领导下，各地区。 “好”……啊！——！——x")
    bridges = list(iter_bridges(folded))
    # The space in "。 “" does not count; "！——！——" (six marks) is no bridge.
    assert bridges == [("下,各", 4), ("区。“好", 8), ("好”……啊", 12)]
    assert all(not b.isalnum() for b, _ in bridges)  # a bridge always holds a mark: never a pair
    assert list(iter_bridges(normalize("衢州 市"))) == []  # spaces alone are no bridge
    # A text without spaces starting and ending with a word character is placed by its runs and bridges.
    assert bridges_of(normalize("领导下，各")) == [("下,各", 2)]
    assert bridges_of(normalize("，各")) is None and bridges_of(normalize("各，")) is None
    assert bridges_of(normalize("甲——……乙")) is None  # a gap of four marks


def test_explain_reports_offsets_into_the_original_text():
    data = explain("農業銀行")
    assert data["normalized"] == "农业银行"
    assert data["words"] == [("农业银行", 0, 0, 4), ("农业", 0, 0, 2), ("银行", 0, 2, 4)]


def test_rjieba_segments_like_jieba_on_a_corpus_sample():
    jieba.setLogLevel(60)
    seg = get_segmenter()
    items = corpus_items(2000, start=0)[::4]
    texts = [normalize(item["title"] + "\n" + item["body"]) for item in items]
    same = sum(list(jieba.cut(t)) == [w for w, _, _ in seg.cut(t)] for t in texts)
    # Measured: 499 of 500. The rare differences are dotted number runs (2015.11.11).
    assert same >= 0.99 * len(texts), f"{same} of {len(texts)} articles segment alike"


def test_userdict_changes_segmentation_in_a_fresh_process(tmp_path):
    userdict = tmp_path / "dict.txt"
    userdict.write_text("锐能新能源 10 nz\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "indexer", "explain", "--json", "衢州锐能新能源科技"]
    plain = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    custom = subprocess.run([*cmd, "--userdict", str(userdict)], capture_output=True, text=True, check=True).stdout
    assert '"锐能新能源"' in custom
    assert '"锐能新能源"' not in plain


@pytest.mark.parametrize("text", ["", "   ", "，。！", "\x00\x01"])
def test_empty_or_symbol_only_text_has_no_words(text):
    assert words(text) == []
