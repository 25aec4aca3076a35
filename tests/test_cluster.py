"""The local OpenSearch cluster: started and stopped by `newsearch cluster`; our documents searched while a node dies."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest
from opensearchpy import OpenSearch, helpers

from conftest import corpus_items
from indexer.cluster import ClusterError, cluster_health, free_ports, is_alive, read_nodes, require_tool, start_cluster
from indexer.opensearch_index import publish_live
from indexer.writer import build_index
from search.engine import Engine
from search.opensearch_engine import OpenSearchEngine
from search.request import SearchRequest
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


def test_nodes_stop_with_the_process_that_owns_them(runner, tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    started = runner.invoke(cli, ["cluster", "start", "--nodes", "1", "--quick", "--stop-with", str(owner.pid),
                                  "--dir", str(tmp_path)])
    assert started.exit_code == 0, started.output
    (node,) = read_nodes(tmp_path)["nodes"]
    assert is_alive(node["pid"])
    owner.stdin.close()  # the owner exits, as a killed test run would
    owner.wait()
    for _ in range(600):
        if not is_alive(node["pid"]):
            break
        threading.Event().wait(0.1)
    assert not is_alive(node["pid"])
    assert runner.invoke(cli, ["cluster", "stop", "--dir", str(tmp_path)]).output.strip() == "stopped 0 nodes"


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


def test_a_node_that_cannot_start_is_one_line(runner, tmp_path):
    assert runner.invoke(cli, ["cluster", "start", "--nodes", "1", "--quick", "--dir", str(tmp_path)]).exit_code == 0
    runner.invoke(cli, ["cluster", "stop", "--dir", str(tmp_path)])
    (node,) = read_nodes(tmp_path)["nodes"]
    with socket.socket() as taken:  # another program now holds the folder's HTTP port
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped node's port may be in TIME_WAIT
        taken.bind(("127.0.0.1", node["http_port"]))
        taken.listen()
        line = one_line_error(runner.invoke(cli, ["cluster", "start", "--nodes", "1", "--dir", str(tmp_path)]))
    assert line.startswith("Error: node n0 exited while starting: ")
    assert "BindHttpException" in line and str(node["http_port"]) in line
    assert read_nodes(tmp_path)["nodes"][0]["pid"] is None


def test_missing_java_or_maven_says_what_to_install(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with neither program
    line = one_line_error(runner.invoke(cli, ["cluster", "start", "--dir", str(tmp_path / "c")]))
    assert "`java` is not on PATH" in line and "Java 17 and Maven" in line and "openjdk-17" in line
    with pytest.raises(ClusterError, match="apt-get install maven"):
        require_tool("mvn", "maven")
    assert not (tmp_path / "c").exists()


def load_sample(folder, url: str, alias: str) -> tuple[Engine, list[dict]]:
    """Build the embedded index of DOCS corpus items, load it into the cluster; return the build's engine and items."""
    items = [item for item in corpus_items(DOCS * 5)[::5] if len(item["body"] or "") > 80]
    dump = folder / "sample.jsonl"
    dump.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    build_index([str(dump)], folder / "index", jobs=1)
    published = publish_live(folder / "index", url, alias=alias)
    embedded = Engine(folder / "index")
    assert published["sent"] == embedded.stats()["documents"] > DOCS * 0.8
    return embedded, items


