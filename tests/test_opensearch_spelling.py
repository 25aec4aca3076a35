"""Completion and did-you-mean on the cluster: the embedded engine's answers, from the lexicon loaded beside the articles.

Contract: a rebuild loads the build's lexicon into the cluster and moves its
alias with the articles' (a failed rebuild moves neither); on the same
documents OpenSearchEngine completes every prefix (Chinese, pinyin, initials,
Chinese then pinyin, two words typed as one) with the embedded engine's list,
and offers the same did-you-mean (衢州 for ``quzhou``), never rewriting a
Latin word the index holds; an update straight to the cluster counts the new
articles' words; every call of theirs is given at most the request's deadline,
and once it has passed the paths beside the search (related searches,
did-you-mean, an article's neighbours, completion) end and say so in work.

The cluster is the one NEWSEARCH_TEST_URL names, else the session's test cluster.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from opensearchpy.connection import Urllib3HttpConnection
from opensearchpy.helpers import scan

from bench.completion import frequent_names
from conftest import corpus_lines
from indexer.lexicon import keys_of, open_lexicon
from indexer.opensearch_index import ClusterError, aliased, connect, publish_build, publish_live
from indexer.opensearch_lexicon import lexicon_alias
from indexer.opensearch_update import update_cluster
from indexer.store import live_build
from indexer.writer import build_index
from search import opensearch_spelling
from search.engine import Engine
from search.opensearch_calls import REQUEST_SECONDS, SEARCH_SECONDS, SHARD_SECONDS, Deadline
from search.opensearch_engine import OpenSearchEngine
from search.query import parse_query
from search.request import SearchRequest

STRIDE = 80  # every 80th corpus item (820 from every year), and the items naming 衢州 or iPhone
ALIAS = "newsearch-test-spelling"
TYPED = ["quzhou", "qz", "bj", "beij", "shanghai", "sh", "xjp", "x", "zhongg", "gdp", "iph", "zhejiangquzhou", "zjqz",
         "浙江s", "北京", "中国", "衢", "新能", "quzhuo", "zq", "qqxq", "chongqing", "yinhang", "中华人民共和国国务院办公厅q",
         "%%", "5g", "qu zhou"]
QUERIES = ["quzhou", "QuZhou", "qu zhou", "衢 州", "新能原", "经挤", "金砖电吃", "GDP", "iPhone", "5G", "qz", "qqxqzz",
           "北京 经挤", "衢州", "%%", "衢州 quzhou"]


@pytest.fixture(scope="module")
def cluster_url(request) -> str:
    url = os.environ.get("NEWSEARCH_TEST_URL")
    return url or request.getfixturevalue("opensearch_cluster")["url"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory, cluster_url):
    """Build the sample's embedded index and load it (and its lexicon) into the cluster; return the index path."""
    folder = tmp_path_factory.mktemp("cluster-spelling")
    lines = corpus_lines(70_000)
    extra = [line for i, line in enumerate(lines) if i % STRIDE and re.search("衢州|iphone", line, re.I)]
    (folder / "sample.jsonl").write_text("".join(lines[::STRIDE] + extra), encoding="utf-8")
    build_index([str(folder / "sample.jsonl")], folder / "index", jobs=1)
    publish_live(folder / "index", cluster_url, alias=ALIAS)
    return folder / "index"


@pytest.fixture(scope="module")
def engines(sample, cluster_url):
    embedded, cluster = Engine(sample), OpenSearchEngine(cluster_url, ALIAS)
    yield embedded, cluster
    embedded.close()
    cluster.close()


def test_the_lexicon_is_loaded_and_moved_with_the_articles(sample, cluster_url):
    """The lexicon index sits beside the live articles' index, every word in it; a failed rebuild moves neither."""
    client = connect(cluster_url)
    (live,) = aliased(client, ALIAS)
    assert aliased(client, lexicon_alias(ALIAS)) == [live + "-lexicon"]
    assert client.count(index=lexicon_alias(ALIAS))["count"] == len(open_lexicon(live_build(sample)))
    indexes = set(client.indices.get(index=f"{ALIAS}-*"))
    with pytest.raises(ClusterError, match="unchanged"):
        publish_build(live_build(sample), cluster_url, alias=ALIAS, fail_after=100)
    assert aliased(client, ALIAS) == [live] and aliased(client, lexicon_alias(ALIAS)) == [live + "-lexicon"]
    assert set(client.indices.get(index=f"{ALIAS}-*")) == indexes  # both new indexes deleted


