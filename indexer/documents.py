"""What a build is made of: the run's report, document ids and the documents themselves.

An article's id stays the same across crawls (article_id); its document is
built from the parsed Article (article_document), and a related headline that
no full article carries becomes a headline-only document (headline_document).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from indexer import analysis, store
from indexer.schema import ARTICLE, HEADLINE
from indexer.snapshot import Article, Headline

MAX_SKIPPED_PATHS = 5  # paths listed per skip reason in a summary
_LINE_WARNING = re.compile(r"line (\d+): (.*)")


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

    def lose(self, path: str, reason: str) -> None:
        """Record an input the scan read but the write pass could not (its file changed meanwhile)."""
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
            **dropped_figures(self.inputs, skipped, self.duplicates),
        }

    def _by_reason(self, paths: dict[str, list[str]], kind: str) -> dict:
        return {reason: {"count": self.counts[kind, reason], "paths": found}
                for reason, found in sorted(paths.items())}


def dropped_figures(inputs: int, skipped: int, duplicates: int) -> dict:
    """Return the share of inputs dropped (skipped or duplicates) and whether it is over a tenth."""
    dropped = skipped + duplicates
    return {"dropped_share": round(dropped / inputs, 4) if inputs else 0.0, "many_dropped": dropped * 10 > inputs}


def to_epoch(moment: datetime | None) -> int:
    """Return seconds since 1970 of a Beijing wall-clock time (0 when unknown)."""
    return calendar.timegm(moment.timetuple()) if moment else 0


def _hash(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:16]


def text_hash(article: Article) -> str:
    """Return the hash of an article's folded title and body: equal for re-crawls of one text."""
    paragraphs = (" ".join(analysis.normalize(p).split()) for p in article.body)
    return _hash(" ".join(analysis.normalize(article.title).split()), "\n".join(paragraphs))


def article_id(article: Article, folded: str | None = None) -> str:
    """Return a document id that stays the same across crawls of one article.

    The JSON Lines id, else the original URL, else the folded text (folded:
    its text_hash, when known): two pages with the same title, time and source
    but different bodies are two articles.
    """
    if article.doc_id:
        return article.doc_id
    if article.url:
        return url_id(article.url)
    return "a" + (folded or text_hash(article))


def url_id(url: str) -> str:
    """Return the id of an article known by its original URL."""
    return "u" + _hash(url)


def headline_id(title: str) -> str:
    """Return the id of a headline-only entry."""
    return "h" + _hash(analysis.normalize(title))


def content_hash(article: Article) -> str:
    """Return the hash of what an article's document shows: equal when nothing changed."""
    published = article.published or article.snapshot_time
    return _hash(article.title, "\n".join(article.body), article.category, article.source, published, article.url)


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
        "content_hash": content_hash(article),
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


def related_entry(headline: Headline, article_of: Callable[[str], str | None]) -> dict:
    """Return a related entry: its id is the article of its title, else its own entry's; a
    teaser-only entry (no title to show as a hit) has no entry and, unless it names an
    indexed article, no id. article_of maps a folded title to the id of the article with it."""
    text = headline.title or headline.teaser
    article = article_of(analysis.normalize(text))
    return {
        "id": article or (headline_id(text) if headline.title else None),
        "kind": ARTICLE if article else HEADLINE,
        "title": headline.title,
        "teaser": headline.teaser,
        "published": headline.published.isoformat(sep=" ") if headline.published else None,
        "category": headline.category,
    }


def write_meta(build: Path, report: Report, segmenter, elapsed: float, **extra) -> dict:
    """Write newsearch.json (and the user dictionary) into a build folder; return the meta."""
    if segmenter.userdict_bytes:
        (build / store.USERDICT_FILE).write_bytes(segmenter.userdict_bytes)
    meta = {
        "format_version": store.FORMAT_VERSION,
        "analyzer_version": analysis.ANALYZER_VERSION,
        "dict_hash": segmenter.dict_hash,
        "built_at": datetime.now().isoformat(sep=" ", timespec="seconds"),
        "build_seconds": round(elapsed, 3),
        **report.as_dict(),
        **extra,
    }
    (build / store.META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return meta


