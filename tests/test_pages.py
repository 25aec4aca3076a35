"""Contract of web/pages.py: the HTML pages over the seeds/ index.

The home page shows the box and the index's size and dates. The results page
keeps the query in the box, counts and times the answer, shows highlighted
hits (headline-only ones badged), facets and presets as links that keep the
rest of the state and reset the page, chips, sort, pagination, the did-you-mean
link, warnings, and a friendly 400 for bad parameters while still searching.
The article page marks the query's terms, links related headlines and the
original URL (http(s) only), and unknown ids or URLs get a real 404 page.
Article and query text is always escaped; only highlight HTML is raw. Every
page carries the security headers and has no inline script or style.
"""

import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import NOW, SEEDS
from indexer.writer import build_index
from web import CONTENT_SECURITY_POLICY, create_app
from web.pages import epoch_of

QUZHOU = "u17c6402475da520a"  # seed 001, 汽车, 2023-12-30 07:47
EV_SCHOOL = "ua7b6746496354187"  # seed 004, 教育, 2023-11-20 09:15
CANTEEN = "ufdac0f09c21b32be"  # seed 009 (= 010), 社会, 2026-01-10 12:00
WINTER_DRIVING = "h4b2bb39c104c21f9"  # headline from 001's related list
PROBE = "<script>alert(1)</script>"
ODD_QUERIES = ["", " ", "\"", "'", "-", "--", "OR", "a OR", "OR OR OR", "title:", "source:\"", "category:-",
               "((", "*", "?", "\\", "\x00", "的", "，。！", "衢州" * 500, "x" * 5000, "%", "%00", "{{7*7}}",
               "😀", "\u200b", "<", "&amp;", "NOT", "AND", "title:衢州 OR -source:人民网", "“半个引号"]


@pytest.fixture()
def frozen_client(seed_index):
    """Return a client of the app whose clock stands at conftest's NOW (2026-01-15 12:00)."""
    app = create_app({"TESTING": True, "INDEX_DIR": str(seed_index), "FIXED_NOW": NOW})
    return app.test_client()


@pytest.fixture(scope="module")
def xss_index(tmp_path_factory) -> Path:
    """Build an index of seed 006 with markup in its title and body and a javascript: URL."""
    folder = tmp_path_factory.mktemp("xss")
    text = (SEEDS / "006_40cc419b9656a45c.txt").read_text(encoding="utf-8")
    title = text.split("\n\n")[1]
    text = text.replace(title, "夜间检修<b>x</b>" + title)  # the title and its image placeholders
    text = text.replace("以上内容为", f"恶意脚本{PROBE}与<b>x</b>测试段落。\n\n以上内容为")
    lines = [("信息原文地址:javascript:alert(1)" if line.startswith("信息原文地址") else line)
             for line in text.split("\n")]
    (folder / "src").mkdir()
    (folder / "src" / "006_xss.txt").write_text("\n".join(lines), encoding="utf-8")
    build_index([str(folder / "src")], folder / "index", jobs=1)
    return folder / "index"


