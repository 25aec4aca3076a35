"""Contract of indexer/writer.py and indexer/store.py: what a rebuild writes and how it swaps.

A rebuild indexes every readable article once (the newest crawl of a page),
adds related headlines that have no full article as headline-only entries, and
skips bad files with their path and reason. It builds beside the live index and
swaps in with one rename: a reader of the old build keeps working, a failed or
killed rebuild leaves the old index serving and no lock behind.
"""

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from whoosh import index as whoosh_index

from conftest import SEEDS, corpus_lines
from indexer.store import IndexBusyError, builds_dir, live_build, read_meta, writer_lock
from indexer.writer import NothingIndexedError, build_index
from search import Engine, SearchRequest


def stored_docs(index_dir):
    with whoosh_index.open_dir(str(live_build(index_dir))).searcher() as s:
        return {d["id"]: d for d in s.all_stored_fields()}


def titles_found(index_dir, q):
    return [h["title"] for h in Engine(index_dir).search(SearchRequest(q=q))["hits"]]


def test_seed_rebuild_counts_and_keeps_the_newest_crawl(seed_index):
    meta = read_meta(live_build(seed_index))
    assert (meta["files"], meta["articles"], meta["headlines"], meta["duplicates"], meta["skipped"]) == (10, 9, 15, 1, 0)
    docs = stored_docs(seed_index)
    recrawled = [d for d in docs.values() if d["title"] == "社区食堂开到家门口 老人吃上热乎饭"]
    assert len(recrawled) == 1
    assert recrawled[0]["path"].endswith("010_60a9661ecc8e37e1.txt")


def test_related_headlines_are_entries_unless_the_article_is_indexed(seed_index):
    docs = stored_docs(seed_index)
    article_titles = {d["title"] for d in docs.values() if d["kind"] == "article"}
    headline_titles = [d["title"] for d in docs.values() if d["kind"] == "headline"]
    assert "新能源汽车维修专业走俏 职校学生未毕业就被“预订”" in article_titles
    assert "新能源汽车维修专业走俏 职校学生未毕业就被“预订”" not in headline_titles
    assert len(headline_titles) == len(set(headline_titles)) == 15  # titled entries only
    assert not any(title.startswith("工信部门表示") for title in headline_titles)  # 001's teaser-only entry
    first = next(d for d in docs.values() if d["path"].endswith("001_4cc39e73fcc59f5b.txt"))
    related = json.loads(first["related"])
    assert [r["kind"] for r in related if r["title"] == "新能源汽车维修专业走俏 职校学生未毕业就被“预订”"] == ["article"]
    assert all(r["published"] for r in related)


