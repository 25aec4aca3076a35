"""Contract of web/__init__.py's configuration: one SETTINGS table, read in flaskr's order.

Every setting has a default and a help line; defaults come first, then
NEWSEARCH_* environment variables (NEWSEARCH_INDEX, the CLI's, as an alias of
NEWSEARCH_INDEX_DIR), then create_app's test_config. The engine gets the index
path and the recency settings.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from search.ranking import RECENCY_HALF_LIFE_DAYS, RECENCY_WEIGHT
from web import SETTINGS, create_app


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run each test without NEWSEARCH_* variables from the caller's shell."""
    for name in ("NEWSEARCH_INDEX", *(f"NEWSEARCH_{setting}" for setting in SETTINGS)):
        monkeypatch.delenv(name, raising=False)


def test_every_setting_has_a_default_and_help():
    assert list(SETTINGS) == ["INDEX_DIR", "BACKEND", "URL", "ALIAS", "RECENCY_WEIGHT", "RECENCY_HALF_LIFE_DAYS", "SUGGEST_LIMIT",
                              "SITE_NAME", "FIXED_NOW"]
    for name, (default, help_text) in SETTINGS.items():
        assert isinstance(help_text, str) and len(help_text) > 20, name
    assert SETTINGS["RECENCY_WEIGHT"][0] == RECENCY_WEIGHT
    assert SETTINGS["RECENCY_HALF_LIFE_DAYS"][0] == RECENCY_HALF_LIFE_DAYS


def test_defaults():
    app = create_app()
    assert {name: app.config[name] for name in SETTINGS} == {name: value for name, (value, _) in SETTINGS.items()}
    engine = app.extensions["newsearch"]
    assert (engine.index_dir, engine.recency_weight, engine.half_life_days) == (Path("index"), 0.15, 180.0)


def test_environment_overrides_defaults(monkeypatch, seed_index):
    monkeypatch.setenv("NEWSEARCH_INDEX_DIR", str(seed_index))
    monkeypatch.setenv("NEWSEARCH_RECENCY_WEIGHT", "0")
    monkeypatch.setenv("NEWSEARCH_RECENCY_HALF_LIFE_DAYS", "30")
    monkeypatch.setenv("NEWSEARCH_SITE_NAME", "要闻检索")
    app = create_app()
    engine = app.extensions["newsearch"]
    assert (engine.index_dir, engine.recency_weight, engine.half_life_days) == (seed_index, 0.0, 30.0)
    assert "<title>要闻检索</title>" in app.test_client().get("/").get_data(as_text=True)


def test_cli_index_variable_is_an_alias(monkeypatch, tmp_path):
    monkeypatch.setenv("NEWSEARCH_INDEX", str(tmp_path / "a"))
    assert create_app().config["INDEX_DIR"] == str(tmp_path / "a")
    monkeypatch.setenv("NEWSEARCH_INDEX_DIR", str(tmp_path / "b"))
    assert create_app().config["INDEX_DIR"] == str(tmp_path / "b")  # the web's own name wins


def test_test_config_wins(monkeypatch, seed_index):
    monkeypatch.setenv("NEWSEARCH_SUGGEST_LIMIT", "3")
    app = create_app({"INDEX_DIR": str(seed_index), "SUGGEST_LIMIT": 1})
    assert app.config["SUGGEST_LIMIT"] == 1
    assert len(app.test_client().get("/api/suggest?q=新").get_json()["suggestions"]) == 1


def test_create_app_loads_the_segmenter_before_any_request(seed_index):
    # In a fresh process, as gunicorn --preload's master: the app is created, no request is made.
    script = (
        "import sys; from web import create_app; from indexer import analysis; "
        "app = create_app({'INDEX_DIR': sys.argv[1]}); "
        "print(analysis._segmenter is not None, analysis._FOLD._t2s is not None, "
        "app.extensions['newsearch']._build is None)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(seed_index)], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, check=True)
    assert done.stdout.split() == ["True", "True", "True"]  # loaded; the index files are not opened yet
    bare = "from indexer import analysis; print(analysis._segmenter is None, analysis._FOLD._t2s is None)"
    done = subprocess.run([sys.executable, "-c", bare], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, check=True)
    assert done.stdout.split() == ["True", "True"]  # importing alone loads neither
