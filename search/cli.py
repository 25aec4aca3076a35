"""The `query` command: the search answer in a terminal, or as the API's JSON."""

from __future__ import annotations

import json
import re
from html import unescape

import click

from indexer.cli import backend_options, cluster_url, index_option, json_option
from search.backends import open_engine
from search.engine import IndexMissingError
from search.opensearch_engine import ClusterUnavailableError
from search.facets import UNIT_NAMES
from search.request import SORTS, RequestError, parse_request


def _terminal(html: str) -> str:
    """Render highlight HTML for a terminal: matches bold, entities decoded."""
    text = re.sub(r"<mark>(.*?)</mark>", lambda m: click.style(m.group(1), bold=True, fg="red"), html)
    return unescape(text)


@click.command()
@click.argument("q", default="")
@index_option
@click.option("--category", multiple=True, help="Only this category (repeatable: any of them).")
@click.option("--source", multiple=True, help="Only this source (repeatable: any of them).")
@click.option("--person", multiple=True, help="Only articles about this person (repeatable: any of them).")
@click.option("--place", multiple=True, help="Only articles naming this place (repeatable: any of them).")
@click.option("--org", multiple=True, help="Only articles naming this organisation (repeatable: any of them).")
@click.option("--range", "range_", type=click.Choice(["1d", "1w", "1m", "1y"]), help="Published within a day, week, month or year.")
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="Published on or after this date.")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Published on or before this date.")
@click.option("--sort", type=click.Choice(SORTS), default="relevance", show_default=True)
@click.option("--page", type=int, default=1, show_default=True)
@click.option("--size", type=int, default=10, show_default=True)
@click.option("--collapse/--no-collapse", default=True, show_default=True,
              help="One hit per story (copies of one news story counted under it), or every copy.")
@click.option("--story", metavar="ID", help="List every copy of this story (a hit's story id), first published first.")
@backend_options
@json_option
def query(q, index_dir, category, source, person, place, org, range_, date_from, date_to, sort, page, size, collapse,
          story, backend, url, alias, as_json):
    """Search the index for Q and print ranked, highlighted hits with facets.

    Q is what a user would type into the search box: words (all must match),
    "quoted phrases", -excluded words, a OR b, title:/source:/category: words.

    Example:

        newsearch query '衢州 新能源' --range 1y --sort newest

        newsearch query 会见 --person 李克强 --place 北京
    """
    params = {"q": q, "category": list(category), "source": list(source), "person": list(person),
              "place": list(place), "org": list(org), "range": range_,
              "from": date_from, "to": date_to, "sort": sort, "page": str(page), "size": str(size),
              "collapse": "1" if collapse else "0", "story": story}
    try:
        request = parse_request({k: v for k, v in params.items() if v})
        url = cluster_url(backend, url)
        answer = open_engine(backend, index_dir, url, alias).search(request)
    except RequestError as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.param}") from None
    except IndexMissingError as exc:
        if isinstance(exc, ClusterUnavailableError):
            raise click.ClickException(str(exc)) from None
        where = f"--backend opensearch --url {url} --alias {alias}" if url else f"--index {index_dir}"
        raise click.ClickException(f"{exc}; run: newsearch rebuild {where}") from None
    if as_json:
        click.echo(json.dumps({"ok": True, **answer}, ensure_ascii=False, indent=2))
        return
    _print_answer(answer)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(timeline: dict) -> str:
    """Return the timeline as one line: 时间分布（每月 2012-07…2015-09）▁▃█·▂ and the undated count."""
    buckets = timeline["buckets"]
    if not buckets:
        return f"时间分布：{timeline['undated']} 篇没有日期" if timeline["undated"] else ""
    most = max(b["count"] for b in buckets)
    bars = "".join("·" if not b["count"] else SPARKS[min(len(SPARKS) - 1, b["count"] * len(SPARKS) // (most + 1))]
                   for b in buckets)
    line = f"时间分布（每{UNIT_NAMES[timeline['unit']]} {buckets[0]['label']}…{buckets[-1]['label']}）{bars}"
    return line + (f"，另有 {timeline['undated']} 篇没有日期" if timeline["undated"] else "")


def _print_answer(answer: dict) -> None:
    for warning in answer["warnings"]:
        click.echo(f"! {warning}", err=True)
    merged = f"，合并相同新闻后 {answer['stories']} 条" if answer["collapsed"] and answer["stories"] < answer["total"] else ""
    click.echo(f"约 {answer['total']} 条结果{merged} ({answer['took_ms'] / 1000:.3f} 秒)")
    if answer["suggestion"]:
        click.echo(f"您是不是要找: {answer['suggestion']}")
    first = (answer["page"] - 1) * answer["size"]
    for rank, hit in enumerate(answer["hits"], start=first + 1):
        marker = " [标题]" if hit["kind"] == "headline" else ""
        meta = " · ".join(x for x in (hit["published"], hit["category"], hit["source"]) if x)
        click.echo(f"\n{rank:>3}. {_terminal(hit['title_html'])}{marker}")
        click.echo(f"     {meta}")
        if hit["snippet_html"]:
            click.echo(f"     {_terminal(hit['snippet_html'])}")
        if answer["collapsed"] and hit["story"] and hit["story"]["size"] > 1:
            click.echo(f"     另有 {hit['story']['size'] - 1} 条相同新闻: --story {hit['story']['id']}")
    if answer["related"]:
        click.echo("\n相关搜索: " + " · ".join(r["q"] for r in answer["related"]))
    line = sparkline(answer["timeline"])
    if line:
        click.echo(f"\n{line}")
    for name in ("category", "source"):
        values = answer["facets"][name]
        if values:
            click.echo(f"\n{name}: " + ", ".join(f"{v['value']} ({v['count']})" for v in values[:10]))
    about = "（按部分结果估算）" if "entities" in answer["work"]["capped"] else ""
    for name, title in (("person", "人物"), ("place", "地点"), ("org", "机构")):
        values = answer["facets"].get(name)
        if values:
            click.echo(f"\n{title}{about}: " + ", ".join(f"{v['value']} ({v['count']})" for v in values))
