"""Contract of the site in a real browser: Debian's headless Chromium via Playwright.

The app is served over the seeds/ index by a real server on 127.0.0.1, its
clock at conftest's NOW. A reader can type a query and press Enter, narrow by
a facet, a date preset and a page, open an article, and pick an autocomplete
suggestion with the keyboard alone; the pages break no CSP rule, work without
JavaScript, fit a 375-px phone without horizontal scrolling, and have no
serious or critical axe-core violation. Screenshots of the results page land
in test-output/screenshots/.
"""

import threading
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from conftest import NOW, ROOT
from web import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-output" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
QUZHOU = "u17c6402475da520a"  # seed 001


@pytest.fixture(scope="module")
def base_url(seed_index):
    """Serve the app over the seeds/ index from a real server in a thread; return its URL."""
    app = create_app({"TESTING": True, "INDEX_DIR": str(seed_index), "FIXED_NOW": NOW})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    """Launch Debian's Chromium headless (Playwright never downloads a browser here)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, base_url):
    """Open a desktop page; fail the test if the page logs an error (a CSP refusal, a script error)."""
    context = browser.new_context(viewport=DESKTOP, base_url=base_url, locale="zh-CN")
    tab = context.new_page()
    problems = []
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    yield tab
    context.close()
    assert problems == []


def query_of(url: str) -> list[tuple[str, str]]:
    """Return the query parameters of a URL in order."""
    return parse_qsl(urlsplit(url).query)


def result_count(tab) -> str:
    """Return the '约 N 条结果' line without its timing."""
    return tab.locator(".result-count").inner_text().split(" (")[0]


def test_type_query_and_press_enter(page):
    page.goto("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("衢州 新能源")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=*")
    assert query_of(page.url) == [("q", "衢州 新能源")]
    expect(page.locator("#q")).to_have_value("衢州 新能源")
    assert result_count(page) == "约 2 条结果"
    expect(page.locator(".hit")).to_have_count(2)
    expect(page.locator(".hit-title mark").first).to_have_text("衢州新能源")
    assert page.locator(".hit-snippet mark").count() >= 4
    assert "南京" not in page.locator(".hits").inner_text()  # what must not match


def test_category_facet_changes_counts_and_url(page):
    page.goto("/search?q=电池")
    assert result_count(page) == "约 4 条结果"
    page.locator(".sidebar .facet-link", has_text="汽车").click()
    page.wait_for_url("**category=*")
    assert query_of(page.url) == [("q", "电池"), ("category", "汽车")]
    assert result_count(page) == "约 3 条结果"
    expect(page.locator(".sidebar .facet-link.is-on", has_text="汽车")).to_have_attribute("aria-current", "true")
    expect(page.locator(".sidebar .facet-link", has_text="教育").locator(".facet-count")).to_have_text("1")
    assert "新能源汽车维修专业走俏" not in page.locator(".hits").inner_text()
    page.locator(".chip", has_text="类别：汽车").click()
    page.wait_for_url("**/search?q=%E7%94%B5%E6%B1%A0")
    assert result_count(page) == "约 4 条结果"


def test_week_preset_keeps_the_page_working(page):
    page.goto("/search?q=电池")
    page.locator(".sidebar .facet-link", has_text="一周内").click()
    page.wait_for_url("**range=1w*")
    assert query_of(page.url) == [("q", "电池"), ("range", "1w")]
    assert result_count(page) == "约 0 条结果"
    expect(page.locator(".no-results")).to_contain_text("没有找到")
    expect(page.locator(".chip", has_text="时间：一周内")).to_be_visible()
    page.get_by_role("link", name="去掉所有筛选条件再搜一次").click()
    page.wait_for_url("**/search?q=%E7%94%B5%E6%B1%A0")
    assert result_count(page) == "约 4 条结果"
    page.goto("/search?q=老人")
    page.locator(".sidebar .facet-link", has_text="一周内").click()
    page.wait_for_url("**range=1w*")
    assert result_count(page) == "约 2 条结果"  # seeds 009 and a headline from 2026-01-08
    expect(page.locator(".hit-meta time")).to_have_text(["5天前", "6天前"])  # the full article first


def test_page_forward(page):
    page.goto("/search?q=电池&size=2")
    first = page.locator(".hit-title a").all_inner_texts()
    page.get_by_role("link", name="下一页").click()
    page.wait_for_url("**page=2*")
    assert query_of(page.url) == [("q", "电池"), ("size", "2"), ("page", "2")]
    second = page.locator(".hit-title a").all_inner_texts()
    assert len(first) == len(second) == 2 and not set(first) & set(second)
    expect(page.locator(".page-current")).to_have_text("2")


def test_open_an_article(page):
    page.goto("/search?q=金砖电池")
    page.locator(".hit-title a").first.click()
    page.wait_for_url(f"**/article/{QUZHOU}?q=*")
    expect(page.locator("h1")).to_contain_text("衢州新能源汽车产业链加速成形")
    expect(page.locator(".article-body mark", has_text="金砖电池")).to_have_count(1)
    expect(page.locator(".article-meta")).to_contain_text("每日看点快看")
    expect(page.locator("a.original")).to_have_attribute("href", "https://news.example.com/auto/2023-12-30/battery-chain.html")
    page.locator(".related a", has_text="冬季用车指南").click()
    page.wait_for_url("**/article/h4b2bb39c104c21f9*")
    expect(page.locator("h1 .badge")).to_have_text("仅标题")


def test_autocomplete_with_the_keyboard(page):
    page.goto("/")
    box = page.locator("#q")
    box.press_sequentially("新能", delay=40)
    options = page.get_by_role("option")
    expect(options.first).to_have_text("新能源")
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(box).to_have_attribute("role", "combobox")
    page.keyboard.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", options.first.get_attribute("id"))
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=*")
    assert query_of(page.url) == [("q", "新能源")]
    assert result_count(page) != "约 0 条结果"
    box = page.locator("#q")
    box.fill("")
    box.press_sequentially("衢", delay=40)
    expect(page.get_by_role("listbox")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("listbox")).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    box.fill("")
    box.press_sequentially("quzhou", delay=40)  # pinyin, typed without switching input method
    expect(options.first).to_have_text("衢州")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=%E8%A1%A2%E5%B7%9E")  # 衢州: the page before was a search too
    assert query_of(page.url) == [("q", "衢州")]


def test_works_without_javascript(browser, base_url):
    context = browser.new_context(viewport=DESKTOP, base_url=base_url, java_script_enabled=False)
    tab = context.new_page()
    tab.goto("/")
    tab.locator("#q").fill("衢州")
    tab.locator("#q").press("Enter")
    tab.wait_for_url("**/search?q=*")
    assert result_count(tab) == "约 2 条结果"
    expect(tab.locator("#q")).not_to_have_attribute("role", "combobox")
    tab.locator(".sidebar .facet-link", has_text="教育").click()
    tab.wait_for_url("**category=*")
    assert result_count(tab) == "约 1 条结果"
    context.close()


def test_a_timeline_bar_narrows_the_search_to_its_period(page):
    page.goto("/search?q=电池")
    chart = page.locator("svg.timeline-chart[role=img]")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["height"] > 40
    bar = page.locator(".timeline-links a").first
    label, count = bar.get_attribute("title").removesuffix(" 篇").split("：")
    bar.click()
    page.wait_for_url("**from=*")
    assert result_count(page) == f"约 {count} 条结果"
    expect(page.locator(".timeline-table tr.is-on")).to_have_count(1)
    expect(page.locator(".timeline-table tr.is-on th")).to_contain_text(label)
    expect(page.locator(".timeline-bar.is-on")).to_have_count(1)
    # The table is out of sight until a keyboard reaches one of its links.
    link = page.locator(".timeline-table a").first
    assert page.locator(".timeline-table").bounding_box()["height"] <= 1
    link.focus()
    assert page.locator(".timeline-table").bounding_box()["height"] > 10


def test_phone_layout_and_screenshots(browser, base_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    desktop = browser.new_context(viewport=DESKTOP, base_url=base_url)
    tab = desktop.new_page()
    tab.goto("/search?q=电池")
    tab.screenshot(path=str(SCREENSHOTS / "results-desktop.png"), full_page=True)
    expect(tab.locator(".related-searches")).to_be_visible()
    expect(tab.locator(".sidebar")).to_be_visible()
    expect(tab.locator(".filters-mobile")).to_be_hidden()
    desktop.close()
    phone = browser.new_context(viewport=PHONE, base_url=base_url, is_mobile=True, has_touch=True)
    tab = phone.new_page()
    for url in ("/", "/search?q=电池", "/search?q=电池&category=汽车&range=1y", f"/article/{QUZHOU}?q=衢州", "/nope"):
        tab.goto(url)
        assert tab.evaluate("document.documentElement.scrollWidth") <= 375, url
    tab.goto("/search?q=电池")
    tab.screenshot(path=str(SCREENSHOTS / "results-phone.png"), full_page=True)
    related = tab.locator(".related-searches")
    expect(related).to_be_visible()
    box = related.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    expect(tab.locator(".sidebar")).to_be_hidden()
    filters = tab.locator("details.filters-mobile")
    expect(filters).not_to_have_attribute("open", "")
    filters.locator("summary").click()
    filters.locator(".facet-link", has_text="汽车").click()
    tab.wait_for_url("**category=*")
    assert result_count(tab) == "约 3 条结果"
    assert tab.evaluate("document.documentElement.scrollWidth") <= 375
    phone.close()
    assert (SCREENSHOTS / "results-desktop.png").stat().st_size > 0
    assert (SCREENSHOTS / "results-phone.png").stat().st_size > 0


@pytest.mark.parametrize("url", ["/", "/search?q=衢州+新能源", "/search?q=马克·吐温", f"/article/{QUZHOU}?q=衢州"],
                         ids=["home", "results", "no-results", "article"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_serious_axe_violations(browser, base_url, url, viewport):
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm install` at the repo root")
    # add_script_tag injects an inline script, which the site's CSP rightly refuses
    context = browser.new_context(viewport=viewport, base_url=base_url, bypass_csp=True)
    tab = context.new_page()
    tab.goto(url)
    expect(tab.locator(".related-searches")).to_have_count(1 if "新能源" in url else 0)  # checked too when shown
    tab.add_script_tag(path=str(AXE))
    result = tab.evaluate("axe.run(document, {resultTypes: ['violations']})")
    context.close()
    serious = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []


@pytest.fixture(scope="module")
def stories_site(tmp_path_factory):
    """Serve an index of corpus items plus two reprints of one of them; return (URL, the original)."""
    import json
    import random

    from bench.stories import eligible, reprint
    from conftest import corpus_items
    from indexer.writer import build_index

    items = corpus_items(300, 40_000)
    original = next(item for item in items if eligible(item) and len(item["title"]) >= 8)
    rng = random.Random(5)
    copies = [reprint(original, number, rng) for number in range(2)]
    folder = tmp_path_factory.mktemp("stories-site")
    (folder / "items.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items + copies),
                                        encoding="utf-8")
    build_index([str(folder / "items.jsonl")], folder / "index", jobs=1)
    app = create_app({"TESTING": True, "INDEX_DIR": str(folder / "index"), "FIXED_NOW": NOW})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", original
    server.shutdown()
    thread.join()
    server.server_close()


def test_a_story_s_copies_are_one_hit_linking_to_all_of_them(browser, stories_site):
    url, original = stories_site
    context = browser.new_context(viewport=DESKTOP, base_url=url, locale="zh-CN")
    tab = context.new_page()
    tab.goto(f"/search?q={original['title'][:8]}&size=50")
    link = tab.locator(".hit-copies a", has_text="另有 2 条相同新闻")
    expect(link).to_have_count(1)
    expect(tab.locator(".facet-note").first).to_contain_text("文章篇数")
    link.click()
    tab.wait_for_url("**story=*")
    expect(tab.locator(".result-count")).to_contain_text("同一新闻的 3 篇报道")
    expect(tab.locator(".hits .hit")).to_have_count(3)
    expect(tab.locator(".hit-copies")).to_have_count(0)  # the story's own list is not collapsed
    tab.locator(".hits .hit-title a").first.click()
    tab.wait_for_url("**/article/*")
    expect(tab.locator("#copies-title")).to_have_text("相同新闻的其他 2 篇报道")
    expect(tab.locator(".copies li").first).to_be_visible()
    context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_story_pages_have_no_serious_axe_violations_and_fit_a_phone(browser, stories_site, viewport):
    url, original = stories_site
    context = browser.new_context(viewport=viewport, base_url=url, bypass_csp=True)
    tab = context.new_page()
    tab.goto(f"/search?q={original['title'][:8]}")
    story = tab.locator(".hit-copies a", has_text="另有 2 条相同新闻").get_attribute("href")
    for address in (f"/search?q={original['title'][:8]}", story, f"/article/{original['id']}"):
        tab.goto(address)
        assert tab.evaluate("document.documentElement.scrollWidth") <= viewport["width"], address
        tab.add_script_tag(path=str(AXE))
        result = tab.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [(v["id"], v["impact"], v["help"]) for v in result["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert serious == [], address
    context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_related_searches_are_links_under_the_results_that_find_articles(browser, stories_site, viewport):
    url, _ = stories_site  # corpus items: related searches from real news
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone = viewport is PHONE
    context = browser.new_context(viewport=viewport, base_url=url, bypass_csp=True, is_mobile=phone, has_touch=phone)
    tab = context.new_page()
    tab.goto("/search?q=疫情&range=1y")  # nothing within a year of the app's clock: no block
    expect(tab.get_by_role("navigation", name="相关搜索")).to_have_count(0)
    tab.goto("/search?q=疫情")
    block = tab.get_by_role("navigation", name="相关搜索")
    expect(block).to_be_visible()
    tab.screenshot(path=str(SCREENSHOTS / f"related-{'phone' if phone else 'desktop'}.png"), full_page=True)
    links = block.get_by_role("link")
    assert 6 <= links.count() <= 10
    assert block.bounding_box()["y"] > tab.locator(".hits .hit").last.bounding_box()["y"]  # under the results
    assert tab.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    box = block.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    tab.add_script_tag(path=str(AXE))
    result = tab.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert [(v["id"], v["help"]) for v in result["violations"] if v["impact"] in ("serious", "critical")] == []
    text = links.first.inner_text()
    assert text.startswith("疫情 ") and text != "疫情"
    links.first.focus()
    with tab.expect_navigation():
        tab.keyboard.press("Enter")
    assert query_of(tab.url) == [("q", text)]
    assert result_count(tab) != "约 0 条结果"
    context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_people_places_and_organisations_filter_fit_a_phone_and_pass_axe(browser, stories_site, viewport):
    url, _ = stories_site
    phone = viewport is PHONE
    context = browser.new_context(viewport=viewport, base_url=url, bypass_csp=True, locale="zh-CN",
                                  is_mobile=phone, has_touch=phone)
    tab = context.new_page()
    tab.goto("/search?q=中国")
    panel = tab.locator("details.filters-mobile" if phone else ".sidebar")
    if phone:
        panel.locator("summary").click()
    for title in ("人物", "地点", "机构"):
        expect(panel.locator(".facet-title", has_text=title)).to_have_count(1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"results-entities-{'phone' if phone else 'desktop'}.png"), full_page=True)
    assert tab.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    tab.add_script_tag(path=str(AXE))
    result = tab.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert [(v["id"], v["help"]) for v in result["violations"] if v["impact"] in ("serious", "critical")] == []
    people = panel.locator("section.facet", has=tab.locator(".facet-title", has_text="人物"))
    link = people.locator(".facet-link").first
    name = link.locator(".facet-value").inner_text()
    link.click()
    tab.wait_for_url("**person=*")
    assert ("person", name) in query_of(tab.url)
    expect(tab.locator(".chips")).to_contain_text(f"人物：{name}")
    assert tab.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    context.close()
