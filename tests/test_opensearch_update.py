"""Contract of indexer/opensearch_update.py: an update straight to the cluster does what the embedded update does.

Both backends start from one build of the same sampled corpus items and seed pages. The same update — re-crawls
of indexed articles under other ids, items re-sent with changed text, new items and a reprint, unchanged items,
an item twice, a bad line; pages: the full article of a headline entry, a snapshot file now holding another
article, an edited page, a page whose related headlines name an indexed article or its title's words — goes to
the embedded index (indexer/update.py) and straight to the cluster. Then the summaries' counts, every document
(id, kind, content, path, story and story size, related entries) and what a few searches find are the same; a
re-crawl is never a second article, two different articles are never one, and removed documents are gone, also
with --delete-missing. An update through the embedded index (--index) deletes in the cluster what it deleted.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import pytest

from conftest import SEEDS, corpus_items
from indexer.documents import headline_id
from indexer.opensearch_index import build_documents, connect, publish_live
from indexer.store import live_build
from indexer.update import update_index
from indexer.writer import build_index
from search import Engine, SearchRequest
from search.opensearch_engine import OpenSearchEngine
from web.cli import cli

ALIAS = "newsearch-update"
SEED = {p.name[:3]: p for p in SEEDS.glob("*.txt")}
SCHOOL = "新能源汽车维修专业走俏 职校学生未毕业就被“预订”"
SUMMARY = ("files", "inputs", "articles", "headlines", "duplicates", "skipped", "skipped_by_reason", "warnings",
           "added", "replaced", "deleted", "unchanged", "changed", "dropped_share", "many_dropped")


@pytest.fixture(scope="module")
def cluster_url(request) -> str:
    """Return the URL of the test cluster."""
    return os.environ.get("NEWSEARCH_TEST_URL") or request.getfixturevalue("opensearch_cluster")["url"]


def dump(path, items: list[dict], extra: str = "") -> str:
    """Write items as JSON Lines (and extra raw text); return the path."""
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items) + extra, encoding="utf-8")
    return str(path)


def later(item: dict, hours: int) -> str:
    return (datetime.fromisoformat(item["date"]) + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


def page(pages, name: str, text: str | None = None) -> str:
    """Write a seed page (or other text) under its seed file name in pages; return the path."""
    path = pages / SEED[name].name
    path.write_text(text if text is not None else SEED[name].read_text(encoding="utf-8"), encoding="utf-8")
    return str(path)


def embedded_documents(index_dir) -> dict[str, tuple]:
    """Return {id: (kind, content hash, path, story, story size, related)} of the live build's documents."""
    return {d["id"]: _row(d) for d in build_documents(live_build(index_dir))[1]}


def cluster_documents(client) -> dict[str, tuple]:
    """Return the same of every document of the cluster's alias."""
    from opensearchpy.helpers import scan

    client.indices.refresh(index=ALIAS)
    return {hit["_id"]: _row(hit["_source"]) for hit in scan(client, index=ALIAS, query={"query": {"match_all": {}}})}


def _row(doc: dict) -> tuple:
    return (doc["kind"], doc["content_hash"], doc["path"], doc["story"], doc["story_size"],
            json.loads(doc["related"] or "[]"))


def found(engine, q: str) -> tuple[list, list]:
    """Return the ids a query finds, and its stories (id, size) when copies are collapsed."""
    flat = engine.search(SearchRequest(q=q, size=20, collapse=False))["hits"]
    collapsed = engine.search(SearchRequest(q=q, size=20))["hits"]
    return sorted(h["id"] for h in flat), sorted((h["story"]["id"], h["story"]["size"]) for h in collapsed)


