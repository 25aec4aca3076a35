"""The rebuild's first pass: parse every source once and resolve which inputs are one article.

Of each input the scan keeps only a Stub: 64-bit keys of its folded text,
original URL and JSON Lines id, its snapshot time, the key of its title and its
content hash. The parent resolves identities on these keys (Identities): two
inputs are one article when a key agrees; the first one seen names it, the
newest snapshot is kept. Snapshot files are parsed one per task, JSON Lines
dumps in batches of lines, on all cores; results come back in source order.
"""

from __future__ import annotations

import gzip
import multiprocessing
import sys
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from tqdm import tqdm

from indexer import analysis, store
from indexer.documents import Report, article_id, content_hash, text_hash, to_epoch
from indexer.keys import key_of
from indexer.snapshot import SnapshotError, _parse_record, iter_sources, load_snapshot

SCAN_BATCH = 256  # JSON Lines records per scan task
SERIAL_BELOW = 64  # fewer snapshot files than this are parsed in the parent
NO_TIME = -(1 << 62)  # snapshot time of an input without one: older than any


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


def open_dump(path: str):
    """Open a JSON Lines file for reading bytes, gunzipping a .gz one."""
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
        with open_dump(path) as stream:
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
