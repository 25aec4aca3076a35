"""Update the live index in place of a rebuild: add, replace, delete, merge.

An update never writes into the live build. It links the live build's files
into a new build folder (segment files never change once written), finds
what changed from the segments' keys files (ids, content hashes, title, path
and parent keys: no stored document is read), writes the new and changed
documents as new segments, marks the documents it replaces or deletes in the
new build's TOC, merges segments by a tiered policy and swaps the new build
in like a rebuild does. An update that finds nothing to change writes nothing.
A new article whose content hash a live article has (a re-crawl of it under
another id) is a duplicate of that article: not written, counted in duplicates.

Merges (plan_merges) re-index the live documents of some segments from their
stored fields, so deleted documents are dropped there:

- a segment with more than MAX_DELETED of its documents deleted is rewritten;
- small segments (under MERGE_DOCS / 2 live documents) outside the joined
  arrays fall in tiers by size: tier 0 holds fewer than MERGE_FACTOR
  documents, tier 1 fewer than MERGE_FACTOR², and so on. When a tier holds
  MERGE_FACTOR segments, the smallest of them (as many as fit in MERGE_DOCS)
  are merged into one, which falls in a tier above: merged segments merge again;
- one update merges at most MERGE_DOCS live documents per worker process
  (the merges run in parallel); what is left waits for the next update.

Then the joined arrays (plan_join): when MERGE_FACTOR large segments lie outside
them, or a merge rewrote a segment they cover, they are joined again from the
segments they covered and every large one; small segments stay outside, to be
merged. So a term look-up reads at most the joined set, MERGE_FACTOR - 1 large
segments and about MERGE_FACTOR per tier (parts_bound), however many updates
came; a small update never rewrites most of the index, and a rebuild's large
segments are only rewritten when many of their documents are gone.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC
from whoosh.reading import SegmentReader

from indexer import analysis, columns, entities, joining, lexicon, segment, store, stories
from indexer.documents import Report, write_meta
from indexer.headlines import TitleIndex, write_headlines
from indexer.keys import key_of, keys_file
from indexer.memory import PeakMemory
from indexer.scan import scan
from indexer.schema import build_schema
from indexer.segment import INDEX_NAME, SegmentKeys
from indexer.writer import build_index, default_jobs, plan_writes, write_articles

MAX_DELETED = 0.3  # a segment with more deleted documents than this is rewritten
MERGE_FACTOR = 8  # this many small segments are merged
MERGE_DOCS = 8_000  # most live documents one merge re-indexes: bounds its time and memory


def update_index(sources: Iterable[str], index_dir, jobs: int | None = None, delete_missing: bool = False,
                 progress: bool = False, wait: float = 30.0) -> dict:
    """Apply the sources to the index at index_dir; return the summary (changed False when nothing did)."""
    index_dir = Path(index_dir)
    if store.live_build(index_dir) is None:
        return {**build_index(sources, index_dir, jobs, progress=progress, wait=wait), "changed": True}
    started = time.monotonic()
    jobs = jobs or default_jobs()
    segmenter = analysis.load_segmenter(_userdict(store.live_build(index_dir)))
    report = Report()
    with PeakMemory() as peak, store.writer_lock(index_dir, wait=wait, what="update"):
        live = store.live_build(index_dir)
        existing = Existing(live)
        found, sources_by_number = scan(sources, jobs, report, progress)
        plan = _plan(existing, found, delete_missing)
        report.duplicates += plan["recrawls"]
        summary = {"added": len(plan["add"]), "replaced": len(plan["replace"]),
                   "deleted": len(plan["delete"]), "unchanged": plan["unchanged"]}
        if not (plan["add"] or plan["replace"] or plan["delete"]):
            return {**report.as_dict(), **summary, "changed": False, "message": "nothing changed",
                    "index": str(index_dir), "build": str(live), "peak_memory_mb": peak.peak_mb}
        tmp = store.new_build_dir(index_dir)
        try:
            _link_build(live, tmp)
            store.crash_point("parsed")
            groups = np.array(plan["add"] + plan["replace"], dtype=np.int64)
            writes = plan_writes(found, sources_by_number, groups, _titles(existing, found, groups))
            new, spools = write_articles(tmp, writes, jobs, report, progress)
            gone = set(plan["delete"]) | set(plan["replaced_rows"])
            new += write_headlines(tmp, spools, report, keep=_headline_filter(existing, summary, gone))
            store.crash_point("writing")
            for row in gone:
                existing.segments[existing.seg[row]].delete_document(int(existing.docnum[row]))
            frozen = joining.covered_count(tmp, existing.segments) or 0
            segments, merged = merge(tmp, existing.segments + new, jobs, frozen)
            segments, to_join = plan_join(tmp, segments)
            segment.write_toc(str(tmp), segments)
            if to_join is not None:
                joining.rejoin(tmp, segments[:to_join])
            written = np.array([key_of(found.ids[int(g)]) for g in groups], dtype=np.uint64)
            grouped = stories.assign(tmp, segments, previous=live, fresh_ids=written)
            columns.write_columns(tmp, previous=live)
            lexicon.write_lexicon(tmp, segments, previous=live, jobs=jobs)
            store.crash_point("written")
            meta = write_meta(tmp, report, segmenter, time.monotonic() - started, **summary,
                              jobs=jobs, segments=len(segments), merged=merged,
                              peak_memory_mb=peak.peak_mb, stories=grouped)
            final = store.swap_in(index_dir, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return {**meta, **summary, "changed": True, "index": str(index_dir), "build": str(final),
            "peak_memory_mb": peak.peak_mb, "elapsed_s": round(time.monotonic() - started, 3),
            "size_bytes": store.dir_size(final)}


def _userdict(build: Path) -> str | None:
    path = build / store.USERDICT_FILE
    return str(path) if path.is_file() else None


class Existing:
    """The documents of a build, from its segments' keys files: one row per document number.

    Arrays (all rows): id_key, content, kind (1 = headline), title_key,
    parent_key, path_key, seg (index into segments), docnum (in its segment),
    live (not deleted).
    """

    NAMES = ("id_key", "content", "kind", "title_key", "parent_key", "path_key")

    def __init__(self, build: Path) -> None:
        self.build = Path(build)
        self.segments = TOC.read(FileStorage(str(build)), INDEX_NAME).segments
        parts = [_segment_keys(self.build, seg) for seg in self.segments]
        for name in self.NAMES:
            setattr(self, name, np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, np.uint64))
        self.seg = np.concatenate([np.full(len(p["kind"]), i, np.int32) for i, p in enumerate(parts)])
        self.docnum = np.concatenate([np.arange(len(p["kind"]), dtype=np.int64) for p in parts])
        self.live = np.ones(len(self.seg), dtype=bool)
        for i, seg in enumerate(self.segments):
            if seg.has_deletions():
                self.live[np.flatnonzero(self.seg == i)[sorted(seg.deleted_docs())]] = False
        self._text = [(p["ids"], p["id_ends"], p["paths"], p["path_ends"]) for p in parts]
        rows = np.flatnonzero(self.live)
        order = np.argsort(self.id_key[rows], kind="stable")
        self.by_id, self.by_id_rows = self.id_key[rows][order], rows[order]

    def find(self, doc_id: str) -> int:
        """Return the row of the live document with this id, or -1."""
        key = np.uint64(key_of(doc_id))
        at = int(np.searchsorted(self.by_id, key))
        while at < len(self.by_id) and self.by_id[at] == key:
            row = int(self.by_id_rows[at])
            if self.id_of(row) == doc_id:
                return row
            at += 1
        return -1

    def id_of(self, row: int) -> str:
        return self._decode(row, 0)

    def path_of(self, row: int) -> str:
        return self._decode(row, 2)

    def _decode(self, row: int, which: int) -> str:
        text, ends = self._text[self.seg[row]][which:which + 2]
        docnum = int(self.docnum[row])
        start = int(ends[docnum - 1]) if docnum else 0
        return bytes(text[start:int(ends[docnum])]).decode("utf-8", "surrogatepass")


def _segment_keys(build: Path, seg) -> dict[str, np.ndarray]:
    """Return a segment's keys file; for a segment without one, the same arrays from its stored fields."""
    path = build / keys_file(seg)
    if path.is_file():
        with np.load(path, allow_pickle=False) as keys:
            return {name: keys[name] for name in (*Existing.NAMES, "ids", "id_ends", "paths", "path_ends")}
    keys = SegmentKeys()
    reader = SegmentReader(FileStorage(str(build)), build_schema(), seg)
    try:
        for docnum in range(seg.doc_count_all()):
            doc = reader.stored_fields(docnum)
            keys.add(doc, analysis.normalize(doc.get("title") or ""), 0, 0)
    finally:
        reader.close()
    return {
        **{name: np.array(keys.numbers[name], dtype=np.uint64) for name in keys.NUMBERS},
        "kind": np.array(keys.kind, dtype=np.uint8),
        "ids": np.frombuffer(bytes(keys.text["ids"]), dtype=np.uint8), "id_ends": np.array(keys.ends["id_ends"]),
        "paths": np.frombuffer(bytes(keys.text["paths"]), dtype=np.uint8),
        "path_ends": np.array(keys.ends["path_ends"]),
    }


