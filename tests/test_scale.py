"""Archive-scale contract of the indexer: bounded segments, a tiered merge policy, answers that do not
depend on how the documents were cut into segments, updates that read keys and not stored documents.

The figures at 1x/4x/16x the corpus come from `python -m bench scale` (bench/RESULTS.md); these tests pin
the behaviour the figures rest on, on a sample of the shared corpus.
"""

from __future__ import annotations

import json
import mmap
import random
import shutil
from collections import Counter

import numpy as np
import pytest
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC
from whoosh.reading import SegmentReader

from conftest import NOW, corpus_items
from indexer import joining, mapped, postings, segment, update
from indexer.schema import BODY_GRAMS, TITLE_GRAMS
from indexer.segment import INDEX_NAME
from indexer.store import live_build
from indexer.terms import FIELDS, TERM_PARTS, TermDictionary
from indexer.update import MAX_DELETED, MERGE_DOCS, MERGE_FACTOR, plan_merges, tier_of, update_index
from indexer.writer import PARENT_BYTES, WORKER_BYTES, build_index, jobs_for
from search import Engine, SearchRequest
from search.postings import positions as whoosh_positions
from web.cli import cli

SAMPLE = 1_200
FIRST = 900  # items in the rebuild of the incremental build; the rest come in updates


def write_items(path, items):
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return path


def segments_of(index_dir):
    return TOC.read(FileStorage(str(live_build(index_dir))), INDEX_NAME).segments


