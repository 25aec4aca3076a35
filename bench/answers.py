"""The answers of a build to the query mix, saved and compared: a format change must not change them.

``python -m bench.answers INDEX DOCS OUT.json`` answers the 300-query mix
(bench/queries.py, drawn from the JSON Lines DOCS the index was built from)
and saves each answer's total, hit ids in order, facets and story counts.
``--compare OLD.json`` then reports every query whose answer differs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from bench import corpus, queries

NOW = 1_800_000_000  # a fixed "now", so date facets do not move between runs
KEPT = ("total", "stories", "collapsed", "facets", "timeline", "warnings")


def answers_of(index: Path, docs: Path, count: int) -> list[dict]:
    """Return the kept parts of each answer of the mix, in query order."""
    from search import Engine, SearchRequest

    engine = Engine(index)
    out = []
    for item in queries.make_queries(corpus.read_docs(docs), count):
        request = SearchRequest(q=item.q, categories=(item.category,) if item.category else (),
                                date_from=item.date_from, date_to=item.date_to, sort=item.sort)
        answer = engine.search(request, now=NOW)
        kept = {key: answer.get(key) for key in KEPT}
        kept["hits"] = answer.get("hits")  # ids in order, scores, snippets: read from the stored fields
        out.append({"q": item.q, "sort": item.sort, **kept})
    engine.close()
    return out


def differences(old: list[dict], new: list[dict]) -> list[str]:
    """Return one line per query whose answer differs."""
    if len(old) != len(new):
        return [f"{len(old)} answers before, {len(new)} now"]
    return [f"{a['q']!r} ({a['sort']}): {key} differs" for a, b in zip(old, new)
            for key in a if a[key] != b.get(key)]


@click.command()
@click.argument("index", type=click.Path(exists=True, path_type=Path))
@click.argument("docs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--count", default=300, help="Queries in the mix.")
@click.option("--compare", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Saved answers to compare with.")
def main(index: Path, docs: Path, out: Path, count: int, compare: Path | None) -> None:
    """Save a build's answers to the query mix, and compare them with saved ones."""
    started = time.perf_counter()
    found = answers_of(index, docs, count)
    out.write_text(json.dumps(found, ensure_ascii=False, indent=0, default=str))
    click.echo(f"{len(found)} answers in {time.perf_counter() - started:.1f} s -> {out}")
    if compare is not None:
        diff = differences(json.loads(compare.read_text()), json.loads(json.dumps(found, default=str)))
        click.echo("\n".join(diff[:50]) or "every answer is the same")
        sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
