"""Turn parsed snapshots and JSON Lines items into index documents and write a build.

``build_index`` is the whole rebuild: read every source (in parallel), drop
exact duplicates (keeping the newest snapshot), add related headlines that have
no full article, write a fresh build folder and swap it in.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tqdm import tqdm
from whoosh import index as whoosh_index

from indexer import analysis, columns, segment, store
from indexer.schema import ARTICLE, HEADLINE, build_schema
from indexer.snapshot import Article, SnapshotError, iter_sources, load_snapshot, read_jsonl

MAX_SKIPPED_PATHS = 5  # paths listed per skip reason in a summary
_LINE_WARNING = re.compile(r"line (\d+): (.*)")
SEGMENT_DOCS = 40_000  # most documents in one segment: bounds a process's memory (~1 GB)


class NothingIndexedError(RuntimeError):
    """No source yielded a document; carries the report of what was skipped."""

    def __init__(self, message: str, report: dict) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class Report:
    """What a rebuild saw: counts, skips and warnings by reason (with a few paths each)."""

    files: int = 0
    inputs: int = 0
    articles: int = 0
    headlines: int = 0
    duplicates: int = 0
    skipped: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    warnings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counts: Counter = field(default_factory=Counter)  # ("skipped" | "warning", reason) -> count

    def skip(self, path: str, reason: str) -> None:
        """Record a source that could not be indexed."""
        self.inputs += 1
        self._note(self.skipped, "skipped", reason, path)

    def warn(self, path: str, warning: str) -> None:
        """Record a warning; "line N: reason" is filed under reason as path:N."""
        if found := _LINE_WARNING.fullmatch(warning):
            path, warning = f"{path}:{found.group(1)}", found.group(2)
        self._note(self.warnings, "warning", warning, path)

    def _note(self, paths: dict[str, list[str]], kind: str, reason: str, path: str) -> None:
        self.counts[kind, reason] += 1
        if len(paths[reason]) < MAX_SKIPPED_PATHS:  # counts grow with the archive, path lists do not
            paths[reason].append(path)

    def as_dict(self) -> dict:
        """Return the counts with at most MAX_SKIPPED_PATHS paths per reason."""
        skipped = sum(self.counts["skipped", reason] for reason in self.skipped)
        dropped = skipped + self.duplicates
        return {
            "files": self.files,
            "inputs": self.inputs,
            "articles": self.articles,
            "headlines": self.headlines,
            "duplicates": self.duplicates,
            "skipped": skipped,
            "skipped_by_reason": self._by_reason(self.skipped, "skipped"),
            "warnings": sum(self.counts["warning", reason] for reason in self.warnings),
            "warnings_by_reason": self._by_reason(self.warnings, "warning"),
            "dropped_share": round(dropped / self.inputs, 4) if self.inputs else 0.0,
            "many_dropped": dropped * 10 > self.inputs,
        }

    def _by_reason(self, paths: dict[str, list[str]], kind: str) -> dict:
        return {reason: {"count": self.counts[kind, reason], "paths": found}
                for reason, found in sorted(paths.items())}


def _load_one(path: str) -> Article | SnapshotError:
    try:
        return load_snapshot(path)
    except SnapshotError as exc:
        return exc
    except Exception as exc:  # a parser bug must cost one file, not the run
        return SnapshotError(path, f"unreadable: {type(exc).__name__}: {exc}")


def read_articles(sources: Iterable[str], jobs: int, report: Report, progress: bool) -> Iterator[Article]:
    """Yield every readable article of the sources, recording the rest in the report."""
    paths = list(iter_sources(sources))
    snapshots = [p for p in paths if p.endswith(".txt")]
    dumps = [p for p in paths if not p.endswith(".txt")]
    report.files = len(paths)
    bar = tqdm(total=len(paths), unit="file", desc="read", disable=not progress, file=sys.stderr)
    with bar:
        yield from _record(_parse_parallel(snapshots, jobs), report, bar)
        for path in dumps:
            yield from _record(read_jsonl(path), report, None)
            bar.update(1)


def _parse_parallel(paths: list[str], jobs: int) -> Iterator[Article | SnapshotError]:
    if jobs <= 1 or len(paths) < 64:
        yield from map(_load_one, paths)
        return
    with multiprocessing.get_context("fork").Pool(jobs, initializer=store.init_worker) as pool:
        yield from pool.imap(_load_one, paths, chunksize=16)


def _record(items: Iterable[Article | SnapshotError], report: Report, bar) -> Iterator[Article]:
    for item in items:
        if bar is not None:
            bar.update(1)
        if isinstance(item, SnapshotError):
            report.skip(item.path, item.reason)
            continue
        report.inputs += 1
        for warning in item.warnings:
            report.warn(item.path, warning)
        yield item


def to_epoch(moment: datetime | None) -> int:
    """Return seconds since 1970 of a Beijing wall-clock time (0 when unknown)."""
    return calendar.timegm(moment.timetuple()) if moment else 0


def _hash(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:16]


def text_hash(article: Article) -> str:
    """Return the hash of an article's folded title and body: equal for re-crawls of one text."""
    paragraphs = (" ".join(analysis.normalize(p).split()) for p in article.body)
    return _hash(" ".join(analysis.normalize(article.title).split()), "\n".join(paragraphs))


