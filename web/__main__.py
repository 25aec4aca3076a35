"""Run the newsearch command group: python -m web serve."""

from web.cli import cli

cli(prog_name="newsearch")