@pytest.fixture(scope="module")
def updated(tmp_path_factory, cluster_url) -> dict:
    """Build both backends from the same items and pages, apply the same update to both; return what was done."""
    from click.testing import CliRunner

    tmp_path = tmp_path_factory.mktemp("both")
    items = [i for i in corpus_items(2400)[::8] if len(i["body"] or "") > 300 and i["date"]]
    base, new = items[:150], items[150:155]
    pages = tmp_path / "pages"
    pages.mkdir()
    loaded = [page(pages, name) for name in ("001", "002", "005", "006")]
    index_dir = tmp_path / "index"
    build_index([dump(tmp_path / "base.jsonl", base), *loaded], index_dir, jobs=1)
    publish_live(index_dir, cluster_url, alias=ALIAS)
    before = embedded_documents(index_dir)

    recrawls = [{**base[i], "id": base[i]["id"] + "-re"} for i in (3, 40, 41)]
    changed = [{**base[i], "body": base[i]["body"] + "\n本报将继续关注后续进展。"} for i in (5, 60)]
    reprint = {**base[10], "id": base[10]["id"] + "-copy", "body": "本文转自：某某网\n" + base[10]["body"],
               "date": later(base[10], 2)}
    update = [*recrawls, *changed, reprint, *new, new[0], base[7], base[8]]
    related = SEED["007"].read_text(encoding="utf-8").replace("多国央行维持利率不变 关注通胀走势", base[20]["title"])
    related = related.replace("欧洲多国迎来旅游旺季 航空运力持续恢复", "【快讯】" + base[30]["title"])
    edited = SEED["006"].read_text(encoding="utf-8").replace("分车道", "分车道分时段")
    sources = [dump(tmp_path / "update.jsonl", update, extra="{not json\n"), page(pages, "004"),
               page(pages, "005", SEED["008"].read_text(encoding="utf-8")), page(pages, "006", edited),
               page(pages, "007", related)]
    args = ["update", *sources, "--backend", "opensearch", "--url", cluster_url, "--alias", ALIAS,
            "--index", str(tmp_path / "no-index"), "--json"]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    client = connect(cluster_url)
    yield {"base": base, "new": new, "recrawls": recrawls, "reprint": reprint, "pages": pages, "index": index_dir,
           "sources": sources, "args": args, "before": before, "client": client, "url": cluster_url,
           "cluster": json.loads(done.stdout), "embedded": update_index(sources, index_dir, jobs=1)}
    client.indices.delete(index=ALIAS + "-*")


def test_the_summaries_are_the_same(updated):
    embedded = updated["embedded"]
    assert {k: updated["cluster"][k] for k in SUMMARY} == {k: embedded[k] for k in SUMMARY}
    assert (embedded["duplicates"], embedded["skipped"], embedded["replaced"]) == (4, 1, 3)  # 3 re-crawls, one twice
    assert (embedded["deleted"], embedded["changed"]) == (2, True)


def test_every_document_is_the_same_and_no_article_is_there_twice(updated):
    documents = embedded_documents(updated["index"])
    before, base, pages = updated["before"], updated["base"], updated["pages"]
    assert cluster_documents(updated["client"]) == documents  # ids, content, paths, stories and sizes, related
    gone = sorted((before[i][0], before[i][2]) for i in set(before) - set(documents))
    first_page = next(i for i, doc in before.items() if doc[2] == str(pages / SEED["001"].name))
    assert gone == [("article", str(pages / SEED["005"].name)), ("headline", first_page)]
    assert not any(r["id"] in documents for r in updated["recrawls"])  # a re-crawl is no second article
    assert all(i["id"] in documents for i in (*base, *updated["new"]))  # nor is any article merged into another
    reprinted = documents[base[10]["id"]][3:5]
    assert documents[updated["reprint"]["id"]][3:5] == reprinted and reprinted[1] == 2
    assert len({doc[3] for doc in documents.values()}) < len(documents)
    flash = documents[headline_id("【快讯】" + base[30]["title"])]  # a headline entry joins its article's story
    assert (flash[0], flash[3:5]) == ("headline", documents[base[30]["id"]][3:5]) and flash[4] == 2
    listed = {entry["teaser"] or entry["title"]: entry for doc in documents.values() for entry in doc[5]}
    assert (listed[base[20]["title"]]["id"], listed[base[20]["title"]]["kind"]) == (base[20]["id"], "article")