def unique_spans(items: list[dict], count: int) -> dict[str, str]:
    """Return {quoted span: id}: 12 ideographs in a row of each of `count` items' bodies that no other item holds."""
    spans = {}
    for item in items:
        run = re.search(r"[\u4e00-\u9fff]{12}", item["body"][len(item["body"]) // 2:])
        if run and sum(run.group() in other["body"] for other in items) == 1:
            spans[f'"{run.group()}"'] = item["id"]
        if len(spans) == count:
            break
    return spans


def pick_victim(client: OpenSearch, cluster: dict, index: str) -> dict:
    """Return a node holding a primary shard of `index`, one that is not the cluster manager if there is one."""
    shards = client.cat.shards(index=index, format="json")
    holders = {shard["node"] for shard in shards if shard["prirep"] == "p"}
    manager = client.cat.cluster_manager(format="json")[0]["node"]
    candidates = [node for node in cluster["nodes"] if node["name"] in holders]
    return next((node for node in candidates if node["name"] != manager), candidates[0])


def search_loop(engine, asked: dict[str, dict], stop, yellow, outcomes, warmed) -> None:
    """Search until `stop`, recording (after yellow, failure or None) for each search; asked maps q to its answer."""
    queries, n = list(asked), 0
    while not stop.is_set():
        after_yellow = yellow.is_set()
        q = queries[n % len(queries)]
        try:
            answer = engine.search(SearchRequest(q=q))
            failure = None
            if (answer["total"], [hit["id"] for hit in answer["hits"]]) != (asked[q]["total"], asked[q]["ids"]):
                failure = f"{q!r}: {answer['total']} {[hit['id'] for hit in answer['hits']]}, not {asked[q]}"
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


def test_searches_never_fail_after_yellow_while_a_node_dies(opensearch_cluster, tmp_path):
    """Our documents, loaded by the backend, searched through OpenSearchEngine while a node holding a primary dies."""
    cluster, alias = opensearch_cluster, "faults"
    embedded, items = load_sample(tmp_path, cluster["url"], alias)
    client = OpenSearch(hosts=cluster["urls"], timeout=30, max_retries=3)
    client.cluster.health(index=alias, wait_for_status="green")  # the server waits up to 30 s
    engine = OpenSearchEngine(",".join(cluster["urls"]), alias)  # every node's URL, as an operator would give
    spans = unique_spans(items, 30)
    (absent,) = unique_spans(corpus_items(1, start=DOCS * 5 + 1), 1)  # a span of an item not in the sample
    asked = {q: {"total": answer["total"], "ids": [hit["id"] for hit in answer["hits"]]}
             for q in [*spans, "中国", "发展 经济", absent] for answer in [engine.search(SearchRequest(q=q))]}
    assert {span: asked[span]["ids"] for span in spans} == {span: [doc_id] for span, doc_id in spans.items()}
    assert asked["中国"]["total"] == embedded.search(SearchRequest(q="中国"))["total"] > 10
    assert asked[absent] == {"total": 0, "ids": []}  # an item not loaded is found by no search
    victim = pick_victim(client, cluster, alias)
    stop, yellow, warmed, outcomes = threading.Event(), threading.Event(), threading.Event(), []
    loop = threading.Thread(target=search_loop, args=(engine, asked, stop, yellow, outcomes, warmed))
    loop.start()
    try:
        assert warmed.wait(120)
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for_two_nodes_yellow(client)
        yellow.set()
        while sum(after for after, _ in outcomes) < 2 * len(asked):
            stop.wait(0.1)
    finally:
        stop.set()
        loop.join()
    assert not is_alive(victim["pid"])
    assert [failure for after, failure in outcomes if after and failure] == []
    held = sorted(hit["_id"] for hit in helpers.scan(client, index=alias, _source=False))
    assert held == sorted(item["id"] for item in items if embedded.exists(item["id"]))  # no document missing
    assert engine.stats()["documents"] == len(held)

    restarted = start_cluster(cluster["dir"], nodes=3)  # starts only the dead node, waits for green
    assert [node["pid"] for node in restarted["nodes"] if node["name"] != victim["name"]] == \
        [node["pid"] for node in cluster["nodes"] if node["name"] != victim["name"]]
    assert cluster_health(cluster["url"])["status"] == "green"
    assert engine.stats()["documents"] == len(held)
    engine.close()
    embedded.close()
    client.indices.delete(index=alias + "-*")
    cluster["nodes"] = restarted["nodes"]  # later tests see the restarted node's pid
