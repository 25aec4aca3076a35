"""The growth benchmark: rebuild, open, first query and update of archives k times the base sample.

The archives are synthetic and deterministic. Copy 0 is the base sample itself;
copy c > 0 is every base item again with the id "ID~c", its date c × 400 days
earlier and the last paragraph of its body replaced by another item's, so that
the indexer (which merges inputs of the same title and body as re-crawls of one
article) keeps every copy, while an item carries about as much text in every
copy: per-item costs compare across factors. A real archive also gains words as
it grows, so each copy then rewrites some of its rare words into new ones of the
same length (bench/vocabulary.py): the archive of k copies has the distinct words
and character pairs Heaps' law, fitted to the corpus, gives k times the base.
Each copy is written once, as a JSON Lines file in the work folder, in copy order
(a copy's new words depend on those before it); the archive of factor k is copies
0 .. k-1, and the update at factor k adds the first UPDATE_ITEMS items of copy k,
which that archive does not hold.

Run as ``python -m bench.scale INDEX``, the module opens an index in a fresh
process and prints, as JSON, how long opening and the first query took and how
many segments the live build has.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from bench import corpus
from bench.rebuild import Measured, bench_env, dir_size, newsearch_command, run_measured
from bench.vocabulary import VocabularyGrowth
from indexer.joining import whole_files

DAYS_PER_COPY = 400
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
STRIDE = 7919  # a prime: copy c of item i takes the paragraph STRIDE × c places on in the pool
UPDATE_ITEMS = 1000
PROBE_QUERY = "中国"


def paragraphs(doc: dict) -> list[str]:
    """Return the non-empty paragraphs of an item's body, spaces collapsed."""
    lines = [" ".join(line.split()) for line in (doc.get("body") or "").split("\n")]
    return [line for line in lines if line]


def paragraph_pool(base: list[dict]) -> list[str]:
    """Return the distinct last paragraphs of the base items, in base order: what copies put in."""
    pool: dict[str, None] = {}
    for doc in base:
        lines = paragraphs(doc)
        if lines:
            pool.setdefault(lines[-1], None)
    return list(pool)


def shift_date(date: str, copy: int) -> str:
    """Return a "YYYY-MM-DD HH:MM:SS" date copy × DAYS_PER_COPY days earlier (any other text unchanged)."""
    try:
        moment = datetime.strptime(date, DATE_FORMAT)
    except ValueError:
        return date
    return (moment - timedelta(days=copy * DAYS_PER_COPY)).strftime(DATE_FORMAT)


def copy_doc(doc: dict, copy: int, paragraph: str) -> dict:
    """Return an item of copy number copy: a new id, an earlier date, another last paragraph (copy 0: the item).

    The paragraph drawn is added instead where replacing would not leave the item's
    own text in it: a body of one paragraph (two items of one title, such as
    国内联播快讯, would otherwise be the same text in some copies, and the indexer
    would take them for one article), or a draw of its own last paragraph.
    """
    if copy == 0:
        return doc
    lines = paragraphs(doc)
    kept = lines if len(lines) < 2 or lines[-1] == paragraph else lines[:-1]
    changed = dict(doc, body="\n".join([*kept, paragraph]))
    if doc.get("id") is not None:
        changed["id"] = f"{doc['id']}~{copy}"
    if doc.get("date"):
        changed["date"] = shift_date(doc["date"], copy)
    return changed


