"""Update the live index in place of a rebuild: add, replace, delete, merge.

An update never writes into the live build. It links the live build's files
into a new build folder (segment files never change once written), marks the
documents it replaces or deletes in the new build's TOC, adds one new segment
with the new and changed documents, merges small or mostly-deleted segments
back into one (re-indexing their documents from stored fields), and swaps the
new build in like a rebuild does. An update that finds nothing to change
writes nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC

from indexer import analysis, columns, segment, store
from indexer.schema import ARTICLE, HEADLINE, build_schema
from indexer.writer import Report, assemble_documents, build_index, read_articles, write_meta

MAX_SEGMENTS = 4  # more than this after an update: the small ones are merged
MAX_DELETED = 0.3  # a segment with more deleted documents than this is rewritten


def update_index(sources: Iterable[str], index_dir, jobs: int | None = None, delete_missing: bool = False,
                 progress: bool = False, wait: float = 30.0) -> dict:
    """Apply the sources to the index at index_dir; return the summary (changed False when nothing did)."""
    index_dir = Path(index_dir)
    if store.live_build(index_dir) is None:
        return {**build_index(sources, index_dir, jobs, progress=progress, wait=wait), "changed": True}
    started = time.monotonic()
    jobs = jobs or os.cpu_count() or 1
    segmenter = analysis.load_segmenter(_userdict(store.live_build(index_dir)))
    report = Report()
    with store.writer_lock(index_dir, wait=wait, what="update"):
        live = store.live_build(index_dir)
        existing = _existing(live)
        articles = read_articles(sources, jobs, report, progress)
        documents = {d["id"]: d for d in assemble_documents(articles, report, known=_known_titles(existing))}
        plan = _plan(existing, documents, delete_missing)
        summary = {"added": len(plan["add"]), "replaced": len(plan["replace"]),
                   "deleted": len(plan["delete"]), "unchanged": plan["unchanged"]}
        if not (plan["add"] or plan["replace"] or plan["delete"]):
            return {**report.as_dict(), **summary, "changed": False, "message": "nothing changed",
                    "index": str(index_dir), "build": str(live)}
        tmp = store.new_build_dir(index_dir)
        try:
            _link_build(live, tmp)
            store.crash_point("parsed")
            _write_changes(tmp, existing, [documents[i] for i in plan["add"] + plan["replace"]],
                           set(plan["replace"]) | set(plan["delete"]))
            columns.write_columns(tmp)
            store.crash_point("written")
            meta = write_meta(tmp, report, segmenter, time.monotonic() - started, **summary)
            final = store.swap_in(index_dir, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return {**meta, **summary, "changed": True, "index": str(index_dir), "build": str(final),
            "elapsed_s": round(time.monotonic() - started, 3), "size_bytes": store.dir_size(final)}


def _userdict(build: Path) -> str | None:
    path = build / store.USERDICT_FILE
    return str(path) if path.is_file() else None


def _existing(build: Path) -> dict[str, dict]:
    """Return the live documents of a build by id: kind, title, path, parent, content hash."""
    keep = ("kind", "title", "path", "parent", "content_hash")
    with whoosh_index.open_dir(str(build)).searcher() as searcher:
        return {d["id"]: {k: d.get(k, "") for k in keep} for d in searcher.all_stored_fields()}


def _known_titles(existing: dict[str, dict]) -> dict[str, str]:
    return {analysis.normalize(d["title"]): key for key, d in existing.items() if d["kind"] == ARTICLE}


def _plan(existing: dict[str, dict], documents: dict[str, dict], delete_missing: bool) -> dict:
    """Decide what to add, replace and delete."""
    add = [i for i in documents if i not in existing]
    replace = [i for i, d in documents.items() if i in existing and existing[i]["content_hash"] != d["content_hash"]]
    titles = {analysis.normalize(d["title"]) for d in documents.values() if d["kind"] == ARTICLE}
    paths = {d["path"]: i for i, d in documents.items() if d["kind"] == ARTICLE}
    delete = set()
    for key, old in existing.items():
        if key in documents:
            continue
        if old["kind"] == HEADLINE and analysis.normalize(old["title"]) in titles:
            delete.add(key)  # a full article arrived for this headline
        elif old["kind"] == ARTICLE and paths.get(old["path"], key) != key and not old["path"].count(":"):
            delete.add(key)  # the snapshot file now holds another article
        elif delete_missing and old["kind"] == ARTICLE and not Path(old["path"].rsplit(":", 1)[0]).exists():
            delete.add(key)
    delete |= {k for k, old in existing.items()
               if old["kind"] == HEADLINE and old["parent"] in delete and k not in documents}
    unchanged = len(documents) - len(add) - len(replace)
    return {"add": add, "replace": replace, "delete": sorted(delete - set(replace)), "unchanged": unchanged}


def _link_build(live: Path, tmp: Path) -> None:
    """Give the new build the live build's files as hard links (copies where links fail)."""
    for path in live.iterdir():
        if path.is_file() and path.name not in (store.META_FILE, store.USERDICT_FILE, columns.COLUMNS_FILE):
            try:
                os.link(path, tmp / path.name)
            except OSError:
                shutil.copy2(path, tmp / path.name)


def _write_changes(build: Path, existing: dict, documents: list[dict], gone: set[str]) -> None:
    """Mark gone documents deleted, add a segment of new ones, merge, and write the TOC."""
    storage = FileStorage(str(build))
    toc = TOC.read(storage, segment.INDEX_NAME)
    segments = toc.segments
    ix = whoosh_index.open_dir(str(build))
    with ix.reader() as reader:
        offsets = _offsets(segments)
        for key in gone:
            docnum = reader.first_id("id", key)
            if docnum is not None:
                seg, base = offsets(docnum)
                seg.delete_document(docnum - base)
    if documents:
        segments.append(segment.build_segment(str(build), documents))
    store.crash_point("writing")
    segments = _merge(build, segments)
    segment.write_toc(str(build), segments)


def _offsets(segments: list):
    bases, total = [], 0
    for seg in segments:
        bases.append((total, seg))
        total += seg.doc_count_all()

    def find(docnum: int):
        for base, seg in reversed(bases):
            if docnum >= base:
                return seg, base
        raise KeyError(docnum)

    return find


def _deleted_share(seg) -> float:
    return seg.deleted_count() / seg.doc_count_all() if seg.doc_count_all() else 0.0


def _merge(build: Path, segments: list) -> list:
    """Rewrite mostly-deleted segments, and the smallest when there are too many, as one."""
    merge = [s for s in segments if _deleted_share(s) > MAX_DELETED]
    rest = sorted((s for s in segments if s not in merge), key=lambda s: s.doc_count(), reverse=True)
    if len(rest) > MAX_SEGMENTS:
        merge += rest[MAX_SEGMENTS - 1:]
        rest = rest[:MAX_SEGMENTS - 1]
    if not merge or (len(merge) == 1 and not merge[0].deleted_count()):
        return segments
    documents = _stored_documents(build, merge)
    return rest + ([segment.build_segment(str(build), documents)] if documents else [])


def _stored_documents(build: Path, segments: list) -> list[dict]:
    """Return the live documents of some segments, rebuilt from their stored fields."""
    from whoosh.reading import SegmentReader

    storage = FileStorage(str(build))
    schema = build_schema()
    documents = []
    for seg in segments:
        reader = SegmentReader(storage, schema, seg)
        try:
            documents.extend(dict(reader.stored_fields(d)) for d in reader.all_doc_ids())
        finally:
            reader.close()
    return documents