def _plan(existing: Existing, found, delete_missing: bool) -> dict:
    """Decide which groups to add and replace and which existing rows to delete."""
    rows = [existing.find(doc_id) for doc_id in found.ids]
    contents = np.frombuffer(found.contents, dtype=np.uint64)
    new = [g for g, row in enumerate(rows) if row < 0]
    # A re-crawl under another id of an article the index holds (the same content hash) is a duplicate of it.
    again = np.isin(contents[new], existing.content[existing.live & (existing.kind == 0)])
    add = [g for g, dup in zip(new, again.tolist()) if not dup]
    replace = [g for g, row in enumerate(rows) if row >= 0 and existing.content[row] != contents[g]]
    ids = set(found.ids)
    articles = existing.live & (existing.kind == 0)
    headlines = existing.live & (existing.kind == 1)
    delete = set()
    # A full article arrived for a headline-only entry.
    titles = np.frombuffer(found.titles, dtype=np.uint64)
    delete.update(int(r) for r in np.flatnonzero(headlines & np.isin(existing.title_key, titles)))
    # The snapshot file now holds another article.
    path_ids = dict(zip(np.frombuffer(found.paths, dtype=np.uint64).tolist(), found.ids))
    for row in np.flatnonzero(articles & np.isin(existing.path_key, np.array(list(path_ids), dtype=np.uint64))):
        doc_id, path = existing.id_of(int(row)), existing.path_of(int(row))
        if path_ids[int(existing.path_key[row])] != doc_id and ":" not in path:
            delete.add(int(row))
    if delete_missing:
        exists: dict[str, bool] = {}
        for row in np.flatnonzero(articles).tolist():
            file = existing.path_of(row).rsplit(":", 1)[0]
            if file not in exists:
                exists[file] = Path(file).exists()
            if not exists[file]:
                delete.add(row)
    delete = {row for row in delete if existing.id_of(row) not in ids}
    if delete:  # the headlines of deleted articles go with them
        parents = np.array([key_of(existing.id_of(row)) for row in delete], dtype=np.uint64)
        for row in np.flatnonzero(headlines & np.isin(existing.parent_key, parents)).tolist():
            if existing.id_of(row) not in ids:
                delete.add(row)
    recrawls = int(again.sum())
    return {"add": add, "replace": replace, "replaced_rows": [rows[g] for g in replace], "recrawls": recrawls,
            "delete": sorted(delete), "unchanged": len(rows) - len(add) - len(replace) - recrawls}


