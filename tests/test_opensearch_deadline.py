"""Every call to the cluster within the request's deadline: a hung node is a 503 (or a cut completion), never a hang.

Contract: OpenSearchEngine gives each HTTP call the time its request has
left as the call's timeout (at most REQUEST_SECONDS), sends a call again only
to another node and only while time is left, and does not send again a call
that used the time up. A cluster that accepts connections and never answers
makes a search and an article page a 503 (page and API) and the CLI one line,
and completion an empty list flagged "completion" in work; no traceback. The
message never says to rebuild (a rebuild does not make a slow cluster fast):
only a missing index does (tests/test_opensearch.py, tests/test_api.py).

Nothing here is timed: a spy on opensearch-py's connection call records the
timeout each attempt was given, and the tests check those figures.
"""

from __future__ import annotations

import socket
import threading

import pytest
from opensearchpy.connection import Urllib3HttpConnection

from bench.cluster import time_queries
from bench.queries import BenchQuery, percentiles
from bench.rebuild import Measured
from bench.report import cluster_section

from search.opensearch_calls import REQUEST_SECONDS, ClusterTimeoutError, ClusterUnavailableError
from search.opensearch_engine import OpenSearchEngine
from search.request import SearchRequest
from web import create_app
from web.cli import cli

LATE = f"did not answer within {REQUEST_SECONDS:g} s"
REBUILD = "newsearch rebuild"
SLOW, MISSING = "搜索服务暂时没有应答", "索引尚未建立"  # the error page's words for a cluster out of time, an index missing


@pytest.fixture()
def hung_url():
    """Return the URL of a local socket that accepts connections and never answers (a hung node)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)
    held, done = [], threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:  # the accept timed out: look at done again
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    done.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture()
def attempts(monkeypatch) -> list[tuple[int, float]]:
    """Record (port, timeout) of every HTTP attempt opensearch-py makes (a spy on its connection call)."""
    seen = []
    real = Urllib3HttpConnection.perform_request

    def spy(self, method, url, params=None, body=None, timeout=None, *args, **kwargs):
        seen.append((self.port, timeout))
        return real(self, method, url, params, body, timeout, *args, **kwargs)

    monkeypatch.setattr(Urllib3HttpConnection, "perform_request", spy)
    return seen


def _dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_hung_cluster_is_a_503_and_each_call_had_at_most_the_deadline(hung_url, attempts, runner):
    """Search page, API and CLI: one attempt each (a call that used the time up is not sent again), each given
    at most REQUEST_SECONDS; 503 and one line, no traceback."""
    client = create_app({"TESTING": True, "BACKEND": "opensearch", "URL": hung_url}).test_client()
    api = client.get("/api/search", query_string={"q": "中国"})
    assert api.status_code == 503 and api.get_json()["ok"] is False and LATE in api.get_json()["error"]
    page = client.get("/search", query_string={"q": "中国"})
    text = page.get_data(as_text=True)
    assert page.status_code == 503 and "Traceback" not in text
    assert REBUILD not in api.get_json()["error"] and REBUILD not in text
    assert SLOW in text and MISSING not in text  # the page says to try again, not that the index is being made
    result = runner.invoke(cli, ["query", "中国", "--backend", "opensearch", "--url", hung_url])
    assert result.exit_code == 1 and LATE in result.output and len(result.output.strip().splitlines()) == 1
    assert REBUILD not in result.output
    assert len(attempts) == 3
    assert all(0 < timeout <= REQUEST_SECONDS for _, timeout in attempts)


def test_an_article_is_a_503_and_completion_is_cut_on_a_hung_cluster(hung_url, attempts):
    """The article page's first call is the document: 503. Completion answers, empty, flagged "completion"."""
    client = create_app({"TESTING": True, "BACKEND": "opensearch", "URL": hung_url}).test_client()
    article = client.get("/api/article/abc")
    assert article.status_code == 503 and LATE in article.get_json()["error"]
    page = client.get("/article/abc")
    assert page.status_code == 503 and SLOW in page.get_data(as_text=True)
    assert REBUILD not in article.get_json()["error"] and REBUILD not in page.get_data(as_text=True)
    suggested = client.get("/api/suggest", query_string={"q": "quzhou"})
    assert suggested.status_code == 200
    assert suggested.get_json()["suggestions"] == [] and suggested.get_json()["work"]["capped"] == ["completion"]
    assert len(attempts) == 3 and all(0 < timeout <= REQUEST_SECONDS for _, timeout in attempts)


