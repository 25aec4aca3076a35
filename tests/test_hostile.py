"""Contract of the indexer and the site under hostile input: nothing crashes, nothing goes unreported.

A rebuild over more than 1,000 broken snapshots (tests/hostile.py: truncated,
random bytes, wrong and mixed encodings, NUL and control bytes, markup, garbage
dates, deep whitespace, no title, empty, long lines and tokens) beside 20 good
pages finishes; every file is indexed, a duplicate, or skipped with one of the
documented reasons, counted in the summary; every good page is indexed and
found; garbage dates cost a warning, not the page. A 50 MB one-line file does
not stop the run. Parsing takes time linear in the input, and a UTF-8 page cut
inside a character is never indexed as mojibake.

The parser, the query path and the request parser raise nothing but their own
errors for any input (hypothesis). 5,000 generated requests against the app
get no 500, and markup sent in never comes back live: HTML escapes it, JSON
writes < as \\u003c.
"""

import json
import re
import tempfile
import time
from collections import Counter
from datetime import datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from werkzeug.datastructures import MultiDict

import hostile
from conftest import SEEDS
from indexer.documents import article_id
from indexer.snapshot import Headline, SnapshotError, load_snapshot, parse_snapshot, read_text
from indexer.writer import build_index
from search import Engine, RequestError, SearchRequest, parse_request
from search.highlight import highlight, snippet
from search.query import MAX_TERMS, parse_query
from web import create_app

PROPERTY = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
DATE_WARNINGS = {"bad 发布时间", "bad 快照生成时间", "bad related time", "related entry without time, kept in body"}


def fate(path: Path) -> str:
    """Return what the parser makes of one file: "indexed" or the skip reason."""
    try:
        load_snapshot(path)
        return hostile.INDEXED
    except SnapshotError as exc:
        return exc.reason


@pytest.fixture(scope="module")
def hostile_build(tmp_path_factory):
    """Build an index over 1,000+ broken files and 20 good ones; return what the test needs."""
    folder = tmp_path_factory.mktemp("hostile")
    summary = hostile.build_hostile_index(folder, seed=0, count=1000)
    files, goods = hostile.hostile_files(seed=0, count=1000), hostile.good_files(20)
    engine = Engine(folder / "index")
    with engine.borrowed(engine.current()) as searcher:
        stored = {Path(d["path"]).name: d for d in searcher.all_stored_fields() if d["kind"] == "article"}
    yield {"folder": folder, "files": files, "goods": goods, "summary": summary, "stored": stored, "engine": engine}
    engine.close()


# ---- 1,000 broken snapshots ----------------------------------------------------------------


def test_the_generator_makes_over_1000_broken_files_of_every_kind():
    files = hostile.hostile_files(seed=0, count=1000)
    assert len(files) >= 1000 and len({f.name for f in files}) == len(files)
    assert {f.kind for f in files} == set(hostile.KINDS)
    assert [f.data for f in hostile.hostile_files(seed=0, count=1000)] == [f.data for f in files]
    assert [f.data for f in hostile.hostile_files(seed=1, count=1000)] != [f.data for f in files]


def test_every_file_is_indexed_a_duplicate_or_skipped_with_a_documented_reason(hostile_build):
    summary, files = hostile_build["summary"], hostile_build["files"]
    count = len(files) + len(hostile_build["goods"])
    assert summary["files"] == count
    assert summary["skipped"] + summary["articles"] + summary["duplicates"] == count
    assert set(summary["skipped_by_reason"]) <= hostile.SKIP_REASONS
    fates = Counter(fate(hostile_build["folder"] / "src" / f.name) for f in files)
    reported = {reason: info["count"] for reason, info in summary["skipped_by_reason"].items()}
    assert reported == {reason: n for reason, n in fates.items() if reason != hostile.INDEXED}
    assert summary["articles"] + summary["duplicates"] == fates[hostile.INDEXED] + len(hostile_build["goods"])


def test_files_with_a_known_fate_meet_it(hostile_build):
    stored, src = hostile_build["stored"], hostile_build["folder"] / "src"
    ids = {d["id"] for d in stored.values()}
    missing = [f.name for f in hostile_build["files"]
               if f.expect == hostile.INDEXED and article_id(load_snapshot(src / f.name)) not in ids]
    assert missing == []  # indexed under its own path, or as a duplicate of a page that was
    wrong = [f.name for f in hostile_build["files"] if f.expect in hostile.SKIP_REASONS and f.name in stored]
    assert wrong == []
    by_reason = Counter(f.expect for f in hostile_build["files"] if f.expect in hostile.SKIP_REASONS)
    for reason, expected in by_reason.items():
        assert hostile_build["summary"]["skipped_by_reason"][reason]["count"] >= expected


