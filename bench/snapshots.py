"""Render corpus items as snapshot pages (the format of indexer/snapshot.py) and time the parser on them.

A page has what the seeds have: breadcrumb, title, meta line, body paragraphs,
the crawler footer and related-news lists (the neighbouring items' headlines).
The pages go to a temporary folder only; the corpus is never copied into the repo.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

from indexer.snapshot import SnapshotError, load_snapshot

RELATED = 2  # entries per related list
TEASER_CHARS = 40


def render_page(doc: dict, neighbours: list[dict]) -> str:
    """Return the snapshot page of a corpus item, its neighbours as related news."""
    published = datetime.strptime(doc["date"], "%Y-%m-%d %H:%M:%S")
    category = doc.get("category")
    lines = [
        f"首页 > {category or '新闻联播'} > 正文",
        doc["title"],
        " ".join(filter(None, [f"类别:{category}" if category else "",
                               f"发布时间:{doc['date']}", f"来源:{doc['source']}"])),
        *doc["body"].split("\n"),
        f"快照生成时间:{published + timedelta(days=1, hours=3):%Y-%m-%d %H:%M:%S}",
        f"信息原文地址:https://news.example.com/{doc['id']}.html",
        "相关新闻:",
        *(line for other in neighbours[:RELATED] for line in _entry(other)),
    ]
    if category:
        lines.append(f"更多关于{category}的资讯:")
        lines.extend(line for other in neighbours[RELATED:] for line in _entry(other))
    return "\n".join(lines) + "\n"


def _entry(doc: dict) -> list[str]:
    teaser = doc["body"].split("\n")[-1][:TEASER_CHARS]
    return [doc["title"], teaser, doc["date"][:16]]


def write_pages(docs: list[dict], folder: Path) -> list[Path]:
    """Write every item as a page under folder/<year>/; return the paths."""
    paths = []
    for i, doc in enumerate(docs):
        neighbours = [docs[j % len(docs)] for j in range(i + 1, i + 1 + 2 * RELATED)]
        path = Path(folder) / doc["date"][:4] / f"{doc['id']}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_page(doc, neighbours), encoding="utf-8")
        paths.append(path)
    return paths


def time_parsing(docs: list[dict], paths: list[Path]) -> dict:
    """Parse every page in this process; return pages/s, MB/s and how many round-trip exactly."""
    size = sum(p.stat().st_size for p in paths)
    failed = exact = 0
    started = time.perf_counter()
    articles = []
    for path in paths:
        try:
            articles.append(load_snapshot(path))
        except SnapshotError:
            failed += 1
            articles.append(None)
    elapsed = time.perf_counter() - started
    for doc, article in zip(docs, articles):
        exact += article is not None and _round_trips(doc, article)
    return {"pages": len(paths), "seconds": elapsed, "pages_per_s": len(paths) / elapsed,
            "mb_per_s": size / 1e6 / elapsed, "bytes": size, "failed": failed, "exact": exact}


def _round_trips(doc: dict, article) -> bool:
    """Tell whether a parsed page gave back the item's title, category, time and source."""
    return (article.title == doc["title"] and article.category == (doc.get("category") or "新闻联播")
            and article.published == datetime.strptime(doc["date"], "%Y-%m-%d %H:%M:%S")
            and article.source == doc["source"] and len(article.related) == (2 * RELATED if doc.get("category") else RELATED))


def run_parsing(docs: list[dict], folder: Path) -> dict:
    """Render the documents into folder and time the parser over them."""
    return time_parsing(docs, write_pages(docs, folder))
