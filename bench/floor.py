"""The floor of a rebuild: segmentation alone of every title and body, on all cores.

Run as ``python -m bench.floor DOCS jieba|rjieba [JOBS]``; prints the token count as JSON.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys

CHUNK = 256  # documents a worker segments per task


def _load(segmenter: str):
    if segmenter == "jieba":
        import jieba

        jieba.setLogLevel(60)
        jieba.initialize()  # in the parent, before the fork: workers share the dictionary
        return jieba.cut
    import rjieba

    rjieba.cut("预热")  # rjieba loads its dictionary on first use
    return rjieba.cut


_cut = None


def _count_tokens(texts: list[str]) -> int:
    return sum(sum(1 for _ in _cut(text)) for text in texts)


def segment_all(docs_path: str, segmenter: str, jobs: int) -> int:
    """Segment the title and body of every document with jobs processes; return the token count."""
    from bench.corpus import read_docs

    global _cut
    _cut = _load(segmenter)
    docs = read_docs(docs_path)
    texts = [text for doc in docs for text in (doc["title"], doc["body"])]
    chunks = [texts[i:i + CHUNK] for i in range(0, len(texts), CHUNK)]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return sum(pool.imap_unordered(_count_tokens, chunks))


def main(argv: list[str]) -> None:
    """Segment DOCS with a segmenter on JOBS processes (default: all cores)."""
    docs_path, segmenter = argv[:2]
    jobs = int(argv[2]) if len(argv) > 2 else os.cpu_count() or 1
    print(json.dumps({"tokens": segment_all(docs_path, segmenter, jobs)}))


if __name__ == "__main__":
    main(sys.argv[1:])