def article_id(article: Article) -> str:
    """Return a document id that stays the same across crawls of one article.

    The JSON Lines id, else the original URL, else the folded text: two pages
    with the same title, time and source but different bodies are two articles.
    """
    if article.doc_id:
        return article.doc_id
    if article.url:
        return "u" + _hash(article.url)
    return "a" + text_hash(article)


def headline_id(title: str) -> str:
    """Return the id of a headline-only entry."""
    return "h" + _hash(analysis.normalize(title))


def dedupe(articles: Iterable[Article], report: Report) -> dict[str, Article]:
    """Keep one article per identity: the newest snapshot of it.

    Two inputs are one article when they share the folded text (title and
    body), the original URL or the JSON Lines id; the first one seen names it.
    """
    kept: dict[str, Article] = {}
    names: dict[str, str] = {}  # "t<text hash>" / "u<url>" / "i<id>" -> kept id
    for article in articles:
        keys = ["t" + text_hash(article)]
        keys += ["u" + article.url] if article.url else []
        keys += ["i" + article.doc_id] if article.doc_id else []
        key = next((names[k] for k in keys if k in names), None)
        if key is None:
            key = article_id(article)
        else:
            report.duplicates += 1
            if _snapshot_key(kept[key]) > _snapshot_key(article):
                continue
        for name in keys:
            names.setdefault(name, key)
        kept[key] = article
    return kept


def _snapshot_key(article: Article) -> tuple:
    return (article.snapshot_time or datetime.min, article.path)


def article_document(key: str, article: Article, related: list[dict]) -> dict:
    """Return the Whoosh document of a full article."""
    body = "\n".join(article.body)
    published = article.published or article.snapshot_time
    return {
        "id": key,
        "kind": ARTICLE,
        "title": article.title,
        "body": body,
        "category": article.category or "",
        "source": article.source or "",
        "published": to_epoch(published),
        "path": article.path,
        "content_hash": _hash(article.title, body, article.category, article.source, published, article.url),
        "url": article.url or "",
        "origin": article.origin or "",
        "snapshot_time": article.snapshot_time.isoformat(sep=" ") if article.snapshot_time else "",
        "related": json.dumps(related, ensure_ascii=False),
        "parent": "",
    }


def headline_document(entry: dict, parent: str) -> dict:
    """Return the Whoosh document of a headline seen only in a related list."""
    title = entry["title"]
    published = datetime.fromisoformat(entry["published"]) if entry["published"] else None
    return {
        "id": entry["id"],
        "kind": HEADLINE,
        "title": title,
        "body": entry["teaser"],
        "category": entry["category"] or "",
        "source": "",
        "published": to_epoch(published),
        "path": parent,
        "content_hash": _hash(title, entry["teaser"], entry["category"], published, parent),
        "url": "",
        "origin": "",
        "snapshot_time": "",
        "related": "[]",
        "parent": parent,
    }


def assemble_documents(articles: Iterable[Article], report: Report,
                       known: dict[str, str] | None = None) -> Iterator[dict]:
    """Yield the documents of deduplicated articles, then of headline-only entries.

    known maps folded titles of full articles already indexed to their ids: their
    headlines link to them and get no entry of their own.
    """
    kept = dedupe(articles, report)
    title_ids = {**(known or {}), **{analysis.normalize(a.title): key for key, a in kept.items()}}
    headlines: dict[str, tuple[dict, str]] = {}
    for key, article in kept.items():
        related = [_related_entry(h, title_ids) for h in article.related]
        for entry in related:
            if entry["kind"] == HEADLINE and entry["id"] and _newer(entry, headlines.get(entry["id"])):
                headlines[entry["id"]] = (entry, key)
        report.articles += 1
        yield article_document(key, article, related)
    for entry, parent in headlines.values():
        report.headlines += 1
        yield headline_document(entry, parent)


