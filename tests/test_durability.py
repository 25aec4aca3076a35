"""Contract of the index on disk (indexer/store.py, update.py, segment.py; search/engine.py's opening and closing).

Safe on disk: every file of a rebuild or an update, and its folder, is flushed before the build is
published; an update never opens a file of the live build for writing (its files are hard links
into the new build); Engine.close leaves no map and no descriptor of the build, and a replaced
build's maps go once no request reads it; merges are tiered, so the parts a term look-up reads stay
bounded however many small updates come, with the answers a rebuild gives; a damaged file or an
index of another format is named in one message that says to rebuild, from `newsearch query`,
`newsearch stats` and the site's API (its page is the calm 503 one), never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC

from conftest import NOW, SEEDS, corpus_items
from indexer import joining, segment, update
from indexer.arrays import PostingArrays
from indexer.segment import INDEX_NAME
from indexer.store import live_build
from indexer.update import update_index
from indexer.writer import build_index
from search import Engine, SearchRequest
from web import create_app
from web.cli import cli

SEED = {p.name[:3]: p for p in SEEDS.glob("*.txt")}


def copy(src: Path, *names: str) -> None:
    src.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(SEED[name], src / SEED[name].name)


def titles(index_dir, q: str) -> list[str]:
    engine = Engine(index_dir)
    try:
        return sorted(h["title"] for h in engine.search(SearchRequest(q=q, size=50), now=NOW)["hits"])
    finally:
        engine.close()


# -- flushed before published ---------------------------------------------------------------------


def test_a_rebuild_and_an_update_flush_every_file_and_the_folder_before_the_swap(tmp_path, monkeypatch):
    """Every file of a published build was flushed before the swap that published it: the files a
    rebuild or an update wrote, in that run; those an update links from the live build, before that one's."""
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "001", "002")
    events: list[tuple] = []  # ("fsync", path, inode) or ("replace", target)
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(source, target, **kw):
        events.append(("replace", str(target)))
        real_replace(source, target, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    for run, added in (("rebuild", None), ("update", "003"), ("update", "004")):
        first = len(events)
        if added is None:
            build_index([str(src)], index_dir, jobs=1)
        else:
            copy(src, added)
            assert update_index([str(src)], index_dir, jobs=1)["changed"] is True
        build = live_build(index_dir)
        swap = events.index(("replace", str(index_dir)), first)  # the link is switched here
        flushed = {event[2] for event in events[:swap] if event[0] == "fsync"}
        files = sorted(build.iterdir())
        assert len(files) > 20 and {joining.WHOLE_FILE, "newsearch.json", "columns.npz"} <= {p.name for p in files}
        assert [p.name for p in files if p.stat().st_ino not in flushed] == [], run
        written = {event[1] for event in events[first:swap] if event[0] == "fsync"}
        assert f"{build}.tmp" in written and str(build.parent) in written, run  # the build's folder, then its parent
        assert f"{build}.tmp/newsearch.json" in written and f"{build}.tmp/columns.npz" in written, run
        assert str(index_dir.parent) in {event[1] for event in events[swap:] if event[0] == "fsync"}


# -- an update never writes into the live build ----------------------------------------------------


def snapshot(build: Path) -> dict[str, tuple]:
    """Return each file of a build: its content hash, size, inode, modification time and links."""
    found = {}
    for path in sorted(build.iterdir()):
        st = path.stat()
        found[path.name] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_ino, st.st_mtime_ns,
                            st.st_nlink)
    return found


@pytest.fixture()
def written_inodes(tmp_path):
    """Record the inode of every existing file opened for writing, in this process and its forked workers."""
    log = tmp_path / "opened-for-writing"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    _WRITES[0] = fd
    try:
        yield lambda: {int(line) for line in log.read_text().split()}
    finally:
        _WRITES[0] = None
        os.close(fd)


_WRITES: list[int | None] = [None]


def _audit(event: str, args: tuple) -> None:
    fd = _WRITES[0]
    if fd is None or event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    if args[2] is not None and args[2] & (os.O_WRONLY | os.O_RDWR):
        try:
            os.write(fd, f"{os.stat(args[0]).st_ino}\n".encode())
        except OSError:  # a new file: not the live build's
            pass


sys.addaudithook(_audit)  # audit hooks stay for the process: it records only while the fixture is on


