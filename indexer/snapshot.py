"""Read crawled news snapshots and JSON Lines dumps into Article records.

A snapshot is one crawled page saved as plain text. The crawler's layout, as
on its real page (../shared/seeds/ beside the checkout), blocks apart by blank
lines::

    • 我的订阅                 breadcrumb: a line per item, marked by •, ?, *, -, >, |
      • 汽车                   or nothing (the last item is the category when the meta has none)

    <title>

    类别:汽车 发布时间:2023-12-30 07:47:00 来源:每日看点快看
                              meta, the anchor: ':' or '：'; fields apart by anything
                              (NBSP, spaces, U+3000, '?'), in any order, any of them
                              missing; may span lines. The title is the line above it
    本文转自:中国新闻网        origin, optional; may also be the last body line

    <paragraph>               body, one paragraph a line; the title again, alone or
    <title>                   plus a 图/图片/组图 marker, is an image placeholder and is
    <caption>                 dropped; the caption after it is body text

    以上内容为资讯信息快照…     crawler footer: its notes are dropped,
    快照生成时间:2023-12-30 09:45:34   the snapshot time and
    本站信息快照查询为…
    信息原文地址:https://...           the original URL (may be empty) are kept

    <headline title>          related headlines, no blank lines between them and
    <teaser>                  no header: an entry is the lines up to and including a
    2023-07-09 11:53:00       time line; one line = teaser only (may start with ...)
    更多关于汽车的资讯:        starts a list whose entries are in category 汽车
    ...

The older layout is read too: one breadcrumb line (首页 > 汽车 > 正文, items
apart by > ＞ » /), no blank lines, lists under a header (相关新闻:, 相关阅读:
…). Blank lines and the whitespace around lines count only where noted. How
the head (breadcrumb, title, meta) is found is in indexer/pagehead.py; a page
without a meta line has its first line that is no breadcrumb as its title.

Times: YYYY-MM-DD HH:MM[:SS], YYYY/MM/DD HH:MM, YYYY年MM月DD日 HH:MM or a bare
date, naive Beijing time. The body ends at the footer, or at the first list
header when there is no footer; a page with neither whose last run of
unbroken lines ends in a time line has that run as its list. Boilerplate
(责任编辑:…, 【纠错】, 打印, 关闭, 分享到) never reaches the body. A line that
cannot be placed (a list entry that no time line closes) is kept in the body,
never dropped, with a warning naming its line.

A problem that costs one field goes into Article.warnings, as one of: "no meta line"
(then neither "no 发布时间" nor "no 来源"), "no 发布时间", "bad 发布时间", "no 来源", "no category", "empty body", "no footer", "no 快照生成时间",
"bad 快照生成时间", "bad 信息原文地址" (not http or https), "bad related time",
"line N: related entry without time, kept in body" (JSON Lines: "no date",
"bad date", "bad url", "empty body"). SnapshotError is kept for a file that is
empty, binary or undecodable, or a page without a title.

JSON Lines files (.jsonl, .jsonl.gz) hold an object a line with the keys title,
body (paragraphs split on '\\n'), category, date, source, url and id; other keys,
such as the corpus's provenance "origin", are ignored.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Iterator

from indexer.pagefile import SnapshotError, read_text
from indexer.pagehead import META_KEY, META_REACH, Line, read_head

SOURCE_SUFFIXES = (".txt", ".jsonl", ".jsonl.gz")
MAX_TITLE = 300  # characters; news titles are far shorter

_ORIGIN = re.compile(r"本文[转轉]自\s*[:：]\s*(.*)")
_FOOTER = re.compile(r"(快照生成时间|信息原文地址)\s*[:：]\s*(.*)")
# The crawler's notes around the footer fields: 以上内容为资讯信息快照… / 本站信息快照查询为…
_FOOTER_NOTE = re.compile(r"以上内容为.{0,8}快照|本站信息快照")
_LIST_HEADER = re.compile(
    r"(?:相关新闻|相关阅读|相关报道|延伸阅读|更多关于(.{1,20}?)的(?:资讯|新闻))\s*[:：]?"
)
_TIME = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]*(\d{1,2})\s*[:：]\s*(\d{1,2})(?:\s*[:：]\s*(\d{1,2}))?)?"
)
_IMAGE_MARK = re.compile(r"\s*[(（\[【]?\s*(?:[组組]?[图圖]片?)\s*\d*\s*[)）\]】]?")
_BOILERPLATE = re.compile(
    r"[(（]?责任编辑\s*[:：].*"
    r"|分享到\s*[:：]?(?:\s*(?:微信|微博|朋友圈|QQ空间|QQ))*"
    r"|(?:\s*[【\[]?(?:纠错|打印|关闭|返回顶部|收藏)[】\]]?)+"
)


@dataclass(frozen=True)
class Headline:
    """One entry of a related-news list under a snapshot."""

    title: str | None
    teaser: str
    published: datetime | None
    category: str | None


@dataclass
class Article:
    """One news item read from a snapshot file or a JSON Lines record."""

    title: str
    body: list[str]
    category: str | None
    published: datetime | None
    source: str | None
    origin: str | None
    url: str | None
    snapshot_time: datetime | None
    related: list[Headline]
    path: str
    doc_id: str | None = None
    warnings: list[str] = field(default_factory=list)


def load_snapshot(path) -> Article:
    """Read and parse one snapshot file, raising SnapshotError as read_text and parse_snapshot do."""
    return parse_snapshot(read_text(path), str(path))


def parse_snapshot(text: str, path: str = "") -> Article:
    """Parse the text of one snapshot page into an Article.

    :raises SnapshotError: "empty file" when there is no text, "no title" when no title line is
        found (a title line over MAX_TITLE characters is no title: it is a page gone wrong).
    """
    raw = text.lstrip("\ufeff").splitlines()
    lines = [(number, s) for number, s in enumerate((line.strip() for line in raw), 1) if s]
    if not lines:
        raise SnapshotError(path, "empty file")
    head = read_head(lines, raw, _frame_start(lines))
    if head.title is None or _is_structural(head.title[1]) or len(head.title[1]) > MAX_TITLE:
        raise SnapshotError(path, "no title")
    title, meta = head.title[1], head.meta or {}
    body, footer, lists = _split_sections(head.rest)
    # Without a meta line, "no meta line" stands for the missing 发布时间 and 来源 too.
    warnings = ["no meta line"] if head.meta is None else []
    published = None if head.meta is None else _read_time(meta.get("发布时间"), "发布时间", warnings)
    related: list[Headline] = []
    for category, entries in lists:
        headlines, unplaced = _parse_headlines(category, entries, warnings)
        related += headlines
        body += unplaced
    origin, body = _clean_body(body, title)
    article = Article(
        title=title,
        body=body,
        category=meta.get("类别") or (head.crumbs[-1] if head.crumbs else None),
        published=published,
        source=meta.get("来源") or None,
        origin=origin,
        url=_web_url(footer.get("信息原文地址"), "信息原文地址", warnings),
        snapshot_time=_read_footer_time(footer, warnings),
        related=related,
        path=path,
        warnings=warnings,
    )
    _check_fields(article)
    return article


def _frame_start(lines: list[Line]) -> int:
    """Return the index of the first footer or list line: the meta line is above it."""
    frame = (_FOOTER.fullmatch, _FOOTER_NOTE.match, _LIST_HEADER.fullmatch)
    head = enumerate(lines[:META_REACH])
    return next((index for index, (_, line) in head if any(test(line) for test in frame)), META_REACH)


def _is_structural(line: str) -> bool:
    """Tell a line that belongs to the page frame and so cannot be a title."""
    frame = (_ORIGIN, _FOOTER, _FOOTER_NOTE, _LIST_HEADER, _BOILERPLATE)
    return bool(META_KEY.match(line)) or any(pattern.fullmatch(line) for pattern in frame)


def _split_sections(lines: list[Line]) -> tuple[list[Line], dict[str, str], list[tuple]]:
    """Split the lines after the meta into body lines, footer fields and headline lists.

    The body ends at the footer or the first list header. Lines after the
    footer that no list header introduces are a list of their own, without
    category, as on the real crawler's pages.
    """
    body: list[Line] = []
    footer: dict[str, str] = {}
    lists: list[tuple[str | None, list[Line]]] = []
    target: list[Line] | None = body
    for number, line in lines:
        if _BOILERPLATE.fullmatch(line):
            continue
        if found := _FOOTER.fullmatch(line):
            footer.setdefault(found.group(1), found.group(2).strip())
            target = None
        elif _FOOTER_NOTE.match(line):
            target = None
        elif found := _LIST_HEADER.fullmatch(line):
            lists.append((found.group(1), []))
            target = lists[-1][1]
        else:
            if target is None:
                lists.append((None, []))
                target = lists[-1][1]
            target.append((number, line))
    if not footer:
        body, tail = _split_trailing_list(body)
        lists = [(None, tail)] * bool(tail) + lists
    return body, footer, lists


def _split_trailing_list(body: list[Line]) -> tuple[list[Line], list[Line]]:
    """Split a header-less headline list off the end of a body with blank lines between paragraphs.

    Without a footer, a last run of lines with no blank line between
    them that ends in a time line is the related list; a page without blank lines
    keeps all its lines in the body.
    """
    start = len(body) - 1
    while start > 0 and body[start - 1][0] == body[start][0] - 1:
        start -= 1
    if start == 0 or not body or not _is_time_line(body[-1][1]):
        return body, []
    return body[:start], body[start:]


def _clean_body(lines: list[Line], title: str) -> tuple[str | None, list[str]]:
    """Take the first origin line (and empty ones) out of the body and drop image placeholders."""
    origin: str | None = None
    body: list[str] = []
    for _, line in lines:
        if (found := _ORIGIN.fullmatch(line)) and (origin is None or not found.group(1).strip()):
            origin = origin or found.group(1).strip() or None  # an empty one is frame; a second one stays body text
        elif not _is_image_placeholder(line, title):
            body.append(line)
    return origin, body


def _is_image_placeholder(line: str, title: str) -> bool:
    """Tell a line that repeats the title, alone or with a 图/图片 marker."""
    if not line.startswith(title):
        return False
    rest = line[len(title) :]
    return not rest or (len(rest) <= 20 and bool(_IMAGE_MARK.fullmatch(rest)))


def _is_time_line(line: str):
    """Return the time match of a line that is a time alone, else None."""
    return len(line) <= 40 and _TIME.fullmatch(line)


def _parse_headlines(category: str | None, lines: list[Line],
                     warnings: list[str]) -> tuple[list[Headline], list[Line]]:
    """Group list lines into headlines, each closed by its time line.

    Lines that no time line closes cannot be placed: they are returned to go
    into the body, with a warning naming their line.
    """
    headlines: list[Headline] = []
    pending: list[Line] = []
    for number, line in lines:
        if not (found := _is_time_line(line)):
            pending.append((number, line))
        elif pending:
            published = _read_time(line, "related time", warnings, found)
            headlines.append(_make_headline([text for _, text in pending], category, published))
            pending = []
    for number, _ in pending:
        warnings.append(f"line {number}: related entry without time, kept in body")
    return headlines, pending


def _make_headline(lines: list[str], category: str | None, published: datetime | None) -> Headline:
    """Build a headline: one line is a bare teaser, more lines are title then teaser."""
    title = lines[0] if len(lines) > 1 else None
    return Headline(title, " ".join(lines[1:] if title else lines), published, category)


def _read_footer_time(footer: dict[str, str], warnings: list[str]) -> datetime | None:
    """Read 快照生成时间 from the footer, warning when the footer is missing."""
    if not footer:
        warnings.append("no footer")
        return None
    return _read_time(footer.get("快照生成时间"), "快照生成时间", warnings)


def _check_fields(article: Article) -> None:
    """Warn about fields a complete page has but this one lacks."""
    if not article.source and "no meta line" not in article.warnings:
        article.warnings.append("no 来源")
    if not article.category:
        article.warnings.append("no category")
    if not article.body:
        article.warnings.append("empty body")


def _web_url(value: str | None, label: str, warnings: list[str]) -> str | None:
    """Keep an http(s) address; drop anything else (javascript:, data:, …) with a warning."""
    if not value:
        return None
    if re.match(r"https?://[^\s<>\"']+$", value.strip(), re.IGNORECASE):
        return value.strip()
    warnings.append(f"bad {label}")
    return None


def _read_time(value: str | None, label: str, warnings: list[str], found=None) -> datetime | None:
    """Parse a time value (or reuse its match), else warn "no LABEL" / "bad LABEL" and return None."""
    if not value:
        warnings.append(f"no {label}")
        return None
    found = found or _TIME.match(value)
    try:
        if not found:
            raise ValueError(value)
        return datetime(*(int(part or 0) for part in found.groups()))
    except ValueError:
        warnings.append(f"bad {label}")
        return None


def read_jsonl(path) -> Iterator[Article | SnapshotError]:
    """Yield an Article per line of a .jsonl or .jsonl.gz file, or a SnapshotError for a bad line.

    Never raises for bad content: an unreadable or corrupt file yields one
    SnapshotError("unreadable file") and stops.
    """
    name = str(path)
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(name, "rb") as stream:
            for number, raw in enumerate(stream, 1):
                if raw.strip():
                    yield _parse_record(raw, f"{name}:{number}")
    except (OSError, EOFError, zlib.error):
        yield SnapshotError(name, "unreadable file")


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_record(raw: bytes, where: str) -> Article | SnapshotError:
    """Turn one JSON Lines line into an Article, or the SnapshotError that stops it."""
    try:
        record = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return SnapshotError(where, "undecodable")
    except ValueError:
        return SnapshotError(where, "invalid JSON")
    if not isinstance(record, dict):
        return SnapshotError(where, "not an object")
    try:
        values = {key: _record_text(record, key, where) for key in
                  ("title", "body", "category", "date", "source", "url", "id")}
    except SnapshotError as error:
        return error
    if not values["title"]:
        return SnapshotError(where, "no title")
    warnings: list[str] = []
    published = _read_time(values["date"], "date", warnings)
    body = [s for s in (line.strip() for line in (values["body"] or "").split("\n")) if s]
    if not body:
        warnings.append("empty body")
    return Article(
        title=values["title"], body=body, category=values["category"], published=published,
        source=values["source"], origin=None, url=_web_url(values["url"], "url", warnings), snapshot_time=None,
        related=[], path=where, doc_id=values["id"], warnings=warnings,
    )


def _record_text(record: dict, key: str, where: str) -> str | None:
    """Return a record value as stripped text or None; integers (ids) become text.

    :raises SnapshotError: "bad KEY" for any other type.
    """
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise SnapshotError(where, f"bad {key}")
    # JSON can escape half of a surrogate pair ("\ud800"), which is no character and cannot be
    # encoded: it becomes U+FFFD, as undecodable bytes do.
    return LONE_SURROGATE.sub("\ufffd", value).strip() or None


def iter_sources(paths: Iterable | str | os.PathLike) -> Iterator[str]:
    """Expand files and folders into the sorted *.txt, *.jsonl and *.jsonl.gz paths in them.

    Folders are walked recursively, skipping hidden entries; a named file is
    kept only when its suffix fits.

    :raises FileNotFoundError: when a given path does not exist.
    """
    found: set[str] = set()
    for path in map(str, [paths] if isinstance(paths, (str, os.PathLike)) else paths):
        if os.path.isdir(path):
            found.update(_walk_sources(path))
        elif os.path.isfile(path):
            if _is_source(path):
                found.add(os.path.normpath(path))
        else:
            raise FileNotFoundError(path)
    yield from sorted(found)


def _walk_sources(folder: str) -> Iterator[str]:
    """Yield the source files under a folder, skipping hidden files and folders."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in files:
            if not name.startswith(".") and _is_source(name):
                yield os.path.normpath(os.path.join(root, name))


def _is_source(name: str) -> bool:
    """Tell a snapshot or JSON Lines file by its suffix."""
    return name.lower().endswith(SOURCE_SUFFIXES)