def test_searches_find_the_same_documents(updated):
    base, documents = updated["base"], embedded_documents(updated["index"])
    local, remote = Engine(updated["index"]), OpenSearchEngine(updated["url"], ALIAS)
    try:
        for q, ids, stories in ((f'"{base[3]["body"][100:124]}"', [base[3]["id"]], None),
                                ('"本报将继续关注后续进展"', [base[5]["id"], base[60]["id"]], None),
                                (f'"{base[10]["body"][150:174]}"', [base[10]["id"], updated["reprint"]["id"]],
                                 [(documents[base[10]["id"]][3], 2)]),
                                ("title:职校学生未毕业", None, None), ("分车道分时段", None, None),
                                ('"继续关注后续进展本报"', [], [])):
            assert found(local, q) == found(remote, q), q
            assert ids is None or found(local, q)[0] == sorted(ids), q
            assert stories is None or found(local, q)[1] == stories, q
        school = remote.search(SearchRequest(q="title:职校学生未毕业"))["hits"]
        assert [(h["kind"], h["title"]) for h in school] == [("article", SCHOOL)]  # the headline entry is gone
    finally:
        local.close()
        remote.close()


def test_the_same_update_again_changes_nothing_on_either(updated, runner):
    again = json.loads(runner.invoke(cli, updated["args"]).stdout)
    second = update_index(updated["sources"], updated["index"], jobs=1)
    assert {k: again[k] for k in SUMMARY} == {k: second[k] for k in SUMMARY}
    assert (again["changed"], again["message"], again["added"], again["deleted"]) == (False, "nothing changed", 0, 0)
    assert cluster_documents(updated["client"]) == embedded_documents(updated["index"])


def test_delete_missing_drops_the_same_documents(updated, runner):  # last: it removes a page
    documents, pages = embedded_documents(updated["index"]), updated["pages"]
    (pages / SEED["002"].name).unlink()
    removed = json.loads(runner.invoke(cli, [*updated["args"], "--delete-missing"]).stdout)
    embedded = update_index(updated["sources"], updated["index"], jobs=1, delete_missing=True)
    assert {k: removed[k] for k in SUMMARY} == {k: embedded[k] for k in SUMMARY}
    after = embedded_documents(updated["index"])
    assert cluster_documents(updated["client"]) == after
    gone = set(documents) - set(after)
    page_article = next(i for i in gone if documents[i][0] == "article")  # and its two headline entries
    assert sorted(documents[i][:3:2] for i in gone) == [
        ("article", str(pages / SEED["002"].name)), ("headline", page_article), ("headline", page_article)]
    assert removed["deleted"] == 3


def test_an_update_through_the_index_deletes_in_the_cluster_too(tmp_path, cluster_url, runner):
    pages = tmp_path / "pages"
    pages.mkdir()
    alias = ALIAS + "-synced"
    switch = ["--index", str(tmp_path / "index"), "--backend", "opensearch", "--url", cluster_url, "--alias", alias,
              "--json"]
    built = runner.invoke(cli, ["rebuild", page(pages, "001"), "--jobs", "1", *switch])
    assert built.exit_code == 0, built.output
    client = connect(cluster_url)
    school = headline_id(SCHOOL)
    assert client.get(index=alias, id=school)["_source"]["kind"] == "headline"
    done = runner.invoke(cli, ["update", page(pages, "001"), page(pages, "004"), "--jobs", "1", *switch])
    assert done.exit_code == 0, done.output  # the full article replaces the headline entry, in the cluster too
    assert (json.loads(done.stdout)["deleted"], json.loads(done.stdout)["cluster"]["deleted"]) == (1, 1)
    client.indices.refresh(index=alias)
    held = {hit["_id"] for hit in client.search(index=alias, body={"size": 100, "_source": False})["hits"]["hits"]}
    assert school not in held and held == set(embedded_documents(tmp_path / "index"))
    client.indices.delete(index=alias + "-*")
