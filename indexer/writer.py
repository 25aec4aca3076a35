"""Rebuild the index from the sources in memory that does not grow with the archive.

A rebuild makes three passes; none holds the archive's documents:

1. scan (all cores): parse every source and keep of each article only a Stub:
   64-bit keys of its folded text, original URL and JSON Lines id, its
   snapshot time, the key of its title and its content hash. The parent
   resolves identities on these keys (Identities): two inputs are one article
   when a key agrees; the first one seen names it, the newest snapshot is kept.
2. write (all cores): the kept inputs, in source order, are split into one
   contiguous share per worker; a worker parses each of its inputs again,
   builds the document and adds it to a SegmentStream, which writes a segment
   whenever the postings it holds reach a memory budget. A process writes one
   segment and exits; a fresh one goes on with the share. Related headlines go
   to a SQLite spool per segment.
3. headlines: the spools are merged (the newest entry of each headline wins)
   and the headline-only documents written as more segments.

The folder, TOC, columns and swap are as before: the old build keeps serving
until the new one is complete.
"""

from __future__ import annotations

import ctypes
import gc
import gzip
import json
import multiprocessing
import os
import shutil
import sqlite3
import sys
import time
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import connection
from pathlib import Path

import numpy as np
from tqdm import tqdm
from whoosh import index as whoosh_index

from indexer import analysis, columns, joining, segment, store, stories
from indexer.documents import (  # NothingIndexedError is part of this module's API
    NothingIndexedError, Report, article_document, article_id, content_hash, headline_document, related_entry,
    text_hash, to_epoch, write_meta,
)
from indexer.keys import key_of
from indexer.memory import PeakMemory, available_memory
from indexer.postings import SATURATED
from indexer.schema import HEADLINE, build_schema
from indexer.snapshot import SnapshotError, _parse_record, iter_sources, load_snapshot

SCAN_BATCH = 256  # JSON Lines records per scan task
SERIAL_BELOW = 64  # fewer snapshot files than this are parsed in the parent
NO_TIME = -(1 << 62)  # snapshot time of an input without one: older than any
# Memory the parent holds at a million items (identity keys, ids), and what one
# writer needs besides: its segment's postings, their sort at finish, the interpreter.
PARENT_BYTES = 600_000_000
WORKER_BYTES = segment.SEGMENT_BYTES * 2 + 250_000_000
SPOOL_ROWS = 1000


def default_jobs() -> int:
    """Return how many worker processes to use: one per core, no more than the memory available allows."""
    return jobs_for(os.cpu_count() or 1, available_memory())


