"""Contract of indexer/snapshot.py: what a snapshot page or a JSON Lines line reads as.

A seed page parses to exact field values. Encoding (UTF-8 with or without BOM,
GB18030, GBK), line ends, full-width colons, anything or nothing between meta
fields and a meta line broken over two lines do not change the result. A line
that names meta labels inside the body, or in a headline list, is never the
meta line, and a title is never taken from below the body; a page without a
meta line keeps its first line that is no breadcrumb as title, with a warning. A missing part (meta field, footer, related lists,
unreadable date) costs only that part and leaves a warning; an empty, binary or
titleless file raises SnapshotError with a stable reason. Footer, list and
origin lines never reach the body. JSON Lines yields a SnapshotError per bad
line instead of raising, and the shared corpus reads without errors.
"""

import gzip
import json
import pickle
from dataclasses import replace
from datetime import datetime
from itertools import islice
from pathlib import Path

import opencc
import pytest

from indexer.snapshot import (
    Article,
    Headline,
    SnapshotError,
    iter_sources,
    load_snapshot,
    parse_snapshot,
    read_jsonl,
    read_text,
)

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
PINNED = SEEDS / "001_4cc39e73fcc59f5b.txt"
CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/news.jsonl.gz"
FRAME_TEXT = ("快照生成时间", "信息原文地址", "以上内容为", "本站信息快照", "更多关于", "本文转自", "冬季用车指南",
              "2023-12-29", "我的订阅", "•")
META = "类别:汽车\xa0发布时间:2023-12-30 07:47:00\xa0来源:每日看点快看"
FOOTER_START = "以上内容为资讯信息快照"


def seed_text() -> str:
    """Return the pinned seed page as text."""
    return PINNED.read_text(encoding="utf-8")


def write_page(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "page.txt") -> Path:
    """Write a page into tmp_path in the given encoding and return its path.

    GBK has no • and no NBSP: a GBK page writes them as · and U+3000.
    """
    if encoding == "gbk":
        text = text.replace("•", "·").replace("\xa0", "\u3000")
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def pinned_at(path: Path) -> Article:
    """Return the pinned seed's parse as if it had been read from path."""
    return replace(load_snapshot(PINNED), path=str(path))


def read_errors(call) -> tuple[str, str]:
    """Run call and return the (path, reason) of the SnapshotError it raises."""
    with pytest.raises(SnapshotError) as caught:
        call()
    return caught.value.path, caught.value.reason


def test_pinned_seed_parses_to_exact_fields():
    article = load_snapshot(PINNED)
    assert article.title == "衢州新能源汽车产业链加速成形 多个电池项目年内投产"
    assert article.category == "汽车"
    assert article.published == datetime(2023, 12, 30, 7, 47, 0)
    assert article.source == "每日看点快看"
    assert article.origin == "中国新闻网"
    assert article.url == "https://news.example.com/auto/2023-12-30/battery-chain.html"
    assert article.snapshot_time == datetime(2024, 1, 2, 8, 0, 0)
    assert article.path == str(PINNED)
    assert article.doc_id is None
    assert article.warnings == []
    assert len(article.body) == 7
    assert article.body[0].startswith("中新网衢州12月29日电 岁末时节")
    assert article.body[2] == "图为衢州智造新城一处动力电池生产车间。"
    assert article.body[-1] == (
        "据了解，当地明年将继续推进电池回收利用基地建设，探索建立覆盖生产、使用、回收的全生命周期管理体系。"
    )
    body = "\n".join(article.body)
    assert "支持800V快充平台" in body
    assert "衢州锐能新能源科技有限公司" in body
    assert article.title not in body  # the image placeholder line is gone
    assert [text for text in FRAME_TEXT if text in body] == []
    assert article.related == [
        Headline(
            "新能源汽车维修专业走俏 职校学生未毕业就被“预订”",
            "校企合作订单班供不应求，实训课程紧跟产业需求。",
            datetime(2023, 11, 20, 9, 15),
            None,
        ),
        Headline(None, "工信部门表示，将进一步完善动力电池回收利用体系。", datetime(2023, 12, 28, 16, 5), None),
        Headline(
            "冬季用车指南：低温环境下如何延长电动车续航",
            "专家建议合理设置空调温度，出行前预热电池。",
            datetime(2023, 12, 27, 9, 30),
            "汽车",
        ),
        Headline(
            "二手新能源车交易活跃 检测标准亟待统一",
            "二手车商反映，电池健康度评估仍缺少统一口径。",
            datetime(2023, 12, 26, 18, 45),
            "汽车",
        ),
    ]