def test_completions_are_the_embedded_engines(engines):
    """The same list for every prefix, and for the full pinyin and the initials of the 30 most frequent names."""
    embedded, cluster = engines
    names = frequent_names(embedded.current().lexicon, 30)
    typed = TYPED + [key for name in names for key in keys_of(name)[:2]]
    differ = [(t, embedded.complete(t)["suggestions"], cluster.complete(t)["suggestions"]) for t in typed]
    assert [d for d in differ if d[1] != d[2]] == []
    # Only what is no word's key (nor in a title) completes nothing.
    assert {d[0] for d in differ if not d[1]} <= {"quzhuo", "qqxq", "中华人民共和国国务院办公厅q", "%%"}


def test_quzhou_and_qz_complete_to_quzhou_on_the_cluster(engines):
    _, cluster = engines
    assert cluster.complete("quzhou")["suggestions"][0] == "衢州"
    assert "衢州" in cluster.complete("qz")["suggestions"][:5]
    assert cluster.complete("zhejiangquzhou")["suggestions"] == ["浙江衢州"]  # two words a title holds together
    assert cluster.complete("浙江s")["suggestions"][0] == "浙江省"
    # What must not be offered: keys misspelt or in the wrong order, letters that are no word's key.
    assert "衢州" not in cluster.complete("quzhuo")["suggestions"]
    assert "衢州" not in cluster.complete("zq")["suggestions"]
    assert "浙江省" not in cluster.complete("浙江x")["suggestions"]
    assert cluster.complete("qqxq") == {"suggestions": [], "work": cluster.complete("qqxq")["work"]}
    assert cluster.complete("qqxq")["suggestions"] == [] and cluster.complete("qqxq")["work"]["capped"] == []


def test_did_you_mean_is_the_embedded_engines(engines):
    """The same suggestion (or none) for Latin, split and misspelt queries; 衢州 for quzhou."""
    embedded, cluster = engines
    answers = [(q, embedded.search(SearchRequest(q=q))["suggestion"], cluster.search(SearchRequest(q=q))["suggestion"])
               for q in QUERIES]
    assert [a for a in answers if a[1] != a[2]] == []
    offered = {q: mine for q, mine, _ in answers}
    assert offered["quzhou"] == offered["QuZhou"] == offered["qu zhou"] == "衢州"
    assert offered["经挤"] == "经济"
    assert offered["衢州"] is None and offered["qqxqzz"] is None and offered["qz"] != "衢州"


@pytest.mark.parametrize("word", ["GDP", "iPhone", "5G"])
def test_a_latin_word_is_never_rewritten_on_the_cluster(engines, word):
    """Found, and not rewritten even as if it had found nothing; quzhou is."""
    _, cluster = engines
    answer = cluster.search(SearchRequest(q=word))
    assert answer["total"] > 0 and answer["suggestion"] is None
    matcher = opensearch_spelling.ClusterMatcher(cluster.caller, Deadline(cluster.clock))
    assert opensearch_spelling.suggest(matcher, parse_query(word), 0) is None
    assert opensearch_spelling.suggest(matcher, parse_query("quzhou"), 0) == "衢州"


def test_every_call_of_a_request_is_given_at_most_the_deadline(engines, monkeypatch):
    """Search (with its related searches and did-you-mean), article and completion: each attempt's timeout is
    the time its request had left, so none exceeds REQUEST_SECONDS and they never grow within a request; the
    search itself has SEARCH_SECONDS of it and tells OpenSearch to stop collecting at SHARD_SECONDS."""
    _, cluster = engines
    seen: list[float] = []
    searched: list[float] = []
    real = Urllib3HttpConnection.perform_request

    def spy(self, method, url, params=None, body=None, timeout=None, *args, **kwargs):
        cut = f'"timeout":"{round(SHARD_SECONDS * 1000)}ms"'.encode()  # the body as opensearch-py writes it
        (searched if body and cut in body else seen).append(timeout)
        return real(self, method, url, params, body, timeout, *args, **kwargs)

    monkeypatch.setattr(Urllib3HttpConnection, "perform_request", spy)
    calls = [lambda: cluster.search(SearchRequest(q="经济")), lambda: cluster.search(SearchRequest(q="quzhou")),
             lambda: cluster.complete("zjqz"), lambda: cluster.complete("北京")]
    hit = cluster.search(SearchRequest(q="经济"))["hits"][0]["id"]
    calls.append(lambda: cluster.article(hit, q="经济"))
    for call in calls:
        seen.clear()
        call()
        assert len(seen) >= 2 and all(0 < t <= REQUEST_SECONDS for t in seen)
        assert seen == sorted(seen, reverse=True)
    assert len(searched) == 3 and all(0 < t <= SEARCH_SECONDS for t in searched)


