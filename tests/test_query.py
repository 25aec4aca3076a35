"""Contract of search/query.py: what users type, read leniently into clauses.

Spaces separate required terms; "…" (also “…”) is a phrase; -x excludes; OR
joins two terms; title:/source:/category: restrict a term. Everything else is
literal text, and nothing a user types raises: oddities become warnings.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from search.query import MAX_QUERY_CHARS, Clause, parse_query


def clauses(text):
    return [(c.text, c.phrase, c.field, c.negated, [a.text for a in c.alternatives]) for c in parse_query(text).clauses]


def test_terms_phrases_exclusions_or_and_fields():
    assert clauses('衢州 "新能源 汽车" -电池 上海 OR 北京 title:金砖 source:新华网') == [
        ("衢州", False, None, False, []),
        ("新能源 汽车", True, None, False, []),
        ("电池", False, None, True, []),
        ("上海", False, None, False, ["北京"]),
        ("金砖", False, "title", False, []),
        ("新华网", False, "source", False, []),
    ]


def test_chinese_quotes_and_field_phrases():
    assert clauses("“发展银行” title:\"长江大桥\"") == [
        ("发展银行", True, None, False, []), ("长江大桥", True, "title", False, [])]


def test_literal_leftovers_warn_instead_of_failing():
    parsed = parse_query('"未闭合 引号 AND - foo:bar OR')
    assert [c.text for c in parsed.clauses] == ["未闭合", "引号", "AND", "foo:bar", "OR"]
    assert parsed.warnings == ["引号不成对，已按普通文字处理", "OR 需要放在两个词之间，已按普通文字处理"]


def test_overlong_queries_are_cut_with_a_warning():
    parsed = parse_query("衢州" * 4000)
    assert len(parsed.clauses[0].text) == MAX_QUERY_CHARS
    assert parsed.warnings == [f"查询过长，只使用了前 {MAX_QUERY_CHARS} 个字符"]


def test_unspaced_chinese_is_segmented_and_stop_words_weigh_nothing_but_are_required():
    assert Clause("衢州新能源的电池").words() == ["衢州", "新能源", "电池"]
    assert Clause("衢州新能源的电池").terms() == ["衢州", "新能源", "的", "电池"]
    assert Clause("的 了").words() == [] and Clause("的 了").terms() == ["的", "了"]
    assert [c.terms() for c in parse_query("的 了").clauses] == [["的"], ["了"]]
    assert parse_query("   ").clauses == []
    assert Clause("，。！").terms() == []


def test_upper_case_latin_is_a_word_and_implied_stop_words_drop():
    assert Clause("IT行业").words() == ["it", "行业"] == Clause("IT行业").terms()
    assert Clause("it行业").words() == ["行业"]
    assert Clause("it行业").terms() == ["it", "行业"]
    assert Clause("the economy").words() == ["economy"] and Clause("THE economy").words() == ["the", "economy"]
    # Dropped only where the answer cannot change: a repeat, or a stop word another term holds.
    assert Clause("的的的").terms() == ["的"]
    assert Clause("的确的").terms() == ["的确"]
    assert Clause("a an and").terms() == ["and"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_without_raising(text):
    parsed = parse_query(text)
    assert all(isinstance(w, str) for w in parsed.warnings)
    assert all(c.text for c in parsed.clauses)