def test_utf8_with_bom_reads_like_without(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + seed_text().encode("utf-8"))
    assert load_snapshot(path) == pinned_at(path)


@pytest.mark.parametrize("encoding", ["gb18030", "gbk"])
def test_gb18030_and_gbk_read_like_utf8(tmp_path, encoding):
    path = write_page(tmp_path, seed_text(), encoding)
    assert load_snapshot(path) == pinned_at(path)


@pytest.mark.parametrize("line_end", ["\r\n", "\r"])
def test_crlf_and_cr_line_ends_read_like_lf(tmp_path, line_end):
    path = write_page(tmp_path, seed_text().replace("\n", line_end))
    assert "\r" not in read_text(path)
    assert load_snapshot(path) == pinned_at(path)


def test_full_width_colons_read_like_ascii(tmp_path):
    text = seed_text()
    for key in ("类别", "发布时间", "来源", "本文转自", "快照生成时间", "信息原文地址", "相关新闻", "的资讯"):
        text = text.replace(f"{key}:", f"{key}：")
    assert "：2023-12-30 07:47:00" in text
    path = write_page(tmp_path, text)
    assert load_snapshot(path) == pinned_at(path)


@pytest.mark.parametrize("space", ["\xa0", "\u3000", " \u3000 ", "\t", "?", " ? ", ""])
def test_odd_spaces_between_meta_fields(tmp_path, space):
    meta = "类别:汽车 发布时间:2023-12-30 07:47:00 来源:每日看点快看"
    odd = f"来源:{space}每日看点快看{space}类别:汽车{space}发布时间:2023-12-30 07:47:00{space}"
    path = write_page(tmp_path, seed_text().replace(meta, odd))
    assert load_snapshot(path) == pinned_at(path)


@pytest.mark.parametrize("meta", [
    "类别:汽车\n发布时间:2023-12-30 07:47:00\n来源:每日看点快看",
    "类别:汽车 发布时间:\n2023-12-30 07:47:00 来源:每日看点快看",  # broken right after a colon
    "类别:汽车 来源:每日看点快看 发布时间:2023-12-30\n07:47:00",  # broken inside the time
    "来源：每日看点快看?\n\n类别：汽车?发布时间：2023-12-30 07:47:00",
])
def test_meta_line_broken_over_two_lines(tmp_path, meta):
    path = write_page(tmp_path, seed_text().replace(META, meta))
    assert load_snapshot(path) == pinned_at(path)


@pytest.mark.parametrize("line", ["据企业介绍，该电池的技术来源:自主研发，发布时间:2023年12月14日。",
                                  "来源:工信部 发布时间:2023-12-01 09:00:00 类别:政策"])
@pytest.mark.parametrize("where", ["after meta", "after origin"])
def test_a_body_line_naming_meta_labels_is_body_text(line, where):
    anchor = META if where == "after meta" else "本文转自:中国新闻网"
    article = parse_snapshot(seed_text().replace(anchor, f"{anchor}\n\n{line}"))
    assert article == replace(load_snapshot(PINNED), path="", body=[line, *load_snapshot(PINNED).body])


def test_without_meta_line_a_label_inside_the_body_is_not_the_meta_line():
    line = "据企业介绍，该电池的技术来源:自主研发，发布时间:2023年12月14日。"
    text = seed_text().replace(META, "").replace("本文转自:中国新闻网", f"本文转自:中国新闻网\n\n{line}")
    expected = replace(load_snapshot(PINNED), path="", published=None, source=None, warnings=["no meta line"],
                       body=[line, *load_snapshot(PINNED).body])
    assert parse_snapshot(text) == expected


@pytest.mark.parametrize("header", ["", "相关新闻:\n"])
def test_a_headline_list_after_the_body_is_not_the_title(header):
    text = "\n".join(["• 我的订阅", "  • 汽车", "", "短页面的标题", "", "正文只有一段。", "", FOOTER_START + "…",
                      "快照生成时间:2024-01-02 08:00:00", "信息原文地址:", "",
                      header + "相关报道的标题", "类别:汽车 发布时间:2023-12-01 08:00:00 来源:某报", "2023-12-01 08:00:00"])
    article = parse_snapshot(text)
    assert (article.title, article.category, article.body, article.warnings) == (
        "短页面的标题", "汽车", ["正文只有一段。"], ["no meta line"])
    assert article.related == [Headline("相关报道的标题", "类别:汽车 发布时间:2023-12-01 08:00:00 来源:某报",
                                        datetime(2023, 12, 1, 8, 0), None)]
    with_meta = parse_snapshot(text.replace("短页面的标题", f"短页面的标题\n\n{META}"))
    assert (with_meta.title, with_meta.source, with_meta.warnings) == ("短页面的标题", "每日看点快看", [])


