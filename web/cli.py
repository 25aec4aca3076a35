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