def test_every_good_file_beside_them_is_indexed_and_found(hostile_build):
    stored, engine = hostile_build["stored"], hostile_build["engine"]
    for name, _, title in hostile_build["goods"]:
        assert stored[name]["title"] == title
        hits = engine.search(SearchRequest(q=f'"{title}"', size=50))["hits"]
        assert stored[name]["id"] in [h["id"] for h in hits], title
    assert engine.search(SearchRequest(q='"可靠性样本99号"'))["total"] == 0


def test_garbage_dates_cost_a_warning_not_the_page(hostile_build):
    dated = [f for f in hostile_build["files"] if f.kind == "garbage date"]
    assert len(dated) >= 100
    assert [f.name for f in dated if f.name not in hostile_build["stored"]] == []
    for item in dated:
        warnings = load_snapshot(hostile_build["folder"] / "src" / item.name).warnings
        assert DATE_WARNINGS & {re.sub(r"^line \d+: ", "", w) for w in warnings}, (item.name, warnings)
    reported = hostile_build["summary"]["warnings_by_reason"]
    assert sum(reported.get(w, {"count": 0})["count"] for w in DATE_WARNINGS) >= len(dated)


def test_markup_in_broken_files_is_indexed_and_comes_back_escaped(hostile_build):
    client = create_app({"TESTING": True, "INDEX_DIR": str(hostile_build["folder"] / "index")}).test_client()
    marked = [f for f in hostile_build["files"] if f.kind == "markup"]
    assert all(f.name in hostile_build["stored"] for f in marked)
    for q in ("alert", "正文中的标记", "script", "onerror"):
        html = client.get("/search", query_string={"q": q, "size": 50}).get_data(as_text=True)
        assert "约" in html and live_markup(html) == []
        body = client.get("/api/search", query_string={"q": q, "size": 50}).get_data(as_text=True)
        assert json.loads(body)["total"] > 0 and "<" not in body
    doc_id = hostile_build["stored"][marked[0].name]["id"]
    article = client.get(f"/article/{doc_id}", query_string={"q": "alert"}).get_data(as_text=True)
    assert "<mark>alert</mark>" in article and live_markup(article) == []


def test_a_50_mb_line_does_not_stop_the_run(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    hostile.write_one_line(src / "one-line.txt")
    assert (src / "one-line.txt").stat().st_size >= 50 * 1024 * 1024
    goods = hostile.good_files(4)
    for name, data, _ in goods:
        (src / name).write_bytes(data)
    started = time.monotonic()
    summary = build_index([str(src)], tmp_path / "index", jobs=2)
    elapsed = time.monotonic() - started
    (src / "one-line.txt").unlink()
    assert summary["files"] == 5 and summary["skipped"] + summary["articles"] == 5
    engine = Engine(tmp_path / "index")
    for _, _, title in goods:
        assert engine.search(SearchRequest(q=f'"{title}"'))["total"] == 1
    engine.close()
    assert elapsed < 300, f"a 50 MB line took {elapsed:.0f} s"


LINEAR_CASES = {
    "related time line": lambda n: "相关新闻:\n一条相关标题\n2023-12-30" + " " * n + "x\n2023-12-30 10:00",
    "image placeholder": lambda n: "衢州新能源汽车产业链加速成形 多个电池项目年内投产" + " " * n + "x",
}


@pytest.mark.parametrize("case", LINEAR_CASES)
def test_whitespace_runs_inside_lines_parse_in_linear_time(case):
    """A crawled line with a long run of spaces must not make a regex backtrack quadratically."""
    page = hostile.seed_pages()[0].split("\n")
    page.insert(5, LINEAR_CASES[case](20_000))  # about 20 KB of text: linear parsing takes milliseconds
    started = time.perf_counter()
    article = parse_snapshot("\n".join(page), "spaces.txt")
    elapsed = time.perf_counter() - started
    assert article.title == "衢州新能源汽车产业链加速成形 多个电池项目年内投产"
    assert elapsed < 1.0, f"{case}: {elapsed:.1f} s for a 20 KB line"


def test_a_utf8_page_cut_inside_a_character_is_never_indexed_as_mojibake(tmp_path):
    data = (SEEDS / "001_4cc39e73fcc59f5b.txt").read_bytes()
    lines = [line.strip() for line in data.decode("utf-8").split("\n")]
    garbled = []
    for cut in range(1, len(data)):
        if (data[cut] & 0xC0) != 0x80:
            continue  # a cut between characters is valid UTF-8
        path = tmp_path / "cut.txt"
        path.write_bytes(data[:cut])
        try:
            article = load_snapshot(path)
        except SnapshotError:
            continue
        if not any(line.startswith(article.title) for line in lines):  # text of the page, cut short at most
            garbled.append((cut, article.title[:20]))
    assert garbled == [], f"{len(garbled)} cuts indexed as GB18030 mojibake, e.g. {garbled[:3]}"


# ---- property tests of the parser ----------------------------------------------------------

FRAGMENTS = ("首页 > 汽车 > 正文", "类别:", "发布时间:", "来源:", "类别:汽车 发布时间:2023-13-45 来源:某报",
             "发布时间：昨天", "快照生成时间:", "快照生成时间:2024-01-02 08:00:00", "信息原文地址:javascript:x",
             "相关新闻:", "更多关于汽车的资讯:", "2023-12-29 10:20", "2023-99-99 99:99", "本文转自:", "责任编辑:某",
             "【纠错】", "分享到", "图", "<script>alert(1)</script>", "\ufeff", "\x00", "\u3000", " " * 50, "\r", "»", "/")


@PROPERTY
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)), max_size=30).map("\n".join))
def test_parse_snapshot_raises_only_snapshot_error(text):
    try:
        article = parse_snapshot(text, "any.txt")
    except SnapshotError as exc:
        assert exc.reason in hostile.SKIP_REASONS
        return
    assert article.title and article.title == article.title.strip()
    assert all(line.strip() for line in article.body)


