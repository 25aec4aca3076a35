"""The timeline of matches (answer, page, command line) and the Atom feed of a search.

A real index of corpus items from five stretches of the archive (2012–2026)
plus items written here for what the corpus lacks: two items either side of a
Beijing midnight at a year's end, one without a date, one whose title and body
hold characters XML cannot carry.
"""

import json
import re
from html import unescape
from urllib.parse import parse_qsl

import feedparser
import pytest
from click.testing import CliRunner

from conftest import corpus_items
from indexer.writer import build_index
from search import Engine, SearchRequest
from web import create_app
from web.cli import cli

STARTS = (0, 15_000, 30_000, 45_000, 65_000)
WORD = "跨年灯会"  # only in the items written here
MADE = [
    {"id": "made-eve", "title": "衢江两岸跨年灯会开幕", "date": "2020-12-31 23:30:00", "source": "衢州日报",
     "category": "地方", "body": "12月31日晚，衢江两岸的跨年灯会开幕，市民在江边迎接新年。",
     "url": "https://news.example.cn/2020/12/31/qujiang.html"},
    {"id": "made-dawn", "title": "跨年灯会散场后环卫工人连夜清扫", "date": "2021-01-01 00:10:00", "source": "衢州日报",
     "category": "地方", "body": "跨年灯会散场后，环卫工人连夜清扫街道，1日清晨道路恢复整洁。"},
    {"id": "made-undated", "title": "跨年灯会的由来", "source": "衢州日报", "category": "地方",
     "body": "跨年灯会起源于民间元宵习俗，近年成为不少城市的新年活动。"},
    {"id": "made-ctrl", "title": "控制\x0b字符\x00跨年灯会\ud800标题", "date": "2020-12-30 09:00:00",
     "source": "衢州\x0b日报", "category": "地方", "body": "正文里有\x00控制字符和\ud800孤立代理，跨年灯会照常举办。"},
]


