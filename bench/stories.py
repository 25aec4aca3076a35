"""Story grouping measured: a labelled set of reprints and hard negatives, pairwise precision and recall.

``labelled_set`` takes corpus items and returns documents with their true
story: each chosen original plus reprints made the way outlets and crawlers
change a story (indexer/stories.py lists what grouping must see through):

- ``本文转自:X`` or ``来源:X`` added as the first line, ``责任编辑:X`` as the last;
- a reporter's byline ``（记者 X）`` put into the first paragraph;
- the title prefixed with ``【X】`` or given a different wording;
- the lead or the last paragraph dropped (bodies of three paragraphs or more);
- full-width letters and digits, or the traditional script;
- an ad or ``关注`` line appended.

Reprints are published 0 to 3 days after their original, by another source.
The hard negatives are the other corpus items of the originals' days — same
day, same category, and the same outlet boilerplate added to some of them —
which are each their own story. Pairwise: a pair of documents is predicted
together when they share a story key; precision and recall are over such pairs.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path

OUTLETS = ("中国新闻网", "人民网", "新华网", "央视网", "澎湃新闻", "每日看点快看", "环球网", "光明网")
EDITORS = ("王晓明", "李静", "张伟", "刘洋")
REPORTERS = ("张斌", "陈悦", "赵磊", "孙丽")
ADS = ("关注我们的公众号，获取更多新闻资讯", "点击下方链接下载客户端，阅读更多精彩内容", "扫码关注，每天推送最新消息")
TITLE_PREFIXES = ("【独家】", "【关注】", "【最新】", "【热点】")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}


def _paragraphs(doc: dict) -> list[str]:
    return [line.strip() for line in (doc.get("body") or "").split("\n") if line.strip()]


def eligible(doc: dict) -> bool:
    """Tell whether an item can be an original: a dated body of two paragraphs or more and 300 characters."""
    return bool(doc.get("date")) and len(_paragraphs(doc)) >= 2 and len(doc.get("body") or "") >= 300


def _traditional(text: str) -> str:
    import opencc

    return opencc.OpenCC("s2t").convert(text)


def reprint(doc: dict, number: int, rng: random.Random) -> dict:
    """Return a reprint of a corpus item with a few of the outlets' changes, drawn by rng."""
    paragraphs = _paragraphs(doc)
    title = doc.get("title") or ""
    changes = rng.sample(["from", "editor", "byline", "title", "drop", "width", "script", "ad"], k=rng.randint(2, 4))
    if "drop" in changes and len(paragraphs) >= 3:
        paragraphs = paragraphs[1:] if rng.random() < 0.5 else paragraphs[:-1]
    if "byline" in changes:
        paragraphs[0] = f"（记者 {rng.choice(REPORTERS)}）" + paragraphs[0]
    if "from" in changes:
        paragraphs.insert(0, f"{rng.choice(['本文转自', '来源'])}:{rng.choice(OUTLETS)}")
    if "editor" in changes:
        paragraphs.append(f"责任编辑:{rng.choice(EDITORS)}")
    if "ad" in changes:
        paragraphs.append(rng.choice(ADS))
    if "title" in changes:
        title = rng.choice(TITLE_PREFIXES) + title if rng.random() < 0.6 else title[: max(4, len(title) // 2)] + "（转载）"
    body = "\n".join(paragraphs)
    if "width" in changes:
        body = "".join(_FULL_WIDTH.get(c, c) for c in body)
    if "script" in changes:
        body, title = _traditional(body), _traditional(title)
    moment = datetime.strptime(doc["date"], DATE_FORMAT) + timedelta(hours=rng.randint(0, 72))
    return {**doc, "id": f"{doc['id']}~reprint{number}", "title": title, "body": body,
            "source": rng.choice(OUTLETS), "date": moment.strftime(DATE_FORMAT)}


def with_boilerplate(doc: dict, rng: random.Random) -> dict:
    """Return a corpus item with an outlet's boilerplate added (a hard negative stays its own story)."""
    lines = [f"本文转自:{rng.choice(OUTLETS)}", *_paragraphs(doc), rng.choice(ADS)]
    return {**doc, "id": f"{doc['id']}~outlet", "body": "\n".join(lines), "source": rng.choice(OUTLETS)}


def labelled_set(corpus: list[dict], originals: int, seed: int = 7) -> list[tuple[dict, str]]:
    """Return (document, true story) pairs: originals with 1-3 reprints each, and every other item of their days.

    Items of the originals' days that are not originals are hard negatives; a third
    of them also appear a second time with outlet boilerplate added, under another id
    (those two copies are one story: the same text).
    """
    rng = random.Random(seed)
    by_day: dict[str, list[dict]] = {}
    for doc in corpus:
        if doc.get("date"):
            by_day.setdefault(doc["date"][:10], []).append(doc)
    days = sorted(day for day, items in by_day.items() if sum(map(eligible, items)) >= 2)
    chosen_days = rng.sample(days, min(len(days), max(1, originals // 2)))
    found: list[tuple[dict, str]] = []
    made = 0
    for day in sorted(chosen_days):
        items = by_day[day]
        picks = [d for d in items if eligible(d)][:2]
        for doc in items:
            story = doc["id"]
            found.append((doc, story))
            if doc in picks and made < originals:
                made += 1
                for number in range(rng.randint(1, 3)):
                    found.append((reprint(doc, number, rng), story))
            elif rng.random() < 1 / 3 and _paragraphs(doc):
                found.append((with_boilerplate(doc, rng), story))
    return found


def pairwise(truth: dict[str, str], predicted: dict[str, str]) -> dict:
    """Return pairwise precision and recall of predicted stories (id -> story) against the truth.

    Only documents the index holds count: a reprint whose folded title and body equal
    its original's (width and script changes only) is one article to the indexer.
    """
    truth = {k: v for k, v in truth.items() if k in predicted}
    def pairs(stories: dict[str, str]) -> set[tuple[str, str]]:
        groups: dict[str, list[str]] = {}
        for doc_id, story in stories.items():
            groups.setdefault(story, []).append(doc_id)
        return {pair for members in groups.values() for pair in combinations(sorted(members), 2)}

    true_pairs, found_pairs = pairs(truth), pairs({k: v for k, v in predicted.items() if k in truth})
    both = len(true_pairs & found_pairs)
    return {"documents": len(truth), "true_pairs": len(true_pairs), "found_pairs": len(found_pairs), "correct": both,
            "precision": both / len(found_pairs) if found_pairs else 1.0,
            "recall": both / len(true_pairs) if true_pairs else 1.0,
            "false_pairs": sorted(found_pairs - true_pairs)[:20], "missed_pairs": sorted(true_pairs - found_pairs)[:20]}


# -- the benchmark: python -m bench stories ----------------------------------------


def measure(docs: list[dict], corpus_docs: list[dict], originals: int, work: Path, log) -> dict:
    """Rebuild the documents with and without grouping, group the labelled set; return the figures."""
    from bench import corpus
    from bench.rebuild import newsearch_command, run_measured

    figures: dict = {"docs": len(docs)}
    path = corpus.write_docs(docs, work, "docs.jsonl")
    for name, env in (("without", {"NEWSEARCH_STORIES": "0"}), ("with", {})):
        log(f"rebuild of {len(docs):,} items {name} stories …")
        index = work / f"index-{name}"
        measured = run_measured(f"rebuild {name} stories",
                                [*newsearch_command(), "rebuild", str(path), "--index", str(index), "--json"],
                                env=env)
        figures[name] = {"wall_s": measured.wall_s, "cpu_s": measured.cpu_s, "peak_pss": measured.peak_pss,
                         "summary": json.loads(measured.stdout)}
    figures["groups"] = largest_groups(work / "index-with")
    log(f"labelled set of {originals} originals …")
    found = labelled_set(corpus_docs, originals)
    path = corpus.write_docs([d for d, _ in found], work, "labelled.jsonl")
    run_measured("rebuild labelled", [*newsearch_command(), "rebuild", str(path), "--index", str(work / "labelled"),
                                      "--json"])
    figures["labelled"] = pairwise({d["id"]: s for d, s in found}, stories_by_id(work / "labelled"))
    return figures


def stories_by_id(index: Path) -> dict[str, str]:
    """Return every document id of an index with its story key."""
    from search.engine import Engine

    engine = Engine(index)
    try:
        build = engine.current()
        cols = build.columns
        with engine.borrowed(build) as searcher:
            return {searcher.stored_fields(d)["id"]: f"{int(cols.story_keys[cols.story[d]]):016x}"
                    for d in searcher.reader().all_doc_ids()}
    finally:
        engine.close()


def largest_groups(index: Path, count: int = 10) -> dict:
    """Return how many stories of two or more copies an index holds and its largest ones, with their copies."""
    import numpy as np

    from search.engine import Engine

    engine = Engine(index)
    try:
        build = engine.current()
        cols = build.columns
        sizes = cols.story_size
        many = np.flatnonzero(sizes > 1)
        top = many[np.argsort(-sizes[many], kind="stable")][:count]
        groups = []
        with engine.borrowed(build) as searcher:
            for code in top.tolist():
                members = np.flatnonzero(cols.story == code)[:6]
                groups.append({"size": int(sizes[code]), "copies": [
                    {k: searcher.stored_fields(int(d)).get(k) for k in ("title", "source", "published")}
                    for d in members]})
                for copy in groups[-1]["copies"]:  # stored as Beijing wall-clock seconds
                    if copy["published"]:
                        copy["published"] = str(datetime(1970, 1, 1) + timedelta(seconds=copy["published"]))
        return {"documents": int(sizes.sum()), "stories": int((sizes > 0).sum()), "multi": int(len(many)),
                "in_multi": int(sizes[many].sum()), "largest": groups}
    finally:
        engine.close()


def render(figures: dict, meta: dict) -> str:
    """Return the benchmark's report (markdown)."""
    without, with_ = figures["without"], figures["with"]
    grouping = with_["summary"].get("stories", {})
    groups, labelled = figures["groups"], figures["labelled"]
    lines = [
        "## Stories", "",
        f"- date: {meta['date']}; machine: {meta['machine']}; load average {meta['load']:.2f} before the run",
        f"- command: `{meta['command']}`; code: {meta['code']}", "",
        f"Rebuild of {figures['docs']:,} corpus items (`newsearch rebuild`, defaults), the same run with "
        "`NEWSEARCH_STORIES=0` (bodies not sketched, nothing grouped) and as shipped:", "",
        "| rebuild | wall s | CPU s | peak PSS MB |", "| --- | ---: | ---: | ---: |",
        f"| without stories | {without['wall_s']:.1f} | {without['cpu_s']:.1f} | {without['peak_pss'] / 1e6:,.0f} |",
        f"| with stories | {with_['wall_s']:.1f} | {with_['cpu_s']:.1f} | {with_['peak_pss'] / 1e6:,.0f} |",
        f"| difference | {with_['wall_s'] - without['wall_s']:+.1f} "
        f"({(with_['wall_s'] / without['wall_s'] - 1) * 100:+.1f}%) | {with_['cpu_s'] - without['cpu_s']:+.1f} | "
        f"{(with_['peak_pss'] - without['peak_pss']) / 1e6:+,.0f} |", "",
        f"Grouping step after the segments are written: {grouping.get('seconds', 0):.1f} s, "
        f"{grouping.get('candidates', 0):,} candidate pairs, {grouping.get('confirmed', 0):,} confirmed, "
        f"{grouping.get('texts_read', 0):,} stored bodies read.", "",
        f"The index holds {groups['stories']:,} stories over {groups['documents']:,} documents; "
        f"{groups['multi']:,} stories have two copies or more ({groups['in_multi']:,} documents). The largest:", "",
        "| copies | title, source, published (first six) |", "| ---: | --- |",
    ]
    for group in groups["largest"]:
        cells = "<br>".join(f"{c['title']} · {c['source'] or '—'} · {c['published']}" for c in group["copies"])
        lines.append(f"| {group['size']} | {cells} |")
    lines += [
        "", f"Labelled set (bench/stories.py, {meta['originals']} originals with 1–3 reprints each, and every other "
        f"item of their days as hard negatives): {labelled['documents']:,} documents, "
        f"{labelled['true_pairs']:,} true pairs, {labelled['found_pairs']:,} found, {labelled['correct']:,} correct: "
        f"**precision {labelled['precision']:.3f}, recall {labelled['recall']:.3f}** (targets 0.97 and 0.90).", "",
    ]
    return "\n".join(lines)