@PROPERTY
@given(st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
                 st.text(max_size=500).map(lambda t: t.encode("gb18030", "replace"))))
def test_read_text_raises_only_snapshot_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "page.txt"
        path.write_bytes(data)
        try:
            text = read_text(path)
        except SnapshotError as exc:
            assert exc.reason in {"empty file", "binary file", "undecodable"}
            return
    assert "\r" not in text and isinstance(text, str)


# Text that cannot form a frame line: no colon, digit, >, /, 图, and none of the keywords' first characters.
PLAIN = st.text("天地人你我他山水火木金土日月星风云雨雪春夏秋冬东南西北中外上下左右大小多少长短高低城乡路桥车船飞机学校医院工厂市场银行"
                "abcXYZ，。！？、“”《》 ", min_size=1, max_size=30).map(str.strip).filter(bool)
MOMENTS = st.datetimes(datetime(1971, 1, 1), datetime(2099, 12, 31)).map(lambda d: d.replace(microsecond=0))
WORD = PLAIN.map(lambda s: s.replace(" ", ""))
SEPARATORS = st.sampled_from((" ", "\u3000", "\u00a0", "  "))
COLONS = st.sampled_from((":", "："))


@st.composite
def pages(draw):
    """Draw a well-formed snapshot page and the Article it must parse to."""
    title, category, source = draw(PLAIN), draw(WORD), draw(WORD)
    body = draw(st.lists(PLAIN.filter(lambda p: not p.startswith(title)), min_size=1, max_size=6))
    published, snapshot = draw(MOMENTS), draw(MOMENTS)
    origin = draw(st.one_of(st.none(), WORD))
    url = "https://news.example.com/" + draw(st.text("abc123-/", max_size=20))
    related = draw(st.lists(st.tuples(PLAIN, PLAIN, MOMENTS.map(lambda d: d.replace(second=0))), max_size=3))
    colon = draw(COLONS)
    fields = draw(st.permutations([f"类别{colon}{category}", f"发布时间{colon}{published}", f"来源{colon}{source}"]))
    lines = [f"首页 > {category} > 正文", title, draw(SEPARATORS).join(fields)]
    lines += [f"本文转自{colon}{origin}"] if origin else []
    lines += [*body, f"快照生成时间{colon}{snapshot}", f"信息原文地址{colon}{url}"]
    if related:
        lines += ["相关新闻:", *(f"{t}\n{teaser}\n{when:%Y-%m-%d %H:%M}" for t, teaser, when in related)]
    headlines = [Headline(t, teaser, when, None) for t, teaser, when in related]
    expected = dict(title=title, body=body, category=category, published=published, source=source, origin=origin,
                    url=url, snapshot_time=snapshot, related=headlines, warnings=[])
    return "\n".join(lines), expected


@PROPERTY
@given(pages())
def test_a_generated_valid_page_parses_back_to_what_was_generated(page):
    text, expected = page
    article = parse_snapshot(text, "generated.txt")
    assert {name: getattr(article, name) for name in expected} == expected


# ---- property tests of the query path ---------------------------------------------------------

QUERY_TEXT = st.one_of(st.text(max_size=300), st.lists(st.sampled_from(hostile.WORDS + tuple(hostile.MARKUP)),
                                                      max_size=30).map(" ".join))
MARK = re.compile(r"</?mark>")


