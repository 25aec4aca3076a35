"""Headline-only entries: the related headlines an article lists that name no article of the index.

``TitleIndex`` tells which article a related headline names, by its folded
title. The write pass spools each segment's related headlines to SQLite
(``HeadlineSpool``, the newest entry of each headline winning); the spools are
then merged and the headline-only documents written as more segments
(``write_headlines``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from indexer import segment
from indexer.documents import Report, headline_document
from indexer.keys import key_of
from indexer.schema import HEADLINE

SPOOL_ROWS = 1000


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
