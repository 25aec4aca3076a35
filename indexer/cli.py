"""The indexer's commands: rebuild, stats, explain (added to `newsearch` by web/cli.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

DEFAULT_SOURCES = ("seeds",)


def default_index() -> str:
    """Return the index path: NEWSEARCH_INDEX, else ./index."""
    return os.environ.get("NEWSEARCH_INDEX") or "index"


index_option = click.option(
    "--index", "index_dir", type=click.Path(file_okay=False), default=default_index,
    show_default="NEWSEARCH_INDEX or ./index", help="Index path (a link to the live build).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")


def backend_options(command):
    """Add --backend, --url and --alias: the embedded index (default) or an OpenSearch cluster."""
    from indexer.opensearch_index import BACKENDS, DEFAULT_ALIAS

    command = click.option("--alias", default=lambda: os.environ.get("NEWSEARCH_ALIAS") or DEFAULT_ALIAS,
                           show_default=f"NEWSEARCH_ALIAS or {DEFAULT_ALIAS}",
                           help="The alias naming the live index in the cluster (--backend opensearch).")(command)
    command = click.option("--url", default=lambda: os.environ.get("NEWSEARCH_URL"), show_default="NEWSEARCH_URL",
                           help="The OpenSearch cluster, e.g. http://127.0.0.1:9200 (--backend opensearch).")(command)
    return click.option("--backend", type=click.Choice(BACKENDS),
                        default=lambda: os.environ.get("NEWSEARCH_BACKEND") or "embedded",
                        show_default="NEWSEARCH_BACKEND or embedded",
                        help="Where the archive is searched: the embedded index, or an OpenSearch cluster.")(command)


def cluster_url(backend: str, url: str | None) -> str | None:
    """Return the cluster's URL when the backend is opensearch (None for the embedded index).

    :raises click.UsageError: when opensearch is chosen without a URL.
    """
    if backend != "opensearch":
        return None
    if not url:
        raise click.UsageError("--backend opensearch needs the cluster's URL: --url or NEWSEARCH_URL")
    return url


@click.command()
@click.argument("sources", nargs=-1, type=click.Path(exists=True))
@index_option
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Processes for parsing and analysis [default: the cores, as many as the memory allows].")
@click.option("--userdict", type=click.Path(exists=True, dir_okay=False), help="jieba user dictionary (word [freq] [tag] per line).")
@click.option("--wait", type=click.FloatRange(0), default=30.0, show_default=True, help="Seconds to wait for another writer.")
@backend_options
@json_option
def rebuild(sources, index_dir, jobs, userdict, wait, backend, url, alias, as_json):
    """Rebuild the index from snapshot pages and JSON Lines dumps, then swap it in.

    SOURCES are files or folders: *.txt snapshot pages and *.jsonl / *.jsonl.gz
    dumps, searched recursively (default: seeds/). The new index is built beside
    the old one and replaces it atomically; if anything fails, the old index
    keeps serving. With --backend opensearch the new build is then loaded into
    a new index of the cluster and the alias moved to it (the build at --index
    stays: updates start from it).

    Example:

        newsearch rebuild seeds/ ../shared/corpus/news.jsonl.gz --index index
    """
    from indexer.opensearch_index import ClusterError, publish_live, reach
    from indexer.store import IndexBusyError
    from indexer.writer import NothingIndexedError, build_index

    url = cluster_url(backend, url)
    progress = not as_json and sys.stderr.isatty() or os.environ.get("NEWSEARCH_PROGRESS") == "1"
    try:
        if url:
            reach(url)  # before the build: a cluster that is down is said at once
        summary = build_index(sources or DEFAULT_SOURCES, index_dir, jobs=jobs, userdict=userdict,
                              progress=progress, wait=wait)
        if url:
            summary["cluster"] = publish_live(index_dir, url, alias=alias, progress=progress)
    except NothingIndexedError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(exc), **exc.report}, ensure_ascii=False, indent=2))
        else:
            _print_skipped(exc.report)
        raise click.ClickException(f"{exc}; the old index (if any) is unchanged") from None
    except (IndexBusyError, ClusterError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"ok": True, **summary}, ensure_ascii=False, indent=2))
        return
    _print_rebuilt(summary)


def _print_rebuilt(summary: dict) -> None:
    _print_cluster(summary)
    click.echo(f"indexed {summary['articles']} articles and {summary['headlines']} headlines "
               f"from {summary['files']} files into {summary['index']}")
    _print_dropped(summary)
    click.echo(f"duplicates dropped: {summary['duplicates']}; skipped: {summary['skipped']}; "
               f"with warnings: {summary['warnings']}")
    _print_skipped(summary)
    click.echo(f"elapsed {summary['elapsed_s']:.1f} s, {summary['docs_per_s']} docs/s, "
               f"{summary['size_bytes'] / 1e6:.1f} MB on disk in {summary['segments']} segments; "
               f"peak memory {summary['peak_memory_mb']:.0f} MB ({summary['jobs']} workers)")


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@index_option
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Processes for parsing [default: cores].")
@click.option("--delete-missing", is_flag=True, help="Also remove documents whose source file is gone.")
@click.option("--wait", type=click.FloatRange(0), default=30.0, show_default=True, help="Seconds to wait for another writer.")
@backend_options
@json_option
def update(sources, index_dir, jobs, delete_missing, wait, backend, url, alias, as_json):
    """Add new documents, replace changed ones, keep the rest, then swap the result in.

    Documents are matched by id (JSON Lines 'id', else the original URL, else
    the folded title and body); a changed one is replaced, an unchanged one left alone. A full
    article replaces the headline-only entry of the same title. Running it
    twice changes nothing the second time. Small segments are merged as they
    accumulate, so searches do not slow down. With --backend opensearch the
    documents that changed are then sent to the cluster by id, and the gone
    ones deleted there; with no index at --index the update goes to the
    cluster alone and changes it as it would change the index: re-crawls,
    deletions, --delete-missing, and the stories the cluster holds.

    Example:

        newsearch update crawl/2026-11-30/ --index index --delete-missing
    """
    from indexer.opensearch_index import ClusterError
    from indexer.opensearch_update import check_in_step, sync_build
    from indexer.store import IndexBusyError, live_build
    from indexer.update import update_index
    from indexer.writer import NothingIndexedError

    url = cluster_url(backend, url)
    if url and live_build(Path(index_dir)) is None:  # no embedded build: the update goes to the cluster alone
        return _update_cluster(sources, url, alias, jobs, delete_missing, as_json)
    try:
        if url:
            check_in_step(Path(index_dir), url, alias)
        summary = update_index(sources, index_dir, jobs=jobs, delete_missing=delete_missing,
                               progress=not as_json and sys.stderr.isatty(), wait=wait)
        if url:
            summary["cluster"] = sync_build(live_build(Path(index_dir)), url, alias=alias)
    except (IndexBusyError, NothingIndexedError, ClusterError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"ok": True, **summary}, ensure_ascii=False, indent=2))
        return
    _print_cluster(summary)
    if not summary["changed"]:
        click.echo(f"nothing changed: {summary['unchanged']} documents already up to date in {summary['index']}")
    else:
        click.echo(f"added {summary['added']}, replaced {summary['replaced']}, deleted {summary['deleted']}, "
                   f"unchanged {summary['unchanged']} in {summary['index']}")
        click.echo(f"elapsed {summary['elapsed_s']:.1f} s; {summary['merged']} documents merged, "
                   f"{summary['segments']} segments; peak memory {summary['peak_memory_mb']:.0f} MB")
    _print_dropped(summary)
    _print_skipped(summary)


def _update_cluster(sources, url: str, alias: str, jobs: int | None, delete_missing: bool, as_json: bool) -> None:
    """Update the cluster without an embedded build (indexer/opensearch_update.py) and print the summary."""
    from indexer.opensearch_index import ClusterError
    from indexer.opensearch_update import update_cluster
    from indexer.writer import NothingIndexedError

    try:
        summary = update_cluster(sources, url, alias, jobs=jobs, progress=not as_json and sys.stderr.isatty(),
                                 delete_missing=delete_missing)
    except (NothingIndexedError, ClusterError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"ok": True, **summary}, ensure_ascii=False, indent=2))
        return
    if not summary["changed"]:
        click.echo(f"nothing changed: {summary['unchanged']} documents already up to date in {summary['index']}")
    else:
        click.echo(f"added {summary['added']}, replaced {summary['replaced']}, deleted {summary['deleted']}, "
                   f"unchanged {summary['unchanged']} in {summary['index']}; {summary['joined']} joined stories "
                   f"held there, {summary['resized']} documents resent with their story's new size")
        click.echo(f"elapsed {summary['elapsed_s']:.1f} s")
    _print_dropped(summary)
    _print_skipped(summary)


def _print_cluster(summary: dict) -> None:
    told = summary.get("cluster")
    if told:
        click.echo(f"{told['url']}: alias {told['alias']} -> {told.get('opensearch_index', told['alias'])}, "
                   + ", ".join(f"{k} {v}" for k, v in told.items() if k in ("sent", "deleted", "unchanged", "load_s")))


def _print_dropped(summary: dict) -> None:
    """Say loudly when more than a tenth of the inputs were duplicates or skipped."""
    if summary.get("many_dropped"):
        click.secho(f"warning: {summary['dropped_share']:.0%} of {summary['inputs']} inputs were not indexed "
                    f"({summary['duplicates']} duplicates, {summary['skipped']} skipped): check the sources",
                    err=True, fg="red", bold=True)


def _print_skipped(summary: dict) -> None:
    for reason, info in summary.get("skipped_by_reason", {}).items():
        click.echo(f"  skipped ({reason}): {info['count']}", err=True)
        for path in info["paths"]:
            click.echo(f"    {path}", err=True)


@click.command()
@index_option
@backend_options
@json_option
def stats(index_dir, backend, url, alias, as_json):
    """Show what the index holds: counts by kind and category, dates, stories, sources, size.

    Example:

        newsearch stats --index index
    """
    from indexer.opensearch_index import ClusterError, cluster_stats
    from indexer.store import DamagedFileError

    url = cluster_url(backend, url)
    try:
        data = cluster_stats(url, alias) if url else index_stats(Path(index_dir))
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    except DamagedFileError as exc:
        raise click.ClickException(f"cannot read the index at {index_dir}: {exc}; "
                                   f"run: newsearch rebuild --index {index_dir}") from None
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"index {data['index']} -> {data['build']}")
    click.echo(f"documents {data['documents']}: " + ", ".join(f"{k} {v}" for k, v in data["kinds"].items()))
    click.echo(f"published {data['first']} .. {data['last']}")
    if data["stories"]:
        told = data["stories"]
        click.echo(f"stories {told['stories']} ({told['with_copies']} with more than one copy, "
                   f"{told['documents_in_them']} documents in those)")
    click.echo("categories: " + ", ".join(f"{k or '(none)'} {v}" for k, v in data["categories"].items()))
    click.echo("sources: " + ", ".join(f"{k or '(none)'} {v}" for k, v in data["sources"].items()))
    click.echo(f"size {data['size_bytes'] / 1e6:.1f} MB; analyzer {data['analyzer_version']}, "
               f"dictionary {data['dict_hash']}; built {data['built_at']} in {data['build_seconds']} s")


def index_stats(index_dir: Path) -> dict:
    """Return the counts and facts of the live build of an index path (from its per-document arrays)."""
    from datetime import datetime, timezone

    import numpy as np

    from indexer.columns import load_columns
    from indexer.opening import open_index
    from indexer.schema import ARTICLE, CATEGORY, HEADLINE, PUBLISHED, SOURCE
    from indexer.store import dir_size, live_build, read_meta

    build = live_build(index_dir)
    if build is None:
        raise click.ClickException(f"no index at {index_dir}; run: newsearch rebuild --index {index_dir}")
    meta = read_meta(build)
    ix, arrays = open_index(build)  # reads every file a search reads first: a damaged one is named here
    if arrays is not None:
        arrays.close()
    with ix.reader() as reader:
        cols = load_columns(build, reader)
    live = np.ones(len(cols[PUBLISHED]), dtype=bool)
    live[cols["deleted"]] = False

    def counted(name: str) -> dict[str, int]:
        codes, counts = np.unique(cols[name][live], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return {str(cols[f"{name}_labels"][codes[i]]): int(counts[i]) for i in order}

    published = cols[PUBLISHED][live & (cols[PUBLISHED] > 0)]
    headlines = int(live[cols["headlines"]].sum())

    def iso(epoch):
        return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if epoch else None

    data = {
        "index": str(index_dir), "build": str(build), "documents": int(live.sum()),
        "kinds": {ARTICLE: int(live.sum()) - headlines, HEADLINE: headlines},
        "categories": counted(CATEGORY), "sources": counted(SOURCE),
        "first": iso(int(published.min()) if len(published) else 0),
        "last": iso(int(published.max()) if len(published) else 0),
        "stories": None,
        "size_bytes": dir_size(build), "analyzer_version": meta.get("analyzer_version"),
        "dict_hash": meta.get("dict_hash"), "built_at": meta.get("built_at"), "build_seconds": meta.get("build_seconds"),
    }
    if "story_size" in cols:  # not in an index written by other tools
        sizes = cols["story_size"]
        data["stories"] = {"stories": int((sizes > 0).sum()), "with_copies": int((sizes > 1).sum()),
                           "documents_in_them": int(sizes[sizes > 1].sum())}
    return data


@click.command()
@click.argument("text")
@click.option("--userdict", type=click.Path(exists=True, dir_okay=False), help="jieba user dictionary to load first.")
@json_option
def explain(text, userdict, as_json):
    """Print each field's tokens for TEXT as (text, position, start, end).

    Example:

        newsearch explain 南京市长江大桥
    """
    from indexer import analysis

    analysis.load_segmenter(userdict)
    data = analysis.explain(text)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"normalized: {data['normalized']}")
    for name in ("words", "bigrams", "chars"):
        click.echo(f"{name}:")
        for token in data[name]:
            click.echo(f"  {token}")


COMMANDS = (rebuild, update, stats, explain)


@click.group()
def cli():
    """newsearch indexer: rebuild the index and inspect it."""


for _command in COMMANDS:
    cli.add_command(_command)
