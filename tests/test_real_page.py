"""Contract of indexer/snapshot.py and the rebuild on the crawler's real layout.

The one real crawled page (../shared/seeds/, read from there, never copied)
parses to exact field values and indexes as 1 article and 18 headline-only
entries; re-crawls of it (later snapshot time, GBK with CRLF, a BOM, full-width
colons) are the same article. Its head anchors on the meta line: the real
page and every seed, with breadcrumb marks lost or changed, meta fields apart
by anything, full-width colons, the meta broken over two lines, re-encoded
(GBK with losses too), parse alike with no warning; without a meta line the
page keeps its title with a warning, and a rebuild of the seeds and the real
page reports no warning. Articles rendered in the real layout with random
variations parse back exactly, and 400 of them plus 50 re-crawls index as 400
articles and 50 duplicates, each found by a span of its body. Same title, time
and source with another body is another article.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, SEEDS, corpus_items
from indexer.documents import article_id
from indexer.snapshot import Article, Headline, load_snapshot, parse_snapshot
from indexer.store import live_build, read_meta
from indexer.writer import build_index
from search import Engine, SearchRequest
from web.cli import cli

REAL_PAGE = ROOT.parent / "shared" / "seeds" / "000_96e676ac90b131f4.txt"
TITLE = "(年终特稿)浙江衢州竞逐长三角“新势力”"
FRAME = ("快照生成时间", "信息原文地址", "以上内容为", "本站信息快照", "更多关于", "本文转自", "我的订阅", "•",
         "2023-07-09 11:53:00", "衢州打造长三角创投新势力“第一城”")


def real_text() -> str:
    """Return the real page's text (a failure, not a skip, when it is missing)."""
    if not REAL_PAGE.is_file():
        pytest.fail(f"the real crawled page is missing: {REAL_PAGE}")
    return REAL_PAGE.read_text(encoding="utf-8")


def to_gbk(text: str) -> bytes:
    """Encode a page as a GBK crawler writes it: • as ·, NBSP as U+3000."""
    return text.replace("•", "·").replace("\xa0", "\u3000").encode("gbk")


