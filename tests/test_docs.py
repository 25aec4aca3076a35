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