class ArchiveWriter:
    """Write copies of a base sample into a work folder, each copy once, and remember the files."""

    def __init__(self, base: list[dict], folder: Path) -> None:
        self.base = base
        self.folder = Path(folder)
        self.pool = paragraph_pool(base)
        # A step coprime with the pool's size: copies 1 .. len(pool)-1 of an item draw distinct paragraphs.
        self.step = next(s for s in range(STRIDE, 2 * STRIDE) if math.gcd(s, len(self.pool) or 1) == 1)
        self.growth = VocabularyGrowth(base)
        self.copies: dict[int, Path] = {}
        self.text_bytes: dict[int, int] = {}
        self.raw_bytes: dict[int, int] = {}
        # Distinct words and pairs of copies 0 .. c, as counted once copy c was written.
        self.vocabulary: dict[int, tuple[int, int]] = {}
        self.files: list[Path] = []

    def docs(self, copy: int, count: int | None = None) -> Iterator[dict]:
        """Yield the first count items (default all) of copy number copy, before its words are made new."""
        if copy and copy >= len(self.pool):
            raise ValueError(f"copy {copy}: the base has only {len(self.pool)} distinct paragraphs to draw")
        for i, doc in enumerate(self.base[:count]):
            yield copy_doc(doc, copy, self.pool[(i + copy * self.step) % len(self.pool)] if copy else "")

    def archive(self, factor: int) -> list[Path]:
        """Return the files of copies 0 .. factor-1, writing those not written yet."""
        for copy in range(factor):
            if copy not in self.copies:
                docs = self.growth.grow(list(self.docs(copy)), copy)
                self.text_bytes[copy] = corpus.text_bytes(docs)
                self.copies[copy] = self._write(docs, f"copy-{copy:02d}.jsonl")
                self.raw_bytes[copy] = self.copies[copy].stat().st_size
                self.vocabulary[copy] = (len(self.growth.words), len(self.growth.pairs))
        return [self.copies[copy] for copy in range(factor)]

    def update_file(self, factor: int) -> tuple[Path, int]:
        """Write the update for the archive of factor: the first UPDATE_ITEMS items of copy factor."""
        copy = self.archive(factor + 1)[factor]
        docs = corpus.read_docs(copy)[:UPDATE_ITEMS]
        return self._write(docs, f"update-{factor:02d}.jsonl"), len(docs)

    def _write(self, docs: list[dict], name: str) -> Path:
        path = corpus.write_docs(docs, self.folder, name)
        self.files.append(path)
        return path

    def remove(self) -> None:
        """Delete every file this writer wrote."""
        for path in self.files:
            path.unlink(missing_ok=True)


def remove_index(index: Path) -> None:
    """Delete an index path and its builds folder (the link and the folders beside it)."""
    for path in [index, *index.parent.glob(f"{index.name}.*"), *index.parent.glob(f".{index.name}.*")]:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def run_newsearch(name: str, args: list[str]) -> tuple[Measured, dict]:
    """Run a newsearch command with --json, measured; return the figures and its summary."""
    measured = run_measured(name, [*newsearch_command(), *args, "--json"])
    summary = json.loads(measured.stdout)
    if not summary.get("ok"):
        raise RuntimeError(f"{name} failed: {measured.stdout[-2000:]}")
    return measured, summary


