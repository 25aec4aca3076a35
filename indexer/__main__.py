"""Run the indexer's commands: python -m indexer rebuild seeds/."""

from indexer.cli import cli

cli(prog_name="python -m indexer")