def real_variants(folder: Path) -> list[Path]:
    """Write the real page's re-crawls into folder: later snapshot, GBK + CRLF, BOM, full-width colons."""
    text = real_text()
    head, lists = text.split("信息原文地址:")  # the lists' text keeps its colons (a teaser starts 本文转自:)
    for key in ("类别", "发布时间", "来源", "本文转自", "快照生成时间"):
        head = head.replace(f"{key}:", f"{key}：")
    colons = head + "信息原文地址：" + lists.replace("更多关于汽车的资讯:", "更多关于汽车的资讯：")
    variants = {
        "recrawl.txt": text.replace("快照生成时间:2023-12-30 09:45:34", "快照生成时间:2024-01-05 10:00:00").encode(),
        "gbk_crlf.txt": to_gbk(text.replace("\n", "\r\n")),
        "bom.txt": b"\xef\xbb\xbf" + text.encode(),
        "colons.txt": colons.encode(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in variants.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in variants]


def test_real_page_parses_to_exact_fields():
    article = load_snapshot(REAL_PAGE)
    assert (article.title, article.category, article.published, article.source, article.origin) == (
        TITLE, "汽车", datetime(2023, 12, 30, 7, 47), "每日看点快看", "中国新闻网")
    assert (article.snapshot_time, article.url, article.doc_id, article.warnings) == (
        datetime(2023, 12, 30, 9, 45, 34), None, None, [])
    assert len(article.body) == 22
    assert article.body[0].startswith("中新网衢州12月29日电")
    assert article.body[-1].startswith("“我们必须有耐心")
    assert "衢州极电工厂全景俯瞰图。陈悦 摄" in article.body  # both captions kept
    assert any(p.startswith("今年12月初,衢州市委书记高屹(中)宣布") for p in article.body)
    assert TITLE not in article.body  # neither image placeholder
    body = "\n".join(article.body)
    assert [text for text in FRAME if text in body] == []
    first = [h for h in article.related if h.category is None]
    cars = [h for h in article.related if h.category == "汽车"]
    assert (len(first), sum(bool(h.title) for h in first)) == (9, 6)
    assert (len(cars), sum(bool(h.title) for h in cars)) == (15, 12)
    assert first[0] == Headline(
        "《思想的伟力·在“八八战略”指引下》系列特稿(六)山海相连天地广 携手走好共富路",
        first[0].teaser, datetime(2023, 7, 9, 11, 53), None)
    assert first[0].teaser.startswith("...路子。前不久")
    teaser_only = [h.teaser[:8] for h in first if h.title is None]
    assert teaser_only == ["...,浙江最拿", "本文转自:新华网", "...辣椒的干香"]  # a teaser, not an origin
    assert cars[2] == Headline(None, cars[2].teaser, datetime(2025, 10, 20, 23, 9), "汽车")
    assert cars[-1].published == datetime(2025, 10, 16, 7, 38)


@pytest.mark.parametrize("name", ["recrawl.txt", "gbk_crlf.txt", "bom.txt", "colons.txt"])
def test_real_page_variants_parse_alike(tmp_path, name):
    path = next(p for p in real_variants(tmp_path) if p.name == name)
    expected = replace(load_snapshot(REAL_PAGE), path=str(path))
    if name == "recrawl.txt":
        expected = replace(expected, snapshot_time=datetime(2024, 1, 5, 10, 0))
    assert load_snapshot(path) == expected
    assert article_id(load_snapshot(path)) == article_id(load_snapshot(REAL_PAGE))


def test_real_page_and_its_recrawls_index_as_one_article(tmp_path, runner):
    src = tmp_path / "src"
    real_variants(src)
    result = runner.invoke(cli, ["rebuild", str(REAL_PAGE), str(src), "--index", str(tmp_path / "index"),
                                 "--jobs", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("files", "articles", "headlines", "duplicates", "skipped", "warnings")} == {
        "files": 5, "articles": 1, "headlines": 18, "duplicates": 4, "skipped": 0, "warnings": 0}
    engine = Engine(tmp_path / "index")
    hits = engine.search(SearchRequest(q="衢州极电工厂"))["hits"]
    assert [(h["title"], h["kind"]) for h in hits] == [(TITLE, "article")]
    assert engine.article(hits[0]["id"])["snapshot_time"] == "2024-01-05 10:00:00"  # the newest crawl
    assert engine.search(SearchRequest(q="东风商用车新疆"))["hits"][0]["kind"] == "headline"
    assert engine.search(SearchRequest(q="以上内容为资讯信息快照"))["total"] == 0  # footer text is not indexed
    assert engine.search(SearchRequest(q="辣椒的干香味"))["total"] == 0  # teaser-only entries are no documents
    engine.close()


def test_rebuild_over_the_real_page_prints_no_warning(tmp_path, runner):
    result = runner.invoke(cli, ["rebuild", str(REAL_PAGE), "--index", str(tmp_path / "index"), "--jobs", "1"])
    assert result.exit_code == 0
    assert result.stdout.startswith("indexed 1 articles and 18 headlines from 1 files")
    assert "duplicates dropped: 0; skipped: 0; with warnings: 0" in result.stdout
    assert result.stderr == ""


# ---- the head, anchored on the meta line --------------------------------------------------

PAGES = (REAL_PAGE, *sorted(SEEDS.glob("*.txt")))
MARKS = ("•", "?", "*", "-", ">", "|", "")  # what starts a breadcrumb line; "" is nothing at all
ARROWS = ("»", ">", "＞", "/", "?")  # between the items of a one-line breadcrumb
GAPS = ("\xa0", " ", "  ", "\t", "\u3000", "?", " ? ", "\u3000?", "")  # between meta fields
LABEL = re.compile(r"(类别|发布时间|来源)[:：]")


@dataclass(frozen=True)
class Head:
    """How a page's breadcrumb and meta line are written over."""

    mark: str = "•"
    arrow: str = "»"
    gaps: tuple[str, str] = ("\xa0", "\xa0")
    colon: str = ":"
    order: tuple[int, ...] = (0, 1, 2)
    split: str = "none"  # where the meta line breaks: none, gap, colon (after a field's colon), time (in 发布时间)
    split_at: int = 0  # which gap, or which field's colon (never the last: its value would stand alone)

    def apply(self, text: str) -> str:
        lines = text.split("\n")
        at = next(number for number, line in enumerate(lines) if LABEL.match(line))
        for number in range(at):
            mark = f"{self.mark} " if self.mark else ""
            lines[number] = re.sub(r"^(\s*)• ", lambda found: found.group(1) + mark, lines[number])
            lines[number] = lines[number].replace("»", self.arrow)
        lines[at] = self.meta(lines[at])
        return "\n".join(lines)

    def meta(self, line: str) -> str:
        parts = LABEL.split(line)
        fields = [(parts[n], parts[n + 1].strip()) for n in range(1, len(parts), 2)]
        texts = []
        for number, (label, value) in enumerate(fields[n] for n in self.order):
            if self.split == "colon" and number == self.split_at:
                value = "\n" + value
            if self.split == "time" and label == "发布时间":
                value = value.replace(" ", "\n", 1)
            texts.append(f"{label}{self.colon}{value}")
        gaps = ["\n" if self.split == "gap" and n == self.split_at else gap for n, gap in enumerate(self.gaps)]
        return texts[0] + "".join(gap + text for gap, text in zip(gaps, texts[1:]))


HEADS = st.builds(
    Head, mark=st.sampled_from(MARKS), arrow=st.sampled_from(ARROWS),
    gaps=st.tuples(st.sampled_from(GAPS), st.sampled_from(GAPS)), colon=st.sampled_from((":", "：")),
    order=st.permutations((0, 1, 2)).map(tuple), split=st.sampled_from(("none", "gap", "colon", "time")),
    split_at=st.integers(0, 1))


@cache
def page_parse(number: int) -> Article:
    """Return the parse of one of PAGES as written."""
    return load_snapshot(PAGES[number])


def encode(text: str, encoding: str, crlf: bool) -> bytes:
    """Encode a page; "gbk-lossy" writes a ? for what GBK has no code for (•, NBSP, »)."""
    text = text.replace("\n", "\r\n") if crlf else text
    return text.encode("gbk", errors="replace") if encoding == "gbk-lossy" else text.encode(encoding)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.integers(0, len(PAGES) - 1), head=HEADS, crlf=st.booleans(),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "gbk-lossy"]))
