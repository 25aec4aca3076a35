"""Contract of search/highlight.py: exact, merged, escaped highlights and sentence snippets.

Spans come from the folded text, so they land on the characters the reader
sees (full-width, traditional). Overlapping matches merge into the longest;
every slice of article text is escaped and only <mark> is added. Snippets are
whole sentences (。！？；), about 120 characters, best first, joined with ….
"""

from search.highlight import find_spans, highlight, merge_spans, snippet


def test_spans_merge_overlaps_into_the_longest_match():
    assert find_spans("马克思主义学院", ["马克", "马克思"]) == [(0, 3)]
    assert merge_spans([(5, 7), (0, 2), (1, 3), (3, 4)]) == [(0, 4), (5, 7)]
    assert highlight("马克思主义", ["马克", "马克思"]) == "<mark>马克思</mark>主义"


def test_highlights_land_on_the_original_characters():
    assert highlight("型号ＡＢＣ１２３。", ["abc123"]) == "型号<mark>ＡＢＣ１２３</mark>。"
    assert highlight("現代農業發展", ["农业"]) == "現代<mark>農業</mark>發展"


def test_article_html_is_escaped_and_only_mark_is_added():
    text = '<script>alert("x")</script> 衢州 <b>粗体</b> & more'
    assert highlight(text, ["衢州"]) == (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; <mark>衢州</mark> "
        "&lt;b&gt;粗体&lt;/b&gt; &amp; more")
    assert highlight("<mark>", ["mark"]) == "&lt;<mark>mark</mark>&gt;"


def test_no_needles_or_absent_terms_give_plain_escaped_text():
    assert highlight("a<b", []) == "a&lt;b"
    assert highlight("衢州", ["上海"]) == "衢州"
    assert snippet("第一句。第二句。", []) == "第一句。第二句。"


def test_snippets_pick_the_best_sentences_first_and_join_them():
    body = "开头一句与此无关。这里提到衢州。这里同时提到衢州和电池！结尾无关。"
    assert snippet(body, ["衢州", "电池"]) == (
        "这里同时提到<mark>衢州</mark>和<mark>电池</mark>！ … 这里提到<mark>衢州</mark>。")


def test_long_sentences_and_long_tokens_are_clipped_around_the_match():
    body = "甲" * 300 + "衢州" + "乙" * 300 + "。"
    html = snippet(body, ["衢州"])
    assert "<mark>衢州</mark>" in html
    assert len(html.replace("<mark>", "").replace("</mark>", "")) == 120
    token = "x" * 5000
    assert snippet(token, ["y"]) == "x" * 120 + "…"
