"""Stories against the cluster: an update without the embedded build finds new articles' stories in the cluster.

Contract: indexer/opensearch_update.py sends only new and changed documents,
numbered after the cluster's; a reprint of an article the cluster holds
(sharing a band key, published within 7 days, confirmed on the shingle sets)
joins that article's story, and both copies then carry the story's new size;
a reprint published weeks later and an unrelated article do not join.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import pytest

from conftest import corpus_items
from indexer.opensearch_index import band_terms, connect, publish_live
from indexer.writer import build_index
from search.opensearch_engine import OpenSearchEngine
from search.request import SearchRequest
from web.cli import cli

ALIAS = "newsearch-stories"


@pytest.fixture(scope="module")
def cluster_url(request) -> str:
    """Return the URL of the test cluster."""
    return os.environ.get("NEWSEARCH_TEST_URL") or request.getfixturevalue("opensearch_cluster")["url"]


def dump(path, items: list[dict]) -> str:
    """Write items as JSON Lines; return the path."""
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    return str(path)


def reprint(item: dict, suffix: str, hours: int) -> dict:
    """Return a reprint of an item: its own id, an outlet's line on top, published hours later."""
    when = datetime.fromisoformat(item["date"]) + timedelta(hours=hours)
    return {**item, "id": item["id"] + suffix, "body": "本文转自：某某网\n" + item["body"],
            "date": when.strftime("%Y-%m-%d %H:%M:%S")}


def source_of(client, doc_id: str) -> dict:
    return client.get(index=ALIAS, id=doc_id)["_source"]


def test_an_update_on_the_cluster_alone_joins_a_reprint_to_its_story(tmp_path, cluster_url, runner):
    items = [i for i in corpus_items(3000)[::15] if len(i["body"] or "") > 300 and i["date"]]
    loaded, later = items[:100], items[100:101]
    build_index([dump(tmp_path / "loaded.jsonl", loaded)], tmp_path / "index", jobs=1)
    publish_live(tmp_path / "index", cluster_url, alias=ALIAS)
    client = connect(cluster_url)
    first, second = loaded[10], loaded[20]
    found = client.search(index=ALIAS, body={"query": {"terms": {"bands": band_terms(first["body"])}}})
    assert first["id"] in [hit["_id"] for hit in found["hits"]["hits"]]  # the band keys are in the cluster
    before = source_of(client, first["id"])
    assert before["story_size"] == 1

    update = [reprint(first, "-copy", 1), reprint(second, "-late", 24 * 9), *later, loaded[30]]
    args = ["update", dump(tmp_path / "update.jsonl", update), "--backend", "opensearch", "--url", cluster_url,
            "--alias", ALIAS, "--index", str(tmp_path / "no-index"), "--json"]
    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert (summary["added"], summary["replaced"], summary["unchanged"], summary["joined"]) == (3, 0, 1, 1), summary
    assert not (tmp_path / "no-index").exists()  # no embedded build was made or needed

    copy = source_of(client, first["id"] + "-copy")
    assert copy["story"] == before["story"] == source_of(client, first["id"])["story"]
    assert copy["story_size"] == source_of(client, first["id"])["story_size"] == 2
    assert copy["seq"] > before["seq"]
    late, alone = source_of(client, second["id"] + "-late"), source_of(client, later[0]["id"])
    assert late["story"] != source_of(client, second["id"])["story"] and late["story_size"] == 1  # 9 days later
    assert alone["story_size"] == 1 and alone["story"] not in (before["story"], late["story"])

    engine = OpenSearchEngine(cluster_url, ALIAS)
    span = f'"{first["body"][150:174]}"'
    answer = engine.search(SearchRequest(q=span))
    assert (answer["total"], answer["stories"], answer["hits"][0]["story"]) == (2, 1, {"id": before["story"], "size": 2})
    assert engine.search(SearchRequest(q=f'"{later[0]["body"][150:174]}"'))["total"] == 1
    assert engine.search(SearchRequest(q=span[::-1]))["total"] == 0
    engine.close()

    again = json.loads(runner.invoke(cli, args).stdout)  # the same update twice changes nothing
    assert (again["added"], again["replaced"], again["unchanged"], again["joined"]) == (0, 0, 4, 0)
    client.indices.delete(index=ALIAS + "-*")
