"""Bytes of an index build by kind of file, and a sample build to measure.

``python -m bench.files INDEX [--raw FILE]`` prints the live build's bytes per
kind of file (Whoosh's term table, postings, stored fields, lengths, columns;
our segment arrays by part, the joined set, keys and columns files) and, with
the JSON Lines it was built from, the total as × those raw bytes.

``python -m bench.files --sample N --work DIR`` first writes an even sample of
N corpus items to DIR/docs.jsonl, rebuilds DIR/index from it (timed, one
process) and then prints the same breakdown. ``--segment-docs K`` cuts its
segments at K documents, so a small sample shows a build of several segments
and its joined set, as the full corpus has.
"""

from __future__ import annotations

import re
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import click

from bench import corpus

SEGMENT_FILE = re.compile(r"^_?MAIN_[0-9a-z]+(\.|_)(?P<rest>.+)$")


def kind_of(name: str) -> str:
    """Return the kind of a build's file by its name: per segment by extension or part, else its own name."""
    if name.startswith("_MAIN_") and name.endswith(".toc"):
        return "_MAIN_<gen>.toc"
    match = SEGMENT_FILE.match(name)
    if match is None:
        return name
    rest = match.group("rest")
    if rest.endswith("_len.col"):
        return "segment _<field>_len.col"
    if rest.endswith(".npy"):
        return f"segment .{rest.split('.')[0]}.npy"
    return f"segment .{rest}" if not rest.endswith(".col") or rest == "_stored.col" else "segment .<column>.col"


def breakdown(build: Path) -> Counter:
    """Return the bytes of a build's files by kind."""
    sizes: Counter = Counter()
    for path in build.iterdir():
        if path.is_file():
            sizes[kind_of(path.name)] += path.stat().st_size
    return sizes


def report(build: Path, raw_bytes: int | None) -> str:
    """Return the breakdown as a table: kind, bytes, share of the build."""
    sizes = breakdown(build)
    total = sum(sizes.values())
    lines = [f"{'kind':<34} {'bytes':>13} {'share':>7}"]
    for kind, size in sorted(sizes.items(), key=lambda item: -item[1]):
        lines.append(f"{kind:<34} {size:>13,} {size / total:>7.1%}")
    lines.append(f"{'total':<34} {total:>13,}")
    if raw_bytes:
        lines.append(f"{'raw JSON Lines':<34} {raw_bytes:>13,} {total / raw_bytes:>6.2f}x")
    return "\n".join(lines)


def cpu_seconds() -> float:
    """Return the CPU seconds (user and system) of this process and its finished children so far."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def build_sample(count: int, work: Path, segment_docs: int | None = None) -> tuple[Path, Path, float, float]:
    """Write an even sample of count corpus items and rebuild an index of it; return (JSON Lines, index,
    wall seconds, CPU seconds) of the rebuild."""
    from indexer import segment
    from indexer.writer import build_index

    if segment_docs:
        segment.SEGMENT_DOCS = segment_docs

    work.mkdir(parents=True, exist_ok=True)
    docs, _ = corpus.load_docs(corpus.DEFAULT_CORPUS, count)
    lines = corpus.write_docs(docs, work)
    index = work / "index"
    started, cpu = time.perf_counter(), cpu_seconds()
    build_index([str(lines)], index, jobs=1)
    return lines, index, time.perf_counter() - started, cpu_seconds() - cpu


@click.command()
@click.argument("index", required=False, type=click.Path(path_type=Path))
@click.option("--raw", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The JSON Lines the index was built from (for the × raw figure).")
@click.option("--sample", type=int, default=None, help="Rebuild an even sample of this many corpus items first.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the sample's JSON Lines and index (with --sample).")
@click.option("--segment-docs", type=int, default=None, help="Documents a segment holds at most (with --sample).")
def main(index: Path | None, raw: Path | None, sample: int | None, work: Path | None, segment_docs: int | None) -> None:
    """Print an index build's bytes per kind of file."""
    if sample is not None:
        if work is None:
            raise click.UsageError("--sample needs --work")
        raw, index, seconds, cpu = build_sample(sample, work, segment_docs)
        click.echo(f"rebuild of {sample:,} items: {seconds:.1f} s wall, {cpu:.1f} s CPU (one job)")
    if index is None:
        raise click.UsageError("give INDEX or --sample")
    build = index.resolve()
    click.echo(f"build {build}")
    click.echo(report(build, raw.stat().st_size if raw is not None else None))


if __name__ == "__main__":
    main(sys.argv[1:])