def probe_index(index: Path) -> dict:
    """Time opening an index and its first query in a fresh process (`python -m bench.scale INDEX`)."""
    done = subprocess.run([sys.executable, "-m", "bench.scale", str(index)], capture_output=True, text=True,
                          env=bench_env(), timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"opening {index} failed with exit {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


LATENCY_QUERIES = 300
LATENCY_WARMUP = 30


def latency_columns(index: Path, base: list[dict], count: int = LATENCY_QUERIES) -> dict[str, str]:
    """Return the full answer's latency on an index, by column header: all queries, each kind, the slowest.

    The fixed mix of `bench run` (bench/queries.py), drawn from the base items (every copy holds their
    text, so a span of one base item is in each copy of it), asked in this process after a warm-up on
    other queries, each once: first sight.
    """
    from bench import queries

    items = queries.make_queries(base, count)
    answer = queries.ours_answerer(index)
    queries.time_each(answer, queries.make_queries(base, LATENCY_WARMUP, seed=queries.WARMUP_SEED))
    seconds, _ = queries.time_each(answer, items)
    overall = queries.percentiles(seconds)
    columns = {f"query p{p} ms": f"{overall[f'p{p}']:.1f}" for p in (50, 95, 99)}
    for kind in queries.KINDS:
        mine = [s for s, item in zip(seconds, items) if item.kind == kind]
        if mine:
            columns[f"{kind} p95 ms"] = f"{queries.percentiles(mine)['p95']:.1f}"
    slowest = max(range(len(seconds)), key=seconds.__getitem__)
    columns["slowest query ms"] = f"{seconds[slowest] * 1000:.1f}"
    columns["slowest kind"] = items[slowest].kind
    return columns


def extra_columns(index: Path, archive: ArchiveWriter) -> dict[str, str]:
    """Return more cells for a factor's row, by column header, measured on its freshly rebuilt index.

    The table renders whatever this returns after the fixed columns, "—" where a row lacks one.
    """
    return latency_columns(index, archive.base)


def dictionary_size(index: Path) -> tuple[int, int]:
    """Return the live build's distinct terms (of every field) and the bytes of its term dictionary.

    Terms: rows of its joined term dictionary (whole.ptends.npy), or of its segments'. Dictionary: every
    file with a row per term: the term dictionaries (*.ptext, *.ptends, *.pfields: the terms' text) and
    the posting arrays' term tables (*.pstarts).
    """
    folder = index.resolve()
    whole = folder / whole_files()["ptends"]
    tables = [whole] if whole.is_file() else sorted(folder.glob("*.ptends.npy"))
    terms = sum(len(np.load(path, mmap_mode="r")) for path in tables)
    ends = (".trm", ".ptext.npy", ".ptends.npy", ".pfields.npy", ".pstarts.npy")
    return terms, sum(path.stat().st_size for path in folder.iterdir() if path.name.endswith(ends))


def measure_factor(archive: ArchiveWriter, factor: int, log) -> dict:
    """Rebuild the archive of a factor, open it, query it once, then update it; return the row's figures."""
    index = archive.folder / f"index-{factor}"
    remove_index(index)
    files = archive.archive(factor)
    log(f"{factor}×: rebuild of {factor * len(archive.base):,} items …")
    built, summary = run_newsearch(f"rebuild {factor}×", ["rebuild", *map(str, files), "--index", str(index)])
    items = summary.get("documents", summary.get("articles", 0) + summary.get("headlines", 0))
    log(f"{factor}×: rebuild {built.wall_s:.1f} s, {items:,} items; opening …")
    probe = probe_index(index)
    terms, dictionary = dictionary_size(index)
    row = {"factor": factor, "items": items, "text_bytes": sum(archive.text_bytes[c] for c in range(factor)),
           "raw_bytes": sum(archive.raw_bytes[c] for c in range(factor)), "terms": terms,
           "dictionary_bytes": dictionary, "vocabulary": archive.vocabulary[factor - 1],
           "rebuild": built, "index_bytes": dir_size(index), "segments": probe["segments"],
           "open_ms": probe["open_ms"], "first_query_ms": probe["first_query_ms"],
           "columns": extra_columns(index, archive)}
    update, count = archive.update_file(factor)
    log(f"{factor}×: update of {count:,} new items …")
    row["update"], updated = run_newsearch(f"update {factor}×", ["update", str(update), "--index", str(index)])
    row["added"] = updated["added"]
    log(f"{factor}×: update {row['update'].wall_s:.1f} s, {row['added']:,} added")
    return row


def run_scale(archive: ArchiveWriter, factors: list[int], keep: bool, log) -> list[dict]:
    """Measure every factor in turn; delete each factor's index after it unless keep."""
    rows = []
    for factor in factors:
        try:
            rows.append(measure_factor(archive, factor, log))
        finally:
            if not keep:
                remove_index(archive.folder / f"index-{factor}")
    return rows


def main(argv: list[str]) -> None:
    """Print the open and first-query milliseconds and the segment count of the index at argv[0]."""
    from whoosh import index as whoosh_index

    from search.engine import Engine
    from search.request import SearchRequest

    index = argv[0]
    started = time.perf_counter()
    engine = Engine(index)
    engine.current()
    opened = time.perf_counter()
    engine.search(SearchRequest(q=PROBE_QUERY))
    answered = time.perf_counter()
    engine.close()
    segments = len(whoosh_index.open_dir(str(Path(index).resolve()))._segments())
    print(json.dumps({"open_ms": (opened - started) * 1000, "first_query_ms": (answered - opened) * 1000,
                      "segments": segments}))


if __name__ == "__main__":
    main(sys.argv[1:])