def test_an_empty_last_meta_value_does_not_take_the_next_line():
    text = seed_text().replace(META, "类别:汽车 发布时间:2023-12-30 07:47:00 来源:").replace("本文转自:中国新闻网\n\n", "")
    expected = replace(load_snapshot(PINNED), path="", source=None, origin=None, warnings=["no 来源"])
    assert parse_snapshot(text) == expected


def test_missing_meta_field_warns_and_keeps_the_rest(tmp_path):
    path = write_page(tmp_path, seed_text().replace("\xa0发布时间:2023-12-30 07:47:00", ""))
    expected = replace(pinned_at(path), published=None, warnings=["no 发布时间"])
    assert load_snapshot(path) == expected


def test_missing_category_falls_back_to_breadcrumb_then_none():
    text = seed_text().replace("类别:汽车\xa0", "")
    assert parse_snapshot(text).category == "汽车"
    assert parse_snapshot(text.replace("  • 汽车", "  • 新闻\n    • 新能源车")).category == "新能源车"
    old = "首页 » 新闻 » 新能源车 » 正文\n"
    assert parse_snapshot(old + text.split("\n\n", 1)[1]).category == "新能源车"
    bare = parse_snapshot(text.split("\n\n", 1)[1])
    assert (bare.title, bare.category, bare.warnings) == (
        "衢州新能源汽车产业链加速成形 多个电池项目年内投产",
        None,
        ["no category"],
    )


def test_no_footer_ends_body_at_first_list(tmp_path):
    lines = [line for line in seed_text().split("\n") if not line.startswith(("快照生成时间", "信息原文地址"))]
    path = write_page(tmp_path, "\n".join(lines))
    expected = replace(pinned_at(path), url=None, snapshot_time=None, warnings=["no footer"])
    assert load_snapshot(path) == expected


def test_no_related_lists(tmp_path):
    path = write_page(tmp_path, seed_text().rsplit("\n\n", 1)[0])
    assert load_snapshot(path) == replace(pinned_at(path), related=[])


def test_empty_url_is_none(tmp_path):
    text = seed_text().replace("https://news.example.com/auto/2023-12-30/battery-chain.html", "")
    path = write_page(tmp_path, text)
    assert load_snapshot(path) == replace(pinned_at(path), url=None)


def test_origin_as_last_body_line_and_boilerplate_stay_out_of_body():
    text = seed_text().replace("本文转自:中国新闻网\n\n", "")
    text = text.replace(
        FOOTER_START,
        "责任编辑：王五\n\n【纠错】 【打印】 【关闭】\n分享到：微信 微博\n\n本文转自：中国新闻网\n\n" + FOOTER_START,
    )
    assert parse_snapshot(text) == replace(load_snapshot(PINNED), path="")


@pytest.mark.parametrize("data", [b"", b"  \n\r\n\t", b"\xef\xbb\xbf\n"])
def test_empty_file_raises(tmp_path, data):
    path = tmp_path / "empty.txt"
    path.write_bytes(data)
    assert read_errors(lambda: load_snapshot(path)) == (str(path), "empty file")


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, bytes(range(1, 32)) * 50 + b"title\n"],
)
def test_binary_file_raises(tmp_path, data):
    path = tmp_path / "image.txt"
    path.write_bytes(data)
    assert read_errors(lambda: load_snapshot(path)) == (str(path), "binary file")


