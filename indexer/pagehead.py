"""Find a snapshot page's head: its breadcrumb, title and meta line.

The meta line (类别:… 发布时间:… 来源:…) is the strongest signal on a page, so
it is found first: the first line within the head that starts with a label and
holds at least two of 类别, 发布时间 and 来源, its fields apart by anything (NBSP,
spaces, tabs, U+3000, a '?' left by a lossy re-encoding), its colons ':' or
'：', maybe broken over two lines. The title is the last line before it that is
not breadcrumb, and every line above the title is breadcrumb, whatever marks
its items (•, ?, *, -, >, | or nothing). A meta line of one label counts only
right after the title. Without a meta line the title is the first line that
does not look like breadcrumb (a marked item, 我的订阅, an indented item under
one, 首页 > 汽车 > 正文).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Line = tuple[int, str]  # (line number from 1, stripped text)

META_LABELS = frozenset({"类别", "发布时间", "来源"})
# 作者 and (责任)编辑 are read only so that they end the field before them.
META_KEY = re.compile(r"(类别|发布时间|来源|作者|(?:责任)?编辑)\s*[:：]")
META_REACH = 12  # lines: the meta sits under the breadcrumb and title, never deep in the body
MAX_CRUMB = 100  # characters; a longer line is no breadcrumb

_CRUMB_SPLIT = re.compile(r"[>＞»/|｜?]")  # ? is » after a lossy GBK re-encoding
_CRUMB_ARROW = re.compile(r"[>＞»]")
_CRUMB_SKIP = {"首页", "首頁", "正文", "我的订阅"}
# A bullet may touch its item; an ASCII mark needs a space after it, as in "*ST公司" it is text.
# GBK pages write • as ·, and a lossy re-encoding as ?.
_MARKED = re.compile(r"(?:[•●◦▪‣∙·・]|[?*\-－>＞|｜](?=\s))\s*(\S.*)")
_MARKS = "•●◦▪‣∙·・?*-－>＞|｜»"
# What may sit between meta fields besides whitespace: stripped off the ends of every value.
_VALUE_EDGE = "?\ufffd|｜/·•" + "".join(chr(code) for code in range(0x3001) if chr(code).isspace())
_DATE = re.compile(r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?")
_TIME_OF_DAY = re.compile(r"\d{1,2}\s*[:：]\s*\d{1,2}(?:\s*[:：]\s*\d{1,2})?")


@dataclass
class PageHead:
    """The head of a page: breadcrumb items, title line, meta fields (None: no meta line) and the lines after."""

    crumbs: list[str]
    title: Line | None
    meta: dict[str, str] | None
    rest: list[Line]


def read_head(lines: list[Line], raw: list[str], reach: int) -> PageHead:
    """Split a page's non-empty lines into its head and the lines after it.

    :param raw: the page's lines as written, for their indentation.
    :param reach: how many leading lines may hold the meta line (the frame below the body starts there).
    """
    for start in range(min(reach, META_REACH, len(lines))):
        if META_KEY.match(lines[start][1]):
            fields, end = _read_meta(lines, start)
            if len(META_LABELS & fields.keys()) >= 2:
                return _make_head(lines, _title_before(lines, start), fields, end)
    title = _first_title(lines, raw)
    after = len(lines) if title is None else title + 1
    if after < len(lines) and META_KEY.match(lines[after][1]):
        fields, end = _read_meta(lines, after)
        return _make_head(lines, title, fields, end)
    return _make_head(lines, title, None, after)


def _make_head(lines: list[Line], title: int | None, meta: dict[str, str] | None, end: int) -> PageHead:
    """Build the head from the title's index: every line above the title is breadcrumb."""
    if title is None:
        return PageHead([], None, meta, [])
    return PageHead(_crumb_items(lines[:title]), lines[title], meta, lines[end:])


def _title_before(lines: list[Line], meta: int) -> int | None:
    """Return the index of the last line before the meta line that is not breadcrumb."""
    for index in range(meta - 1, -1, -1):
        if not _is_crumb(lines[index][1], lines[index + 1][1]):
            return index
    return None


def _first_title(lines: list[Line], raw: list[str]) -> int | None:
    """Return the index of the first line that is not breadcrumb, or None.

    An item with no mark is breadcrumb when it is short and indented deeper
    than the breadcrumb line above it (我的订阅 / "  汽车").
    """
    depth = None  # indentation of the breadcrumb line above, None before any
    for index, (number, line) in enumerate(lines):
        following = lines[index + 1][1] if index + 1 < len(lines) else None
        indent = len(raw[number - 1]) - len(raw[number - 1].lstrip())
        if not (_is_crumb(line, following) or (depth is not None and indent > depth and len(line) <= 20)):
            return index
        depth = indent
    return None


def _is_crumb(line: str, following: str | None) -> bool:
    """Tell a breadcrumb line by its shape: a marked item, 我的订阅, or items apart by arrows or slashes.

    A bare "a > b" line is a title when the meta line follows it at once.
    """
    if len(line) > MAX_CRUMB:
        return False
    if line in _CRUMB_SKIP or _MARKED.fullmatch(line):
        return True
    items = [item.strip() for item in _CRUMB_SPLIT.split(line)]
    marked = items[0] in _CRUMB_SKIP or items[-1] == "正文"
    arrows = bool(_CRUMB_ARROW.search(line)) and not (following and META_KEY.match(following))
    return len(items) >= 2 and (marked or arrows)


def _crumb_items(lines: list[Line]) -> list[str]:
    """Return the breadcrumb items of the lines above the title, without marks and 首页/正文/我的订阅."""
    items: list[str] = []
    for _, line in lines:
        if found := _MARKED.fullmatch(line):
            items.append(found.group(1).strip())
        else:
            items += [item.strip().lstrip(_MARKS).strip() for item in _CRUMB_SPLIT.split(line)]
    return [item for item in items if item and item not in _CRUMB_SKIP]


def _read_meta(lines: list[Line], start: int) -> tuple[dict[str, str], int]:
    """Read the meta line at start and the lines that carry it on; return its fields and the index after it."""
    text, end = lines[start][1], start + 1
    while end < len(lines) and _continues(text, lines[end][1]):
        text, end = f"{text} {lines[end][1]}", end + 1
    fields: dict[str, str] = {}
    keys = list(META_KEY.finditer(text))
    for key, after in zip(keys, keys[1:] + [None]):
        value = text[key.end() : after.start() if after else len(text)]
        fields.setdefault(key.group(1), value.strip(_VALUE_EDGE))
    return fields, end


def _continues(text: str, line: str) -> bool:
    """Tell a line that carries the meta text on: a new field, after nothing but the rest of the last value.

    The rest of a value is the whole of it when the text broke right after
    its colon, or the time of a 发布时间 broken after its date.
    """
    seen, keys = list(META_KEY.finditer(text)), list(META_KEY.finditer(line))
    if keys and {key.group(1) for key in keys} <= {key.group(1) for key in seen}:
        return False
    lead = line[: keys[0].start() if keys else len(line)].strip(_VALUE_EDGE)
    value = text[seen[-1].end() :].strip(_VALUE_EDGE)
    if seen[-1].group(1) == "发布时间" and _DATE.fullmatch(value) and _TIME_OF_DAY.fullmatch(lead):
        return True
    return bool(keys) and (not lead or (not value and len(lead) <= 40))
