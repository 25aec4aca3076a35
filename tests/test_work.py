"""Contract of answers beside matching: they do not depend on the posting cache's state, and every path
outside matching (similar articles, completion, proximity, story lists) is capped by counts, stays under the
matcher's deadline and names each cap it hit in the answer's ``work``.

The index is 1,500 corpus items updated once: some items replaced by changed versions and some deleted with
their file, so the build has deleted documents. Caps are driven by setting small limits on it; the deadline by
a clock the test sets. Counts and outcomes are asserted, never times.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import corpus_items
from indexer.schema import BODY, TITLE
from indexer.update import update_index
from indexer.writer import build_index
from search import Engine, SearchRequest

QUERY = "经济 发展 会议"


def write(path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")


@pytest.fixture(scope="module")
def updated(tmp_path_factory):
    """Build 1,500 corpus items, then replace 120 with changed versions and delete 60; return (index, items)."""
    folder = tmp_path_factory.mktemp("work")
    items = corpus_items(1500)
    kept, changed, gone = items[:1320], items[1320:1440], items[1440:]
    for name, part in (("a", kept), ("b", changed), ("c", gone)):
        write(folder / f"{name}.jsonl", part)
    build_index([str(folder / f"{name}.jsonl") for name in "abc"], folder / "index", jobs=1)
    write(folder / "b.jsonl", [{**i, "body": i["body"] + "\n本条有更正。"} for i in changed])
    (folder / "c.jsonl").unlink()
    summary = update_index([str(folder / "a.jsonl"), str(folder / "b.jsonl")], folder / "index", jobs=1,
                           delete_missing=True)
    assert summary["deleted"] >= 60 and summary["replaced"] == 120, summary
    return folder / "index", {"kept": kept, "changed": changed, "gone": gone}


def scored(answer: dict) -> list[tuple[str, float]]:
    return [(h["id"], h["score"]) for h in answer["hits"]]


def test_scores_and_order_do_not_depend_on_what_ran_before(updated):
    index, items = updated
    request = SearchRequest(q=QUERY, size=50)
    cold_engine = Engine(index)
    warm_engine = Engine(index)
    try:
        cold = cold_engine.search(request)
        build = warm_engine.current()
        assert build.cache.deleted is not None and len(build.cache.deleted) >= 60
        build.cache.limit = 30_000  # a small cache: the warm-up below loads lists and evicts others
        for q in ["经济", "发展", "会议", "中国 经济", "国务院 会议", "发展 改革", "会议", "经济 发展"]:
            warm_engine.search(SearchRequest(q=q))
        cached = {key for key in build.cache.items}
        assert {(BODY, "经济"), (BODY, "会议")} & cached  # some of the query's lists are cached ...
        assert build.cache.size <= 30_000 + max(len(v[0]) for v in build.cache.items.values())
        with warm_engine.borrowed(build) as searcher:
            live = {w: len(build.cache.get(searcher, BODY, w)[0]) for w in QUERY.split()}
            counted = dict(zip(QUERY.split(), build.cache.arrays.counts(BODY, QUERY.split())))
        assert any(live[w] < counted[w] for w in live)  # ... and deleted documents are in them
        warm = warm_engine.search(request)
        again = cold_engine.search(request)
    finally:
        cold_engine.close()
        warm_engine.close()
    assert cold["total"] > 50 and scored(warm) == scored(cold) == scored(again)
    assert cold["total"] == warm["total"] and cold["facets"] == warm["facets"]
    # What must not match: a deleted item, or an item without all three words.
    gone = {i["id"] for i in items["gone"]}
    assert not gone & {h["id"] for h in cold["hits"]}
    held = {i["id"]: i for i in items["kept"] + items["changed"]}
    assert all(all(w in held[h["id"]]["title"] + held[h["id"]]["body"] for w in QUERY.split()) for h in cold["hits"])
