"""Contract of web/api.py: the JSON API over the seeds/ index.

/api/search answers exactly what ``newsearch query --json`` prints,
``{"ok": true, **Engine.search(...)}``; /api/article/<id> is the article's
data; /api/suggest is ``{"ok", "q", "suggestions"}``; /healthz names the live
build. Every error, whatever the status (400, 404, 405, 503), is one shape,
``{"ok": false, "error", "errors", "status"}``, naming the bad parameter.
No query makes a 500, and <, > and & never appear raw in a JSON body.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import NOW
from indexer.keys import key_of
from indexer.store import FORMAT_VERSION
from search import parse_request
from web import create_app
from web.cli import cli

QUZHOU = "u17c6402475da520a"  # seed 001
WINTER_DRIVING = "h4b2bb39c104c21f9"  # headline from 001's related list
PROBE = "<script>alert(1)</script>"
ODD_QUERIES = ["", " ", "\"", "-", "OR", "a OR", "title:", "source:\"", "((", "*", "\\", "\x00", "的",
               "，。！", "衢州" * 500, "x" * 5000, "%", "{{7*7}}", "😀", "\u200b", "&amp;", PROBE]
RANGE_NONE = [{"value": "1d", "label": "一天内", "count": 0, "selected": False},
              {"value": "1w", "label": "一周内", "count": 0, "selected": False},
              {"value": "1m", "label": "一月内", "count": 0, "selected": False},
              {"value": "1y", "label": "一年内", "count": 0, "selected": False}]


@pytest.fixture()
def frozen_client(seed_index):
    """Return a client of the app whose clock stands at conftest's NOW (2026-01-15 12:00)."""
    return create_app({"TESTING": True, "INDEX_DIR": str(seed_index), "FIXED_NOW": NOW}).test_client()