def test_pages_with_marks_lost_or_changed_parse_alike(tmp_path, number, head, encoding, crlf):
    text = real_text() if PAGES[number] == REAL_PAGE else PAGES[number].read_text(encoding="utf-8")
    path = tmp_path / "page.txt"
    path.write_bytes(encode(head.apply(text), encoding, crlf))
    article = load_snapshot(path)
    assert article == replace(page_parse(number), path=str(path))
    assert article.warnings == []


def test_the_real_page_round_tripped_through_gbk_parses_alike():
    text = real_text().encode("gbk", errors="replace").decode("gbk")
    assert text.startswith("? 我的订阅\n  ? 汽车\n") and "类别:汽车?发布时间:" in text  # as reported
    assert parse_snapshot(text) == replace(load_snapshot(REAL_PAGE), path="")


@pytest.mark.parametrize("mark", MARKS)
def test_the_real_page_without_its_meta_line_keeps_its_title_and_warns(mark):
    text = Head(mark=mark).apply(real_text())
    text = "\n".join(line for line in text.split("\n") if not LABEL.match(line))
    expected = replace(load_snapshot(REAL_PAGE), path="", published=None, source=None, warnings=["no meta line"])
    assert parse_snapshot(text) == expected  # the category comes from the breadcrumb


def test_rebuild_of_the_seeds_and_the_real_page_reports_no_warning(tmp_path, runner):
    src = tmp_path / "src"
    src.mkdir()
    (src / "real_gbk.txt").write_bytes(encode(real_text(), "gbk-lossy", crlf=True))  # the real page again
    (src / "no_meta.txt").write_text(
        "\n".join(line for line in real_text().split("\n") if not LABEL.match(line)), encoding="utf-8")
    counts = ("files", "articles", "duplicates", "skipped", "warnings")
    summaries = []
    for sources in ([str(SEEDS), str(REAL_PAGE), str(src / "real_gbk.txt")], [str(src / "no_meta.txt")]):
        result = runner.invoke(cli, ["rebuild", *sources, "--index", str(tmp_path / "index"), "--jobs", "1", "--json"])
        assert result.exit_code == 0, result.output
        summaries.append(json.loads(result.stdout))
    good, no_meta = summaries
    assert {k: good[k] for k in counts} == {"files": 12, "articles": 10, "duplicates": 2, "skipped": 0, "warnings": 0}
    assert good["warnings_by_reason"] == {}
    assert {k: no_meta[k] for k in counts} == {"files": 1, "articles": 1, "duplicates": 0, "skipped": 0, "warnings": 1}
    assert no_meta["warnings_by_reason"] == {"no meta line": {"count": 1, "paths": [str(src / "no_meta.txt")]}}


