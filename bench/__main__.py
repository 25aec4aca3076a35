"""The benchmark commands: python -m bench run [--docs N] [--queries N] [--out DIR] [--skip-http], and
python -m bench scale [--docs N] [--factors 1,4,16] [--work DIR] (growth: rebuild, open, update at k× the corpus)."""

from __future__ import annotations

import gc
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import click

from bench import cluster, corpus, environment, queries, rebuild, report, scale, serving, snapshots

WARMUP_QUERIES = 30


@click.group()
def cli():
    """Benchmark newsearch against the textbook Whoosh + jieba setup on the shared corpus."""


corpus_option = click.option("--corpus", "corpus_path", default=corpus.DEFAULT_CORPUS,
                             type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             show_default="../shared/corpus/news.jsonl.gz")
out_option = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                          help="Folder for table.md [default: a new temporary folder].")


def _common_meta(corpus_path: Path, docs: list[dict], total: int, *packages: str) -> dict:
    """Return what both tables' headers say: when, where, on what, by which command and code."""
    return {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count() or 1, "machine": environment.machine(),
        "docs": len(docs), "corpus_docs": total, "corpus": corpus_path.name,
        "load_before": os.getloadavg()[0], "code": environment.code_version(),
        "source_before": environment.source_hash(),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "versions": ", ".join(f"{name} {version(name)}" for name in packages) + f", Python {platform.python_version()}",
    }


def _meta(corpus_path: Path, docs: list[dict], total: int, n_queries: int) -> dict:
    return {
        **_common_meta(corpus_path, docs, total, "Whoosh", "jieba", "rjieba", "gunicorn"),
        "text_bytes": corpus.text_bytes(docs), "queries": n_queries, "warmup": WARMUP_QUERIES,
        "workers": serving.WORKERS, "clients": serving.CLIENTS,
    }


def _logger(started: float):
    def log(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:7.1f} s] {message}", err=True)

    return log


def measure(run: dict, work: Path, docs: list[dict], docs_path: Path, skip: set[str], requests: int, log) -> None:
    """Run every section in order (but those in skip: "http", "cluster"), filling the run's results."""
    run["rebuild"] = rebuild.run_rebuilds(docs_path, work, log)
    log("parsing …")
    run["parsing"] = snapshots.run_parsing(docs, work / "pages")
    shutil.rmtree(work / "pages", ignore_errors=True)
    gc.collect()
    gc.freeze()  # the documents stay alive; keep the collector from walking them while timing
    run["queries"] = queries.run_queries(work / "index", work / "textbook", run["items"], run["warmup"], log)
    if "cluster" not in skip:
        run["cluster"] = cluster.run_cluster(docs_path, work, run["items"], run["warmup"], log)
        for done in ("cluster", "cluster-index"):
            shutil.rmtree(work / done, ignore_errors=True)
    if "http" not in skip:
        log("http …")
        run["http"] = serving.run_http(work / "index", run["items"], requests)
        log("start-up …")
        run["startup"] = serving.run_startup(work / "index")


@cli.command()
@click.option("--docs", "n_docs", type=click.IntRange(100), default=None,
              help="Use this many documents, an even sample of the corpus [default: all].")
@click.option("--queries", "n_queries", type=click.IntRange(24), default=300, show_default=True,
              help="Queries in the fixed set.")
@click.option("--requests", type=click.IntRange(1), default=400, show_default=True,
              help="Timed HTTP requests, over the query set.")
@corpus_option
@out_option
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table here, e.g. bench/RESULTS.md.")
@click.option("--skip-http", is_flag=True, help="Skip the gunicorn and start-up sections.")
@click.option("--skip-cluster", is_flag=True,
              help="Skip the 3-node OpenSearch cluster's row (it needs Java 17 and Maven).")
@click.option("--keep", is_flag=True, help="Keep the work folder (indexes, documents) and print its path.")
def run(n_docs, n_queries, requests, corpus_path, out, results, skip_http, skip_cluster, keep):
    """Run the whole benchmark and print one table (markdown); asserts nothing about time.

    Example:

        python -m bench run --docs 3000
    """
    started = time.perf_counter()
    log = _logger(started)
    work = Path(tempfile.mkdtemp(prefix="newsearch-bench-"))
    try:
        log(f"reading {corpus_path} …")
        docs, total = corpus.load_docs(corpus_path, n_docs)
        docs_path = corpus_path if len(docs) == total else corpus.write_docs(docs, work)
        run_data = {"meta": _meta(corpus_path, docs, total, n_queries),
                    "items": queries.make_queries(docs, n_queries),
                    "warmup": queries.make_queries(docs, WARMUP_QUERIES, seed=queries.WARMUP_SEED)}
        skip = {name for name, skipped in (("http", skip_http), ("cluster", skip_cluster)) if skipped}
        measure(run_data, work, docs, docs_path, skip, requests, log)
    finally:
        if keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    run_data["meta"]["total_s"] = time.perf_counter() - started
    run_data["meta"]["load_after"] = os.getloadavg()[0]
    run_data["meta"]["source_after"] = environment.source_hash()
    _write(report.render(run_data), out, results, log)


