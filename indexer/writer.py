"""Rebuild the index from the sources in memory that does not grow with the archive.

A rebuild makes three passes; none holds the archive's documents:

1. scan (all cores, scan.py): parse every source and keep of each article only
   a few 64-bit keys; the parent resolves on them which inputs are one article.
2. write (all cores): the kept inputs, in source order, are split into one
   contiguous share per worker; a worker parses each of its inputs again,
   builds the document and adds it to a SegmentStream, which writes a segment
   whenever the postings it holds reach a memory budget. A process writes one
   segment and exits; a fresh one goes on with the share. Related headlines go
   to a SQLite spool per segment.
3. headlines (headlines.py): the spools are merged (the newest entry of each
   headline wins) and the headline-only documents written as more segments.

The folder, TOC, columns and swap are as before: the old build keeps serving
until the new one is complete.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import connection
from pathlib import Path

import numpy as np
from tqdm import tqdm
from whoosh import index as whoosh_index

from indexer import analysis, columns, joining, lexicon, segment, store, stories
from indexer.documents import (  # NothingIndexedError is part of this module's API
    NothingIndexedError, Report, article_document, related_entry, write_meta,
)
from indexer.headlines import HeadlineSpool, TitleIndex, write_headlines
from indexer.memory import PeakMemory, available_memory
from indexer.postings import SATURATED
from indexer.scan import Identities, Ids, load_one, open_dump, scan
from indexer.schema import build_schema
from indexer.snapshot import SnapshotError, _parse_record

# Memory the parent holds at a million items (identity keys, ids), and what one
# writer needs besides: its segment's postings, their sort at finish, the interpreter.
PARENT_BYTES = 600_000_000
WORKER_BYTES = segment.SEGMENT_BYTES * 2 + 250_000_000


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


# -- pass 2: write the articles --------------------------------------------------


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
    _run_and_send(lambda: _write_part(task), result)


def _run_and_send(work: Callable, result) -> None:
    """Send (True, work()) or (False, the exception it raised) through the pipe, then close it."""
    try:
        answer = (True, work())
    except BaseException as exc:  # the parent re-raises it
        answer = (False, exc)
    try:
        result.send(answer)
    except Exception as exc:  # an exception that does not pickle
        result.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}; {exc}")))
    result.close()


def _join_then_the_rest(tmp: Path, segments: list) -> dict:
    """Join the posting arrays, group the stories, write the columns and the lexicon; return the stories' summary."""
    joining.join_arrays(tmp, segments)
    return _the_rest(tmp, segments)


def _the_rest(tmp: Path, segments: list) -> dict:
    grouped = stories.assign(tmp, segments)
    columns.write_columns(tmp)
    lexicon.write_lexicon(tmp, segments)
    return grouped


def _join_beside_the_rest(tmp: Path, segments: list) -> dict:
    """_join_then_the_rest on two cores: the rest in a forked process while this one joins (~11 s of a 130 s
    rebuild of the corpus). The rest reads the segments' own arrays or the finished set, whichever it
    finds (whole.json is written last), so theirs are dropped only once both are done."""
    context = multiprocessing.get_context("fork")
    reader, sender = context.Pipe(duplex=False)
    process = context.Process(target=_run_and_send, args=(lambda: _the_rest(tmp, segments), sender), daemon=True)
    process.start()
    sender.close()
    try:
        joined = joining.join_arrays(tmp, segments, drop=False)
    finally:
        try:
            ok, value = reader.recv()
        except EOFError:
            ok, value = False, RuntimeError(f"the process grouping stories ended with exit code {process.exitcode}")
        process.join()
        reader.close()
    if not ok:
        raise value
    if joined:
        joining.drop_covered(tmp, segments)
    return value


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
        with open_dump(path) as stream:
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
            grouped = _join_beside_the_rest(tmp, segments) if jobs > 1 else _join_then_the_rest(tmp, segments)
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
