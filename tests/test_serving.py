"""Serving holds its resources: open files and memory stay flat over 2,000 requests.

`newsearch serve` (a thread per request) and gunicorn workers (sync and gthread)
run as real processes against an index of many segments; the counts are taken
from /proc after a warm-up and again after 2,000 requests of every kind (result
pages, the JSON API, autocomplete, articles) sent by 4 clients at once. A
searcher left open per thread would hold every segment file once more per thread.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from bench.serving import free_port, running, wait_until

from indexer import segment
from indexer.store import live_build
from indexer.writer import build_index
from search import Engine, SearchRequest
from search.engine import _open_build
from conftest import SEEDS, corpus_lines

QUERIES = ["中国", "经济 发展", '"改革开放"', "习近平", "会议", "农业", "-中国 北京", "国务院 OR 人大", "创新驱动"]
REQUESTS = 2000
CLIENTS = 4
MEMORY_SLACK_MB = 40


@pytest.fixture(scope="module")
def many_segments(tmp_path_factory) -> Path:
    """Build 900 corpus items as segments of at most 40 documents; return the index path."""
    folder = tmp_path_factory.mktemp("serving")
    source = folder / "sample.jsonl"
    source.write_text("".join(corpus_lines(900)), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segment, "SEGMENT_DOCS", 40)
        summary = build_index([str(source)], folder / "index", jobs=2)
    assert summary["segments"] >= 20
    return folder / "index"


def fetch(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def paths(port: int, count: int) -> list[str]:
    """Return count request paths cycling through every kind of request, articles included."""
    status, body = fetch(port, "/api/search?" + urllib.parse.urlencode({"q": "中国", "size": 20}))
    assert status == 200
    ids = [hit["id"] for hit in json.loads(body)["hits"]]
    kinds = []
    for i, q in enumerate(QUERIES):
        quoted = urllib.parse.quote(q)
        kinds += [f"/search?q={quoted}&page={1 + i % 3}", f"/api/search?q={quoted}&sort=newest",
                  f"/api/suggest?q={urllib.parse.quote(q[:1])}", f"/article/{ids[i % len(ids)]}?q={quoted}"]
    return [kinds[i % len(kinds)] for i in range(count)]


def send(port: int, wanted: list[str]) -> list[int]:
    """Send the requests from CLIENTS threads at once; return the status codes."""
    statuses: list[int] = []
    lock = threading.Lock()

    def client(share: list[str]) -> None:
        for path in share:
            status, _ = fetch(port, path)
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=client, args=(wanted[i::CLIENTS],)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def serving_process(server: psutil.Process, kind: str) -> psutil.Process:
    """Return the process that answers: `newsearch serve` itself, or gunicorn's one worker."""
    if kind == "serve":
        return server
    deadline = time.monotonic() + 30
    while len(server.children()) != 1:
        assert time.monotonic() < deadline, "gunicorn's worker did not start"
        time.sleep(0.1)
    return server.children()[0]


def counts(process: psutil.Process) -> tuple[int, float]:
    """Return the open regular files and the resident memory in MB of a process."""
    return len(process.open_files()), process.memory_info().rss / 2**20


def command(kind: str, index: Path, port: int) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if kind == "serve":
        return [str(bin_dir / "newsearch"), "serve", "--index", str(index), "--port", str(port)]
    worker = ["--worker-class", "gthread", "--threads", "4"] if kind == "gthread" else []
    return [str(bin_dir / "gunicorn"), "-w", "1", *worker, "-b", f"127.0.0.1:{port}", "web:create_app()"]


@pytest.mark.parametrize("kind", ["serve", "sync", "gthread"])
def test_open_files_and_memory_stay_flat_over_2000_requests(many_segments, kind):
    port = free_port()
    env = {**os.environ, "NEWSEARCH_INDEX": str(many_segments)}
    with running(command(kind, many_segments, port), env) as proc:
        wait_until(port, "/healthz", proc)
        worker = serving_process(psutil.Process(proc.pid), kind)
        wanted = paths(port, REQUESTS)
        assert set(send(port, wanted[:200])) == {200}  # warm-up: every kind of request, caches filled
        files, memory = counts(worker)
        statuses = send(port, wanted)
        after_files, after_memory = counts(worker)
        assert statuses.count(200) == REQUESTS
        # At most one more searcher than the warm-up needed (the 4 clients may meet there less often);
        # a searcher per thread would add one for each of the 2,000 requests.
        one_searcher = len(list(live_build(many_segments).iterdir()))
        assert after_files <= files + one_searcher, (files, after_files, one_searcher)
        assert after_memory <= memory + MEMORY_SLACK_MB, (memory, after_memory)
        assert worker.is_running() and worker.pid == serving_process(psutil.Process(proc.pid), kind).pid