@pytest.fixture(scope="module")
def items():
    every = corpus_items(65_606)
    return [every[i * len(every) // SAMPLE] for i in range(SAMPLE)]  # every year and category


@pytest.fixture(scope="module")
def builds(items, tmp_path_factory):
    """The same items three ways: one segment; 100-document segments; a rebuild, then updates
    (one of them changing 60 bodies) with merges. Returns the three index paths."""
    folder = tmp_path_factory.mktemp("layouts")
    everything = write_items(folder / "all.jsonl", items)
    whole = folder / "whole"
    build_index([str(everything)], whole, jobs=1)
    patch = pytest.MonkeyPatch()
    patch.setattr(segment, "SEGMENT_DOCS", 100)
    try:
        cut = folder / "cut"
        build_index([str(everything)], cut, jobs=2)
        grown = folder / "grown"
        changed = [{**item, "body": item["body"] + "\n（本台编辑部补充）"} for item in items[:60]]
        build_index([str(write_items(folder / "first.jsonl", changed + items[60:FIRST]))], grown, jobs=2)
        patch.setattr(update, "MERGE_DOCS", 400)
        for n, start in enumerate(range(FIRST, SAMPLE, 50)):
            batch = items[start:start + 50] + (items[:60] if n == 0 else [])  # the first update restores 60 bodies
            summary = update_index([str(write_items(folder / f"more{n}.jsonl", batch))], grown, jobs=2)
            assert summary["added"] == len(items[start:start + 50])
            assert summary["replaced"] == (60 if n == 0 else 0)
    finally:
        patch.undo()
    return whole, cut, grown


def queries(items):
    rng = random.Random(7)
    found = []
    for item in rng.sample(items, 12):
        body = item["body"].replace("\n", "")
        at = rng.randrange(0, max(1, len(body) - 8))
        found += [item["title"][:6], body[at:at + 5], f'"{body[at:at + 6]}"']
    return found + ["中国", "习近平 会见", "经济 -美国", "title:会议", "新闻联播 OR 国务院"]


def answer(engine, q, **kw):
    data = engine.search(SearchRequest(q=q, size=50, **kw), now=NOW)
    return data["total"], [h["id"] for h in data["hits"]], data["facets"], [h["score"] for h in data["hits"]]


def test_answers_do_not_depend_on_the_segment_layout(builds, items):
    whole, cut, grown = (Engine(path) for path in builds)
    assert len(segments_of(builds[0])) == 1
    assert len(segments_of(builds[1])) == SAMPLE // 100
    try:
        for q in queries(items):
            for kw in ({}, {"sort": "newest"}, {"categories": ("国内",)}):
                total, ids, counts, scores = answer(whole, q, **kw)
                assert total > 0 or kw, q
                # Pure layout: same statistics, so the same order and scores.
                cut_total, cut_ids, cut_counts, cut_scores = answer(cut, q, **kw)
                assert (cut_total, cut_ids, cut_counts) == (total, ids, counts), q
                assert cut_scores == pytest.approx(scores, rel=1e-6), q
                # Grown by updates: the same documents match and count alike (deleted
                # old versions may still weigh in term statistics until merged).
                grown_total, grown_ids, grown_counts, _ = answer(grown, q, **kw)
                assert (grown_total, grown_counts) == (total, counts), q
                if total <= 50:
                    assert sorted(grown_ids) == sorted(ids), q
        for q in ("本台编辑部补充", '"量子纠缠态的猫"'):  # the replaced text is gone; nothing has this
            assert answer(whole, q)[0] == answer(cut, q)[0] == answer(grown, q)[0] == 0
    finally:
        for engine in (whole, cut, grown):
            engine.close()


def test_the_codec_gives_the_answers_the_posting_arrays_give(builds, items, tmp_path):
    """Each posting is kept once, in the joined set or in its segment's own arrays: the engine reads them
    mapped, and a posting cache without them reads every list and position through Whoosh's searcher and
    our codec (a covered segment as its slice of the joined set).
    Both ways give the same answers, on the rebuilt index and on the one grown by updates and merges; so
    does an index whose per-term spans are 64-bit, as a wide joined set has them."""
    for build in (builds[1], builds[2]):
        folder = live_build(build)
        segments = segments_of(build)
        covered = joining.covered_count(folder, segments) or 0
        assert covered and all((folder / name).is_file() == (k >= covered) for k, seg in enumerate(segments)
                               for name in postings.array_files(seg).values())
        wide = tmp_path / f"wide-{build.name}"
        shutil.copytree(folder, wide)
        for part, narrow, wider in (("pstarts", np.uint32, np.int64),):
            for path in wide.glob(f"*.{part}.npy"):
                assert np.load(path).dtype == narrow, path
                np.save(path, np.load(path).astype(wider))
        arrays, codec, earlier = Engine(build), Engine(build), Engine(wide)
        try:
            codec.current().cache.arrays = None  # lists and positions through Whoosh's searcher and the codec
            for q in queries(items) + ["source:央视网", "category:中国经济 发展"]:
                for kw in ({}, {"sort": "newest"}):
                    total, ids, counts, scores = answer(arrays, q, **kw)
                    assert total > 0, q
                    assert answer(codec, q, **kw) == (total, ids, counts, pytest.approx(scores, rel=1e-6)), q
                    assert answer(earlier, q, **kw) == (total, ids, counts, scores), q
            assert answer(arrays, "本台编辑部补充")[0] == answer(codec, "本台编辑部补充")[0] == 0
            same_positions(arrays)
        finally:
            for engine in (arrays, codec, earlier):
                engine.close()


def test_a_rebuild_joins_the_segments_arrays_into_one_set(builds, items, tmp_path):
    """A rebuild joins its segments' posting arrays into one set (whole.*), their only copy: each term's
    list is one run, in dictionary order, and the segments keep no arrays of their own. Answers are the
    same read from it or from the segments' arrays copied back out of it; joined again, from itself or
    from those arrays, it is the same set; an update that keeps it reads the set and the new segments'."""
    cut, grown = live_build(builds[1]), live_build(builds[2])
    segments = segments_of(builds[1])
    for folder in (cut, grown):
        assert (folder / joining.WHOLE_FILE).is_file()
    starts = np.load(cut / "whole.pstarts.npy")
    assert starts[0] == 0 and (np.diff(starts.astype(np.int64)) > 0).all()  # one run per term, in dictionary order
    assert starts[-1] == len(np.load(cut / "whole.pdocs.npy", mmap_mode="r"))
    joined = TermDictionary(*(np.load(cut / f"whole.{part}.npy") for part in TERM_PARTS))
    rows = [(field, joined.term(row)) for field in FIELDS for row in range(*joined.rows(field))]
    assert len(rows) == len(joined) and rows == sorted(set(rows))  # one row a term, by field and text
    assert not [name for seg in segments for name in postings.array_files(seg).values() if (cut / name).is_file()]
    apart, again = tmp_path / "apart", tmp_path / "again"
    for copy in (apart, again):
        shutil.copytree(cut, copy)
    split(apart, segments)
    joined, separate, kept = Engine(builds[1]), Engine(apart), Engine(builds[2])
    try:
        assert len(joined.current().cache.arrays.parts) == 1
        assert len(separate.current().cache.arrays.parts) == len(segments)
        assert 1 < len(kept.current().cache.arrays.parts) < len(segments_of(builds[2]))
        for q in queries(items) + ["source:央视网", "本台编辑部补充"]:
            for kw in ({}, {"sort": "newest"}):
                assert answer(separate, q, **kw) == answer(joined, q, **kw), q
        same_positions(joined)
    finally:
        for engine in (joined, separate, kept):
            engine.close()
    meta = json.loads((again / joining.WHOLE_FILE).read_text())
    joining.rejoin(again, segments)  # from the set itself: the same set again
    assert json.loads((again / joining.WHOLE_FILE).read_text()) == meta
    for name in joining.whole_files().values():
        assert np.array_equal(np.load(again / name), np.load(cut / name)), name
    joining.rejoin(apart, segments)  # from the segments' own arrays: the same set, and theirs are gone
    for name in joining.whole_files().values():
        assert np.array_equal(np.load(apart / name), np.load(cut / name)), name
    assert not [name for seg in segments for name in postings.array_files(seg).values() if (apart / name).is_file()]


def split(build, segments) -> None:
    """Give each segment the joined set covers its own arrays again, copied out of the set, and drop the set."""
    whole = {part: np.load(build / name, mmap_mode="r") for part, name in joining.whole_files().items()}
    counts = [seg.doc_count_all() for seg in segments]
    starts = np.concatenate(([0], np.cumsum(counts)))
    for k, seg in enumerate(segments):
        docmap = np.full(starts[-1], -1, dtype=np.int64)
        docmap[starts[k]:starts[k + 1]] = np.arange(counts[k])
        target = {part: build / name for part, name in postings.array_files(seg).items()}
        postings.copy_lists([(0, whole)], [], target, docmaps={0: docmap})
    for name in (*joining.whole_files().values(), joining.SKIP_FILE, joining.WHOLE_FILE):
        (build / name).unlink()


def test_long_lists_are_searched_by_their_skip_marks(builds, items, tmp_path, monkeypatch):
    """The joined set keeps every SKIP-th document number of its lists; a document probed in a long
    list is looked for on the one page of it the marks point to. Joined again with a mark every 16
    postings, in many ranges of keys, and forced on for every list, the answers and positions are those of a binary search over the
    lists (the same set with its marks' file cut short)."""
    cut = live_build(builds[1])
    pdocs = np.load(cut / "whole.pdocs.npy")
    assert np.array_equal(np.load(cut / joining.SKIP_FILE), pdocs[::joining.SKIP])
    marked, bare = tmp_path / "marked", tmp_path / "bare"
    shutil.copytree(cut, marked)
    shutil.copytree(cut, bare)
    (bare / joining.SKIP_FILE).write_bytes(b"\x93NUMPY")  # cut short: read as if there were none
    monkeypatch.setattr(joining, "SKIP", 16)
    monkeypatch.setattr(postings, "JOIN_POSTINGS", 5_000)  # joined a range of keys at a time, many ranges
    assert joining.rejoin(marked, segments_of(builds[1]))
    assert np.array_equal(np.load(marked / "whole.pdocs.npy"), pdocs)
    assert np.array_equal(np.load(marked / joining.SKIP_FILE), pdocs[::16])
    monkeypatch.setattr("indexer.arrays.WHOLE_LIST_PAGES", 0)  # no list is short enough to be read whole
    with_marks, without = Engine(marked), Engine(bare)
    try:
        arrays = with_marks.current().cache.arrays
        assert "pskip" in arrays.parts[0][1] and "pskip" not in without.current().cache.arrays.parts[0][1]
        for q in queries(items) + ["国人民", "本台编辑部补充"]:
            for kw in ({}, {"sort": "newest"}):
                assert answer(with_marks, q, **kw) == answer(without, q, **kw), q
        same_positions(with_marks)
        rng = np.random.default_rng(5)
        spans = postings.list_spans({"pstarts": np.load(cut / "whole.pstarts.npy")}, slice(None))
        for start, end in spans[np.argsort(spans[:, 1] - spans[:, 0])[-20:]].tolist():
            held = rng.choice(pdocs[start:end], 40, replace=False)
            others = rng.integers(0, pdocs.max() + 2, 40)
            local = np.unique(np.concatenate([held, others, [0, pdocs.max() + 1]])).astype(np.uint32)
            at, found = arrays._find(0, start, end, local)
            assert np.array_equal(found, np.isin(local, pdocs[start:end])) and found.sum() >= 40
            assert np.array_equal(pdocs[start + at[found]], local[found])
        # A list starting on a mark, asked only for documents before its first: no page to look on.
        start, end = next((a, b) for a, b in spans.tolist() if a % 16 == 0 and b - a > 32 and pdocs[a] > 0)
        below = np.arange(min(int(pdocs[start]), 3), dtype=np.uint32)
        at, found = arrays._find(0, start, end, below)
        assert len(at) == len(below) > 0 and not found.any()
    finally:
        with_marks.close()
        without.close()


def test_exact_reads_ask_for_each_run_of_pages_once():
    page = mmap.PAGESIZE
    runs = mapped.page_runs(np.array([5 * page + 10, 0, page - 1, 3 * page, 9 * page, 7 * page, 11 * page]),
                             np.array([6 * page + 1, 10, page + 1, 5 * page, 9 * page, 8 * page, 11 * page + 1]))
    # [0, 2): the first bytes and a read across the first page's end; [3, 8): three reads, each
    # starting on the page after the one before ends; nothing for the empty read at page 9; page 11 apart.
    assert runs == [(0, 2), (3, 8), (11, 12)]
    assert mapped.page_runs(np.array([4]), np.array([4])) == []


def same_positions(engine):
    """The positions the engine reads (the joined set first) are the ones Whoosh reads through the codec from
    each segment's own arrays, for sampled pair terms and documents (some not holding them)."""
    rng = random.Random(11)
    built = engine.current()
    with engine.borrowed(built) as searcher:
        reader = searcher.reader()
        for field in (TITLE_GRAMS, BODY_GRAMS):
            decode = searcher.schema[field].format.decode_positions
            terms = sorted(t.decode("utf-8") for t in reader.lexicon(field))
            for term in rng.sample(terms, 100):
                held = built.cache.get(searcher, field, term)[0].tolist()
                deleted = set() if built.cache.deleted is None else set(built.cache.deleted.tolist())
                others = [d for d in (rng.randrange(reader.doc_count_all()) for _ in range(5)) if d not in deleted]
                docs = np.unique(np.array(rng.sample(held, min(10, len(held))) + others, dtype=np.int64))
                kept = built.cache.arrays.positions(field, term, docs, decode)
                assert kept == whoosh_positions(searcher, field, term, docs), (field, term)
                assert set(kept) == set(docs.tolist()) & set(held) and all(kept.values())


def test_updates_keep_few_segments_and_drop_deletions_at_merges(builds):
    segments = segments_of(builds[2])
    outside = segments[joining.covered_count(live_build(builds[2]), segments) or 0:]  # the joined set's stay
    tiers = Counter(tier_of(s.doc_count()) for s in outside if s.doc_count() < 400 // 2)
    assert max(tiers.values(), default=0) <= MERGE_FACTOR
    assert sum(s.doc_count() for s in segments) == SAMPLE
    # The 60 replaced documents were deleted: the segment that held them was rewritten without them.
    assert sum(s.deleted_count() for s in segments) < 60
    assert all(s.deleted_count() <= MAX_DELETED * s.doc_count_all() for s in segments)


class Seg:
    """A stand-in for a Whoosh segment's counts, for the merge policy alone."""

    def __init__(self, docs: int, deleted: int = 0) -> None:
        self.docs, self.deleted = docs, deleted

    def doc_count_all(self) -> int:
        return self.docs

    def doc_count(self) -> int:
        return self.docs - self.deleted

    def deleted_count(self) -> int:
        return self.deleted


def test_the_merge_policy_is_tiered_and_bounded():
    large = [Seg(40_000) for _ in range(30)]
    assert plan_merges(large + [Seg(1_000) for _ in range(MERGE_FACTOR - 1)], jobs=2) == []
    small = [Seg(1_000) for _ in range(MERGE_FACTOR)]
    assert plan_merges(large + small, jobs=2) == [small]  # the small ones merge, the large stay
    many = [Seg(900 + i) for i in range(40)]
    plan = plan_merges(large + many, jobs=2)
    assert plan and all(sum(s.doc_count() for s in group) <= MERGE_DOCS for group in plan)
    assert sum(s.doc_count() for group in plan for s in group) <= MERGE_DOCS * 2
    assert plan[0][0] is many[0]  # smallest first
    holed = Seg(10_000, deleted=int(10_000 * MAX_DELETED) + 1)
    assert plan_merges(large + [holed], jobs=2) == [[holed]]
    assert plan_merges(large + [Seg(10_000, deleted=int(10_000 * MAX_DELETED) - 1)], jobs=2) == []
    # Work per update is capped: of many holed large segments, only what fits the budget.
    holes = [Seg(12_000, deleted=6_000) for _ in range(10)]
    assert len(plan_merges(holes, jobs=2)) == 2


def test_an_update_reads_keys_not_stored_documents(tmp_path, items, monkeypatch):
    index_dir = tmp_path / "index"
    build_index([str(write_items(tmp_path / "a.jsonl", items[:300]))], index_dir, jobs=1)
    reads = []
    real = SegmentReader.stored_fields
    monkeypatch.setattr(SegmentReader, "stored_fields", lambda self, n: reads.append(n) or real(self, n))
    batch = write_items(tmp_path / "b.jsonl", items[290:310])  # 10 known (unchanged), 10 new
    summary = update_index([str(batch)], index_dir, jobs=1)
    assert (summary["added"], summary["unchanged"], summary["replaced"]) == (10, 10, 0)
    assert reads == []
    engine = Engine(index_dir)
    try:
        hits = engine.search(SearchRequest(q=f'"{items[305]["title"]}"', size=50), now=NOW)["hits"]
        assert items[305]["id"] in [h["id"] for h in hits]
        assert engine.search(SearchRequest(q='"量子纠缠态的猫"'), now=NOW)["total"] == 0
    finally:
        engine.close()


def test_rebuild_and_update_report_their_peak_memory(tmp_path, runner, items):
    index_dir = tmp_path / "index"
    result = runner.invoke(cli, ["rebuild", str(write_items(tmp_path / "a.jsonl", items[:50])),
                                 "--index", str(index_dir), "--json"])
    summary = json.loads(result.stdout)
    assert result.exit_code == 0 and summary["peak_memory_mb"] > 0 and summary["segments"] >= 1
    text = runner.invoke(cli, ["update", str(write_items(tmp_path / "b.jsonl", items[50:60])),
                               "--index", str(index_dir)]).stdout
    assert "peak memory" in text
    assert "added 10," in text


def test_the_worker_count_follows_memory_as_well_as_cores():
    assert jobs_for(8, None) == 8
    assert jobs_for(8, 64 * 10**9) == 8
    assert jobs_for(8, PARENT_BYTES + 3 * WORKER_BYTES) == 3
    assert jobs_for(2, PARENT_BYTES) == 1  # never fewer than one
