"""Stories: reprints of one news story grouped at index time, collapsed in results.

A real index of a labelled set (bench/stories.py): corpus items of randomly
chosen days, some of them reprinted the way outlets change a story, the rest
hard negatives (same day, same category, outlet boilerplate added).
"""

import json
import re
from html import unescape

import numpy as np
import pytest
from click.testing import CliRunner
from datasketch import MinHash

from bench import corpus
from bench.stories import labelled_set, pairwise, reprint, stories_by_id
from conftest import SEEDS, corpus_items
from indexer import stories
from indexer.analysis import iter_words, normalize
from indexer.keys import key_of
from indexer.snapshot import load_snapshot
from indexer.update import update_index
from indexer.writer import build_index
from search import Engine, SearchRequest
from web import create_app
from web.cli import cli

ORIGINALS = 100


def write_items(path, items):
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Build the labelled set's index; return (index, [(doc, true story)])."""
    folder = tmp_path_factory.mktemp("stories")
    docs, _ = corpus.load_docs(corpus.DEFAULT_CORPUS, None)
    found = labelled_set(docs, ORIGINALS)
    build_index([write_items(folder / "labelled.jsonl", [d for d, _ in found])], folder / "index", jobs=1)
    return folder / "index", found


@pytest.fixture(scope="module")
def engine(labelled):
    engine = Engine(labelled[0])
    yield engine
    engine.close()


def predicted(engine) -> dict[str, str]:
    """Return each indexed document's story id."""
    return stories_by_id(engine.index_dir)


def copies_of(labelled, engine, least: int = 3):
    """Return (original, its indexed copies' ids) of the first original with at least `least` indexed copies."""
    stories_of = predicted(engine)
    truth: dict[str, list[dict]] = {}
    for doc, story in labelled[1]:
        if doc["id"] in stories_of:
            truth.setdefault(story, []).append(doc)
    for story, docs in truth.items():
        if len(docs) >= least and any("~reprint" in d["id"] for d in docs):
            return next(d for d in docs if d["id"] == story), {d["id"] for d in docs}
    raise AssertionError("the labelled set has no story with enough copies")


def test_the_labelled_set_is_grouped_with_high_precision_and_recall(labelled, engine):
    truth = {doc["id"]: story for doc, story in labelled[1]}
    figures = pairwise(truth, predicted(engine))
    assert figures["true_pairs"] >= 150  # enough reprints for the figures to mean something
    assert figures["precision"] >= 0.97, figures["false_pairs"]
    assert figures["recall"] >= 0.90, figures["missed_pairs"]


def test_items_of_one_day_with_the_same_boilerplate_stay_different_stories(labelled, engine):
    stories_of = predicted(engine)
    outlets = [doc for doc, _ in labelled[1] if doc["id"].endswith("~outlet") and doc["id"] in stories_of]
    assert len(outlets) >= 20
    by_day: dict[str, set[str]] = {}
    for doc in outlets:
        by_day.setdefault(doc["date"][:10], set()).add(stories_of[doc["id"]])
    # Each boilerplate copy has its own original's story, not one of its neighbours'.
    for doc in outlets:
        original = doc["id"].removesuffix("~outlet")
        assert stories_of[doc["id"]] == stories_of[original]
    assert sum(len(s) for s in by_day.values()) == len({stories_of[d["id"]] for d in outlets})
    assert any(len(s) > 1 for s in by_day.values())


def test_story_text_drops_boilerplate_and_folds_width_and_script():
    plain = stories.story_text("中新网衢州12月29日电(记者 张斌)年底，衢州传出两则消息。\n责任编辑:王晓明")
    assert plain == "年底衢州传出两则消息"
    assert stories.story_text("本文转自:中国新闻网\n（記者 張斌）年底，衢州傳出兩則消息。\n关注我们获取更多资讯") == \
        "年底衢州传出两则消息"
    # a paragraph that merely starts with 记者 or 关注 is news, not boilerplate
    assert stories.story_text("记者从国家发改委获悉，全国粮食产量再创新高。") == "记者从国家发改委获悉全国粮食产量再创新高"


def test_search_shows_one_hit_per_story_with_the_number_of_copies(labelled, engine):
    original, copies = copies_of(labelled, engine)
    words = original["title"][:8]
    collapsed = engine.search(SearchRequest(q=words, size=50))
    every = engine.search(SearchRequest(q=words, size=50, collapse=False))
    shown = [h for h in collapsed["hits"] if h["id"] in copies]
    assert len(shown) == 1 and shown[0]["story"]["size"] == len(copies)
    assert copies <= {h["id"] for h in every["hits"]}  # collapse=0: every copy
    assert collapsed["total"] == every["total"]  # totals and facets count articles
    assert collapsed["stories"] < collapsed["total"] and every["stories"] == every["total"]
    assert sum(v["count"] for v in collapsed["facets"]["source"]) == collapsed["total"]
    # the other hits are other stories: each shown once, never a copy of this one
    ids = [h["story"]["id"] for h in collapsed["hits"]]
    assert len(ids) == len(set(ids))
    assert all(h["story"]["id"] != shown[0]["story"]["id"] for h in collapsed["hits"] if h["id"] not in copies)
    assert all(h["story"]["size"] >= 1 for h in collapsed["hits"])


