"""The local OpenSearch cluster: started and stopped by `newsearch cluster`, searched while a node dies."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
from opensearchpy import OpenSearch, helpers

from indexer.cluster import ClusterError, cluster_health, free_ports, is_alive, read_nodes, require_tool, start_cluster
from web.cli import cli

DOCS = 300


def test_the_session_cluster_is_green_with_three_nodes(opensearch_cluster):
    nodes = opensearch_cluster["nodes"]
    assert [node["name"] for node in nodes] == ["n0", "n1", "n2"]
    ports = [node["http_port"] for node in nodes] + [node["transport_port"] for node in nodes]
    assert len(set(ports)) == 6
    assert all(is_alive(node["pid"]) for node in nodes)
    assert all("-XX:TieredStopAtLevel=1" in node["args"] for node in nodes)  # --quick
    for url in opensearch_cluster["urls"]:  # every node answers for the whole cluster
        health = cluster_health(url)
        assert (health["status"], health["number_of_nodes"]) == ("green", 3)
        assert health["cluster_name"] == "newsearch-local"


def test_cluster_start_status_stop_through_the_cli(runner, tmp_path):
    started = runner.invoke(cli, ["cluster", "start", "--nodes", "1", "--quick", "--dir", str(tmp_path)])
    assert started.exit_code == 0, started.output
    url = started.stdout.strip().splitlines()[-1]
    recorded = json.loads((tmp_path / "nodes.json").read_text())
    (node,) = recorded["nodes"]
    assert recorded["url"] == url == f"http://127.0.0.1:{node['http_port']}"
    assert is_alive(node["pid"])
    status = runner.invoke(cli, ["cluster", "status", "--dir", str(tmp_path)])
    assert (status.exit_code, status.output.strip()) == (0, f"{url} green 1 nodes")

    stopped = runner.invoke(cli, ["cluster", "stop", "--dir", str(tmp_path)])
    assert (stopped.exit_code, stopped.output.strip()) == (0, "stopped 1 nodes")
    assert not is_alive(node["pid"])
    assert read_nodes(tmp_path)["nodes"][0]["pid"] is None
    down = runner.invoke(cli, ["cluster", "status", "--dir", str(tmp_path)])
    assert down.exit_code == 1
    assert down.output.startswith(f"Error: no OpenSearch cluster answers at {url}")
    assert len(down.output.strip().splitlines()) == 1 and "Traceback" not in down.output

    again = runner.invoke(cli, ["cluster", "start", "--nodes", "1", "--dir", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert again.stdout.strip().splitlines()[-1] == url  # a folder keeps its ports
    wrong_size = runner.invoke(cli, ["cluster", "start", "--nodes", "3", "--dir", str(tmp_path)])
    assert wrong_size.exit_code == 1 and "holds a 1-node cluster" in wrong_size.output
    assert runner.invoke(cli, ["cluster", "stop", "--dir", str(tmp_path)]).output.strip() == "stopped 1 nodes"


def one_line_error(result) -> str:
    """Return the CLI's error line, checking it is one line, exit 1 and no traceback."""
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    return lines[0]


def test_a_cluster_that_is_down_is_one_line(runner, tmp_path):
    (port,) = free_ports(1)
    line = one_line_error(runner.invoke(cli, ["cluster", "status", "--url", f"http://127.0.0.1:{port}"]))
    assert line.startswith(f"Error: no OpenSearch cluster answers at http://127.0.0.1:{port}: ")
    line = one_line_error(runner.invoke(cli, ["cluster", "stop", "--dir", str(tmp_path)]))
    assert line == f"Error: no cluster in {tmp_path.resolve()} (no nodes.json)"
    one_line_error(runner.invoke(cli, ["cluster", "status", "--dir", str(tmp_path)]))


