"""Generate hostile input, deterministically from a seed: broken snapshot files and hostile web requests.

Importable by the tests (``tests/test_hostile.py``) and by scripts. Every broken
file is derived from the seed pages (never from the shared corpus) or made up,
and says what the indexer must do with it::

    HostileFile(name="0042-truncated.txt", data=b"...", kind="truncated", expect=None)
    expect: a skip reason ("empty file", "binary file", "undecodable", "no title"),
            "indexed" (must become an article), or None (either, but reported)

``python tests/hostile.py`` prints what a rebuild makes of the files (counts by
reason) and the statuses of the 5,000 hostile requests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"

# The reasons indexer/snapshot.py documents for a snapshot that cannot be indexed.
SKIP_REASONS = frozenset({"empty file", "binary file", "undecodable", "no title"})
INDEXED = "indexed"

SCRIPT = "<script>alert(1)</script>"
MARKUP = (SCRIPT, "<img src=x onerror=alert(1)>", '"><script>alert(2)</script>', "<svg onload=alert(3)>",
          "</textarea><script>alert(4)</script>", "javascript:alert(5)", "<b>粗体</b>", "&lt;script&gt;")
GARBAGE_DATES = ("2023-13-45", "2023-13-45 10:00", "昨天", "前天 10:00", "2023-02-30 08:00:00", "2023-12-30 25:61",
                 "0000-00-00 00:00:00", "9999-99-99", "20231230", "2023年13月45日", "明年", "--", "N/A",
                 "2023-12-30 10:00:99", "１２３４-５６-７８")
WHITESPACE = " \t\u3000\u00a0\u2002\u2003\u200a\u202f\u205f"
SYNTAX = '*?~^()[]{}:"\'+-!&|\\/<>=,.;#%@$`'
WORDS = ("AND", "OR", "NOT", "TO", "title:", "body:", "source:", "category:", "path:", "id:", "*:*", "a*", "?",
         "~2", "^3", "[a TO z]", "{1 TO 2}", "衢州", "南京市长江大桥", "公司", "的", "“", "”", "「", "」", "＂",
         "😀", "👨‍👩‍👧", "\u200b", "\u202e", "\ufeff", "\x00", "\x1b", "%00", "%", "{{7*7}}", "${x}", "国务院")


@dataclass(frozen=True)
class HostileFile:
    """One generated snapshot file and what the indexer must make of it."""

    name: str
    data: bytes
    kind: str
    expect: str | None


def seed_pages() -> list[str]:
    """Return the text of every seed page, in name order, in the compact older layout.

    The generators below edit lines by position (breadcrumb, title, meta, origin,
    body): blank lines are dropped and a bullet breadcrumb becomes one line.
    """
    return [_compact(p.read_text(encoding="utf-8")) for p in sorted(SEEDS.glob("*.txt"))]


def _compact(page: str) -> str:
    lines = [line for line in page.split("\n") if line.strip()]
    crumbs = [line.strip().lstrip("•").strip() for line in lines if line.lstrip().startswith("•")]
    if crumbs:
        lines = [" > ".join(["首页", *crumbs[1:], "正文"]), *lines[len(crumbs):]]
    return "\n".join(lines)


# ---- broken files, one generator per kind: (rng, page) -> (bytes, expect) ----


def _truncated(rng, page):
    data = page.encode("utf-8")
    return data[:rng.randrange(len(data) + 1)], None


def _cut_short(rng, page):
    lines = page.split("\n")
    keep = rng.randrange(3, len(lines))  # the title line (after the breadcrumb) always stays
    text = "\n".join(lines[:keep])
    return text[:len(text) - rng.randrange(max(1, min(20, len(lines[keep - 1]) - 1)))].encode("utf-8"), INDEXED


def _random_bytes(rng, page):
    size = rng.choice((1, 7, 100, 4096, 9000, 30000))
    low, high = rng.choice(((0, 255), (0x80, 0xFE), (0x20, 0x7E), (0x81, 0xA0)))
    data = bytes(rng.randint(low, high) for _ in range(size))
    return data, ("binary file" if b"\x00" in data[:8192] else None)


def _wrong_encoding(rng, page):
    encoding = rng.choice(("utf-16", "utf-16-le", "utf-16-be", "utf-32", "big5", "shift_jis", "euc-kr",
                           "latin-1", "double-utf8", "cp1252"))
    if encoding == "double-utf8":
        return page.encode("utf-8").decode("latin-1").encode("utf-8"), INDEXED
    data = page.encode(encoding, errors="replace")
    return data, ("binary file" if encoding.startswith("utf") else None)  # UTF-16/32: NUL in every ASCII char


def _mixed_encoding(rng, page):
    lines = page.split("\n")
    parts = [line.encode(rng.choice(("utf-8", "gb18030", "gbk", "big5")), errors="replace") for line in lines]
    return b"\n".join(parts), None


def _nul_bytes(rng, page):
    data = page.encode("utf-8")
    at = rng.randrange(min(len(data), 8192))
    return data[:at] + b"\x00" * rng.randint(1, 3) + data[at:], "binary file"


def _nul_late(rng, page):
    data = (page + "\n" + "正文填充段落。" * 600).encode("utf-8")  # NUL beyond the 8 KiB sniffed for binary
    at = rng.randrange(9000, len(data))
    return data[:at] + b"\x00" + data[at:], None


def _control_bytes(rng, page):
    text = "".join(ch + chr(rng.choice((1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 20, 31))) for ch in page)
    return text.encode("utf-8"), "binary file"


def _invalid_bytes(rng, page):
    data = page.encode("utf-8")
    at = rng.randrange(len(data))
    return data[:at] + b"\xff" + data[at:], "undecodable"  # 0xFF is neither UTF-8 nor GB18030


def _markup(rng, page):
    lines = page.split("\n")
    probe = rng.choice(MARKUP)
    where = rng.choice(("title", "body", "meta", "all", "html"))
    if where == "html":
        text = f"<!DOCTYPE html>\n<html><head><title>{lines[1]}</title>{SCRIPT}</head>\n<body>\n{page}\n</body></html>"
        return text.encode("utf-8"), INDEXED
    if where in ("title", "all"):
        lines[1] = f"{lines[1]}{probe}"
    if where in ("body", "all"):
        lines.insert(4, f"{probe}正文中的标记{probe}")
    if where in ("meta", "all"):
        lines[2] = f"{lines[2]} 来源:{probe}"
    return "\n".join(lines).encode("utf-8"), INDEXED


def _garbage_date(rng, page):
    lines = page.split("\n")
    value = rng.choice(GARBAGE_DATES)
    field = rng.choice(("发布时间", "快照生成时间", "related"))
    if field == "发布时间":
        lines[2] = f"类别:汽车 发布时间:{value} 来源:某某报"
    elif field == "快照生成时间":
        lines = [f"快照生成时间:{value}" if s.startswith("快照生成时间") else s for s in lines]
    else:
        lines += ["相关新闻:", "一条相关标题", "一句相关摘要。", value]
    return "\n".join(lines).encode("utf-8"), INDEXED


def _deep_whitespace(rng, page):
    style = rng.choice(("only", "indent", "blank lines", "between"))
    if style == "only":
        blank = "".join(rng.choice(WHITESPACE + "\n\r") for _ in range(rng.randint(1, 5000)))
        return blank.encode("utf-8"), "empty file"
    lines = page.split("\n")
    if style == "indent":
        lines = [rng.choice(WHITESPACE) * rng.randint(100, 3000) + s + rng.choice(WHITESPACE) * 50 for s in lines]
    elif style == "blank lines":
        lines = [s + "\n" * rng.randint(0, 2000) for s in lines]
    else:
        lines[2] = lines[2].replace(" ", rng.choice(WHITESPACE) * rng.randint(1, 400))
    return "\n".join(lines).encode("utf-8"), INDEXED


def _no_title(rng, page):
    lines = page.split("\n")
    frame = [s for s in lines if s.startswith(("类别", "快照生成时间", "信息原文地址", "相关新闻", "更多关于", "本文转自"))]
    choice = rng.choice(("breadcrumb", "frame", "meta"))
    if choice == "breadcrumb":
        return "首页 > 汽车 > 正文\n\n".encode("utf-8"), "no title"
    if choice == "meta":
        return (lines[2] + "\n" + lines[2]).encode("utf-8"), "no title"
    return "\n".join(frame[:rng.randint(1, len(frame))]).encode("utf-8"), "no title"


def _empty(rng, page):
    return rng.choice((b"", b"\n", b"\r\n\r\n", b"   ", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n \t\n")), "empty file"


def _long_line(rng, page):
    body = page.split("\n")[4]
    line = (body * (rng.randint(50_000, 300_000) // len(body) + 1)).replace("\n", "")
    return ("长行标题" + str(rng.random()) + "\n" + line).encode("utf-8"), INDEXED


def _long_token(rng, page):
    lines = page.split("\n")
    lines.insert(4, rng.choice("a啊9_") * rng.randint(5_000, 100_000))
    return "\n".join(lines).encode("utf-8"), INDEXED


# kind -> (generator, files per 1000)
KINDS = {
    "truncated": (_truncated, 200), "cut short": (_cut_short, 60), "random bytes": (_random_bytes, 120),
    "wrong encoding": (_wrong_encoding, 80), "mixed encoding": (_mixed_encoding, 80), "nul bytes": (_nul_bytes, 50),
    "nul late": (_nul_late, 20), "control bytes": (_control_bytes, 30), "invalid bytes": (_invalid_bytes, 40),
    "markup": (_markup, 80), "garbage date": (_garbage_date, 100), "deep whitespace": (_deep_whitespace, 60),
    "no title": (_no_title, 30), "empty": (_empty, 20), "long line": (_long_line, 5), "long token": (_long_token, 25),
}


def hostile_files(seed: int = 0, count: int = 1000) -> list[HostileFile]:
    """Return at least count broken snapshot files, every kind in proportion, the same for the same seed."""
    rng = random.Random(seed)
    pages = seed_pages()
    scale = count / sum(share for _, share in KINDS.values())
    files = []
    for kind, (generate, share) in KINDS.items():
        for _ in range(max(1, round(share * scale + 0.5))):
            data, expect = generate(rng, _retitle(rng.choice(pages), len(files)))
            files.append(HostileFile(f"{len(files):04d}-{kind.replace(' ', '-')}.txt", data, kind, expect))
    return files


def _retitle(page: str, serial: int) -> str:
    """Give a seed page a title of its own, so that no two generated pages are duplicates."""
    lines = _own_url(page.split("\n"), serial)
    lines[1] = f"{lines[1]} 第{serial:04d}号"
    return "\n".join(lines)


def _own_url(lines: list[str], serial: int) -> list[str]:
    """Give a page an original URL of its own: pages sharing a URL are one article."""
    return [f"信息原文地址:https://news.example.com/hostile/{serial}.html" if line.startswith("信息原文地址") else line
            for line in lines]


def good_files(count: int = 20) -> list[tuple[str, bytes, str]]:
    """Return (name, data, title) of seed pages under new names and titles, in a few good encodings."""
    pages = seed_pages()
    out = []
    for i in range(count):
        lines = _own_url(pages[i % len(pages)].split("\n"), 100_000 + i)
        lines[1] = f"{lines[1]} 可靠性样本{i:02d}号"
        text = "\n".join(lines)
        encoding, line_end = [("utf-8", "\n"), ("gb18030", "\r\n"), ("utf-8-sig", "\r"), ("gbk", "\n")][i % 4]
        try:
            data = text.replace("\n", line_end).encode(encoding)
        except UnicodeEncodeError:
            data = text.encode("utf-8")
        out.append((f"good-{i:02d}.txt", data, lines[1]))
    return out


def write_files(folder: Path, files: list[HostileFile]) -> None:
    """Write generated files into a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in files:
        (folder / item.name).write_bytes(item.data)