@PROPERTY
@given(QUERY_TEXT)
def test_parse_query_never_raises(text):
    parsed = parse_query(text)
    assert len(parsed.clauses) <= MAX_TERMS and all(isinstance(w, str) for w in parsed.warnings)


@PROPERTY
@given(QUERY_TEXT, st.sampled_from(("relevance", "newest", "oldest")), st.integers(1, 3), st.integers(1, 50))
def test_search_never_raises_and_marks_only_matches(engine, text, sort, page, size):
    answer = engine.search(SearchRequest(q=text, sort=sort, page=page, size=size), now=0)
    assert answer["total"] >= 0 and len(answer["hits"]) <= size
    for hit in answer["hits"]:
        for html in (hit["title_html"], hit["snippet_html"]):
            assert "<" not in MARK.sub("", html)
        assert unescape(MARK.sub("", hit["title_html"])) == hit["title"]


@PROPERTY
@given(st.text(max_size=200), st.lists(st.text(max_size=8), max_size=4))
def test_highlight_escapes_everything_but_its_marks(text, needles):
    html = highlight(text, needles)
    assert "<" not in MARK.sub("", html) and unescape(MARK.sub("", html)) == text
    assert "<" not in MARK.sub("", snippet(text, needles))


PARAM_NAMES = st.sampled_from(("q", "page", "size", "sort", "range", "from", "to", "category", "source", "facet"))
PARAM_VALUES = st.one_of(st.text(max_size=20), st.sampled_from(hostile.NUMBERS + hostile.DATES))


@PROPERTY
@given(st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=8), st.booleans())
def test_parse_request_raises_only_request_error(pairs, strict):
    try:
        request = parse_request(MultiDict(pairs), strict=strict)
    except RequestError as exc:
        assert exc.param in {name for name, _ in pairs}
        return
    assert 1 <= request.page and 1 <= request.size <= 50


# ---- 5,000 hostile requests ------------------------------------------------------------------


URL_ATTRIBUTES = ("href", "src", "action", "formaction")
PAGE_SCRIPT = [("src", "/static/suggest.js"), ("defer", None)]  # the one script every page loads


class TagCollector(HTMLParser):
    """Collect the start tags of an HTML page as (tag, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, attrs))


def live_markup(html: str) -> list:
    """Return the tags and attributes of a page that markup sent in could have made live."""
    collector = TagCollector()
    collector.feed(html)
    ours = [attrs for tag, attrs in collector.tags if tag == "svg" and dict(attrs).get("class") == "timeline-chart"]
    found = [tag for tag, attrs in collector.tags if tag in ("img", "svg", "iframe", "object", "embed", "textarea", "b")
             and not (len(ours) == 1 and attrs is ours[0])]  # the page's one chart of its own
    found += [(tag, attrs) for tag, attrs in collector.tags if tag == "script" and attrs != PAGE_SCRIPT]
    found += [(tag, name) for tag, attrs in collector.tags for name, value in attrs
              if name.startswith("on") or (name in URL_ATTRIBUTES and _is_javascript(value))]
    return found + (["<script>alert"] if "<script>alert" in html else [])


def _is_javascript(url: str | None) -> bool:
    return (url or "").strip().lower().startswith("javascript:")


def check_response(path: str, response) -> str | None:
    """Return what is wrong with one response to a hostile request, or None."""
    body = response.get_data(as_text=True)
    if response.status_code == 308:  # Werkzeug merges the slashes of a decoded %2F: same site only
        location = urlsplit(response.headers["Location"])
        return None if location.netloc in ("", "localhost") else f"redirect to {location.netloc}"
    if response.status_code not in (200, 400, 404):
        return f"status {response.status_code}"
    if path.startswith("/api/"):
        if response.mimetype != "application/json" or "<" in body or ">" in body:
            return "JSON with a raw < or >"
        data = json.loads(body)
        if data["ok"] != (response.status_code == 200) or (not data["ok"] and data["status"] != response.status_code):
            return "JSON error shape"
        return None
    if response.mimetype != "text/html":
        return f"type {response.mimetype}"
    if live := live_markup(body):
        return f"live markup {live[:3]}"
    return None


def test_5000_hostile_requests_get_no_500_and_no_live_markup(client):
    requests = hostile.hostile_requests(seed=0, count=5000)
    assert len(requests) == 5000
    problems, statuses = [], Counter()
    for path, params in requests:
        response = client.get(path, query_string=params)
        statuses[response.status_code] += 1
        problem = check_response(path, response)
        if problem:
            problems.append((problem, path, params[:4]))
    assert problems[:5] == [] and statuses[500] == 0
    assert statuses[200] > 1000 and statuses[400] > 500 and statuses[404] > 100