def test_missing_java_or_maven_says_what_to_install(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with neither program
    line = one_line_error(runner.invoke(cli, ["cluster", "start", "--dir", str(tmp_path / "c")]))
    assert "`java` is not on PATH" in line and "Java 17 and Maven" in line and "openjdk-17" in line
    with pytest.raises(ClusterError, match="apt-get install maven"):
        require_tool("mvn", "maven")
    assert not (tmp_path / "c").exists()


def index_documents(client: OpenSearch, index: str) -> None:
    """Create an index of 2 primary shards and 1 replica holding DOCS numbered documents."""
    client.indices.create(index=index, body={
        "settings": {"number_of_shards": 2, "number_of_replicas": 1},
        "mappings": {"properties": {"n": {"type": "integer"}, "text": {"type": "text"}}}})
    actions = ({"_index": index, "_id": str(n), "n": n, "text": f"item {n} parity {n % 2}"} for n in range(DOCS))
    indexed, errors = helpers.bulk(client, actions, refresh=True)
    assert (indexed, errors) == (DOCS, [])
    client.cluster.health(index=index, wait_for_status="green")  # the server waits up to 30 s


def pick_victim(client: OpenSearch, cluster: dict, index: str) -> dict:
    """Return a node holding a primary shard of `index`, one that is not the cluster manager if there is one."""
    shards = client.cat.shards(index=index, format="json")
    holders = {shard["node"] for shard in shards if shard["prirep"] == "p"}
    manager = client.cat.cluster_manager(format="json")[0]["node"]
    candidates = [node for node in cluster["nodes"] if node["name"] in holders]
    return next((node for node in candidates if node["name"] != manager), candidates[0])


def search_loop(client, index, stop, yellow, outcomes, warmed) -> None:
    """Search until `stop`, recording (after yellow, failure or None) for each search."""
    n = 0
    while not stop.is_set():
        after_yellow = yellow.is_set()
        wanted = n % DOCS
        try:
            every = client.search(index=index, body={"size": 0, "track_total_hits": True})
            one = client.search(index=index, body={"query": {"term": {"n": wanted}}})
            failure = None
            if every["_shards"]["failed"] or every["hits"]["total"]["value"] != DOCS:
                failure = f"match_all: {every['_shards']}, {every['hits']['total']}"
            elif [hit["_id"] for hit in one["hits"]["hits"]] != [str(wanted)]:
                failure = f"n={wanted}: {[hit['_id'] for hit in one['hits']['hits']]}"
        except Exception as exc:  # any error is a failed search; the test reports it
            failure = repr(exc)
        outcomes.append((after_yellow, failure))
        n += 1
        if n == 20:
            warmed.set()


def wait_for_two_nodes_yellow(client: OpenSearch) -> None:
    """Wait until the cluster has noticed the lost node and reports yellow."""
    health: dict = {}
    for _ in range(600):
        try:
            health = client.cluster.health()
        except Exception:  # an election after a lost cluster manager answers errors for a moment
            health = {}
        if health.get("number_of_nodes") == 2 and health.get("status") == "yellow":
            return
        threading.Event().wait(0.2)
    pytest.fail(f"the cluster never reported yellow with 2 nodes: {health}")


def test_searches_never_fail_after_yellow_while_a_node_dies(opensearch_cluster):
    cluster, index = opensearch_cluster, "faults"
    client = OpenSearch(hosts=cluster["urls"], timeout=30, max_retries=3)
    index_documents(client, index)
    victim = pick_victim(client, cluster, index)
    stop, yellow, warmed, outcomes = threading.Event(), threading.Event(), threading.Event(), []
    loop = threading.Thread(target=search_loop, args=(client, index, stop, yellow, outcomes, warmed))
    loop.start()
    try:
        assert warmed.wait(120)
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for_two_nodes_yellow(client)
        yellow.set()
        while sum(after for after, _ in outcomes) < 50:
            stop.wait(0.1)
    finally:
        stop.set()
        loop.join()
    assert not is_alive(victim["pid"])
    assert [failure for after, failure in outcomes if after and failure] == []
    found = client.search(index=index, body={"size": DOCS + 10, "_source": False})
    assert sorted(int(hit["_id"]) for hit in found["hits"]["hits"]) == list(range(DOCS))
    assert client.search(index=index, body={"query": {"term": {"n": DOCS}}})["hits"]["total"]["value"] == 0

    restarted = start_cluster(cluster["dir"], nodes=3)  # starts only the dead node, waits for green
    assert [node["pid"] for node in restarted["nodes"] if node["name"] != victim["name"]] == \
        [node["pid"] for node in cluster["nodes"] if node["name"] != victim["name"]]
    assert cluster_health(cluster["url"])["status"] == "green"
    assert client.count(index=index)["count"] == DOCS
    client.indices.delete(index=index)
    cluster["nodes"] = restarted["nodes"]  # later tests see the restarted node's pid