def get_json(client, url: str, status: int = 200, **kwargs) -> dict:
    """GET a JSON endpoint, check status and type, return the body."""
    response = client.get(url, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    return response.get_json()


def without_time(answer: dict) -> dict:
    """Return an answer without its timing, the one part that varies between runs."""
    assert isinstance(answer.pop("took_ms"), float)
    return answer


# ---- /api/search ----------------------------------------------------------------


def test_search_is_the_engine_answer(frozen_client, engine):
    args = {"q": "电池", "category": "汽车", "sort": "newest", "size": "2"}
    answer = get_json(frozen_client, "/api/search", query_string=args)
    assert answer["ok"] is True
    assert without_time(answer) == {"ok": True, **without_time(engine.search(parse_request(args), now=NOW))}
    assert [h["id"] for h in answer["hits"]] == [QUZHOU, WINTER_DRIVING]
    assert (answer["total"], answer["page"], answer["size"]) == (3, 1, 2)
    assert answer["facets"]["category"] == [{"value": "汽车", "count": 3, "selected": True},
                                            {"value": "教育", "count": 1, "selected": False}]
    # what must not match: 教育 (seed 004) is filtered out; 009 has no 电池; 001's teaser-only
    # related entry 工信部门表示… is no document of its own
    for doc_id in ("ua7b6746496354187", "ufdac0f09c21b32be", "工信部门表示"):
        assert doc_id not in json.dumps(answer)


def without_scores(answer: dict) -> dict:
    """Return an answer without scores, which the recency prior ties to the second of asking."""
    return {**answer, "hits": [{**h, "score": round(h["score"], 1)} for h in answer["hits"]]}


def test_search_matches_query_json(client, seed_index):
    answer = without_time(get_json(client, "/api/search?q=金砖电池"))
    printed = CliRunner().invoke(cli, ["query", "金砖电池", "--index", str(seed_index), "--json"])
    assert printed.exit_code == 0, printed.output
    assert without_scores(without_time(json.loads(printed.output))) == without_scores(answer)
    assert answer["total"] == 1 and answer["hits"][0]["id"] == QUZHOU
    assert "<mark>电池</mark>" in answer["hits"][0]["title_html"]
    assert answer["facets"] == {  # seed 001 is years old: no date preset counts it
        "category": [{"value": "汽车", "count": 1, "selected": False}],
        "source": [{"value": "每日看点快看", "count": 1, "selected": False}],
        "range": RANGE_NONE,
        "year": [{"value": "2023", "count": 1}],
        "month": [{"value": "2023-12", "count": 1}],
        "person": [],
        "place": [{"value": v, "count": 1, "selected": False} for v in ("新城", "浙江", "衢州", "长三角")],
        "org": [],
    }


def test_search_without_hits(client):
    answer = without_time(get_json(client, "/api/search?q=马克·吐温"))
    assert answer["total"] == 0 and answer["hits"] == []
    assert answer["facets"]["category"] == [] and answer["facets"]["year"] == []


@pytest.mark.parametrize(("query", "param", "message"), [
    ("page=0", "page", "must be a whole number from 1 to 1000"),
    ("page=abc", "page", "must be a whole number from 1 to 1000"),
    ("page=1001", "page", "must be a whole number from 1 to 1000"),
    ("size=51", "size", "must be a whole number from 1 to 50"),
    ("size=-1", "size", "must be a whole number from 1 to 50"),
    ("sort=random", "sort", "must be one of relevance, newest, oldest"),
    ("range=2d", "range", "must be one of 1d, 1w, 1m, 1y"),
    ("from=2024-13-01", "from", "must be a date as YYYY-MM-DD"),
    ("to=yesterday", "to", "must be a date as YYYY-MM-DD"),
    ("from=2025-01-01&to=2024-01-01", "from", "must not be after to"),
    ("collapse=2", "collapse", "must be 1 or 0"),
    ("story=12345", "story", "must be a story id: 16 hexadecimal digits, as a hit's story.id"),
    ("qq=1", "qq", "unknown parameter; known: q, category, source, person, place, org, range, from, to, sort, page, "
                   "size, collapse, story"),
])
def test_search_bad_parameter_is_400_naming_it(client, query, param, message):
    body = get_json(client, f"/api/search?q=衢州&{query}", status=400)
    assert body == {"ok": False, "error": f"{param}: {message}",
                    "errors": [{"param": param, "message": message}], "status": 400}


def test_odd_queries_never_fail(client):
    for q in ODD_QUERIES:
        for extra in ({}, {"sort": "oldest"}, {"category": "汽车", "range": "1y"}, {"page": "3", "size": "1"}):
            response = client.get("/api/search", query_string={"q": q, **extra})
            assert response.status_code == 200, (q, extra, response.get_data(as_text=True)[:300])
            assert response.get_json()["ok"] is True


def test_query_probe_is_never_raw(client):
    for url in (f"/api/search?q={PROBE}", f"/api/suggest?q={PROBE}", f"/api/search?q=衢州&{PROBE}=1"):
        response = client.get(url)
        text = response.get_data(as_text=True)
        assert "<" not in text and ">" not in text, text
    assert get_json(client, "/api/suggest", query_string={"q": PROBE}) == {"ok": True, "q": PROBE, "suggestions": [],
                                                                          "work": NOTHING_READ}
    body = get_json(client, "/api/search", status=400, query_string={"q": "x", PROBE: "1"})
    assert body["errors"][0]["param"] == PROBE


NOTHING_READ = {"postings": 0, "positions": 0, "stored": 0, "sampled": 0, "capped": [], "searched": 1.0, "passes": 0}


def read(**counts) -> dict:
    """Return the work of an answer that read these counts and hit no cap."""
    return {**NOTHING_READ, **counts}


# ---- /api/article -----------------------------------------------------------------


def test_article_is_its_data(client):
    assert get_json(client, f"/api/article/{WINTER_DRIVING}?q=电池") == {
        "ok": True,
        "id": WINTER_DRIVING,
        "kind": "headline",
        "title": "冬季用车指南：低温环境下如何延长电动车续航",
        "title_html": "冬季用车指南：低温环境下如何延长电动车续航",
        "snippet_html": "专家建议合理设置空调温度，出行前预热<mark>电池</mark>。",
        "category": "汽车",
        "source": None,
        "published": "2023-12-27 09:30:00",
        "url": None,
        "score": None,
        "body_html": ["专家建议合理设置空调温度，出行前预热<mark>电池</mark>。"],
        "origin": None,
        "snapshot_time": None,
        "related": [],
        "parent": QUZHOU,
        "story": {"id": f"{key_of(WINTER_DRIVING):016x}", "size": 1},  # a story of its own
        "copies": [],
        "more_like_this": [],  # the seed index is too small for a word to be distinctive and shared
        "work": NOTHING_READ,  # a story of one and no distinctive word: no list and no other article read
    }


def test_article_marks_only_with_q(client):
    plain = get_json(client, f"/api/article/{QUZHOU}")
    marked = get_json(client, f"/api/article/{QUZHOU}?q=衢州")
    assert not any("<mark>" in p for p in plain["body_html"])
    assert marked["body_html"][0].startswith("中新网<mark>衢州</mark>12月29日电")
    assert [r["id"] for r in marked["related"]] == ["ua7b6746496354187", None,  # teaser only: no entry
                                                    WINTER_DRIVING, "h9376410016e9e7b6"]
    assert (marked["origin"], marked["snapshot_time"]) == ("中国新闻网", "2024-01-02 08:00:00")


def test_unknown_article_is_404(client):
    assert get_json(client, "/api/article/nope", status=404) == {
        "ok": False, "error": "Not Found: no article with id nope", "errors": [], "status": 404}


def test_article_refuses_unknown_parameters(client):
    assert get_json(client, f"/api/article/{QUZHOU}?page=2", status=400) == {
        "ok": False, "error": "page: unknown parameter; known: q",
        "errors": [{"param": "page", "message": "unknown parameter; known: q"}], "status": 400}


# ---- /api/suggest ---------------------------------------------------------------


def test_suggest_completes_a_prefix(client):
    assert get_json(client, "/api/suggest?q=衢") == {
        "ok": True, "q": "衢", "suggestions": ["衢州", "衢州市", "衢州新能源汽车产业链加速成形 多个电池项目年内投产"],
        "work": read(postings=1, stored=1)}  # 衢's title list, one title read


def test_suggest_limit_and_no_match(seed_index):
    client = create_app({"TESTING": True, "INDEX_DIR": str(seed_index), "SUGGEST_LIMIT": 2}).test_client()
    assert len(get_json(client, "/api/suggest?q=新")["suggestions"]) == 2
    assert get_json(client, "/api/suggest?q=技术中等")["suggestions"] == []
    assert get_json(client, "/api/suggest?q=") == {"ok": True, "q": "", "suggestions": [], "work": NOTHING_READ}
    assert get_json(client, "/api/suggest") == {"ok": True, "q": "", "suggestions": [], "work": NOTHING_READ}


def test_suggest_refuses_unknown_parameters(client):
    assert get_json(client, "/api/suggest?q=衢&limit=100", status=400)["errors"] == [
        {"param": "limit", "message": "unknown parameter; known: q"}]


# ---- errors, health, headers --------------------------------------------------------


def test_unknown_api_url_is_json_404(client):
    assert get_json(client, "/api/nope", status=404) == {"ok": False, "error": "Not Found", "errors": [],
                                                         "status": 404}


def test_wrong_method_is_json_405(client):
    response = client.post("/api/search?q=衢州")
    assert response.status_code == 405
    assert response.get_json() == {"ok": False, "error": "Method Not Allowed", "errors": [], "status": 405}
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_healthz_names_the_live_build(client, engine):
    assert get_json(client, "/healthz") == {"ok": True, "documents": 24, "build": Path(engine.stats()["build"]).name}


def test_missing_index_is_503_json(tmp_path):
    client = create_app({"TESTING": True, "INDEX_DIR": str(tmp_path / "none")}).test_client()
    message = f"no index at {tmp_path / 'none'}; run: newsearch rebuild"
    for url in ("/healthz", "/api/search?q=衢州", "/api/suggest?q=衢", f"/api/article/{QUZHOU}"):
        assert get_json(client, url, status=503) == {"ok": False, "error": message, "errors": [], "status": 503}


def test_unreadable_index_is_json_503_asking_for_a_rebuild(tmp_path):
    (tmp_path / "index").mkdir()
    meta = tmp_path / "index" / "newsearch.json"
    meta.write_text(json.dumps({"format_version": FORMAT_VERSION}), encoding="utf-8")  # a build without Whoosh files
    client = create_app({"INDEX_DIR": str(tmp_path / "index"), "PROPAGATE_EXCEPTIONS": False}).test_client()
    assert get_json(client, "/api/search?q=衢州", status=503) == {
        "ok": False, "errors": [], "status": 503,
        "error": f"cannot read the index at {tmp_path / 'index'}: {tmp_path / 'index' / '_MAIN_*.toc'}: missing: "
                 "no table of contents; it needs a rebuild; run: newsearch rebuild"}
    meta.write_text("{}", encoding="utf-8")  # a build of the format before format versions were written
    client = create_app({"INDEX_DIR": str(tmp_path / "index"), "PROPAGATE_EXCEPTIONS": False}).test_client()
    assert get_json(client, "/api/search?q=衢州", status=503)["error"] == (
        f"cannot read the index at {tmp_path / 'index'}: {meta}: written in format 1, this version reads "
        f"format {FORMAT_VERSION}; it needs a rebuild; run: newsearch rebuild")


def test_json_carries_security_headers(client):
    response = client.get("/api/search?q=衢州")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "衢州" in response.get_data(as_text=True)  # Chinese as is, not \\u escapes