def page(client, url: str, status: int = 200) -> str:
    """GET a page, check its status and HTML type, return its text."""
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def params(url: str) -> list[tuple[str, str]]:
    """Return the query parameters of a URL in order."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def link_for(html: str, text: str) -> str:
    """Return the target of the first link whose text contains text."""
    for href, inner in re.findall(r'<a [^>]*href="([^"]*)"[^>]*>(.*?)</a>', html, flags=re.S):
        if text in re.sub(r"<[^>]+>", "", inner):
            return unescape(href)
    raise AssertionError(f"no link with text {text!r}")


def facet_link(html: str, value: str) -> str:
    """Return the target of the first facet link of a value."""
    found = re.search(r'<a class="facet-link[^"]*" href="([^"]*)"[^>]*>\s*<span class="facet-value">'
                      + re.escape(value) + "</span>", html)
    assert found, f"no facet link {value!r}"
    return unescape(found.group(1))


def hit_titles(html: str) -> list[str]:
    """Return the plain titles of the hits on a results page."""
    titles = re.findall(r'<h2 class="hit-title">\s*<a [^>]*>(.*?)</a>', html, flags=re.S)
    return [unescape(re.sub(r"<[^>]+>", "", t)) for t in titles]


# ---- home -------------------------------------------------------------------


def test_home_has_autofocused_box_and_index_size(client):
    html = page(client, "/")
    assert '<html lang="zh-CN">' in html
    assert re.search(r'<input id="q"[^>]*name="q"[^>]*autofocus', html)
    assert '<label class="visually-hidden" for="q">搜索新闻</label>' in html
    assert "已收录 24 条新闻（9 篇全文，15 条仅标题）" in html
    assert "2023-11-16" in html and "2026-04-28" in html
    assert "约" not in html  # no results block on the home page


# ---- results ------------------------------------------------------------------


def test_results_keep_query_count_and_highlight(client):
    html = page(client, "/search?q=衢州+新能源")
    assert 'value="衢州 新能源"' in html
    assert re.search(r"约 2 条结果 \(\d+\.\d+ 秒\)", html)
    assert hit_titles(html) == ["衢州新能源汽车产业链加速成形 多个电池项目年内投产",
                                "新能源汽车维修专业走俏 职校学生未毕业就被“预订”"]
    assert "<mark>衢州新能源</mark>汽车产业链" in html
    assert f"/article/{QUZHOU}?q=%E8%A1%A2%E5%B7%9E+%E6%96%B0%E8%83%BD%E6%BA%90" in html
    assert "2023-12-30" in html and "每日看点快看" in html
    # what must not match: 南京 (006) and 农业发展银行 (002) have neither word
    assert "南京" not in html and "中国农业发展银行" not in html
    assert "仅标题</span>" not in html


def test_headline_hits_carry_a_badge(client):
    html = page(client, "/search?q=电池")
    titles = hit_titles(html)
    assert len(titles) == 4
    assert "冬季用车指南：低温环境下如何延长电动车续航" in titles
    assert html.count('<span class="badge">仅标题</span>') == 2
    assert "工信部门表示" not in html  # a teaser-only related entry is no hit of its own
    assert "社区食堂" not in html  # 009 has no 电池


def test_facet_links_keep_state_and_reset_page(client):
    html = page(client, "/search?q=电池&source=每日看点快看&sort=newest&size=2&page=2")
    target = facet_link(html, "汽车")
    assert params(target) == [("q", "电池"), ("source", "每日看点快看"), ("sort", "newest"), ("size", "2"),
                              ("category", "汽车")]
    assert params(facet_link(html, "一周内")) == [("q", "电池"), ("source", "每日看点快看"), ("sort", "newest"),
                                               ("size", "2"), ("range", "1w")]
    assert params(link_for(html, "按相关度")) == [("q", "电池"), ("source", "每日看点快看"), ("size", "2")]


def test_category_facet_filters_and_shows_chip(client):
    html = page(client, "/search?q=电池&category=汽车")
    assert "约 3 条结果" in html
    assert "新能源汽车维修专业走俏" not in "".join(hit_titles(html))  # 教育, filtered out
    assert re.search(r'class="facet-link is-on" href="[^"]*"\s*aria-current="true">\s*<span class="facet-value">汽车', html)
    assert params(link_for(html, "类别：汽车")) == [("q", "电池")]
    assert params(link_for(html, "清除全部")) == [("q", "电池")]
    assert "（已选 1 项）" in html


def test_year_facet_and_custom_dates(client):
    html = page(client, "/search?q=电池")
    year = facet_link(html, "2023 年")
    assert params(year) == [("q", "电池"), ("from", "2023-01-01"), ("to", "2023-12-31")]
    narrowed = page(client, "/search?q=新能源&from=2023-12-01&to=2023-12-31")
    assert hit_titles(narrowed) == ["衢州新能源汽车产业链加速成形 多个电池项目年内投产", "二手新能源车交易活跃 检测标准亟待统一"]
    assert "新能源汽车维修专业走俏" not in "".join(hit_titles(narrowed))  # 2023-11-20
    assert 'value="2023-12-01"' in narrowed and "起：2023-12-01" in narrowed


def test_date_preset_with_frozen_clock(frozen_client):
    html = page(frozen_client, "/search?q=老人&range=1w")
    assert sorted(hit_titles(html)) == ["冬季送温暖 社区志愿者为独居老人上门体检", "社区食堂开到家门口 老人吃上热乎饭"]
    assert ">5天前</time>" in html and ">6天前</time>" in html  # 01-10 12:00 and 01-08 15:00
    assert "时间：一周内" in html
    assert "老旧小区加装电梯提速" not in html  # 2024-10, outside the week
    empty = page(frozen_client, "/search?q=电池&range=1w")
    assert "没有找到与“<strong>电池</strong>”相关的新闻（在所选条件下）" in empty
    assert params(link_for(empty, "去掉所有筛选条件")) == [("q", "电池")]


@pytest.mark.parametrize(("offset", "said"), [(30, "刚刚"), (600, "10分钟前"), (3 * 3600, "3小时前"),
                                              (6 * 86400, "6天前"), (8 * 86400, "2026-01-10"), (-60, "2026-01-10")])
def test_recent_dates_are_relative(seed_index, offset, said):
    now = epoch_of("2026-01-10 12:00:00") + offset
    client = create_app({"TESTING": True, "INDEX_DIR": str(seed_index), "FIXED_NOW": now}).test_client()
    html = page(client, "/search?q=社区食堂")
    assert f'<time datetime="2026-01-10T12:00:00+08:00" title="2026-01-10 12:00:00">{said}</time>' in html


def test_sort_by_time_orders_newest_first(client):
    html = page(client, "/search?q=电池&sort=newest")
    assert hit_titles(html)[0] == "衢州新能源汽车产业链加速成形 多个电池项目年内投产"  # 2023-12-30
    assert hit_titles(html)[-1] == "新能源汽车维修专业走俏 职校学生未毕业就被“预订”"  # 2023-11-20
    assert 'class="is-on" aria-current="true">按时间' in html


def test_pagination(client):
    first = page(client, "/search?q=电池&size=2")
    second = page(client, "/search?q=电池&size=2&page=2")
    assert len(hit_titles(first)) == len(hit_titles(second)) == 2
    assert not set(hit_titles(first)) & set(hit_titles(second))
    assert params(link_for(first, "下一页")) == [("q", "电池"), ("size", "2"), ("page", "2")]
    assert "上一页" not in first
    assert params(link_for(second, "上一页")) == [("q", "电池"), ("size", "2")]
    assert '<span class="page-current" aria-current="page">2</span>' in second
    assert '<ol class="hits" start="3">' in second
    beyond = page(client, "/search?q=电池&size=2&page=9")
    assert "第 9 页没有结果，共 2 页。" in beyond


def test_no_results_suggestion_and_warning(client):
    html = page(client, "/search?q=衢洲&category=汽车")
    assert "您是不是要找：" in html
    assert params(link_for(html, "衢州")) == [("q", "衢州"), ("category", "汽车")]
    none = page(client, "/search?q=马克·吐温")
    assert "没有找到与“<strong>马克·吐温</strong>”相关的新闻。" in none
    assert "去掉所有筛选条件" not in none
    warned = page(client, '/search?q="衢州')
    assert "引号不成对，已按普通文字处理" in warned
    assert "约 2 条结果" in warned


def test_empty_query_asks_for_one(client):
    html = page(client, "/search")
    assert "请输入要搜索的内容" in html
    assert "条结果" not in html


@pytest.mark.parametrize(("query", "param", "said"), [
    ("page=abc", "page", "页码应为 1 到 1000 之间的整数"),
    ("page=0", "page", "页码应为 1 到 1000 之间的整数"),
    ("size=51", "size", "每页条数应为 1 到 50 之间的整数"),
    ("sort=random", "sort", "排序方式只能是按相关度或按时间"),
    ("range=2d", "range", "时间范围只能是一天内、一周内、一月内或一年内"),
    ("from=2024-13-01", "from", "起始日期应写成"),
    ("to=yesterday", "to", "结束日期应写成"),
    ("from=2025-01-01&to=2024-01-01", "from", "不晚于结束日期"),
])
def test_bad_parameters_are_dropped_politely(client, query, param, said):
    html = page(client, f"/search?q=衢州&{query}", status=400)
    assert "有些参数无法识别，已忽略" in html
    assert f"<code>{param}=" in html and said in html
    assert "约 2 条结果" in html  # the search still ran without the bad parameter


def test_unknown_parameters_are_ignored(client):
    html = page(client, "/search?q=衢州&utm_source=x")
    assert "约 2 条结果" in html and "utm_source" not in html


# ---- article ------------------------------------------------------------------


def test_article_marks_query_and_shows_metadata(client):
    html = page(client, f"/article/{QUZHOU}?q=衢州")
    assert "<title>衢州新能源汽车产业链加速成形 多个电池项目年内投产 - 新闻搜索</title>" in html
    assert '<h1 class="article-title"><mark>衢州</mark>新能源汽车产业链加速成形' in html
    assert "<p>中新网<mark>衢州</mark>12月29日电" in html
    assert "<p>据了解，当地明年将继续推进电池回收利用基地建设" in html  # unmarked paragraphs too
    for text in ("2023-12-30 07:47", "汽车", "每日看点快看", "中国新闻网", "2024-01-02 08:00"):
        assert text in html
    assert '<a class="original" href="https://news.example.com/auto/2023-12-30/battery-chain.html" ' \
           'rel="noopener noreferrer nofollow">' in html
    assert params(link_for(html, "返回")) == [("q", "衢州")]
    assert "南京市长江大桥" not in html


def test_article_without_query_marks_nothing(client):
    html = page(client, f"/article/{QUZHOU}")
    assert "<mark>" not in html and "返回" not in html


def test_article_links_related_that_resolve(client):
    html = page(client, f"/article/{QUZHOU}")
    assert link_for(html, "新能源汽车维修专业走俏") == f"/article/{EV_SCHOOL}"
    assert link_for(html, "冬季用车指南") == f"/article/{WINTER_DRIVING}"
    assert "<span>工信部门表示" in html  # a teaser-only entry is shown, with no page to link to
    with pytest.raises(AssertionError):
        link_for(html, "工信部门表示")


def test_headline_page_links_its_parent(client):
    html = page(client, f"/article/{WINTER_DRIVING}?q=电池")
    assert '<span class="badge">仅标题</span>' in html
    assert "专家建议合理设置空调温度，出行前预热<mark>电池</mark>。" in html
    assert link_for(html, "衢州新能源汽车产业链") == f"/article/{QUZHOU}?q=%E7%94%B5%E6%B1%A0"
    assert "原文" not in html  # a headline has no URL


def test_unknown_article_and_url_are_404_pages(client):
    for url in ("/article/nope", "/article/%3Cscript%3E", "/article/%00", "/article/" + "x" * 3000,
                "/no/such/page", "/articles", "/static/../web/__init__.py"):
        html = page(client, url, status=404)
        assert "<h1>找不到这个页面</h1>" in html and "<script>" not in html.split("</head>")[1]


def test_wrong_method_is_405_page(client):
    response = client.post("/search?q=衢州")
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert "不支持这种请求方式" in response.get_data(as_text=True)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_missing_index_is_a_calm_503(tmp_path):
    client = create_app({"TESTING": True, "INDEX_DIR": str(tmp_path / "none")}).test_client()
    assert "索引尚未建立" in page(client, "/", status=503)
    assert "索引尚未建立" in page(client, "/search?q=衢州", status=503)


def test_unreadable_index_is_a_calm_503(tmp_path):
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "newsearch.json").write_text("{}", encoding="utf-8")  # a build without Whoosh files
    client = create_app({"INDEX_DIR": str(tmp_path / "index"), "PROPAGATE_EXCEPTIONS": False}).test_client()
    html = page(client, "/search?q=衢州", status=503)
    assert "索引" in html and "Traceback" not in html and "EmptyIndexError" not in html


# ---- escaping and headers -----------------------------------------------------------


def test_query_probe_is_escaped(client):
    for url in (f"/search?q={PROBE}", f"/search?q={PROBE}&category={PROBE}", f"/article/{QUZHOU}?q={PROBE}"):
        html = page(client, url)
        assert PROBE not in html and "<script>alert" not in html
    html = page(client, f"/search?q={PROBE}&category={PROBE}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_article_markup_is_escaped(xss_index):
    client = create_app({"TESTING": True, "INDEX_DIR": str(xss_index)}).test_client()
    results = page(client, "/search?q=恶意脚本")
    assert "<mark>恶意脚本</mark>&lt;script&gt;alert(1)&lt;/script&gt;与&lt;b&gt;x&lt;/b&gt;" in results
    assert "夜间检修&lt;b&gt;x&lt;/b&gt;南京" in results
    assert "<script>alert" not in results and "<b>x" not in results
    doc_id = re.search(r'href="/article/(\w+)\?q=', results).group(1)
    article = page(client, f"/article/{doc_id}?q=alert")
    assert "恶意脚本&lt;script&gt;<mark>alert</mark>(1)&lt;/script&gt;与&lt;b&gt;x&lt;/b&gt;" in article
    assert "<script>alert" not in article and "<b>x" not in article
    assert "javascript:" not in article  # the URL is not http(s): never a link


def test_pages_carry_security_headers_and_no_inline_code(client):
    for url in ("/", "/search?q=衢州", f"/article/{QUZHOU}", "/nope", "/search?page=x"):
        response = client.get(url)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        html = response.get_data(as_text=True)
        assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/static/suggest.js" defer>']
        assert "<style" not in html and " style=" not in html
        assert not re.search(r"<[^>]+\son\w+=", html)


def test_odd_queries_never_fail(client):
    extras = ({}, {"sort": "newest"}, {"category": "汽车", "range": "1y"}, {"page": "2", "size": "1"})
    for q in ODD_QUERIES:
        for extra in extras:
            response = client.get("/search", query_string={"q": q, **extra})
            assert response.status_code == 200, (q, extra)
    assert client.get("/search", query_string={"q": "衢州", "page": "9" * 30}).status_code == 400
    wide = client.get("/search", query_string={"q": "衢州", "from": "0001-01-01", "to": "9999-12-31"})
    assert wide.status_code == 200 and "约 2 条结果" in wide.get_data(as_text=True)


# ---- opensearch ---------------------------------------------------------------


def test_opensearch_description(client):
    response = client.get("/opensearch.xml")
    assert response.status_code == 200
    assert response.mimetype == "application/opensearchdescription+xml"
    xml = response.get_data(as_text=True)
    assert "<ShortName>新闻搜索</ShortName>" in xml
    assert '<Url type="text/html" method="get" template="http://localhost/search?q={searchTerms}"/>' in xml
    home = page(client, "/")
    assert 'rel="search" type="application/opensearchdescription+xml"' in home