def test_undecodable_file_raises(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("首页 > 汽车 > 正文\n标题\n".encode("utf-8") + b"\xff\xff\xff\n")
    assert read_errors(lambda: load_snapshot(path)) == (str(path), "undecodable")


def test_no_title_raises():
    text = "首页 > 汽车 > 正文\n类别:汽车 发布时间:2023-12-30 07:47:00 来源:每日看点快看\n正文一段。\n"
    assert read_errors(lambda: parse_snapshot(text, "x.txt")) == ("x.txt", "no title")


def test_several_megabyte_file_parses(tmp_path):
    paragraph = "在衢州锐能新能源科技有限公司，技术负责人向记者展示了新一代金砖电池。" * 4
    text = seed_text().replace(FOOTER_START, (paragraph + "\n\n") * 20000 + FOOTER_START, 1)
    path = write_page(tmp_path, text)
    assert path.stat().st_size > 5_000_000
    article = load_snapshot(path)
    assert len(article.body) == 7 + 20000
    assert article.body[-1] == paragraph
    assert len(article.related) == 4
    assert (article.snapshot_time, article.warnings) == (datetime(2024, 1, 2, 8, 0), [])


@pytest.mark.parametrize("value", ["2023-13-45 07:47:00", "昨天", "2023-02-30"])
def test_garbage_dates_become_none_with_warning(value):
    text = seed_text().replace("2023-12-30 07:47:00", value).replace("2023-12-26 18:45", "2023-12-26 25:61")
    article = parse_snapshot(text)
    assert article.published is None
    assert article.related[-1] == Headline(
        "二手新能源车交易活跃 检测标准亟待统一", "二手车商反映，电池健康度评估仍缺少统一口径。", None, "汽车"
    )
    assert article.warnings == ["bad 发布时间", "bad related time"]


def test_time_formats_in_related_lists_and_teaser_only_entries():
    text = "\n".join(
        [
            "只有标题的页面",
            "来源:人民网",
            "正文一段。",
            "更多关于科技的资讯:",
            "只有一行的导语。",
            "2024/3/5 8:05",
            "标题一",
            "导语一",
            "2024年03月04日 20:30:59",
            "没有时间的导语",
        ]
    )
    article = parse_snapshot(text)
    assert article.related == [
        Headline(None, "只有一行的导语。", datetime(2024, 3, 5, 8, 5), "科技"),
        Headline("标题一", "导语一", datetime(2024, 3, 4, 20, 30, 59), "科技"),
    ]
    assert article.body == ["正文一段。", "没有时间的导语"]  # a line no time closes stays searchable
    assert article.warnings == [
        "no 发布时间", "line 10: related entry without time, kept in body", "no footer", "no category"]


JSONL_LINES = [
    {"id": "n1", "title": "标题一", "body": "第一段\n\n 第二段 \n", "category": "财经",
     "date": "2024-04-12 16:30:00", "source": "新华网", "url": "https://example.com/1", "tags": ["x"]},
    "{not json",
    {"title": "只有日期", "body": "正文", "date": "2024-04-12"},
    [1, 2],
    {"title": "  ", "body": "没有标题"},
    {"title": "坏日期", "body": "正文", "date": "2024-13-01 00:00:00", "id": 7},
    {"title": "坏正文", "body": ["列表"]},
]


def write_jsonl(path: Path, items: list) -> Path:
    """Write items as JSON Lines (strings verbatim, plus one blank line), gzipped for .gz."""
    lines = [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in items]
    data = ("\n".join(lines[:2] + [""] + lines[2:]) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("name", ["items.jsonl", "items.jsonl.gz"])
def test_read_jsonl_yields_articles_and_errors_per_line(tmp_path, name):
    path = str(write_jsonl(tmp_path / name, JSONL_LINES))
    results = list(read_jsonl(path))
    assert [(r.path, r.reason) for r in results if isinstance(r, SnapshotError)] == [
        (f"{path}:2", "invalid JSON"),
        (f"{path}:5", "not an object"),
        (f"{path}:6", "no title"),
        (f"{path}:8", "bad body"),
    ]
    articles = [r for r in results if isinstance(r, Article)]
    assert articles == [
        Article("标题一", ["第一段", "第二段"], "财经", datetime(2024, 4, 12, 16, 30), "新华网", None,
                "https://example.com/1", None, [], f"{path}:1", "n1", []),
        Article("只有日期", ["正文"], None, datetime(2024, 4, 12), None, None, None, None, [], f"{path}:4"),
        Article("坏日期", ["正文"], None, None, None, None, None, None, [], f"{path}:7", "7", ["bad date"]),
    ]


def test_read_jsonl_reports_a_corrupt_gzip_once(tmp_path):
    path = tmp_path / "broken.jsonl.gz"
    data = gzip.compress("".join(f'{{"title": "标题{n}"}}\n' for n in range(5000)).encode("utf-8"))
    path.write_bytes(data[: len(data) // 2])
    results = list(read_jsonl(path))
    errors = [(r.path, r.reason) for r in results if isinstance(r, SnapshotError)]
    assert errors == [(str(path), "unreadable file")] and isinstance(results[-1], SnapshotError)
    assert len(results) > 100


def test_snapshot_error_survives_pickling():
    error = pickle.loads(pickle.dumps(SnapshotError("a.txt", "binary file")))
    assert (error.path, error.reason, str(error)) == ("a.txt", "binary file", "a.txt: binary file")


def test_iter_sources_sorts_and_filters(tmp_path):
    for name in ["b/2.txt", "b/1.jsonl.gz", "a.jsonl", "b/c/0.TXT", "notes.md", "data.json", ".hidden/x.txt",
                 "b/.swap.txt", "z.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    found = list(iter_sources([tmp_path / "z.txt", tmp_path, tmp_path / "notes.md"]))
    expected = ["a.jsonl", "b/1.jsonl.gz", "b/2.txt", "b/c/0.TXT", "z.txt"]
    assert found == [str(tmp_path / name) for name in expected]
    assert list(iter_sources(tmp_path / "b" / "c")) == [str(tmp_path / "b/c/0.TXT")]
    with pytest.raises(FileNotFoundError):
        list(iter_sources([tmp_path / "missing"]))


def test_shared_corpus_head_reads_without_errors():
    assert CORPUS.is_file(), f"the shared corpus is missing: {CORPUS}"
    items = list(islice(read_jsonl(CORPUS), 2000))
    assert len(items) == 2000
    assert [item for item in items if not isinstance(item, Article)] == []
    assert [item.warnings for item in items if item.warnings] == []
    assert all(item.doc_id.startswith("xwlb-") and item.body and item.published for item in items)
    assert items[0].path == f"{CORPUS}:1"


def test_every_seed_parses_cleanly_and_the_recrawl_matches():
    articles = {path.name[:3]: load_snapshot(path) for path in sorted(SEEDS.glob("*.txt"))}
    assert len(articles) == 10
    assert {name: a.warnings for name, a in articles.items() if a.warnings} == {}
    assert sorted({a.category for a in articles.values()}) == ["国际", "教育", "汽车", "社会", "科技", "财经"]
    assert all(300 <= len("".join(a.body)) <= 900 for a in articles.values())
    assert all(a.title not in "".join(a.body) for a in articles.values())
    first, again = articles["009"], articles["010"]
    assert replace(again, path=first.path, snapshot_time=first.snapshot_time) == first
    assert again.snapshot_time > first.snapshot_time
    titles = {a.title for a in articles.values()}
    assert [h.title for h in articles["001"].related if h.title in titles] == [articles["004"].title]
    assert (articles["003"].origin, articles["005"].related, articles["007"].url) == (None, [], None)


def seeds_with(text: str, fold: bool = False) -> list[str]:
    """Return the numbers of the seed files that contain text, optionally after t2s folding."""
    convert = opencc.OpenCC("t2s").convert if fold else str
    return [p.name[:3] for p in sorted(SEEDS.glob("*.txt")) if text in convert(p.read_text(encoding="utf-8"))]


def test_seeds_hold_the_strings_other_tests_use():
    assert seeds_with("衢州") == ["001", "004"]
    assert seeds_with("金砖电池") == seeds_with("800V快充") == ["001"]
    assert seeds_with("南京市长江大桥") == ["006"]
    assert seeds_with("中国农业发展银行", fold=True) == ["002"]
    assert seeds_with("中等技术学校") == ["004"]
    assert seeds_with("马克", fold=True) == seeds_with("马克思") == ["005"]
    assert seeds_with("ＡＢＣ１２３") == ["003"]
    assert next(SEEDS.glob("003_*.txt")).read_text(encoding="utf-8").count("ＡＢＣ１２３") == 1
    assert seeds_with("農業") == ["008"] and "008" not in seeds_with("农业")
    assert [seeds_with(token) != [] for token in ("GDP", "7.7%", "iPhone", "800V")] == [True] * 4
    assert seeds_with("公司", fold=True) == seeds_with("有限公司") == ["001", "003"]
    for path in SEEDS.glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        assert text.count("公司") == text.count("有限公司")
    for absent in ("技术中等", "银行发展", "马克·吐温", "ABC123", "abc123"):
        assert seeds_with(absent, fold=True) == []


def test_empty_origin_lines_are_frame_and_a_second_origin_stays_body_text():
    article = parse_snapshot("标题\n来源:某报\n本文转自:\n本文转自:甲报\n正文一段。\n本文转自:\n本文转自:乙报\n")
    assert (article.origin, article.body) == ("甲报", ["正文一段。", "本文转自:乙报"])
    assert "本文转自:" not in article.body  # an empty origin line is never body text
