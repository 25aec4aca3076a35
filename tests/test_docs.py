"""Contract of the docs: every command has help with an example, every setting is documented,
and the README's test command is exactly what CI runs."""

import re

from conftest import ROOT
from web import SETTINGS
from web.cli import cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_has_help_with_an_example(runner):
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example:" in result.output, f"{name} --help has no example"
        assert f"`newsearch {name}" in README, f"README does not list newsearch {name}"


def test_every_setting_is_in_the_readme_table():
    for name, (default, help_text) in SETTINGS.items():
        assert help_text
        assert re.search(rf"^\| `{name}` \|", README, re.MULTILINE), f"{name} is not documented"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.DOTALL)
    assert ci in blocks, "the last line of .ci/run must be a command block of the README"
    assert ci.endswith("pytest")


def test_the_limits_in_the_readme_are_the_codes():
    from search import around, budget, query, ranking, request, spelling

    text = " ".join(README.split())  # phrases may break over lines
    said = [
        f"read up to {query.MAX_QUERY_CHARS} characters and {query.MAX_TERMS} terms",
        f"reads at most {budget.MAX_STORED} articles for that",
        f"at most {budget.MAX_POSITIONS:,} (term, article) pairs",
        f"one search may take {budget.MAX_POSTINGS:,} postings",
        f"cut into {budget.WINDOW_BLOCKS} runs of articles",
        f"matching may take {budget.MATCH_SECONDS} s",
        f"with {budget.LATE_SECONDS} s more",
        f"results go to page {request.MAX_PAGE:,} and {request.MAX_SIZE} a page",
        f"first-published {around.MAX_STORY:,} copies at most, and an article page lists {around.MAX_COPIES} other",
        f"its first {around.MLT_TEXT:,} characters, and read at most {around.MLT_POSTINGS:,} postings",
        f"the best {ranking.RERANK_WINDOW} hits",
        f"on the first {ranking.PROXIMITY_POSITIONS:,} positions",
        f"scan at most {spelling.MAX_SCAN:,} known words",
        f"at most {spelling.COMPLETE_POSTINGS:,} postings (`completion`)",
        f"tries {spelling.MAX_CANDIDATES} corrections of a piece and the {spelling.MAX_TRIES} most promising",
    ]
    assert [phrase for phrase in said if phrase not in text] == []
    assert budget.LATE_SHARE == 1 / 8 and "the newest eighth of the archive" in text
    for kind in budget.CAPPED:
        assert f"`{kind}`" in text, kind