def test_a_cluster_without_a_lexicon_completes_titles(seed_index, cluster_url):
    """An index loaded before it had a lexicon: titles complete, did-you-mean is not offered, nothing fails."""
    alias = "newsearch-test-nolexicon"
    publish_live(seed_index, cluster_url, alias=alias)
    client = connect(cluster_url)
    client.indices.delete(index=aliased(client, lexicon_alias(alias))[0])
    engine, embedded = OpenSearchEngine(cluster_url, alias), Engine(seed_index)
    found = engine.complete("中国")["suggestions"]
    assert found and all("中国" in title for title in found)
    assert found == embedded.complete("中国")["suggestions"]  # the seeds hold no longer word starting with it
    assert embedded.complete("zhongguo")["suggestions"] == ["中国"] and engine.complete("zhongguo")["suggestions"] == []
    embedded.close()
    assert engine.search(SearchRequest(q="quzhou"))["suggestion"] is None


def test_an_update_to_the_cluster_counts_the_new_articles_words(tmp_path, cluster_url, capsys):
    """After an update straight to the cluster the lexicon's counts are a rebuild's for almost every word; a word
    the update does not hold keeps its count."""
    lines = corpus_lines(6_000)[::20]
    first, later = tmp_path / "first.jsonl", tmp_path / "later.jsonl"
    first.write_text("".join(lines[:250]), encoding="utf-8")
    later.write_text("".join(lines[250:]), encoding="utf-8")
    alias = "newsearch-test-lexicon-update"
    build_index([str(first)], tmp_path / "before", jobs=1)
    publish_live(tmp_path / "before", cluster_url, alias=alias)
    summary = update_cluster([str(later)], cluster_url, alias, jobs=1)
    assert summary["added"] == 50 and summary["lexicon_sent"] > 0
    build_index([str(first), str(later)], tmp_path / "all", jobs=1)
    rebuilt, before = open_lexicon(live_build(tmp_path / "all")), open_lexicon(live_build(tmp_path / "before"))
    keys, counts = rebuilt.keys(), {rebuilt.word(n): n for n in range(len(rebuilt))}
    held = {h["_source"]["word"]: h["_source"] for h in scan(connect(cluster_url), index=lexicon_alias(alias))}
    assert set(held) == set(counts)  # every word, new ones too
    grown = [w for w, n in counts.items() if before.find(w) is None or int(before.df[before.find(w)]) != int(rebuilt.df[n])]
    same = [w for w in grown if held[w]["df"] == int(rebuilt.df[counts[w]])]
    with capsys.disabled():
        print(f"\nlexicon after an update straight to the cluster: {len(same)} of {len(grown)} words the update "
              f"changed counted as a rebuild counts them")
    assert len(grown) > 500 and len(same) >= 0.95 * len(grown)
    build_index([str(later)], tmp_path / "update", jobs=1)
    update = open_lexicon(live_build(tmp_path / "update"))
    kept = [w for w in counts if update.find(w) is None]  # words the update does not hold
    assert kept and all(held[w]["df"] == int(before.df[before.find(w)]) for w in kept)
    new_keyed = [w for w in grown if before.find(w) is None and counts[w] in keys]
    assert new_keyed and all(held[w]["pinyin"] == keys[counts[w]][0] for w in new_keyed)