def test_an_update_never_opens_a_file_of_the_live_build_for_writing(tmp_path, written_inodes):
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "001", "002", "003", "004")
    build_index([str(src)], index_dir, jobs=1)
    page = src / SEED["005"].name

    def add():
        copy(src, "005")
        return update_index([str(src)], index_dir, jobs=1)

    def replace():
        page.write_text(page.read_text(encoding="utf-8").replace("思政课", "思想政治课"), encoding="utf-8")
        return update_index([str(src)], index_dir, jobs=1)

    def delete_missing():
        (src / SEED["002"].name).unlink()
        return update_index([str(src)], index_dir, jobs=1, delete_missing=True)

    def merge_and_join():  # half the rebuild's articles gone: their segment is rewritten, the arrays joined anew
        (src / SEED["003"].name).unlink()
        return update_index([str(src)], index_dir, jobs=1, delete_missing=True)

    for change in (add, replace, delete_missing, merge_and_join):
        live = live_build(index_dir)
        before, joined = snapshot(live), joining.joined_ids(live)
        summary = change()
        assert summary["changed"] is True, change.__name__
        new = live_build(index_dir)
        assert new != live and live.is_dir()
        after = snapshot(live)
        shared = {p.stat().st_ino for p in new.iterdir()}
        assert sorted(after) == sorted(before), change.__name__
        for name, (digest, size, inode, mtime, links) in before.items():
            assert after[name][:4] == (digest, size, inode, mtime), (change.__name__, name)
            # Links: one more for a file the new build holds too; fewer when an older build was pruned.
            assert after[name][4] <= links + (inode in shared), (change.__name__, name)
        assert not written_inodes() & {inode for _, _, inode, _, _ in before.values()}, change.__name__
        if change is merge_and_join:
            assert summary["merged"] > 0 and joining.joined_ids(new) != joined
    assert titles(index_dir, "思想政治课") == ["高校思想政治课走出教室 大学生在田间地头上“大课”"]
    assert titles(index_dir, "磁吸") == titles(index_dir, "粮食收购") == titles(index_dir, "思政课") == []


# -- maps and descriptors ----------------------------------------------------------------------------


def held(build: Path) -> tuple[int, int, list[str]]:
    """Return this process's open descriptors, the maps of the build's files and the build's files it holds open."""
    fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if _readable(fd)]
    with open("/proc/self/maps") as maps:
        mapped = sum(str(build) in line for line in maps)
    return len(os.listdir("/proc/self/fd")), mapped, [p for p in fds if p.startswith(str(build))]


def _readable(fd: str) -> bool:
    try:
        os.readlink(f"/proc/self/fd/{fd}")
        return True
    except OSError:
        return False


def use(engine: Engine) -> None:
    for q in ("公司", '"长江大桥"', "新能源 -汽车", "title:职校"):
        assert engine.search(SearchRequest(q=q), now=NOW)["total"] >= 0
    assert engine.search(SearchRequest(q="量子纠缠态的猫"), now=NOW)["total"] == 0
    assert engine.complete("新") != []


def test_engine_close_releases_every_map_and_descriptor(tmp_path):
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "001", "002", "003")
    build_index([str(src)], index_dir, jobs=1)
    copy(src, "004")
    update_index([str(src)], index_dir, jobs=1)  # segments outside the joined set: their own arrays are mapped
    build = live_build(index_dir)
    warm = Engine(index_dir)  # imports and the segmenter load once, for the count below
    use(warm)
    warm.close()
    fds, maps, files = held(build)
    assert (maps, files) == (0, [])
    engine = Engine(index_dir)
    use(engine)
    assert len(engine.current().cache.arrays.parts) > 1
    open_fds, open_maps, open_files = held(build)
    assert open_maps > 7 and open_fds > fds
    assert [p for p in open_files if p.endswith(".npy")] == []  # a map holds no descriptor
    engine.close()
    assert held(build) == (fds, 0, [])


def test_a_replaced_build_is_unmapped_once_no_request_reads_it(tmp_path):
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "001", "002")
    build_index([str(src)], index_dir, jobs=1)
    old = live_build(index_dir)
    engine = Engine(index_dir)
    try:
        use(engine)
        assert held(old)[1] > 0
        copy(src, "003")
        update_index([str(src)], index_dir, jobs=1)
        use(engine)  # opens the new build; the old one's searchers and maps go
        assert held(old)[1:] == (0, [])
        assert held(live_build(index_dir))[1] > 0
    finally:
        engine.close()


# -- tiered merges ------------------------------------------------------------------------------------