def test_health_on_a_hung_cluster_is_a_503_without_the_rebuild_hint(hung_url, attempts):
    """/healthz: 503 saying the cluster did not answer in time, not to rebuild; one attempt, within the deadline."""
    client = create_app({"TESTING": True, "BACKEND": "opensearch", "URL": hung_url}).test_client()
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["ok"] is False
    assert LATE in health.get_json()["error"] and REBUILD not in health.get_json()["error"]
    assert len(attempts) == 1 and 0 < attempts[0][1] <= REQUEST_SECONDS


def test_refusing_nodes_are_passed_over_within_the_deadline(hung_url, attempts):
    """Two nodes refusing and one hung: each node tried once at most, each attempt given no more than the time
    left after the ones before (the timeouts never grow), and the hung one's timeout ends the request."""
    hung_port = int(hung_url.rsplit(":", 1)[1])
    engine = OpenSearchEngine(",".join([_dead_url(), hung_url, _dead_url()]))
    assert engine.client.transport.max_retries == 0  # the client itself never sends a call again
    with pytest.raises(ClusterTimeoutError, match=LATE):
        engine.search(SearchRequest(q="中国"))
    ports = [port for port, _ in attempts]
    timeouts = [timeout for _, timeout in attempts]
    assert 1 <= len(attempts) <= 3 and len(set(ports)) == len(ports) and ports[-1] == hung_port
    assert all(0 < t <= REQUEST_SECONDS for t in timeouts) and timeouts == sorted(timeouts, reverse=True)
    engine.close()


def test_nodes_that_all_refuse_say_the_cluster_cannot_be_reached(attempts):
    """Refused everywhere: every node tried once, then the existing one-line error (not a timeout)."""
    urls = [_dead_url(), _dead_url()]
    engine = OpenSearchEngine(",".join(urls))
    with pytest.raises(ClusterUnavailableError, match="cannot reach the OpenSearch cluster") as raised:
        engine.search(SearchRequest(q="中国"))
    assert not isinstance(raised.value, ClusterTimeoutError)
    assert sorted(port for port, _ in attempts) == sorted(int(u.rsplit(":", 1)[1]) for u in urls)
    engine.close()


def test_the_bench_counts_cluster_queries_out_of_time_and_goes_on(hung_url, attempts):
    """bench's cluster row: a query the cluster does not answer within the deadline ends as timed out, not as
    the run's end; it has no timing and no total, and the table counts it apart from the percentiles."""
    items = [BenchQuery("中国", "word", "none"), BenchQuery("衢州 经济", "words", "none", sort="newest")]
    queries = time_queries(hung_url, items, items[:1], lambda line: None)
    assert queries["timed_out"] == 2 and queries["totals"] == [None, None]
    assert queries["first"] is None and queries["seconds"] == []
    assert len(attempts) == 3 and all(0 < timeout <= REQUEST_SECONDS for _, timeout in attempts)  # warm-up too
    measured = Measured("rebuild", 2.0, 2.0, 0, 0, "")
    run = {"meta": {"docs": 10}, "items": items, "rebuild": {"ours": measured},
           "queries": {"ours": {"first": percentiles([0.01, 0.02]), "totals": [5, 3]}},
           "cluster": {"nodes": 3, "start_s": 1.0, "rebuild": measured, "load_s": 1.0, "sent": 10, "queries": queries}}
    table = [line for line in cluster_section(run) if line.startswith("| OpenSearch")]
    assert table and table[0].split("|")[7:12] == [" — ", " — ", " 0 ", " 0/2 ", " 2 "]
    answered = {**queries, "first": percentiles([0.5]), "seconds": [0.5], "totals": [5, None], "timed_out": 1}
    row = [line for line in cluster_section({**run, "cluster": {**run["cluster"], "queries": answered}})
           if line.startswith("| OpenSearch")][0].split("|")
    assert row[7:12] == [" 500.0 ", " 500.0 ", " 1 ", " 1/2 ", " 1 "]