def test_a_story_lists_every_copy_first_published_first(labelled, engine):
    original, copies = copies_of(labelled, engine)
    story = predicted(engine)[original["id"]]
    answer = engine.search(SearchRequest(story=story, size=50))
    assert {h["id"] for h in answer["hits"]} == copies
    times = [h["published"] for h in answer["hits"]]
    assert times == sorted(times) and answer["hits"][0]["id"] == original["id"]
    assert engine.search(SearchRequest(story="0" * 16))["total"] == 0


def test_the_pages_link_a_collapsed_hit_to_its_copies_and_list_them_on_the_article(labelled, engine):
    original, copies = copies_of(labelled, engine)
    client = create_app({"TESTING": True, "INDEX_DIR": str(labelled[0])}).test_client()
    page = client.get("/search", query_string={"q": original["title"][:8], "size": 50}).get_data(as_text=True)
    story = predicted(engine)[original["id"]]
    link = re.search(r'<a href="([^"]*story=' + story + r'[^"]*)">另有 (\d+) 条相同新闻</a>', page)
    assert link and int(link.group(2)) == len(copies) - 1
    listed = client.get(unescape(link.group(1))).get_data(as_text=True)
    assert f"同一新闻的 {len(copies)} 篇报道" in listed
    assert all(f"/article/{doc_id}" in listed for doc_id in copies)
    assert "facet-note" in page and "facet-note" not in client.get(
        "/search", query_string={"q": original["title"][:8], "collapse": "0"}).get_data(as_text=True)
    article = client.get(f"/article/{original['id']}").get_data(as_text=True)
    section = article[article.index('id="copies-title"'):]
    assert f"相同新闻的其他 {len(copies) - 1} 篇报道" in section
    assert all(f"/article/{doc_id}" in section for doc_id in copies - {original["id"]})
    assert f"/article/{original['id']}\"" not in section
    api = client.get("/api/search", query_string={"story": "xyz"})
    assert api.status_code == 400 and api.get_json()["ok"] is False


def test_the_command_line_collapses_and_lists_a_story(labelled, engine):
    original, copies = copies_of(labelled, engine)
    runner = CliRunner()
    out = runner.invoke(cli, ["query", original["title"][:8], "--index", str(labelled[0]), "--size", "50"])
    assert out.exit_code == 0 and f"另有 {len(copies) - 1} 条相同新闻" in out.output
    story = predicted(engine)[original["id"]]
    listed = runner.invoke(cli, ["query", "--story", story, "--index", str(labelled[0]), "--json"])
    assert {h["id"] for h in json.loads(listed.output)["hits"]} == copies
    every = runner.invoke(cli, ["query", original["title"][:8], "--no-collapse", "--index", str(labelled[0]),
                                "--size", "50", "--json"])
    assert copies <= {h["id"] for h in json.loads(every.output)["hits"]}


def story_ids(index) -> dict[str, tuple[str, int]]:
    engine = Engine(index)
    try:
        build = engine.current()
        cols = build.columns
        found = {}
        with engine.borrowed(build) as searcher:
            for docnum in searcher.reader().all_doc_ids():
                code = cols.story[docnum]
                found[searcher.stored_fields(docnum)["id"]] = (f"{int(cols.story_keys[code]):016x}",
                                                               int(cols.story_size[code]))
        return found
    finally:
        engine.close()


def test_an_update_adds_copies_to_existing_stories_and_renumbers_none(tmp_path):
    import random

    items = [d for d in corpus_items(400, 52_000) if len(d.get("body") or "") >= 300 and d.get("date")]
    original, other = items[0], items[1]
    rng = random.Random(3)
    first = reprint(original, 0, rng)
    index = tmp_path / "index"
    build_index([write_items(tmp_path / "a.jsonl", [*items[2:], original, first])], index, jobs=1)
    before = story_ids(index)
    assert before[original["id"]][0] == before[first["id"]][0] and before[original["id"]][1] == 2
    assert before[original["id"]][0] == f"{key_of(original['id']):016x}"  # named by its first-published copy
    # An earlier copy, a later one and an unrelated item arrive.
    earlier = {**reprint(original, 1, rng), "date": original["date"][:10] + " 00:00:01"}
    later = reprint(original, 2, rng)
    summary = update_index([write_items(tmp_path / "b.jsonl", [earlier, later, other])], index, jobs=1)
    assert summary["added"] == 3 and summary["stories"]["grouped"] >= 2
    after = story_ids(index)
    story = before[original["id"]][0]
    assert after[earlier["id"]][0] == story and after[later["id"]][0] == story  # joined, not renamed
    assert after[original["id"]] == (story, 4)
    assert after[other["id"]] == (f"{key_of(other['id']):016x}", 1)  # its own story
    assert all(after[doc_id][0] == value[0] for doc_id, value in before.items())  # nothing renumbered
    # `newsearch stats` counts the stories as the documents name them.
    sizes = dict(after.values())
    told = json.loads(CliRunner().invoke(cli, ["stats", "--index", str(index), "--json"]).output)
    assert told["documents"] == len(after) and told["stories"] == {
        "stories": len(sizes), "with_copies": sum(1 for n in sizes.values() if n > 1),
        "documents_in_them": sum(n for n in sizes.values() if n > 1)}
    assert told["stories"]["with_copies"] >= 1 and told["stories"]["stories"] < len(after)