def test_an_update_from_the_embedded_index_brings_the_lexicon_in_line(tmp_path, cluster_url, runner):
    """rebuild then update with --backend opensearch: the cluster's lexicon is then the updated build's, entry for
    entry (an entry the build does not hold is deleted); its alias still beside the articles' index."""
    from indexer.opensearch_lexicon import build_entries, entry
    from web.cli import cli

    lines = corpus_lines(4_000)[::20]
    first, later = tmp_path / "first.jsonl", tmp_path / "later.jsonl"
    first.write_text("".join(lines[:150]), encoding="utf-8")
    later.write_text("".join(lines[150:]), encoding="utf-8")
    alias, index_dir = "newsearch-test-lexicon-sync", tmp_path / "index"
    switch = ["--index", str(index_dir), "--backend", "opensearch", "--url", cluster_url, "--alias", alias, "--jobs", "1"]
    assert runner.invoke(cli, ["rebuild", str(first), *switch]).exit_code == 0
    client = connect(cluster_url)
    before = {h["_source"]["word"]: h["_source"]["df"] for h in scan(client, index=lexicon_alias(alias))}
    stray = entry("词表外之词", 3, None)  # an entry the build does not hold: the update deletes it (by id, in bulk)
    client.index(index=lexicon_alias(alias), id=stray["id"], body=stray, refresh=True)
    updated = runner.invoke(cli, ["update", str(later), *switch, "--json"])
    assert updated.exit_code == 0, updated.output
    assert json.loads(updated.output)["cluster"]["lexicon"]["deleted"] == 1
    wanted = {e["word"]: e for e in build_entries(live_build(index_dir))[1]}
    held = {h["_source"]["word"]: h["_source"] for h in scan(client, index=lexicon_alias(alias))}
    assert held == wanted
    assert len(held) > len(before) and any(held[w]["df"] != df for w, df in before.items())
    (live,) = aliased(client, alias)
    assert aliased(client, lexicon_alias(alias)) == [live + "-lexicon"]


@pytest.mark.parametrize("case", ["related", "repairs", "around", "completion"])
def test_time_up_after_the_first_call_cuts_the_paths_beside_it(engines, cluster_url, monkeypatch, case):
    """The engine's clock jumps past the deadline once the request's first call (the search, the document, the
    lexicon) has answered: the answer comes with that call's results, nothing more is sent, and work names the
    cut path, as the embedded engine names its own."""
    _, cluster = engines
    now, sent = [0.0], []
    engine = OpenSearchEngine(cluster_url, ALIAS, clock=lambda: now[0])
    engine.search(SearchRequest(q="经济"))  # reads the index's meta, which a search reads again after 10 s only
    real = Urllib3HttpConnection.perform_request

    def spy(self, method, url, params=None, body=None, timeout=None, *args, **kwargs):
        sent.append(url)
        answer = real(self, method, url, params, body, timeout, *args, **kwargs)
        now[0] += 100.0  # the request's time is up once its first call has answered
        return answer

    doc = cluster.search(SearchRequest(q="经济"))["hits"][0]["id"]
    monkeypatch.setattr(Urllib3HttpConnection, "perform_request", spy)
    answer = {"related": lambda: engine.search(SearchRequest(q="经济")),
              "repairs": lambda: engine.search(SearchRequest(q="quzhou")),
              "around": lambda: engine.article(doc, q="经济"), "completion": lambda: engine.complete("zjqz")}[case]()
    assert len(sent) == 1  # nothing sent once the time was up
    if case == "related":
        whole = cluster.search(SearchRequest(q="经济"))
        assert whole["related"] and answer["related"] == [] and answer["work"]["capped"] == ["related"]
        assert (answer["total"], answer["hits"]) == (whole["total"], whole["hits"])
    elif case == "repairs":
        assert answer["suggestion"] is None and answer["work"]["capped"] == ["repairs"]
        assert cluster.search(SearchRequest(q="quzhou"))["suggestion"] == "衢州"  # with the time to try
    elif case == "around":
        assert answer["id"] == doc and answer["more_like_this"] == [] and "similar" in answer["work"]["capped"]
        assert cluster.article(doc, q="经济")["more_like_this"]
    else:
        assert answer == {"suggestions": [], "work": {**answer["work"], "capped": ["completion"]}}
        assert cluster.complete("zjqz")["suggestions"] == ["浙江衢州"]
    engine.close()