def _related_entry(headline, title_ids: dict[str, str]) -> dict:
    """Return a related entry: its id is the article of its title, else its own entry's; a
    teaser-only entry (no title to show as a hit) has no entry and, unless it names an
    indexed article, no id."""
    text = headline.title or headline.teaser
    article = title_ids.get(analysis.normalize(text))
    return {
        "id": article or (headline_id(text) if headline.title else None),
        "kind": ARTICLE if article else HEADLINE,
        "title": headline.title,
        "teaser": headline.teaser,
        "published": headline.published.isoformat(sep=" ") if headline.published else None,
        "category": headline.category,
    }


def _newer(entry: dict, old: tuple[dict, str] | None) -> bool:
    return old is None or (entry["published"] or "") > (old[0]["published"] or "")


def write_documents(build: Path, documents: list[dict], jobs: int, progress: bool) -> None:
    """Write the documents into a fresh index in a build folder: one segment per process.

    Fewer, larger segments keep the index small (each segment has its own term
    table) and queries fast; SEGMENT_DOCS bounds a process's memory.
    """
    whoosh_index.create_in(str(build), build_schema())
    size = max(1, min(SEGMENT_DOCS, -(-len(documents) // jobs)))
    chunks = [documents[i:i + size] for i in range(0, len(documents), size)]
    bar = tqdm(total=len(documents), unit="doc", desc="index", disable=not progress, file=sys.stderr)
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    with bar, context.Pool(min(jobs, len(chunks)), initializer=_set_counter, initargs=(counter,)) as pool:
        pending = pool.map_async(_build_chunk, [(str(build), chunk) for chunk in chunks])
        while not pending.ready():
            pending.wait(0.5)
            bar.update(counter.value - bar.n)
            if counter.value:
                store.crash_point("writing")
        segments = pending.get()
        bar.update(len(documents) - bar.n)
    segment.write_toc(str(build), segments)


_counter = None


def _set_counter(counter) -> None:
    global _counter
    store.init_worker()
    _counter = counter


def _build_chunk(args: tuple[str, list[dict]]):
    return segment.build_segment(*args, progress=_counter)


def write_meta(build: Path, report: Report, segmenter: analysis.Segmenter, elapsed: float, **extra) -> dict:
    """Write newsearch.json (and the user dictionary) into a build folder; return the meta."""
    if segmenter.userdict_bytes:
        (build / store.USERDICT_FILE).write_bytes(segmenter.userdict_bytes)
    meta = {
        "analyzer_version": analysis.ANALYZER_VERSION,
        "dict_hash": segmenter.dict_hash,
        "built_at": datetime.now().isoformat(sep=" ", timespec="seconds"),
        "build_seconds": round(elapsed, 3),
        **report.as_dict(),
        **extra,
    }
    (build / store.META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return meta


def build_index(sources: Iterable[str], index_dir: str | os.PathLike, jobs: int | None = None,
                userdict: str | None = None, progress: bool = False, wait: float = 30.0) -> dict:
    """Rebuild the index at index_dir from the sources and swap it in; return the summary.

    :raises NothingIndexedError: when no source yielded a document (the old index stays).
    :raises store.IndexBusyError: when another writer holds the index.
    """
    started = time.monotonic()
    jobs = jobs or os.cpu_count() or 1
    report = Report()
    segmenter = analysis.load_segmenter(userdict)
    index_dir = Path(index_dir)
    with store.writer_lock(index_dir, wait=wait, what="rebuild"):
        tmp = store.new_build_dir(index_dir)
        try:
            documents = list(assemble_documents(read_articles(sources, jobs, report, progress), report))
            if not documents:
                raise NothingIndexedError("nothing could be indexed", report.as_dict())
            store.crash_point("parsed")
            write_documents(tmp, documents, jobs, progress)
            columns.write_columns(tmp)
            store.crash_point("written")
            elapsed = time.monotonic() - started
            meta = write_meta(tmp, report, segmenter, elapsed)
            final = store.swap_in(index_dir, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    total = report.articles + report.headlines
    return {
        **meta,
        "index": str(index_dir),
        "build": str(final),
        "documents": total,
        "elapsed_s": round(elapsed, 3),
        "docs_per_s": round(total / elapsed, 1) if elapsed else None,
        "size_bytes": store.dir_size(final),
    }