def test_a_headline_entry_joins_the_story_of_the_article_with_its_title(tmp_path):
    page = load_snapshot(str(next(SEEDS.glob("*.txt"))))
    titled = [h for h in page.related if h.title]
    assert len(titled) >= 2
    article = {"id": "made-headline-article", "title": "【独家】" + titled[0].title, "date": "2023-12-30 08:00:00",
               "source": "某网", "body": "这是一篇与相关新闻标题相同的文章的正文，讲的是同一件事。" * 3}
    index = tmp_path / "index"
    build_index([str(SEEDS), write_items(tmp_path / "a.jsonl", [article])], index, jobs=1)
    found = story_ids(index)
    engine = Engine(index)
    try:
        headlines = {h["id"]: h["title"] for h in engine.search(SearchRequest(q=titled[0].title[:6], size=50,
                                                                               collapse=False))["hits"]
                     if h["kind"] == "headline"}
    finally:
        engine.close()
    joined = [doc_id for doc_id, title in headlines.items() if title == titled[0].title]
    assert joined and all(found[doc_id][0] == found[article["id"]][0] for doc_id in joined)
    assert found[article["id"]][1] == 1 + len(joined)
    # another headline keeps a story of its own
    others = [doc_id for doc_id, (story, size) in found.items() if doc_id not in joined and doc_id != article["id"]]
    assert others and all(found[doc_id][0] != found[article["id"]][0] for doc_id in others)


def test_band_keys_of_a_copy_agree_and_of_another_story_do_not():
    items = [d for d in corpus_items(200, 30_000) if len(d.get("body") or "") >= 400]
    a, b = items[0], items[1]
    copy = "本文转自:中国新闻网\n" + a["body"] + "\n关注我们获取更多资讯"
    same = int((stories.band_keys(a["body"]) == stories.band_keys(copy)).sum())
    other = int((stories.band_keys(a["body"]) == stories.band_keys(b["body"])).sum())
    assert same >= stories.BANDS // 2 and other == 0
    assert not stories.band_keys("太短").any()
    assert stories.same_story(stories.shingles(stories.story_text(a["body"])),
                              stories.shingles(stories.story_text(copy)))
    assert not stories.same_story(stories.shingles(stories.story_text(a["body"])),
                                  stories.shingles(stories.story_text(b["body"])))
    assert np.all(stories.shingles("") == np.zeros(0))


def test_the_sketch_is_datasketchs_minhash_and_a_folded_body_gives_the_same_keys():
    items = [d for d in corpus_items(300, 12_000) if len(d.get("body") or "") >= 200]
    bodies = [d["body"] for d in items[:40]] + ["\n".join(d["body"] for d in items)]  # past one step of its scratch
    assert len(stories.shingles(stories.story_text(bodies[-1]))) > stories._SKETCH_ROWS
    for body in bodies:
        found = stories.shingles(stories.story_text(body))
        reference = MinHash(num_perm=stories.NUM_PERM, hashfunc=int, scheme="affine32",
                            permutations=stories._TEMPLATE.permutations)
        reference.update_batch(found.tolist())
        assert np.array_equal(stories.sketch(found), reference.hashvalues)
        assert np.array_equal(stories.band_keys(body, normalize(body)), stories.band_keys(body))
    other = MinHash(num_perm=stories.NUM_PERM, hashfunc=int, scheme="affine32", seed=1)
    other.update_batch(found.tolist())
    assert not np.array_equal(stories.sketch(found), other.hashvalues)  # the permutations are the build's own


def test_an_article_lists_similar_articles_of_other_stories_never_its_copies(labelled, engine):
    original, copies = copies_of(labelled, engine)
    article = engine.article(original["id"])
    alike = [item["id"] for item in article["more_like_this"]]
    assert 1 <= len(alike) <= 5 and not set(alike) & copies
    stories_of = predicted(engine)
    assert len({stories_of[i] for i in alike}) == len(alike)  # one per story
    assert all(stories_of[i] != stories_of[original["id"]] for i in alike)

    def words(doc_id):
        stored = engine.article(doc_id)
        text = normalize(stored["title"] + "\n" + unescape(re.sub("<[^>]+>", "", "\n".join(stored["body_html"]))))
        return {w for w, *_ in iter_words(text) if len(w) > 1}

    mine = words(original["id"])
    assert all(len(words(i) & mine) >= 3 for i in alike)  # they share words with the article
    client = create_app({"TESTING": True, "INDEX_DIR": str(labelled[0])}).test_client()
    page = client.get(f"/article/{original['id']}").get_data(as_text=True)
    section = page[page.index('id="alike-title"'):]
    assert all(f"/article/{i}\"" in section for i in alike)