# ---- articles rendered in the real layout -------------------------------------------------

FOOTER_NOTE = "以上内容为资讯信息快照,由snap.example.net爬虫进行采集并收录,本站未对信息做任何修改,信息内容不代表本站立场。"
SERVICE_NOTE = "本站信息快照查询为非营利公共服务,如有侵权请联系我们进行删除。"
STRUCTURAL = ("本文转自", "以上内容为", "本站信息快照", "快照生成时间", "信息原文地址", "更多关于", "相关新闻", "责任编辑",
              "分享到", "【纠错】")


@dataclass
class Page:
    """One article and how the crawler rendered it."""

    item: dict
    crumbs: str = "bullets"  # bullets, arrows (首页 > … > 正文) or none
    sep: str = "\xa0"
    blank: bool = True  # blank lines between blocks
    colon: str = ":"
    origin: str | None = None
    captions: dict[int, str] = field(default_factory=dict)  # body index -> caption after a placeholder there
    related: list[Headline] = field(default_factory=list)
    url: str | None = None
    snapshot: datetime = datetime(2024, 1, 2, 8, 0)

    def body(self) -> list[str]:
        """Return the body a reader sees: the paragraphs with the captions in place."""
        out = []
        for number, paragraph in enumerate(self.item["body"].split("\n")):
            if number in self.captions:
                out.append(self.captions[number])
            out.append(paragraph)
        return out

    def text(self) -> str:
        """Render the page as the crawler does, with no newline at the end."""
        c, item, category = self.colon, self.item, self.item["category"]
        crumbs = {"bullets": "• 我的订阅" + (f"\n  • {category}" if category else ""),
                  "arrows": f"首页 > {category} > 正文" if category else "首页 > 正文", "none": None}[self.crumbs]
        meta = self.sep.join([f"类别{c}{category}"] * bool(category)
                             + [f"发布时间{c}{item['date']}", f"来源{c}{item['source']}"])
        body = []
        for number, paragraph in enumerate(item["body"].split("\n")):
            body += [item["title"], self.captions[number]] if number in self.captions else []
            body.append(paragraph)
        footer = [FOOTER_NOTE, f"快照生成时间{c}{self.snapshot:%Y-%m-%d %H:%M:%S}", SERVICE_NOTE,
                  f"信息原文地址{c}{self.url or ''}"]
        blocks = [crumbs, item["title"], meta, f"本文转自{c}{self.origin}" if self.origin else None,
                  *body, *footer, self.related_block()]
        return ("\n\n" if self.blank else "\n").join(block for block in blocks if block)

    def related_block(self) -> str:
        lines = []
        for number, headline in enumerate(self.related):
            if headline.category and not any(h.category for h in self.related[:number]):
                lines.append(f"更多关于{headline.category}的资讯{self.colon}")
            lines += [headline.title] if headline.title else []
            lines += [headline.teaser, f"{headline.published:%Y-%m-%d %H:%M:%S}"]
        return "\n".join(lines)

    def encode(self, encoding: str, crlf: bool) -> bytes:
        text = self.text().replace("\n", "\r\n") if crlf else self.text()
        if encoding == "gbk":
            return to_gbk(text)
        return (b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b"") + text.encode("utf-8")

    def expected(self, path: str) -> Article:
        category = self.item["category"]
        return Article(
            title=self.item["title"], body=self.body(), category=category,
            published=datetime.fromisoformat(self.item["date"]), source=self.item["source"], origin=self.origin,
            url=self.url, snapshot_time=self.snapshot, related=self.related, path=path,
            warnings=[] if category else ["no category"])


def _fits(item: dict) -> bool:
    """Tell a corpus item whose text a crawler page can carry unambiguously (and GBK can encode)."""
    paragraphs = item["body"].split("\n")
    text = item["title"] + item["body"] + (item["category"] or "")
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return (not item["title"].startswith(("•", "·", "首页"))
            and not any(p.startswith((item["title"], *STRUCTURAL)) for p in paragraphs))


@cache
def sample_items() -> tuple[dict, ...]:
    """Return corpus items fit for rendering, read from the shared corpus at run time."""
    return tuple(item for item in corpus_items(3000, start=20000) if _fits(item))


