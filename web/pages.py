"""The HTML pages: home, results, article, errors, and the OpenSearch description.

Pages read parameters leniently: a bad page, size, sort or date is dropped
with a polite message (status 400) and the rest of the search still runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, make_response, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from search import RequestError, SearchRequest, parse_request
from search.facets import PRESETS, UNIT_NAMES
from search.request import MAX_PAGE, MAX_SIZE, PARAMETERS
from web import get_article, get_engine, get_now
from web.feed import FEED_SIZE, beijing, build_feed

bp = Blueprint("pages", __name__)

# What a reader is told when a parameter is dropped.
FRIENDLY = {
    "page": f"页码应为 1 到 {MAX_PAGE} 之间的整数",
    "size": f"每页条数应为 1 到 {MAX_SIZE} 之间的整数",
    "sort": "排序方式只能是按相关度或按时间",
    "range": "时间范围只能是一天内、一周内、一月内或一年内",
    "from": "起始日期应写成 年-月-日（如 2024-01-31），且不晚于结束日期",
    "to": "结束日期应写成 年-月-日（如 2024-12-31）",
}
ERROR_TITLES = {400: "请求有误", 404: "找不到这个页面", 405: "不支持这种请求方式", 503: "搜索暂时不可用"}
RANGE_LABELS = {key: label for key, (label, _) in PRESETS.items()}
DEFAULT_SIZE = SearchRequest.size
PAGE_WINDOW = 9  # page links shown around the current one


def parse_leniently(args: MultiDict) -> tuple[SearchRequest, list[dict]]:
    """Parse the search parameters, dropping each bad one; return the request and what was dropped."""
    args = MultiDict(args)
    dropped = []
    for _ in PARAMETERS:
        try:
            return parse_request(args, strict=False), dropped
        except RequestError as exc:
            dropped.append({"param": exc.param, "value": args.get(exc.param, ""),
                            "message": FRIENDLY.get(exc.param, exc.message)})
            args.poplist(exc.param)
    return SearchRequest(q=args.get("q", "")), dropped


def epoch_of(published: str) -> int:
    """Return the epoch seconds of a 'YYYY-MM-DD HH:MM:SS' Beijing wall-clock time."""
    return int((datetime.fromisoformat(published) - datetime(1970, 1, 1)).total_seconds())


@bp.app_template_filter("when")
def format_when(published: str | None) -> str:
    """Say how long ago within a week (刚刚, 3小时前), else the date."""
    if not published:
        return ""
    age = get_now() - epoch_of(published)
    if age < 0 or age >= 7 * 86400:
        return published[:10]
    if age < 60:
        return "刚刚"
    if age < 3600:
        return f"{age // 60}分钟前"
    if age < 86400:
        return f"{age // 3600}小时前"
    return f"{age // 86400}天前"


@bp.app_template_filter("isotime")
def format_isotime(published: str) -> str:
    """Return a Beijing wall-clock time as an ISO 8601 value for <time datetime>."""
    return published.replace(" ", "T") + "+08:00"


@bp.app_template_filter("seconds")
def format_seconds(took_ms: float) -> str:
    """Return milliseconds as seconds, two decimals (three below 0.01 s)."""
    seconds = took_ms / 1000
    return f"{seconds:.2f}" if seconds >= 0.01 else f"{seconds:.3f}"


@bp.app_template_filter("safe_url")
def safe_url(url: str | None) -> str | None:
    """Return an http(s) URL unchanged, anything else (javascript:, data:) as None."""
    if url and urlsplit(url).scheme.lower() in ("http", "https"):
        return url
    return None


@bp.app_context_processor
def inject_site() -> dict:
    """Give every template the site name."""
    return {"site_name": current_app.config["SITE_NAME"]}


NAME_KINDS = {"person": "人物", "place": "地点", "org": "机构"}  # the name facets (search/facets.py), as the page titles them


class SearchLinks:
    """Build result-page URLs that change one part of the state and keep the rest."""

    def __init__(self, req: SearchRequest) -> None:
        self.req = req
        pairs = [("q", req.q)] if req.q else []
        pairs += [("category", c) for c in req.categories] + [("source", s) for s in req.sources]
        pairs += [(kind, v) for kind in NAME_KINDS for v in getattr(req, kind)]
        for name, value in (("range", req.range), ("from", req.date_from), ("to", req.date_to)):
            if value:
                pairs.append((name, str(value)))
        if req.sort != "relevance":
            pairs.append(("sort", req.sort))
        if req.size != DEFAULT_SIZE:
            pairs.append(("size", str(req.size)))
        if not req.collapse:
            pairs.append(("collapse", "0"))
        if req.story:
            pairs.append(("story", req.story))
        self.pairs = pairs  # the state without page: every link but pagination resets it

    def url(self, pairs: list[tuple[str, str]]) -> str:
        """Return the results URL of these parameters."""
        return url_for("pages.search") + ("?" + urlencode(pairs) if pairs else "")

    def toggle(self, name: str, value: str) -> str:
        """Add a facet value, or remove it when chosen."""
        if (name, value) in self.pairs:
            return self.url([p for p in self.pairs if p != (name, value)])
        return self.url([*self.pairs, (name, value)])

    def set(self, name: str, value: str | None) -> str:
        """Replace one single-valued parameter (None removes it); a preset replaces dates and back."""
        drop = {name} | ({"from", "to"} if name == "range" else {"range"} if name in ("from", "to") else set())
        pairs, at = [], None
        for pair in self.pairs:
            if pair[0] not in drop:
                pairs.append(pair)
            elif at is None:
                at = len(pairs)  # the new value takes the old one's place
        if value:
            pairs.insert(len(pairs) if at is None else at, (name, value))
        return self.url(pairs)

    def year(self, year: str) -> str:
        """Narrow to one calendar year."""
        pairs = [p for p in self.pairs if p[0] not in ("range", "from", "to")]
        return self.url([*pairs, ("from", f"{year}-01-01"), ("to", f"{year}-12-31")])

    def period(self, first: str, last: str) -> str:
        """Narrow to the days first .. last (a timeline bucket), replacing any date filter."""
        pairs = [p for p in self.pairs if p[0] not in ("range", "from", "to")]
        return self.url([*pairs, ("from", first), ("to", last)])

    def feed(self, external: bool = False) -> str:
        """Return the Atom feed of the same search (its order and page size are the feed's own)."""
        pairs = [p for p in self.pairs if p[0] not in ("sort", "size")]
        return url_for("pages.search_feed", _external=external) + ("?" + urlencode(pairs) if pairs else "")

    def page(self, number: int) -> str:
        """Go to one page of the same results."""
        return self.url(self.pairs + ([("page", str(number))] if number > 1 else []))

    def story(self, story_id: str) -> str:
        """List every copy of a story (the query kept, to mark its words)."""
        return self.url([*(p for p in self.pairs if p[0] == "q"), ("story", story_id)])

    def collapse(self, on: bool) -> str:
        """Show one hit per story (on) or every copy."""
        return self.url([p for p in self.pairs if p[0] != "collapse"] + ([] if on else [("collapse", "0")]))

    def clear(self) -> str:
        """Drop every filter, keep the query, the order and the page size."""
        return self.url([p for p in self.pairs if p[0] in ("q", "sort", "size")])

    def chips(self) -> list[tuple[str, str]]:
        """Return each active filter as (label, URL that removes it)."""
        req = self.req
        chips = [(f"类别：{c}", self.toggle("category", c)) for c in req.categories]
        chips += [(f"来源：{s}", self.toggle("source", s)) for s in req.sources]
        chips += [(f"{NAME_KINDS[kind]}：{v}", self.toggle(kind, v)) for kind in NAME_KINDS for v in getattr(req, kind)]
        if req.range:
            chips.append((f"时间：{RANGE_LABELS[req.range]}", self.set("range", None)))
        if req.date_from:
            chips.append((f"起：{req.date_from}", self.set("from", None)))
        if req.date_to:
            chips.append((f"止：{req.date_to}", self.set("to", None)))
        return chips


CHART_HEIGHT = 48  # the bars' drawing height, in the chart's own units; a bar is BAR_STEP wide with its gap
BAR_STEP = 10


def timeline_chart(timeline: dict) -> dict | None:
    """Return what the results page draws of an answer's timeline: bars in chart units and what they say.

    None when no match has a date. Bars are drawn to scale against the largest
    bucket; a bucket with matches is at least one unit tall.
    """
    buckets = timeline["buckets"]
    if not buckets:
        return None
    most = max(b["count"] for b in buckets)
    peak = next(b for b in buckets if b["count"] == most)
    unit = UNIT_NAMES[timeline["unit"]]
    bars = []
    for i, b in enumerate(buckets):
        height = 0 if not b["count"] else max(1, round(CHART_HEIGHT * b["count"] / most))
        bars.append({**b, "x": i * BAR_STEP + 1, "y": CHART_HEIGHT - height, "height": height})
    total = sum(b["count"] for b in buckets)
    desc = (f"{buckets[0]['label']} 至 {buckets[-1]['label']}，每{unit}一栏，共 {total} 篇有日期的文章；"
            f"最多的是 {peak['label']}（{most} 篇）")
    if timeline["undated"]:
        desc += f"；另有 {timeline['undated']} 篇没有日期"
    return {"bars": bars, "unit": unit, "desc": desc, "width": len(buckets) * BAR_STEP,
            "height": CHART_HEIGHT + 4, "base": CHART_HEIGHT, "undated": timeline["undated"]}


def page_numbers(current: int, last: int) -> list[int]:
    """Return the page numbers to link around the current page."""
    first = max(1, min(current - PAGE_WINDOW // 2, last - PAGE_WINDOW + 1))
    return list(range(first, min(last, first + PAGE_WINDOW - 1) + 1))


@bp.get("/")
def index():
    """Show the search box and what the index holds."""
    return render_template("pages/index.html", stats=get_engine().stats())


@bp.get("/search")
def search():
    """Show one page of results with facets, filters and pagination."""
    req, dropped = parse_leniently(request.args)
    answer = get_engine().search(req, now=get_now()) if req.q.strip() or req.story else None
    last = 1
    if answer:
        last = min(MAX_PAGE, max(1, math.ceil(answer["stories"] / req.size)))
    chart = timeline_chart(answer["timeline"]) if answer else None
    html = render_template("pages/search.html", req=req, q=req.q, answer=answer, dropped=dropped, chart=chart,
                           links=SearchLinks(req), pages=page_numbers(req.page, last), last=last)
    return html, 400 if dropped else 200


@bp.get("/search.atom")
def search_feed():
    """Return the newest matches of a search as an Atom feed; 304 when nothing new matched."""
    req, _ = parse_leniently(request.args)  # a bad parameter is dropped, as on the results page
    req = dataclasses.replace(req, sort="newest", page=1, size=FEED_SIZE)
    engine = get_engine()
    answer = engine.search(req, now=get_now()) if req.q.strip() else None
    links = SearchLinks(req)
    built = beijing(engine.current().meta.get("built_at")) or beijing("2000-01-01 00:00:00")
    body, updated = build_feed(
        answer, title=f"{req.q.strip() or '最新新闻'} - {current_app.config['SITE_NAME']}",
        feed_id="urn:newsearch:search:" + hashlib.sha256(links.feed().encode()).hexdigest()[:32],
        self_url=links.feed(external=True), page_url=request.host_url.rstrip("/") + links.url(links.pairs),
        article_url=lambda doc_id: url_for("pages.article", doc_id=doc_id, _external=True),
        fallback_updated=built)
    response = make_response(body)
    response.mimetype = "application/atom+xml"
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.last_modified = updated
    return response.make_conditional(request)


@bp.get("/article/<doc_id>")
def article(doc_id: str):
    """Show one article, the query's terms marked, with its related headlines."""
    q = request.args.get("q", "")
    found = get_article(doc_id, q)
    engine = get_engine()
    related = [(item, bool(item["id"]) and engine.exists(item["id"])) for item in found["related"]]
    parent = engine.article(found["parent"], around=False) if found["parent"] else None
    return render_template("pages/article.html", article=found, q=q, related=related, parent=parent)


@bp.get("/opensearch.xml")
def opensearch():
    """Describe the site's search so a browser can add it."""
    response = make_response(render_template("pages/opensearch.xml"))
    response.mimetype = "application/opensearchdescription+xml"
    return response


def error_page(status: int, message: str, errors: list[dict], unavailable: bool = False):
    """Render an error as a calm HTML page with the search box (unavailable: the cluster is down or too slow, not
    the index missing)."""
    title = ERROR_TITLES.get(status, "服务器出错了")
    friendly = [{**e, "message": FRIENDLY.get(e["param"], e["message"])} for e in errors]
    return make_response(render_template("pages/error.html", status=status, title=title,
                                         message=message, errors=friendly, unavailable=unavailable, q=""), status)