def jobs_for(cores: int, available: int | None) -> int:
    """Return the worker processes for so many cores and bytes of available memory (None: unknown)."""
    if available is None:
        return cores
    return int(max(1, min(cores, (available - PARENT_BYTES) // WORKER_BYTES)))


def release_memory() -> None:
    """Collect garbage and give the allocator's free pages back to the system (glibc; elsewhere a no-op)."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


# -- pass 1: scan ---------------------------------------------------------------


@dataclass(slots=True)
class Stub:
    """What the scan keeps of one article."""

    ref: int  # source number << 32 | line number (0 for a snapshot file)
    keys: tuple[int, ...]  # identity keys of its folded text, URL and JSON Lines id
    snapshot: int  # snapshot time in epoch seconds, NO_TIME when unknown
    name: str  # article_id: the id of the article it names, when first seen
    title: int  # key of the folded title
    content: int  # content hash
    path_key: int  # key of its path
    related: bool  # whether it lists related headlines
    path: str = ""
    warnings: list[str] = field(default_factory=list)


def stub_of(item, ref: int):
    """Return the Stub of a parsed Article (a SnapshotError stays as it is)."""
    if isinstance(item, SnapshotError):
        return item
    folded = text_hash(item)
    keys = ["t" + folded] + (["u" + item.url] if item.url else []) + (["i" + item.doc_id] if item.doc_id else [])
    return Stub(
        ref=ref, keys=tuple(key_of(k) for k in keys),
        snapshot=to_epoch(item.snapshot_time) if item.snapshot_time else NO_TIME,
        name=article_id(item, folded),
        title=key_of(analysis.normalize(item.title)), content=int(content_hash(item), 16),
        path_key=key_of(item.path), related=bool(item.related), path=item.path, warnings=item.warnings,
    )


def load_one(path: str):
    """Parse one snapshot file; a SnapshotError (or a parser bug, as one) instead of raising."""
    try:
        return load_snapshot(path)
    except SnapshotError as exc:
        return exc
    except Exception as exc:  # a parser bug must cost one file, not the run
        return SnapshotError(path, f"unreadable: {type(exc).__name__}: {exc}")


def _scan_task(task) -> tuple[int, list]:
    """Return (files finished, stubs and errors) of one scan task."""
    kind, number, path, lines, done = task
    if kind == "txt":
        return done, [stub_of(load_one(path), number << 32)]
    if kind == "error":
        return done, [SnapshotError(path, lines)]
    return done, [stub_of(_parse_record(raw, f"{path}:{line}"), number << 32 | line) for line, raw in lines]


def _open_dump(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _scan_tasks(snapshots: list[str], dumps: list[str], sources: list[str]) -> Iterator[tuple]:
    """Yield the scan's tasks in source order: a snapshot file each, JSON Lines in batches of lines.

    A task is (kind, source number, path, lines or reason, files it finishes).
    """
    for path in snapshots:
        sources.append(path)
        yield "txt", len(sources) - 1, path, None, 1
    for path in dumps:
        sources.append(path)
        number = len(sources) - 1
        batches = _batches(path)
        previous = next(batches, [])
        for batch in batches:
            if isinstance(previous, list) and previous:
                yield "jsonl", number, path, previous, 0
            previous = batch
        if isinstance(previous, str):
            yield "error", number, path, previous, 1
        else:
            yield "jsonl", number, path, previous, 1


def _batches(path: str) -> Iterator[list | str]:
    """Yield the non-empty lines of a JSON Lines file in batches; a reason instead when it breaks off."""
    batch = []
    try:
        with _open_dump(path) as stream:
            for line, raw in enumerate(stream, 1):
                if raw.strip():
                    batch.append((line, raw))
                if len(batch) >= SCAN_BATCH:
                    yield batch
                    batch = []
    except (OSError, EOFError, zlib.error):
        if batch:
            yield batch
        yield "unreadable file"
        return
    if batch:
        yield batch


def ordered_map(pool, func: Callable, tasks: Iterable, window: int) -> Iterator:
    """Like pool.imap, in order, but with at most `window` tasks queued (imap reads every task at once)."""
    pending: deque = deque()
    for task in tasks:
        pending.append(pool.apply_async(func, (task,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


class Ids:
    """A list of id strings held as one UTF-8 buffer and end offsets: ~1 object, not one per id.

    A million str objects spread over the heap keep the allocator's pages alive
    after the scan's key map is dropped (~200 MB at a million items, measured),
    and every read from a forked writer would copy their pages.
    """

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends = array("q")

    def append(self, text: str) -> None:
        self.data += text.encode("utf-8", "surrogatepass")
        self.ends.append(len(self.data))

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        if i < 0:
            i += len(self.ends)
        first = self.ends[i - 1] if i else 0
        return self.data[first:self.ends[i]].decode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self.ends)))


class Identities:
    """The articles a scan found, one group per identity, kept as keys and numbers only.

    A group's arrays describe its kept input (the newest snapshot); ids[group]
    is its document id, named by the first input seen.
    """

    def __init__(self) -> None:
        self.names: dict[int, int] = {}  # identity key -> group
        self.ids = Ids()
        self.refs = array("q")
        self.snapshots = array("q")
        self.titles = array("Q")
        self.contents = array("Q")
        self.paths = array("Q")
        self.related = False
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, stub: Stub) -> None:
        group = next((self.names[k] for k in stub.keys if k in self.names), None)
        if group is None:
            group = len(self.ids)
            self.ids.append(stub.name)
            for values in (self.refs, self.snapshots, self.titles, self.contents, self.paths):
                values.append(0)
        else:
            self.duplicates += 1
            if (self.snapshots[group], self.refs[group]) > (stub.snapshot, stub.ref):
                return
        self.refs[group], self.snapshots[group] = stub.ref, stub.snapshot
        self.titles[group], self.contents[group], self.paths[group] = stub.title, stub.content, stub.path_key
        self.related = self.related or stub.related
        for key in stub.keys:
            self.names.setdefault(key, group)


def scan(sources: Iterable[str], jobs: int, report: Report, progress: bool) -> tuple[Identities, list[str]]:
    """Parse every source once; return the identities found and the source paths by number."""
    paths = list(iter_sources(sources))
    snapshots = [p for p in paths if p.endswith(".txt")]
    dumps = [p for p in paths if not p.endswith(".txt")]
    report.files = len(paths)
    found, numbered = Identities(), []
    tasks = _scan_tasks(snapshots, dumps, numbered)
    bar = tqdm(total=len(paths), unit="file", desc="read", disable=not progress, file=sys.stderr)
    with bar:
        if jobs <= 1 or (len(snapshots) < SERIAL_BELOW and not dumps):
            results = map(_scan_task, tasks)
            _collect(results, found, report, bar)
        else:
            with multiprocessing.get_context("fork").Pool(jobs, initializer=store.init_worker) as pool:
                _collect(ordered_map(pool, _scan_task, tasks, window=jobs * 4), found, report, bar)
    report.duplicates = found.duplicates
    return found, numbered


def _collect(results: Iterable[tuple[int, list]], found: Identities, report: Report, bar) -> None:
    for done, items in results:
        bar.update(done)
        for item in items:
            if isinstance(item, SnapshotError):
                report.skip(item.path, item.reason)
                continue
            report.inputs += 1
            for warning in item.warnings:
                report.warn(item.path, warning)
            found.add(item)


# -- pass 2: write the articles --------------------------------------------------


class TitleIndex:
    """Folded title -> id of the article with that title, over sorted 64-bit keys."""

    def __init__(self, keys: np.ndarray, id_of: Callable[[int], str]) -> None:
        # The last article with a title names it, as a dict built in order would.
        reverse = keys[::-1]
        unique, first = np.unique(reverse, return_index=True)
        self.keys = unique
        self.rows = (len(keys) - 1 - first).astype(np.int64)
        self.id_of = id_of

    def __call__(self, folded_title: str) -> str | None:
        key = np.uint64(key_of(folded_title))
        at = int(np.searchsorted(self.keys, key))
        if at < len(self.keys) and self.keys[at] == key:
            return self.id_of(int(self.rows[at]))
        return None


def _no_title(folded_title: str) -> None:
    return None


@dataclass
class WritePlan:
    """What the write pass's workers read (inherited at fork): the kept inputs in source order."""

    sources: list[str]
    refs: np.ndarray  # sorted
    groups: np.ndarray  # the group of each ref
    ids: Ids
    article_of: Callable[[str], str | None]


_plan: WritePlan | None = None
_counter = None


def _init_writer(counter) -> None:
    global _counter
    store.init_worker()
    _counter = counter


def plan_writes(found: Identities, sources: list[str], groups: np.ndarray,
                article_of: Callable[[str], str | None]) -> WritePlan:
    """Return the plan to write the given groups, in source order."""
    refs = np.frombuffer(found.refs, dtype=np.int64)[groups]
    order = np.argsort(refs, kind="stable")
    return WritePlan(sources, refs[order], groups[order], found.ids, article_of)


def write_articles(folder: Path, plan: WritePlan, jobs: int, report: Report, progress: bool) -> tuple[list, list[str]]:
    """Write the plan's articles as segments in folder; return the segments and the headline spools.

    Each worker takes a contiguous share of the plan. A writer process writes
    one segment from where its share stands and exits; a fresh process goes on
    with the share. A process that had written several segments would keep
    what its allocator did not give back after each one (measured: +100 to
    150 MB a segment), so a bigger archive would need more memory; this way a
    worker's peak is one segment's, whatever the archive.
    """
    global _plan
    total = len(plan.refs)
    if not total:
        return [], []
    parts = max(1, min(jobs, total // 256 or 1))
    bounds = [total * i // parts for i in range(parts + 1)]
    bar = tqdm(total=total, unit="doc", desc="index", disable=not progress, file=sys.stderr)
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    running: dict = {}  # result pipe -> (process, first, last)
    done: list[tuple[int, tuple]] = []

    def start(first: int, last: int, position: Position) -> None:
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_write_task, args=((str(folder), first, last, position), writer, counter),
                                  daemon=True)
        process.start()
        writer.close()
        running[reader] = (process, first, last)

    _plan = plan
    gc.freeze()  # writers fork from here: their collections must not touch (and so copy) the parent's objects
    try:
        with bar:
            for i in range(parts):
                start(bounds[i], bounds[i + 1], Position())
            while running:
                for reader in connection.wait(list(running), timeout=0.5):
                    process, first, last = running.pop(reader)
                    try:
                        ok, value = reader.recv()
                    except EOFError:
                        process.join()
                        raise RuntimeError(f"a writer process ended with exit code {process.exitcode}") from None
                    finally:
                        reader.close()
                    process.join()
                    if not ok:
                        raise value
                    written, spool, notes, stopped, position = value
                    done.append((first, (written, spool, notes)))
                    if stopped < last:
                        start(stopped, last, position)
                bar.update(counter.value - bar.n)
                if counter.value:
                    store.crash_point("writing")
            bar.update(total - bar.n)
    finally:
        _plan = None
        gc.unfreeze()
        for process, _, _ in running.values():
            process.kill()
            process.join()
    segments, spools = [], []
    for _, (written, spool, notes) in sorted(done, key=lambda item: item[0]):
        segments += written
        spools.append(spool)
        for path, reason in notes:
            if reason == SATURATED:
                report.warn(path, reason)
            else:
                report.lose(path, reason)
        report.articles += sum(s.doc_count_all() for s in written)
    return segments, spools


def _write_task(task, result, counter) -> None:
    """Run _write_part in a writer process; send (True, its result) or (False, the exception)."""
    _init_writer(counter)
    try:
        answer = (True, _write_part(task))
    except BaseException as exc:  # the parent re-raises it
        answer = (False, exc)
    try:
        result.send(answer)
    except Exception as exc:  # an exception that does not pickle
        result.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}; {exc}")))
    result.close()


@dataclass(slots=True)
class Position:
    """Where reading a JSON Lines source stands: its number, the last line read and the byte offset after it."""

    number: int = -1
    line: int = 0
    offset: int = 0


def _write_part(task) -> tuple[list, str, list, int, Position]:
    """Write plan items first .. last - 1 until one segment is full.

    Return the segments, the spool, notes (inputs lost, or indexed with a warning), where it stopped and where its
    reading stood, so that the next process seeks there instead of reading
    the source again from its first line.
    """
    folder, first, last, position = task
    plan = _plan
    stream = segment.SegmentStream(folder, progress=_counter)
    spool = HeadlineSpool(Path(folder) / f"headlines.{first}.sqlite")
    notes = []  # (path, reason): inputs lost, or indexed with a warning
    at = first
    for group, item in _reread(plan, first, last, position):
        at += 1
        if isinstance(item, SnapshotError):
            notes.append((item.path, f"changed during the run: {item.reason}"))
            continue
        key = plan.ids[group]
        related = [related_entry(h, plan.article_of) for h in item.related]
        if stream.add(article_document(key, item, related)):
            notes.append((item.path, SATURATED))  # indexed, with a warning
        spool.add(related, key)
        if stream.segments:
            break
    segments = stream.finish()
    spool.close()
    return segments, str(spool.path), notes, at, position


def _reread(plan: WritePlan, first: int, last: int, position: Position) -> Iterator[tuple[int, object]]:
    """Yield (group, Article or SnapshotError) for refs[first:last], reading each source once.

    position says where an earlier reader of the share stopped; it is kept up to date.
    """
    at = first
    while at < last:
        number = int(plan.refs[at]) >> 32
        end = min(last, int(np.searchsorted(plan.refs, (number + 1) << 32)))
        path = plan.sources[number]
        if path.endswith(".txt"):
            yield int(plan.groups[at]), load_one(path)
        else:
            if position.number != number:
                position.number, position.line, position.offset = number, 0, 0
            lines = (plan.refs[at:end] & 0xFFFFFFFF).tolist()
            yield from zip(plan.groups[at:end].tolist(), _read_lines(path, lines, position))
        at = end


def _read_lines(path: str, wanted: list[int], position: Position) -> Iterator[object]:
    """Yield the records of the given line numbers (ascending) of a JSON Lines file.

    Reading starts at position (a line before the first wanted one) and moves it
    on past each record yielded.
    """
    at = 0
    try:
        with _open_dump(path) as stream:
            if position.offset:
                stream.seek(position.offset)  # a gzip stream decompresses up to it, without parsing lines
            line, offset = position.line, position.offset
            for raw in stream:
                line += 1
                offset += len(raw)
                if line == wanted[at]:
                    position.line, position.offset = line, offset
                    yield _parse_record(raw, f"{path}:{line}")
                    at += 1
                    if at == len(wanted):
                        return
    except (OSError, EOFError, zlib.error):
        pass
    for line in wanted[at:]:
        yield SnapshotError(f"{path}:{line}", "unreadable file")


# -- pass 3: headline-only entries -------------------------------------------------


class HeadlineSpool:
    """Related headlines on disk, one row per headline id: the newest entry seen wins."""

    SCHEMA = ("CREATE TABLE IF NOT EXISTS h (id TEXT PRIMARY KEY, published TEXT NOT NULL, entry TEXT NOT NULL, "
              "parent TEXT NOT NULL, seq INTEGER NOT NULL)")
    NEWER = ("ON CONFLICT(id) DO UPDATE SET published = excluded.published, entry = excluded.entry, "
             "parent = excluded.parent WHERE excluded.published > h.published")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute(self.SCHEMA)
        self.rows: list[tuple] = []
        self.seq = 0

    def add(self, related: list[dict], parent: str) -> None:
        for entry in related:
            if entry["kind"] == HEADLINE and entry["id"]:
                self.rows.append((entry["id"], entry["published"] or "", json.dumps(entry, ensure_ascii=False),
                                  parent, self.seq))
                self.seq += 1
        if len(self.rows) >= SPOOL_ROWS:
            self.flush()

    def flush(self) -> None:
        self.db.executemany(f"INSERT INTO h VALUES (?, ?, ?, ?, ?) {self.NEWER}", self.rows)
        self.rows.clear()

    def close(self) -> None:
        self.flush()
        self.db.commit()
        self.db.close()

    @classmethod
    def merged(cls, path: Path, parts: list[str]) -> HeadlineSpool:
        """Return one spool with the rows of the parts, in order (each part's rows after the last's)."""
        spool = cls(path)
        offset = 0
        for part in parts:
            spool.db.execute("ATTACH DATABASE ? AS part", (part,))
            spool.db.execute(f"INSERT INTO h SELECT id, published, entry, parent, seq + ? FROM part.h "
                             f"WHERE true ORDER BY seq {cls.NEWER}", (offset,))
            offset += spool.db.execute("SELECT count(*) FROM part.h").fetchone()[0]
            spool.db.commit()
            spool.db.execute("DETACH DATABASE part")
            os.unlink(part)
        return spool

    def entries(self) -> Iterator[tuple[dict, str]]:
        """Yield (entry, parent id) in the order first seen."""
        for entry, parent in self.db.execute("SELECT entry, parent FROM h ORDER BY seq"):
            yield json.loads(entry), parent


def write_headlines(folder: Path, spools: list[str], report: Report,
                    keep: Callable[[dict], bool] = lambda doc: True) -> list:
    """Write the headline-only documents of the spools (those keep accepts) as segments; return them."""
    spool = HeadlineSpool.merged(folder / "headlines.sqlite", spools)
    stream = segment.SegmentStream(str(folder))
    try:
        for entry, parent in spool.entries():
            doc = headline_document(entry, parent)
            if keep(doc):
                stream.add(doc)
                report.headlines += 1
    finally:
        spool.close()
        os.unlink(spool.path)
    return stream.finish()


# -- the rebuild -------------------------------------------------------------------


def build_index(sources: Iterable[str], index_dir: str | os.PathLike, jobs: int | None = None,
                userdict: str | None = None, progress: bool = False, wait: float = 30.0) -> dict:
    """Rebuild the index at index_dir from the sources and swap it in; return the summary.

    :raises NothingIndexedError: when no source yielded a document (the old index stays).
    :raises store.IndexBusyError: when another writer holds the index.
    """
    started = time.monotonic()
    jobs = jobs or default_jobs()
    report = Report()
    segmenter = analysis.load_segmenter(userdict)
    index_dir = Path(index_dir)
    with PeakMemory() as peak, store.writer_lock(index_dir, wait=wait, what="rebuild"):
        tmp = store.new_build_dir(index_dir)
        try:
            found, sources_by_number = scan(sources, jobs, report, progress)
            if not len(found):
                raise NothingIndexedError("nothing could be indexed", report.as_dict())
            store.crash_point("parsed")
            whoosh_index.create_in(str(tmp), build_schema())
            article_of = _no_title
            if found.related:
                article_of = TitleIndex(np.frombuffer(found.titles, dtype=np.uint64), found.ids.__getitem__)
            plan = plan_writes(found, sources_by_number, np.arange(len(found), dtype=np.int64), article_of)
            del found.names  # the write pass needs ids, titles and refs only
            release_memory()
            segments, spools = write_articles(tmp, plan, jobs, report, progress)
            segments += write_headlines(tmp, spools, report)
            if not segments:
                raise NothingIndexedError("nothing could be indexed", report.as_dict())
            segment.write_toc(str(tmp), segments)
            joining.join_arrays(tmp, segments)
            grouped = stories.assign(tmp, segments)
            columns.write_columns(tmp)
            store.crash_point("written")
            elapsed = time.monotonic() - started
            meta = write_meta(tmp, report, segmenter, elapsed, jobs=jobs, segments=len(segments),
                              peak_memory_mb=peak.peak_mb, stories=grouped)
            final = store.swap_in(index_dir, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    total = report.articles + report.headlines
    return {
        **meta,
        "peak_memory_mb": peak.peak_mb,
        "index": str(index_dir),
        "build": str(final),
        "documents": total,
        "elapsed_s": round(elapsed, 3),
        "docs_per_s": round(total / elapsed, 1) if elapsed else None,
        "size_bytes": store.dir_size(final),
    }