def _titles(existing: Existing, found, groups: np.ndarray):
    """Return folded title -> article id over the live articles and the new ones (new ones first)."""
    if not found.related:
        return lambda folded: None
    articles = np.flatnonzero(existing.live & (existing.kind == 0))
    old = TitleIndex(existing.title_key[articles], lambda i: existing.id_of(int(articles[i])))
    new = TitleIndex(np.frombuffer(found.titles, dtype=np.uint64), found.ids.__getitem__)
    return lambda folded: new(folded) or old(folded)


def _headline_filter(existing: Existing, summary: dict, gone: set[int]):
    """Return a filter of headline documents: new or changed ones pass (a changed one's old row goes)."""

    def keep(doc: dict) -> bool:
        row = existing.find(doc["id"])
        if row >= 0 and row not in gone and int(existing.content[row]) == int(doc["content_hash"], 16):
            summary["unchanged"] += 1
            return False
        if row >= 0:
            gone.add(row)
            summary["replaced"] += 1
        else:
            summary["added"] += 1
        return True

    return keep


def _link_build(live: Path, tmp: Path) -> None:
    """Give the new build the live build's files as hard links (copies where links fail)."""
    for path in live.iterdir():
        if path.is_file() and path.name not in (store.META_FILE, store.USERDICT_FILE, columns.COLUMNS_FILE,
                                                entities.ENTITIES_FILE):
            try:
                os.link(path, tmp / path.name)
            except OSError:
                shutil.copy2(path, tmp / path.name)


def _deleted_share(seg) -> float:
    return seg.deleted_count() / seg.doc_count_all() if seg.doc_count_all() else 0.0


def tier_of(docs: int) -> int:
    """Return the tier of a small segment of so many live documents: 0 below MERGE_FACTOR, 1 below its square..."""
    tier, top = 0, MERGE_FACTOR
    while docs >= top:
        tier, top = tier + 1, top * MERGE_FACTOR
    return tier