def make_page(rng: random.Random, item: dict, related_max: int = 20) -> Page:
    """Render an item into a page with random choices."""
    items = sample_items()
    paragraphs = item["body"].split("\n")
    related = []
    more = rng.random() < 0.5
    for number in range(rng.randint(0, related_max)):
        other = rng.choice(items)
        start = rng.randrange(max(1, len(other["body"]) - 40))
        teaser = ("..." if rng.random() < 0.5 else "") + other["body"][start:start + 40].replace("\n", "").strip()
        category = "汽车" if more and number >= related_max // 3 else None
        published = datetime(2020, 1, 1) + timedelta(minutes=rng.randrange(3_000_000))
        related.append(Headline(other["title"] if rng.random() < 0.7 else None, teaser, published, category))
    related.sort(key=lambda h: h.category is not None)  # the 更多关于… list comes last
    return Page(
        item=item,
        crumbs=rng.choice(["bullets", "bullets", "arrows", "none"]),
        sep=rng.choice(["\xa0", " ", "\u3000"]),
        blank=rng.random() < 0.8,
        colon=rng.choice([":", ":", "："]),
        origin=rng.choice([None, "新华社", "中国新闻网"]),
        captions={n: f"图为现场画面之{n}。记者 王某某 摄" for n in range(len(paragraphs)) if rng.random() < 0.2},
        related=related,
        url=f"https://news.example.com/{item['id']}.html" if rng.random() < 0.3 else None,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk"]), crlf=st.booleans())
def test_rendered_pages_parse_back_exactly(tmp_path, seed, encoding, crlf):
    rng = random.Random(seed)
    page = make_page(rng, rng.choice(sample_items()))
    path = tmp_path / "page.txt"
    path.write_bytes(page.encode(encoding, crlf))
    assert load_snapshot(path) == page.expected(str(path))


def test_same_title_time_and_source_with_another_body_is_another_article(tmp_path):
    first, second = sample_items()[:2]
    correction = {**second, "title": first["title"], "date": first["date"], "source": first["source"],
                  "category": first["category"]}
    for name, item in (("a.txt", first), ("b.txt", correction)):
        (tmp_path / name).write_text(Page(item).text(), encoding="utf-8")
    summary = build_index([str(tmp_path)], tmp_path / "index", jobs=1)
    assert (summary["articles"], summary["duplicates"]) == (2, 0)


def distinctive_span(body: str, others: list[str], size: int = 12) -> str:
    """Return the first span of body, past its dateline, that no other page holds."""
    for start in range(len(body) // 3, len(body) - size):
        span = body[start:start + size]
        if "\n" not in span and not any(span in text for text in others):
            return span
    raise AssertionError("no distinctive span")


def test_four_hundred_articles_and_fifty_recrawls(tmp_path):
    rng = random.Random(400)
    items = rng.sample(sample_items(), 400)
    src = tmp_path / "src"
    src.mkdir()
    pages = [make_page(rng, item, related_max=4) for item in items]
    for number, page in enumerate(pages):
        (src / f"{number:03d}.txt").write_bytes(page.encode(rng.choice(["utf-8", "gbk"]), rng.random() < 0.3))
    for number, page in enumerate(rng.sample(pages, 50)):
        again = replace(page, snapshot=page.snapshot + timedelta(days=1 + number), sep=rng.choice(["\xa0", " "]),
                        colon=rng.choice([":", "："]), crumbs=rng.choice(["bullets", "none"]))
        (src / f"recrawl_{number:02d}.txt").write_bytes(again.encode("utf-8-sig", True))
    summary = build_index([str(src)], tmp_path / "index", jobs=2)
    assert (summary["inputs"], summary["articles"], summary["duplicates"], summary["skipped"]) == (450, 400, 50, 0)
    assert summary["many_dropped"] is True  # 50 of 450 is over a tenth: the summary says so
    assert read_meta(live_build(tmp_path / "index"))["articles"] == 400
    engine = Engine(tmp_path / "index")
    texts = [page.text() for page in pages]
    missed = []
    for number, page in enumerate(pages):
        span = distinctive_span(page.item["body"], texts[:number] + texts[number + 1:])
        hits = engine.search(SearchRequest(q=span, size=10))["hits"]
        if article_id(load_snapshot(src / f"{number:03d}.txt")) not in [h["id"] for h in hits]:
            missed.append(span)
    assert missed == []
    assert engine.search(SearchRequest(q="这段文字不在任何一篇里"))["total"] == 0
    engine.close()