def parts(index_dir) -> int:
    """Return the parts a term look-up reads in the live build: the joined set and the segments outside it."""
    build = live_build(index_dir)
    arrays = PostingArrays.open(build, TOC.read(FileStorage(str(build)), INDEX_NAME).segments)
    try:
        return len(arrays.parts)
    finally:
        arrays.close()


def tiny(item: dict) -> dict:
    return {**item, "body": item["body"][:80]}


def write(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return path


def test_two_hundred_small_updates_keep_the_parts_a_look_up_reads_bounded(tmp_path, monkeypatch):
    items = [tiny(item) for item in corpus_items(460, start=3_000)]
    base, rest = items[:60], items[60:]
    index_dir, fresh = tmp_path / "index", tmp_path / "fresh"
    monkeypatch.setattr(segment, "SEGMENT_DOCS", 20)  # the rebuild: three segments, joined
    build_index([str(write(tmp_path / "base.jsonl", base))], index_dir, jobs=1)
    monkeypatch.undo()
    rebuilt = [s.segment_id() for s in TOC.read(FileStorage(str(live_build(index_dir))), INDEX_NAME).segments]
    # Small sizes, so that 200 updates climb the tiers and fill the joined set: a segment of 16 documents
    # is large, the tiers are [0, 8) and [8, 16); a look-up reads at most 1 + 7 + 2 * 8 = 24 parts.
    monkeypatch.setattr(update, "MERGE_DOCS", 32)
    bound = update.parts_bound()
    assert bound == 24
    seen, replaced, sources = [], {}, [write(tmp_path / "base.jsonl", base)]
    at = 0
    for n in range(200):
        batch = rest[at:at + 1 + n % 3]
        at += len(batch)
        if n % 25 == 24:  # now and then an article comes again with a changed body
            batch.append({**rest[n], "body": rest[n]["body"][:40] + "（更正）"})
            replaced[rest[n]["id"]] = rest[n]
        sources.append(write(tmp_path / f"u{n:03}.jsonl", batch))
        summary = update_index([str(sources[-1])], index_dir, jobs=1)
        assert summary["changed"] is True
        seen.append(parts(index_dir))
        assert seen[-1] <= bound, (n, seen[-1])
    segments = TOC.read(FileStorage(str(live_build(index_dir))), INDEX_NAME).segments
    assert set(rebuilt) <= {s.segment_id() for s in segments}  # a small update never rewrites the rebuild's
    outside = segments[joining.covered_count(live_build(index_dir), segments):]
    tiers = Counter(update.tier_of(s.doc_count()) for s in outside if s.doc_count() < 16)
    assert max(tiers.values(), default=0) <= update.MERGE_FACTOR and len(outside) - sum(tiers.values()) < 8
    assert len(joining.joined_ids(live_build(index_dir))) > len(rebuilt)  # merged segments went into the joined set
    # The same documents rebuilt give the same answers.
    build_index([str(s) for s in sources], fresh, jobs=1)
    grown, rebuilt_engine = Engine(index_dir), Engine(fresh)
    try:
        docs = items[:: 37]
        queries = [d["title"][:5] for d in docs] + [d["body"][10:16] for d in docs] + ["（更正）", "中国 -美国"]
        for q in queries:
            want = rebuilt_engine.search(SearchRequest(q=q, size=50), now=NOW)
            got = grown.search(SearchRequest(q=q, size=50), now=NOW)
            assert (got["total"], sorted(h["id"] for h in got["hits"])) == \
                (want["total"], sorted(h["id"] for h in want["hits"])), q
            assert want["total"] > 0, q
        for doc in replaced.values():  # the text before the correction is found nowhere
            gone = f'"{doc["body"][40:60]}"'
            assert len(gone) > 12 and grown.search(SearchRequest(q=gone), now=NOW)["total"] == 0, gone
        assert grown.search(SearchRequest(q='"量子纠缠态的猫"'), now=NOW)["total"] == 0
    finally:
        grown.close()
        rebuilt_engine.close()


# -- a damaged file or another format: one message naming it -------------------------------------------


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _older_toc(path: Path) -> None:
    from whoosh.system import pack_int

    data = bytearray(path.read_bytes())
    data[7:11] = pack_int(-110)  # after three sizes and a check number: the format, as an older Whoosh wrote
    path.write_bytes(bytes(data))


def _older_format(path: Path) -> None:
    meta = json.loads(path.read_text(encoding="utf-8"))
    del meta["format_version"]  # as builds before the term dictionary and the codec were written
    path.write_text(json.dumps(meta), encoding="utf-8")


def _garble_end(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-24:] = bytes(24)  # the last document's compressed tail, the size unchanged
    path.write_bytes(bytes(data))


def _first_segment(build: Path) -> str:
    return TOC.read(FileStorage(str(build)), INDEX_NAME).segments[0].segment_id()


DAMAGES = {  # what is done to a copy of the seeds' build -> the file the message names
    "garbage newsearch.json": (lambda b: (b / "newsearch.json").write_text("{garbage", encoding="utf-8"),
                               lambda b: "newsearch.json"),
    "truncated .npy": (lambda b: _cut(b / "whole.pdocs.npy"), lambda b: "whole.pdocs.npy"),
    "missing whole file": (lambda b: (b / "whole.pvals.npy").unlink(), lambda b: "whole.pvals.npy"),
    "truncated TOC": (lambda b: _cut(b / "_MAIN_1.toc"), lambda b: "_MAIN_1.toc"),
    "older TOC format": (lambda b: _older_toc(b / "_MAIN_1.toc"), lambda b: "_MAIN_1.toc"),
    "truncated term dictionary": (lambda b: _cut(b / "whole.ptext.npy"), lambda b: "whole.ptext.npy"),
    "older format": (lambda b: _older_format(b / "newsearch.json"), lambda b: "newsearch.json"),
    "truncated stored fields": (lambda b: _cut(b / f"{_first_segment(b)}.stored.npy"),
                                lambda b: f"{_first_segment(b)}.stored.npy"),
    "garbled stored document": (lambda b: _garble_end(b / f"{_first_segment(b)}.stored.npy"),
                             lambda b: f"{_first_segment(b)}.stored.npy"),
    "missing stored ends": (lambda b: (b / f"{_first_segment(b)}.stored_ends.npy").unlink(),
                                  lambda b: f"{_first_segment(b)}.stored_ends.npy"),
    "truncated columns": (lambda b: _cut(b / "columns.npz"), lambda b: "columns.npz"),
    "truncated keys file": (lambda b: _cut(b / f"{_first_segment(b)}.keys.npz"),
                            lambda b: f"{_first_segment(b)}.keys.npz"),
}


@pytest.fixture(params=list(DAMAGES))
def damaged(request, seed_index, tmp_path) -> tuple[Path, Path]:
    """Return a damaged copy of the seeds' build (an index path of its own) and the file whose damage it names."""
    folder = tmp_path / "damaged"
    shutil.copytree(live_build(seed_index), folder)
    named = folder / DAMAGES[request.param][1](folder)  # before the damage: a cut TOC names no segment
    DAMAGES[request.param][0](folder)
    return folder, named


def test_query_and_stats_name_the_damaged_file_and_say_to_rebuild(damaged, runner):
    folder, named = damaged
    for command in (["query", "公司"], ["stats"]):
        result = runner.invoke(cli, [*command, "--index", str(folder)])
        lines = result.output.strip().splitlines()
        assert (result.exit_code, type(result.exception), len(lines)) == (1, SystemExit, 1), result.output
        assert lines[0].startswith(f"Error: cannot read the index at {folder}: {named}: "), lines[0]
        assert lines[0].endswith(f"; run: newsearch rebuild --index {folder}") and "Traceback" not in result.output


def test_the_site_answers_503_and_its_api_names_the_damaged_file(damaged):
    folder, named = damaged
    client = create_app({"TESTING": True, "INDEX_DIR": str(folder)}).test_client()
    page = client.get("/search?q=公司")
    text = page.get_data(as_text=True)
    # The page is the calm one a reader gets while an index is missing: it names no file of the server.
    assert page.status_code == 503 and "索引尚未建立或正在更换" in text and str(folder) not in text
    answer = client.get("/api/search?q=公司")
    body = answer.get_json()
    assert (answer.status_code, body["ok"], body["status"], body["errors"]) == (503, False, 503, [])
    assert body["error"].startswith(f"cannot read the index at {folder}: {named}: ")
    assert body["error"].endswith("; it needs a rebuild; run: newsearch rebuild")
    healthy = create_app({"TESTING": True, "INDEX_DIR": str(folder.parent / "none")}).test_client()
    assert healthy.get("/api/search?q=公司").status_code == 503  # no index at all: the same shape, nothing named