def write_one_line(path: Path, size: int = 50 * 1024 * 1024) -> None:
    """Write a snapshot that is one line of size bytes of Chinese text (no line breaks at all)."""
    body = "".join(seed_pages()[0].split("\n")[4:8]).encode("utf-8")
    with open(path, "wb") as out:
        written = 0
        while written < size:
            out.write(body)
            written += len(body)


# ---- hostile requests ---------------------------------------------------------


def random_text(rng: random.Random, longest: int = 40) -> str:
    """Return random text mixing Whoosh syntax, CJK, emoji, controls, markup and odd Unicode."""
    pieces = []
    for _ in range(rng.randint(0, longest // 4 + 1)):
        pick = rng.random()
        if pick < 0.25:
            pieces.append(rng.choice(WORDS))
        elif pick < 0.45:
            pieces.append("".join(rng.choice(SYNTAX) for _ in range(rng.randint(1, 4))))
        elif pick < 0.55:
            pieces.append(rng.choice(MARKUP))
        elif pick < 0.8:
            pieces.append("".join(_random_char(rng) for _ in range(rng.randint(1, 6))))
        else:
            pieces.append(rng.choice(WHITESPACE + "\n"))
    return "".join(pieces)


def _random_char(rng: random.Random) -> str:
    ranges = ((0x20, 0x7E), (0x4E00, 0x9FFF), (0x3000, 0x303F), (0x1F300, 0x1FAFF), (0x0, 0x1F), (0x300, 0x36F),
              (0xE000, 0xF8FF), (0x10000, 0x10FFFF), (0xFF00, 0xFFEF), (0x590, 0x6FF))
    low, high = rng.choice(ranges)
    code = rng.randint(low, high)
    return chr(code) if not 0xD800 <= code <= 0xDFFF else "?"


def _query_value(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.03:
        return rng.choice("衢州a啊<") * rng.choice((1_000, 10_000))
    if pick < 0.1:
        return SCRIPT + random_text(rng, 10)
    return random_text(rng)


NUMBERS = ("0", "-1", "-99999", "1", "2", "50", "51", "1000", "1001", "99999999999999999999999", "1e3", "1.5", "abc",
           "", " 3 ", "٣", "1_000", "0x10", "NaN", "inf", "-0", "+1", "１", "½", "\x00", "9" * 400, SCRIPT)
DATES = ("2023-13-45", "昨天", "99999-01-01", "2023-02-30", "0000-01-01", "0001-01-01", "9999-12-31", "2024-1-1",
         "2024/01/01", "20240101", "", "2024-01-01T00:00", "-2024-01-01", SCRIPT, "2024-12-31", "2020-01-01")
UNKNOWN = ("facet", "tag", "lang", "Q", "q ", "page[]", "category[]", "author", "year", "month", "__proto__",
           "callback", "fields", SCRIPT)


def hostile_request(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    """Return one (path, query parameters) across the site's endpoints."""
    route = rng.choice(("/search", "/search", "/api/search", "/api/search", "/api/suggest", "/api/article", "/article"))
    params = [("q", _query_value(rng))] if rng.random() < 0.9 else []
    if route.endswith("search"):
        for name, values in (("page", NUMBERS), ("size", NUMBERS), ("from", DATES), ("to", DATES),
                             ("sort", ("newest", "oldest", "relevance", "random", "", SCRIPT)),
                             ("range", ("1d", "1w", "1m", "1y", "2y", "", SCRIPT)),
                             ("category", ("汽车", "社会", SCRIPT, "")), ("source", ("某某报", SCRIPT, ""))):
            if rng.random() < 0.3:
                params.append((name, rng.choice(values) if rng.random() < 0.8 else random_text(rng, 8)))
    if rng.random() < 0.15:
        params.append((rng.choice(UNKNOWN), random_text(rng, 8)))
    if params and rng.random() < 0.15:
        params.append(rng.choice(params))  # a repeated parameter
    rng.shuffle(params)
    if route in ("/api/article", "/article"):
        doc_id = rng.choice(("u17c6402475da520a", "h4b2bb39c104c21f9", random_text(rng, 12) or "x", SCRIPT, ".."))
        route = f"{route}/{quote(doc_id, safe='')}"  # a "/" in the id arrives as %2F
    return route, params


def hostile_requests(seed: int = 0, count: int = 5000) -> list[tuple[str, list[tuple[str, str]]]]:
    """Return count hostile requests, the same for the same seed."""
    rng = random.Random(seed)
    return [hostile_request(rng) for _ in range(count)]


# ---- figures for the closing note: python tests/hostile.py -------------------------------------


def build_hostile_index(folder: Path, seed: int = 0, count: int = 1000) -> dict:
    """Write the broken files and 20 good ones into folder/src, index them into folder/index; return the summary."""
    import time

    from indexer.writer import build_index

    write_files(folder / "src", hostile_files(seed, count))
    for name, data, _ in good_files(20):
        (folder / "src" / name).write_bytes(data)
    started = time.monotonic()
    summary = build_index([str(folder / "src")], folder / "index", jobs=2)
    return {**summary, "wall_s": round(time.monotonic() - started, 1)}


def send_hostile_requests(folder: Path, seed: int = 0, count: int = 5000) -> dict:
    """Send the hostile requests to the app over a seeds/ index; return status counts and the wall time."""
    import time
    from collections import Counter

    from indexer.writer import build_index
    from web import create_app

    build_index([str(SEEDS)], folder / "seed-index", jobs=1)
    client = create_app({"TESTING": True, "INDEX_DIR": str(folder / "seed-index")}).test_client()
    started = time.monotonic()
    statuses = Counter(client.get(path, query_string=params).status_code
                       for path, params in hostile_requests(seed, count))
    return {"statuses": dict(sorted(statuses.items())), "wall_s": round(time.monotonic() - started, 1)}


def main() -> None:
    """Print what a rebuild makes of the broken files, and the statuses of the hostile requests."""
    import shutil
    import tempfile
    from collections import Counter

    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    try:
        files = hostile_files()
        print(f"{len(files)} broken files by kind: {dict(Counter(f.kind for f in files))}")
        summary = build_hostile_index(folder)
        print(f"rebuild of {summary['files']} files in {summary['wall_s']} s: {summary['articles']} articles, "
              f"{summary['duplicates']} duplicates, {summary['skipped']} skipped")
        print("skipped by reason:", {r: i["count"] for r, i in summary["skipped_by_reason"].items()})
        print("warnings by reason:", {r: i["count"] for r, i in summary["warnings_by_reason"].items()})
        figures = send_hostile_requests(folder)
        print(f"{sum(figures['statuses'].values())} hostile requests in {figures['wall_s']} s, "
              f"statuses: {figures['statuses']}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