def _write(text: str, out: Path | None, results: Path | None, log, save=report.write_run_results) -> None:
    out = out or Path(tempfile.mkdtemp(prefix="newsearch-bench-out-"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text, encoding="utf-8")
    if results:
        save(results, text)
        log(f"wrote {results}")
    log(f"wrote {out / 'table.md'}")
    click.echo(text)


def _factors(ctx, param, value: str) -> list[int]:
    try:
        factors = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise click.BadParameter("give whole numbers separated by commas, e.g. 1,4,16") from None
    if not factors or factors[0] < 1:
        raise click.BadParameter("give whole numbers of at least 1, e.g. 1,4,16")
    return factors


def _scale_meta(corpus_path: Path, docs: list[dict], total: int) -> dict:
    return {**_common_meta(corpus_path, docs, total, "Whoosh", "jieba", "rjieba"),
            "update_items": min(scale.UPDATE_ITEMS, len(docs))}


@cli.command("scale")
@click.option("--docs", "n_docs", type=click.IntRange(100), default=None,
              help="Base: this many items, an even sample of the corpus [default: all].")
@click.option("--factors", default="1,4,16", show_default=True, callback=_factors,
              help="Archive sizes, in copies of the base, comma-separated.")
@corpus_option
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the copies and indexes [default: a new temporary folder].")
@out_option
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table into this file, between scale markers, e.g. bench/RESULTS.md.")
@click.option("--keep", is_flag=True, help="Keep the copies and every factor's index, and print the work folder.")
def measure_growth(n_docs, factors, corpus_path, work, out, results, keep):
    """Rebuild, open, query once and update archives k times the base; print one table (markdown).

    Asserts nothing about time. The full run (1, 4 and 16 × the corpus; 16× is about 1.05 million items)
    takes 1.5 to 3 hours on 2 cores.

    Example:

        python -m bench scale --docs 300 --factors 1,2
    """
    started = time.perf_counter()
    log = _logger(started)
    created = work is None or not work.exists()
    work = work or Path(tempfile.mkdtemp(prefix="newsearch-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    archive = None
    try:
        log(f"reading {corpus_path} …")
        docs, total = corpus.load_docs(corpus_path, n_docs)
        run_data = {"meta": _scale_meta(corpus_path, docs, total)}
        archive = scale.ArchiveWriter(docs, work)
        run_data["rows"] = scale.run_scale(archive, factors, keep, log)
    finally:
        if keep:
            log(f"work folder kept: {work}")
        elif created:
            shutil.rmtree(work, ignore_errors=True)
        elif archive:
            archive.remove()  # a folder the caller made: remove only what this run wrote
    run_data["meta"].update(total_s=time.perf_counter() - started, load_after=os.getloadavg()[0],
                            source_after=environment.source_hash())
    _write(report.render_scale(run_data), out, results, log, save=report.write_scale_results)


@cli.command("stories")
@click.option("--docs", "n_docs", type=click.IntRange(100), default=None,
              help="Rebuild this many items, an even sample of the corpus [default: all].")
@click.option("--originals", type=click.IntRange(10), default=300, show_default=True,
              help="Originals of the labelled set (each with 1-3 reprints).")
@corpus_option
@out_option
def measure_stories(n_docs, originals, corpus_path, out):
    """Measure story grouping: its cost to a rebuild, the stories of the corpus, precision and recall.

    Asserts nothing about time. Two rebuilds of the corpus (without and with grouping) and one of the
    labelled set: about 5 minutes on 2 cores.

    Example:

        python -m bench stories --docs 3000 --originals 50
    """
    from bench import stories

    started = time.perf_counter()
    log = _logger(started)
    meta = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": environment.machine(),
            "load": os.getloadavg()[0], "originals": originals,
            "command": "python -m bench " + " ".join(sys.argv[1:]), "code": environment.source_hash()}
    with tempfile.TemporaryDirectory(prefix="newsearch-stories-") as work:
        everything, _ = corpus.load_docs(corpus_path, None)
        docs, _ = corpus.load_docs(corpus_path, n_docs)
        figures = stories.measure(docs, everything, originals, Path(work), log)
    _write(stories.render(figures, meta), out, None, log)


cli(prog_name="python -m bench")