def test_an_engine_holds_as_many_searchers_as_requests_in_flight(many_segments):
    engine = Engine(many_segments)
    try:
        threads = [threading.Thread(target=lambda: [engine.search(SearchRequest(q=q)) for q in QUERIES]) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 1 <= engine.open_searchers() <= 40
        held = engine.open_searchers()
        for _ in range(3):
            threads = [threading.Thread(target=lambda: engine.search(SearchRequest(q="农业"))) for _ in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert engine.open_searchers() <= max(held, 20)
    finally:
        engine.close()
    assert engine.open_searchers() == 0


def test_a_swapped_out_build_closes_its_searchers(tmp_path):
    index = tmp_path / "index"
    build_index([str(SEEDS)], index, jobs=1)
    engine = Engine(index)
    try:
        first = engine.current()
        assert engine.search(SearchRequest(q="衢州"))["total"] > 0
        assert engine.open_searchers() == 1
        build_index([str(SEEDS)], index, jobs=1)
        assert engine.search(SearchRequest(q="衢州"))["total"] > 0
        assert engine.current() is not first
        assert engine.open_searchers() == 1  # the old build's idle searcher was closed on the swap
    finally:
        engine.close()
    assert engine.open_searchers() == 0


def test_autocomplete_reads_one_build_while_builds_swap(tmp_path):
    """Completions come from one build, never words of one and dates of another, however the link flips."""
    index = tmp_path / "index"
    source = tmp_path / "sample.jsonl"
    source.write_text("".join(corpus_lines(300)), encoding="utf-8")
    big = Path(build_index([str(source)], index, jobs=1)["build"])
    small = Path(build_index([str(SEEDS)], index, jobs=1)["build"])
    expected = {}
    for build in (big, small):
        flip(index, build)
        engine = Engine(index)
        expected[build] = engine.complete("中")["suggestions"]
        engine.close()
    assert expected[big] != expected[small] and expected[big] and "衢州" not in " ".join(expected[big])
    engine = Engine(index)
    stop = threading.Event()

    def flipping() -> None:
        while not stop.is_set():
            for build in (big, small):
                flip(index, build)
                time.sleep(0.002)

    flipper = threading.Thread(target=flipping)
    flipper.start()
    try:
        answers = [engine.complete("中")["suggestions"] for _ in range(300)]
    finally:
        stop.set()
        flipper.join()
        engine.close()
    assert all(answer in expected.values() for answer in answers)
    assert {tuple(a) for a in answers} == {tuple(a) for a in expected.values()}  # both builds were read


def test_requests_are_answered_from_the_old_build_while_a_new_one_opens(tmp_path):
    """The open of a new build runs outside the engine's lock: held in it, one thread waits and others answer."""
    index = tmp_path / "index"
    old = Path(build_index([str(SEEDS)], index, jobs=1)["build"])
    holding, entered, go = threading.Event(), threading.Event(), threading.Event()

    def held_open(path: Path):
        if holding.is_set():
            entered.set()
            assert go.wait(60)
        return _open_build(path)

    engine = Engine(index, opener=held_open)
    opened: list[dict] = []
    during: list[tuple[dict, str]] = []
    try:
        before = engine.search(SearchRequest(q="衢州"))
        source = tmp_path / "sample.jsonl"
        source.write_text("".join(corpus_lines(200)), encoding="utf-8")
        new = Path(build_index([str(source)], index, jobs=1)["build"])
        holding.set()
        opener = threading.Thread(target=lambda: opened.append(engine.search(SearchRequest(q="衢州"))))
        opener.start()
        assert entered.wait(60)
        others = [threading.Thread(target=lambda: during.append((engine.search(SearchRequest(q="衢州")),
                                                                engine.stats()["build"]))) for _ in range(4)]
        for thread in others:
            thread.start()
        for thread in others:
            thread.join(60)
        assert not any(thread.is_alive() for thread in others) and opener.is_alive()  # answered, the open still held
        go.set()
        opener.join(60)
        after = engine.search(SearchRequest(q="衢州"))
    finally:
        go.set()
        engine.close()
    assert before["total"] > 0 and len(during) == 4
    assert all(answer == {**before, "took_ms": answer["took_ms"]} and build == str(old) for answer, build in during)
    assert opened[0]["total"] == after["total"] == 0  # the new build (corpus items) has no 衢州
    assert engine.stats()["build"] == str(new)


def test_a_build_an_engine_holds_is_not_pruned(tmp_path):
    """Two swaps while a request reads the old build leave it in place; once no engine uses it, it goes."""
    index = tmp_path / "index"
    first = Path(build_index([str(SEEDS)], index, jobs=1)["build"])
    engine = Engine(index)
    try:
        build = engine.current()
        with engine.borrowed(build) as searcher:
            second = Path(build_index([str(SEEDS)], index, jobs=1)["build"])
            third = Path(build_index([str(SEEDS)], index, jobs=1)["build"])
            assert first.is_dir() and second.is_dir()  # the newest two by age, and the held one
            with engine.borrowed(build) as another:  # a new searcher opens the held build's files
                assert another is not searcher and another.doc_count() == searcher.doc_count() > 0
            assert searcher.document_number(id=searcher.stored_fields(0)["id"]) == 0
        assert engine.search(SearchRequest(q="衢州"))["total"] > 0 and engine.current().path == third
        fourth = Path(build_index([str(SEEDS)], index, jobs=1)["build"])
        assert not first.exists() and not second.exists()  # no longer held: pruned by age
        assert third.is_dir() and fourth.is_dir()
    finally:
        engine.close()


def flip(index: Path, build: Path) -> None:
    """Point the index link at a build atomically, as a rebuild's swap does."""
    link = index.with_name(".flip")
    if link.is_symlink():
        link.unlink()
    os.symlink(os.path.relpath(build, index.parent), link)
    os.replace(link, index)


def test_completions_and_repairs_count_words_in_the_arrays_not_the_term_files(many_segments, monkeypatch):
    """A word's count looked up through Whoosh reads every segment's term file: seconds for thousands of
    words at a million documents. Completions and did-you-mean count their words in the index's arrays."""
    from whoosh.reading import SegmentReader

    looked_up = []
    through = SegmentReader.doc_frequency

    def counted(self, fieldname, text):
        looked_up.append((fieldname, text))
        return through(self, fieldname, text)

    engine = Engine(many_segments)
    try:
        word = engine.search(SearchRequest(q="习近平"))
        monkeypatch.setattr(SegmentReader, "doc_frequency", counted)
        completions = engine.complete("中")["suggestions"]
        missing = engine.search(SearchRequest(q="习近平总书计"))
        found = engine.search(SearchRequest(q="习近平总书记"))
    finally:
        engine.close()
    assert word["total"] > 0 and "中国" in completions and len(completions) == 8
    assert missing["total"] == 0 and missing["suggestion"] == "习近平总书记"
    assert found["total"] > 0 and found["suggestion"] is None
    assert looked_up == []


def test_the_lexicon_holds_every_segments_words(many_segments):
    """Completions and corrections read one lexicon of the whole build, not a sample of its segments: a word
    of a segment in the middle is there, with its documents counted over every segment."""
    from indexer.lexicon import open_lexicon
    from indexer.schema import BODY, TITLE

    engine = Engine(many_segments)
    try:
        with engine.borrowed(engine.current()) as searcher:
            leaves = [leaf for leaf, _ in searcher.reader().leaf_readers()]
            middle = set(leaves[len(leaves) // 2].lexicon(TITLE))
            counts = {w: max(searcher.doc_frequency(TITLE, w), searcher.doc_frequency(BODY, w))
                      for w in sorted(middle)[:200]}
    finally:
        engine.close()
    lexicon = open_lexicon(many_segments.resolve())
    found = {w: lexicon.find(w.decode("utf-8")) for w in counts}
    assert None not in found.values()
    assert {w: int(lexicon.df[n]) for w, n in found.items()} == counts
    assert lexicon.find("衢州衢州衢州") is None  # a word no article holds