def parts_bound() -> int:
    """Return the most parts a term look-up reads after an update: the joined set, the large segments
    outside it (fewer than MERGE_FACTOR) and MERGE_FACTOR a tier (a tier merged into fills the one above
    until the next update merges it)."""
    tiers = tier_of(MERGE_DOCS // 2 - 1) + 1
    return 1 + (MERGE_FACTOR - 1) + tiers * MERGE_FACTOR


def plan_merges(segments: list, jobs: int, frozen: int = 0) -> list[list]:
    """Return the groups of segments to merge, each group into new segments (see the module's docstring).

    The first `frozen` segments (those the joined arrays cover) are rewritten for their deletions only.
    """
    budget = MERGE_DOCS * max(1, jobs)
    groups: list[list] = []
    work = 0
    for seg in sorted(segments, key=_deleted_share, reverse=True):
        if _deleted_share(seg) > MAX_DELETED and (not groups or work + seg.doc_count() <= budget):
            groups.append([seg])
            work += seg.doc_count()
    chosen = {id(s) for group in groups for s in group}
    tiers: dict[int, list] = {}
    for seg in segments[frozen:]:
        if id(seg) not in chosen and seg.doc_count() < MERGE_DOCS // 2:
            tiers.setdefault(tier_of(seg.doc_count()), []).append(seg)
    for tier in sorted(tiers):
        small = sorted(tiers[tier], key=lambda s: s.doc_count())
        while len(small) >= MERGE_FACTOR:
            group = []
            while small and len(group) < MERGE_FACTOR and sum(s.doc_count() for s in group) + small[0].doc_count() <= MERGE_DOCS:
                group.append(small.pop(0))
            size = sum(s.doc_count() for s in group)
            if len(group) < 2 or work + size > budget:
                break
            groups.append(group)
            work += size
    return groups


def plan_join(folder: Path, segments: list) -> tuple[list, int | None]:
    """Return the segments in their new order and how many of the first the joined arrays must cover anew
    (None: they stay as they are). Those are the segments they covered and every large one."""
    covered = joining.covered_count(folder, segments)
    large = [s for s in segments[covered or 0:] if s.doc_count() >= MERGE_DOCS // 2]
    if covered is not None and len(large) < MERGE_FACTOR:
        return segments, None
    joined = set(joining.joined_ids(folder))
    head = [s for s in segments if s.segment_id() in joined or s.doc_count() >= MERGE_DOCS // 2]
    chosen = {id(s) for s in head}
    return head + [s for s in segments if id(s) not in chosen], len(head)


def merge(build: Path, segments: list, jobs: int, frozen: int = 0) -> tuple[list, int]:
    """Merge by plan_merges; return the segments after it and how many documents were re-indexed."""
    groups = plan_merges(segments, jobs, frozen)
    if not groups:
        return segments, 0
    tasks = _merge_tasks(groups)
    if len(tasks) > 1 and jobs > 1:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(tasks)), initializer=store.init_worker) as pool:
            results = pool.map(_merge_task, [(str(build), task) for task in tasks])
    else:
        results = [_merge_task((str(build), task)) for task in tasks]
    merged = {id(s) for group in groups for s in group}
    kept = [s for s in segments if id(s) not in merged]
    return kept + [s for written in results for s in written], sum(s.doc_count() for g in groups for s in g)


def _merge_tasks(groups: list[list]) -> list[list[tuple]]:
    """Split the merges into tasks of at most MERGE_DOCS live documents: (segment, first, last) runs."""
    tasks = []
    for group in groups:
        task, size = [], 0
        for seg in group:
            first = 0
            deleted = set(seg.deleted_docs()) if seg.has_deletions() else ()
            live = [d for d in range(seg.doc_count_all()) if d not in deleted] if deleted else None
            count = seg.doc_count()
            while first < count:
                take = min(count - first, MERGE_DOCS - size)
                docs = live[first:first + take] if live is not None else range(first, first + take)
                task.append((seg, docs))
                size += take
                first += take
                if size >= MERGE_DOCS:
                    tasks.append(task)
                    task, size = [], 0
        if task:
            tasks.append(task)
    return tasks


def _merge_task(args) -> list:
    folder, runs = args
    storage = FileStorage(folder)
    schema = build_schema()
    stream = segment.SegmentStream(folder, max_docs=MERGE_DOCS)  # one merge, one segment
    for seg, docs in runs:
        reader = SegmentReader(storage, schema, seg)
        try:
            for docnum in docs:
                stream.add(dict(reader.stored_fields(docnum)))
        finally:
            reader.close()
    return stream.finish()
