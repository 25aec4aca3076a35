"""The benchmark's documents: an even sample of the shared corpus, written once as JSON Lines.

The corpus is read at run time and only ever copied into temporary folders.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterable

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "news.jsonl.gz"


def load_docs(corpus: str | Path, count: int | None) -> tuple[list[dict], int]:
    """Return count corpus items spread evenly over the corpus (all when count is None) and the corpus size."""
    docs = read_docs(corpus)
    if count is None or count >= len(docs):
        return docs, len(docs)
    # The corpus is sorted by date: a stride keeps every year and category in a small sample.
    return [docs[i * len(docs) // count] for i in range(count)], len(docs)


def write_docs(docs: Iterable[dict], folder: Path, name: str = "docs.jsonl") -> Path:
    """Write documents as one JSON Lines file in folder; return its path."""
    path = Path(folder) / name
    with open(path, "w", encoding="utf-8") as stream:
        for doc in docs:
            stream.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return path


def read_docs(path: str | Path) -> list[dict]:
    """Read the documents a run wrote (or the corpus itself)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def text_bytes(docs: list[dict]) -> int:
    """Return the UTF-8 bytes of every title and body: the text a rebuild analyses."""
    return sum(len(d["title"].encode("utf-8")) + len(d["body"].encode("utf-8")) for d in docs)