def write_items(path, items):
    # ensure_ascii: a lone surrogate can only travel in JSON as an escape
    path.write_text("".join(json.dumps(i, ensure_ascii=True) + "\n" for i in items), encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build the index; return (index path, corpus items, folder)."""
    folder = tmp_path_factory.mktemp("timeline")
    items = [item for start in STARTS for item in corpus_items(60, start)]
    assert not any(WORD in (i.get("title") or "") + (i.get("body") or "") for i in items)
    write_items(folder / "corpus.jsonl", items)
    write_items(folder / "made.jsonl", MADE)
    build_index([str(folder / "corpus.jsonl"), str(folder / "made.jsonl")], folder / "index", jobs=1)
    return folder / "index", items, folder


@pytest.fixture(scope="module")
def engine(built):
    engine = Engine(built[0])
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def client(built):
    return create_app({"TESTING": True, "INDEX_DIR": str(built[0])}).test_client()


def consecutive(labels: list[str], unit: str) -> bool:
    """Tell whether bucket labels follow one another with no gap."""
    def number(label):
        parts = [int(p) for p in label.split("-")]
        if unit == "year":
            return parts[0]
        if unit == "month":
            return parts[0] * 12 + parts[1]
        from datetime import date
        return date(*parts).toordinal()
    numbers = [number(label) for label in labels]
    return numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_the_timeline_covers_the_matches_in_10_to_60_buckets_adding_up_to_the_total(engine):
    answer = engine.search(SearchRequest(q="中国"))
    timeline = answer["timeline"]
    buckets = timeline["buckets"]
    assert timeline["unit"] == "year" and 10 <= len(buckets) <= 60  # 2012 .. 2026
    assert consecutive([b["label"] for b in buckets], "year")
    assert any(b["count"] == 0 for b in buckets)  # 2020 holds only the items written here: empty years stay
    assert sum(b["count"] for b in buckets) + timeline["undated"] == answer["total"]
    assert not any(b["selected"] for b in buckets)


def test_the_timeline_ignores_the_date_filter_and_marks_the_selected_period(engine):
    whole = engine.search(SearchRequest(q=WORD))
    assert whole["total"] == 4 and whole["timeline"]["undated"] == 1
    import datetime
    narrowed = engine.search(SearchRequest(q=WORD, date_from=datetime.date(2020, 12, 31),
                                           date_to=datetime.date(2020, 12, 31)))
    assert narrowed["total"] == 1 and narrowed["hits"][0]["id"] == "made-eve"
    assert narrowed["timeline"]["buckets"] == [{**b, "selected": b["from"] == "2020-12-31"}
                                               for b in whole["timeline"]["buckets"]]


def test_buckets_are_beijing_days(engine):
    """23:30 on 31 December and 00:10 on 1 January, Beijing time, fall in their own days and years."""
    timeline = engine.search(SearchRequest(q=WORD))["timeline"]
    assert timeline["unit"] == "day"
    assert [(b["label"], b["count"]) for b in timeline["buckets"]] == [("2020-12-30", 1), ("2020-12-31", 1),
                                                                        ("2021-01-01", 1)]
    assert timeline["undated"] == 1


def test_each_bar_links_to_the_search_narrowed_to_its_period_with_its_count(client):
    category = client.get("/api/search?q=中国").get_json()["facets"]["category"][0]["value"]
    page = client.get("/search", query_string={"q": "中国", "category": category})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    section = html[html.index('<section class="timeline"'):html.index("</section>", html.index('class="timeline"'))]
    assert re.search(r'<svg class="timeline-chart" role="img" aria-labelledby="timeline-svg-title timeline-svg-desc"',
                     section)
    assert "<title id=\"timeline-svg-title\">“中国”的匹配文章按" in section and "<desc id=\"timeline-svg-desc\">" in section
    assert "<script" not in section and "style=" not in section  # CSP: nothing inline to allow
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    rows = re.findall(r'<tr(?: class="is-on")?>\s*<th scope="row">(?:<a href="([^"]+)">)?([0-9-]+)(?:</a>)?</th>\s*'
                      r'<td>(\d+)</td>', section)
    assert rows and len(re.findall(r'<rect class="timeline-bar', section)) == sum(1 for *_, n in rows if int(n))
    for href, label, count in rows:
        if int(count) == 0:
            assert not href  # an empty period has nothing to link to
            continue
        narrowed = client.get("/api/search?" + unescape(href).split("?", 1)[1]).get_json()
        assert narrowed["total"] == int(count), label
        assert ("category", category) in parse_qsl(unescape(href).split("?", 1)[1])  # the other filters stay
    first = next(unescape(href) for href, _, count in rows if int(count))
    chosen = client.get(first).get_data(as_text=True)
    assert len(re.findall(r'<tr class="is-on">', chosen)) == 1 and "（已选）" in chosen
    assert 'class="timeline-picked"' in chosen and 'class="timeline-bar is-on"' in chosen


def test_no_timeline_without_dated_matches(client):
    html = client.get("/search?q=跨年灯会的由来").get_data(as_text=True)
    answer = client.get("/api/search?q=跨年灯会的由来").get_json()
    assert answer["timeline"]["buckets"] == [] and answer["timeline"]["undated"] >= 1
    assert 'class="timeline"' not in html


def test_the_command_line_prints_the_timeline(built):
    result = CliRunner().invoke(cli, ["query", WORD, "--index", str(built[0])])
    assert result.exit_code == 0, result.output
    assert "时间分布（每日 2020-12-30…2021-01-01）" in result.output and "另有 1 篇没有日期" in result.output
    data = json.loads(CliRunner().invoke(cli, ["query", WORD, "--index", str(built[0]), "--json"]).output)
    assert [b["count"] for b in data["timeline"]["buckets"]] == [1, 1, 1]


def feed_of(client, query: str, **headers):
    response = client.get("/search.atom?" + query, headers=headers)
    return response, feedparser.parse(response.data)


def test_the_feed_holds_the_newest_50_matches_newest_first(client):
    response, feed = feed_of(client, "q=中国")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    assert feed.bozo == 0 and feed.version == "atom10"
    total = client.get("/api/search?q=中国").get_json()["total"]
    assert total > 50 and len(feed.entries) == 50
    published = [e.published for e in feed.entries]
    assert published == sorted(published, reverse=True) and all(p.endswith("+08:00") for p in published)
    newest = client.get("/api/search?q=中国&sort=newest&size=50").get_json()["hits"]
    assert [e.id for e in feed.entries] == [f"urn:newsearch:article:{h['id']}" for h in newest]
    entry = feed.entries[0]
    assert entry.link.endswith(f"/article/{newest[0]['id']}") and entry.author == newest[0]["source"]
    assert entry.updated == entry.published
    assert entry.summary and "<mark>" not in entry.summary and "&lt;" not in entry.summary
    assert entry.title == newest[0]["title"]
    page = client.get("/search?q=中国").get_data(as_text=True)
    assert '<link rel="alternate" type="application/atom+xml"' in page and 'href="/search.atom?q=%E4%B8%AD%E5%9B%BD"' in page
    assert re.search(r'<a class="subscribe" href="/search.atom\?q=%E4%B8%AD%E5%9B%BD"[^>]*>订阅</a>', page)
    description = client.get("/opensearch.xml").get_data(as_text=True)
    assert 'type="application/atom+xml" method="get" template="http://localhost/search.atom?q={searchTerms}"' in description


def test_the_feed_keeps_the_filters_and_drops_what_xml_cannot_hold(client):
    response, feed = feed_of(client, f"q={WORD}&category=地方")
    assert feed.bozo == 0 and [e.id.rsplit(":", 1)[1] for e in feed.entries] == [
        "made-dawn", "made-eve", "made-ctrl", "made-undated"]
    eve = feed.entries[1]
    assert [(l.rel, l.href) for l in eve.links if l.rel == "related"] == [
        ("related", "https://news.example.cn/2020/12/31/qujiang.html")]
    assert eve.link.endswith("/article/made-eve")
    assert not [l for l in feed.entries[0].links if l.rel == "related"]  # no original URL, no link to one
    ctrl = feed.entries[2]
    # The indexer keeps a lone surrogate as U+FFFD; the feed drops the control characters.
    assert ctrl.title == "控制字符跨年灯会\ufffd标题" and ctrl.author == "衢州日报"
    assert "控制字符和\ufffd孤立代理" in ctrl.summary
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]", response.get_data(as_text=True))
    _, none = feed_of(client, "q=%00%0b%ED%A0%80")
    assert none.bozo == 0 and none.entries == []
    _, other = feed_of(client, f"q={WORD}&category=没有这个类别")
    assert other.bozo == 0 and other.entries == []


def test_a_conditional_get_answers_304_until_something_new_matches(built, client):
    index, items, folder = built
    first, feed = feed_of(client, f"q={WORD}")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get(f"/search.atom?q={WORD}", headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"/search.atom?q={WORD}", headers={"If-Modified-Since": modified}).status_code == 304
    # An unrelated rebuild: the same entries with the same ids, and still nothing new.
    write_items(folder / "more.jsonl", [dict(items[0], id="unrelated-1", title="无关的新闻", date="2026-01-02 10:00:00")])
    sources = [str(folder / name) for name in ("corpus.jsonl", "made.jsonl", "more.jsonl")]
    build_index(sources, index, jobs=1)
    again, feed_again = feed_of(client, f"q={WORD}", **{"If-None-Match": etag})
    assert again.status_code == 304
    assert [e.id for e in feed_of(client, f"q={WORD}")[1].entries] == [e.id for e in feed.entries]
    # Something new matches: a full answer, the new item first.
    write_items(folder / "more.jsonl", [{"id": "made-new", "title": "跨年灯会明年再见", "date": "2021-01-02 08:00:00",
                                         "source": "衢州日报", "category": "地方", "body": "主办方表示跨年灯会明年再见。"}])
    build_index(sources, index, jobs=1)
    fresh, feed_fresh = feed_of(client, f"q={WORD}", **{"If-None-Match": etag, "If-Modified-Since": modified})
    assert fresh.status_code == 200 and feed_fresh.entries[0].id == "urn:newsearch:article:made-new"
    assert [e.id for e in feed_fresh.entries[1:]] == [e.id for e in feed.entries]