def test_bad_files_are_skipped_with_path_and_reason(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SEEDS / "001_4cc39e73fcc59f5b.txt", src / "good.txt")
    (src / "empty.txt").write_bytes(b"")
    (src / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (src / "bad.jsonl").write_text('{"title": "好标题", "body": "正文内容足够长", "date": "2024-01-01"}\nnot json\n', encoding="utf-8")
    summary = build_index([str(src)], tmp_path / "index", jobs=1)
    assert (summary["articles"], summary["skipped"]) == (2, 3)
    assert summary["skipped_by_reason"] == {
        "binary file": {"count": 1, "paths": [str(src / "binary.txt")]},
        "empty file": {"count": 1, "paths": [str(src / "empty.txt")]},
        "invalid JSON": {"count": 1, "paths": [f"{src / 'bad.jsonl'}:2"]},
    }
    assert titles_found(tmp_path / "index", "金砖电池") == ["衢州新能源汽车产业链加速成形 多个电池项目年内投产"]
    assert titles_found(tmp_path / "index", "不存在的词语组合") == []


def test_nothing_indexed_raises_and_keeps_the_old_index(tmp_path):
    index_dir = tmp_path / "index"
    build_index([str(SEEDS)], index_dir, jobs=1)
    before = live_build(index_dir)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    with pytest.raises(NothingIndexedError) as info:
        build_index([str(bad)], index_dir, jobs=1)
    assert info.value.report["skipped_by_reason"]["empty file"]["count"] == 1
    assert live_build(index_dir) == before
    assert list(builds_dir(index_dir).glob("*.tmp")) == []
    assert titles_found(index_dir, "南京市长江大桥") == ["南京长江大桥夜间检修 部分公交线路临时绕行"]


def test_a_reader_of_the_old_build_keeps_working_across_a_swap(tmp_path):
    index_dir = tmp_path / "index"
    build_index([str(SEEDS)], index_dir, jobs=1)
    engine = Engine(index_dir)
    old = whoosh_index.open_dir(str(live_build(index_dir))).searcher()
    lines = tmp_path / "corpus.jsonl"
    lines.write_text("".join(corpus_lines(30)), encoding="utf-8")
    build_index([str(lines)], index_dir, jobs=1)
    assert old.doc_count() == 24 and len(list(old.all_stored_fields())) == 24  # the seeds' build
    old.close()
    assert engine.search(SearchRequest(q="金砖电池"))["total"] == 0
    assert engine.stats()["documents"] == 30


def test_jsonl_items_keep_their_ids_and_fields(tmp_path):
    lines = tmp_path / "corpus.jsonl"
    items = [json.loads(line) for line in corpus_lines(5)]
    lines.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    build_index([str(lines)], tmp_path / "index", jobs=1)
    docs = stored_docs(tmp_path / "index")
    assert sorted(docs) == sorted(i["id"] for i in items)
    first = docs[items[0]["id"]]
    assert (first["title"], first["source"], first["kind"]) == (items[0]["title"], items[0]["source"], "article")


class CountedLines:
    """A dump stream that notes each line the write pass reads in a file (writers are other processes)."""

    def __init__(self, stream, log: Path) -> None:
        self.stream, self.log = stream, log

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stream.close()

    def seek(self, offset: int) -> int:
        return self.stream.seek(offset)

    def __iter__(self):
        from indexer import writer

        for raw in self.stream:
            if writer._plan is not None:  # set for the write pass only
                with open(self.log, "a") as log:
                    log.write("line\n")
            yield raw


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_many_segments_of_one_dump_read_each_line_about_once(tmp_path, monkeypatch, suffix):
    """A share cut into many segments: each writer process seeks to where the last one stopped."""
    from indexer import segment, writer

    items = [json.loads(line) for line in corpus_lines(120)]
    text = "\n".join(["", *(json.dumps(i, ensure_ascii=False) for i in items), ""])  # a blank line counts too
    path = tmp_path / f"dump{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    monkeypatch.setattr(segment, "SEGMENT_DOCS", 15)
    log = tmp_path / "lines.log"
    opened = writer.open_dump
    monkeypatch.setattr(writer, "open_dump", lambda p: CountedLines(opened(p), log))
    build_index([str(path)], tmp_path / "index", jobs=2)
    docs = stored_docs(tmp_path / "index")
    assert sorted(docs) == sorted(i["id"] for i in items)
    assert all(docs[i["id"]]["title"] == i["title"] for i in items)
    assert len(whoosh_index.open_dir(str(live_build(tmp_path / "index")))._segments()) >= 8
    # Two shares, eight processes: the second share reads past the first one's lines once;
    # reading each segment's lines again from the top would be 540 lines.
    assert len(items) <= len(log.read_text().splitlines()) <= 2 * (len(items) + 1)


def test_a_second_writer_waits_then_names_the_holder(tmp_path):
    with writer_lock(tmp_path / "index", what="rebuild"):
        with pytest.raises(IndexBusyError, match=r"index is busy: rebuild pid \d+ since .* holds"):
            build_index([str(SEEDS)], tmp_path / "index", jobs=1, wait=0.5)


def test_a_killed_rebuild_leaves_the_old_index_and_no_lock(tmp_path):
    index_dir = tmp_path / "index"
    build_index([str(SEEDS)], index_dir, jobs=1)
    before = live_build(index_dir)
    lines = tmp_path / "corpus.jsonl"
    lines.write_text("".join(corpus_lines(3000)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "indexer", "rebuild", str(lines), "--index", str(index_dir), "--jobs", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(builds_dir(index_dir).glob("*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert live_build(index_dir) == before
    assert titles_found(index_dir, "金砖电池") == ["衢州新能源汽车产业链加速成形 多个电池项目年内投产"]
    build_index([str(SEEDS)], index_dir, jobs=1, wait=1)
    assert list(builds_dir(index_dir).glob("*.tmp")) == []
    assert live_build(index_dir) != before


def test_a_frequency_past_the_arrays_cap_is_said_in_the_report(tmp_path):
    from indexer.postings import FREQ_MAX, SATURATED

    items = [json.loads(line) for line in corpus_lines(3)]
    long_item = dict(items[0], id="saturated-1", title="同一个词写了很多遍", body="改革" * (FREQ_MAX + 10))
    lines = tmp_path / "corpus.jsonl"
    lines.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in [*items, long_item]),
                     encoding="utf-8")
    summary = build_index([str(lines)], tmp_path / "index", jobs=1)
    assert summary["warnings_by_reason"] == {SATURATED: {"count": 1, "paths": [f"{lines}:4"]}}
    assert summary["articles"] == 4  # indexed all the same
    hits = Engine(tmp_path / "index").search(SearchRequest(q="改革"))["hits"]
    assert hits[0]["id"] == "saturated-1"
    # The same items without the long one: no warning.
    lines.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    assert build_index([str(lines)], tmp_path / "index2", jobs=1)["warnings"] == 0


def test_a_rebuild_on_two_cores_writes_what_one_core_writes(tmp_path):
    """With two jobs the stories, columns and lexicon are written beside the join: the same files, the
    segments' own arrays dropped once both are done; the answers the same."""
    source = tmp_path / "items.jsonl"
    source.write_text("".join(corpus_lines(20_000)[::25]), encoding="utf-8")  # 800 items, two writers' shares
    one, two = build_index([str(source)], tmp_path / "one", jobs=1), build_index([str(source)], tmp_path / "two", jobs=2)
    assert one["documents"] == two["documents"] == 800 and two["segments"] == 2
    builds = live_build(tmp_path / "one"), live_build(tmp_path / "two")
    assert (builds[1] / "whole.json").is_file() and not list(builds[1].glob("MAIN_*.pdocs.npy"))
    for name in ["entities.npz", "columns.npz"]:
        with np.load(builds[0] / name) as a, np.load(builds[1] / name) as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files), name
    for path in builds[0].glob("lexicon.*"):
        assert path.read_bytes() == (builds[1] / path.name).read_bytes(), path.name
    for q in ["经济", "会议", '"国务院"', "zzqqxxnomatch"]:
        a, b = (Engine(index).search(SearchRequest(q=q)) for index in (tmp_path / "one", tmp_path / "two"))
        assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]] and a["total"] == b["total"]
        assert a["related"] == b["related"] and a["facets"] == b["facets"]
    assert a["total"] == 0
