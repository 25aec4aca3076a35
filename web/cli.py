"""The `newsearch` command group: the indexer's and search's commands plus `serve`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from indexer.cli import COMMANDS as INDEXER_COMMANDS, DEFAULT_SOURCES, backend_options, cluster_url, index_option
from search.cli import query


@click.group()
@click.version_option(package_name="newsearch")
def cli():
    """newsearch: full-text search for Chinese news.

    Build an index from crawled snapshot pages or JSON Lines dumps, search it
    from the terminal, or serve the search site.
    """


for _command in (*INDEXER_COMMANDS, query):
    cli.add_command(_command)


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--debug", is_flag=True, help="Flask debug mode (never in production).")
@backend_options
def serve(index_dir, host, port, debug, backend, url, alias):
    """Serve the search site; builds the index from seeds/ first when there is none.

    With --backend opensearch it searches the cluster's alias instead (build it
    with newsearch rebuild --backend opensearch).

    For production use gunicorn (see README), e.g.
    gunicorn -w 2 --preload 'web:create_app()'.

    Example:

        newsearch serve --port 8000
    """
    from indexer.store import live_build
    from web import create_app

    url = cluster_url(backend, url)
    if url is None and live_build(Path(index_dir)) is None:
        from indexer.writer import build_index

        seeds = [s for s in DEFAULT_SOURCES if os.path.isdir(s)]
        if not seeds:
            raise click.ClickException(f"no index at {index_dir} and no seeds/ folder here to build one from")
        click.echo(f"no index at {index_dir}: building it from {', '.join(seeds)} …", err=True)
        summary = build_index(seeds, index_dir)
        click.echo(f"indexed {summary['documents']} documents", err=True)
    app = create_app({"INDEX_DIR": str(index_dir), "BACKEND": backend, "URL": url, "ALIAS": alias})
    app.run(host=host, port=port, debug=debug)


@cli.group()
def cluster():
    """A local OpenSearch cluster for tests and trials: one node per JVM on loopback.

    Needs Java 17 and Maven; the first start builds the launcher in cluster/.

    Example:

        newsearch cluster start --nodes 3 --dir cluster-data
    """


cluster_dir_option = click.option(
    "--dir", "directory", type=click.Path(file_okay=False), default="cluster-data", show_default=True,
    help="Folder of the cluster: nodes.json and each node's data and log.")


@cluster.command("start")
@click.option("--nodes", type=click.IntRange(1, 9), default=3, show_default=True)
@cluster_dir_option
@click.option("--heap", default="512m", show_default=True, help="Java heap of each node (new folders).")
@click.option("--quick", is_flag=True, help="C1 JIT only: starts in about half the time, then runs slower (tests).")
@click.option("--stop-with", "owner", type=int, help="Stop the nodes when the process with this pid exits (test runs).")
def cluster_start(nodes, directory, heap, quick, owner):
    """Start the cluster's nodes, wait until it is green, print its URL.

    Example:

        newsearch cluster start --nodes 3 --dir cluster-data
    """
    from indexer.cluster import ClusterError, start_cluster

    try:
        started = start_cluster(directory, nodes=nodes, heap=heap, quick=quick, owner=owner)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(started['nodes'])} nodes in {started['dir']}, pids and ports in nodes.json", err=True)
    click.echo(started["url"])


@cluster.command("stop")
@cluster_dir_option
def cluster_stop(directory):
    """Stop the cluster's nodes; their data stays for the next start.

    Example:

        newsearch cluster stop --dir cluster-data
    """
    from indexer.cluster import ClusterError, stop_cluster

    try:
        stopped = stop_cluster(directory)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"stopped {stopped} nodes")


@cluster.command("status")
@cluster_dir_option
@click.option("--url", help="Ask the cluster at this URL instead of the one in --dir.")
def cluster_status(directory, url):
    """Print the health of a cluster; exit 1 with the reason if it does not answer.

    Example:

        newsearch cluster status --url http://127.0.0.1:9200
    """
    from indexer.cluster import ClusterError, cluster_health, read_nodes

    try:
        if url is None:
            recorded = read_nodes(Path(directory))
            if recorded is None:
                raise ClusterError(f"no cluster in {Path(directory).resolve()} (no nodes.json); give --url")
            url = recorded["url"]
        health = cluster_health(url)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{url} {health['status']} {health['number_of_nodes']} nodes")
