"""Shared fixtures: a real index built from seeds/ by the real indexer, the app, its clients."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

from indexer.writer import build_index

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
CORPUS = ROOT.parent / "shared" / "corpus" / "news.jsonl.gz"
# A fixed "now" for date presets: 2026-01-15 12:00 Beijing time, as epoch seconds.
NOW = 1768478400


def corpus_lines(count: int, start: int = 0) -> list[str]:
    """Return raw JSON lines of the shared corpus (read at run time, never copied)."""
    if not CORPUS.is_file():
        pytest.fail(f"the shared corpus is missing: {CORPUS}")
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        return list(itertools.islice(f, start, start + count))


def corpus_items(count: int, start: int = 0) -> list[dict]:
    """Return corpus items as dicts."""
    return [json.loads(line) for line in corpus_lines(count, start)]


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Path:
    """Build the seeds/ index once per test run; return its path."""
    index_dir = tmp_path_factory.mktemp("seed") / "index"
    build_index([str(SEEDS)], index_dir, jobs=1)
    return index_dir


@pytest.fixture(scope="session")
def engine(seed_index):
    """Return a search engine over the seeds/ index."""
    from search import Engine

    engine = Engine(seed_index)
    yield engine
    engine.close()


@pytest.fixture()
def app(seed_index):
    """Return the app over the seeds/ index."""
    from web import create_app

    return create_app({"TESTING": True, "INDEX_DIR": str(seed_index)})


@pytest.fixture()
def client(app):
    """Return a test client of the app."""
    return app.test_client()


@pytest.fixture()
def runner():
    """Return a click runner for the newsearch command group."""
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture(scope="session")
def opensearch_cluster(tmp_path_factory):
    """Start a 3-node OpenSearch cluster once per test run through `newsearch cluster start`; return nodes.json."""
    from click.testing import CliRunner

    from indexer.cluster import read_nodes
    from web.cli import cli

    directory = tmp_path_factory.mktemp("opensearch")
    runner = CliRunner()
    started = runner.invoke(cli, ["cluster", "start", "--nodes", "3", "--quick", "--dir", str(directory)])
    if started.exit_code != 0:
        runner.invoke(cli, ["cluster", "stop", "--dir", str(directory)])
        pytest.fail(f"the local OpenSearch cluster did not start: {started.output.strip()}")
    yield read_nodes(directory)
    stopped = runner.invoke(cli, ["cluster", "stop", "--dir", str(directory)])
    assert stopped.exit_code == 0, stopped.output
