"""Contract of the people, places and organisations (indexer/entities.py, search/facets.py).

Each article's names are found when it is indexed and kept per document; a
search shows the matches' most frequent names in three facets (``person``,
``place``, ``org``: ``{"value", "count", "selected"}`` as the other facets),
and ``person=`` / ``place=`` / ``org=`` keep only the articles holding one of
the chosen names of that kind (OR within a kind, AND across filters). What is
shown is what the extractor keeps of an article; on 100 corpus articles
labelled by reading them (tests/data/entities_labelled.json) at least 9 in 10
of those are right. A word that is not a name (文明, tagged as a person by
jieba) is never a facet value, and filtering on it finds nothing.
"""

import gzip
import json
import re
from contextlib import closing

import numpy as np
import pytest
from whoosh import index as whoosh_index

from conftest import CORPUS, NOW, ROOT, corpus_items
from indexer import entities
from indexer.analysis import normalize
from indexer.entities import KINDS, EntityTagger
from indexer.store import live_build
from indexer.update import update_index
from indexer.writer import build_index
from search import Engine, facets, parse_request
from web import create_app
from web.cli import cli

LABELLED = ROOT / "tests" / "data" / "entities_labelled.json"
EVERY = 656  # the labelled articles are lines 0, 656, 1312, ... of the corpus
HELD_OUT = 56  # articles from this one on were labelled after the rules were written
SUFFIXES = "省市县区镇乡村"


def _key(name: str) -> str:
    """Return a name as the comparison sees it: no middle dot, no trailing 省/市/县/区/镇/乡/村."""
    name = name.replace("·", "")
    return name[:-1] if len(name) > 2 and name[-1] in SUFFIXES else name


def _labelled_texts(ids: list[str]) -> dict[str, dict]:
    wanted, found = set(ids), {}
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f):
            if number % EVERY == 0 and number // EVERY < len(ids):
                item = json.loads(line)
                found[item["id"]] = item
    assert set(found) == wanted, "the labelled ids are the corpus's every 656th article"
    return found


def _score(articles: list[dict], texts: dict, tagger: EntityTagger) -> dict:
    counts = {"right": 0, "wrong": 0, "missed": 0, "wrong_names": []}
    for article in articles:
        item = texts[article["id"]]
        kept = tagger.extract(normalize(item["title"]), normalize(item["body"]))
        for kind in KINDS:
            truth, shown = {_key(n) for n in article[kind]}, {_key(n) for n in kept[kind]}
            counts["right"] += len(shown & truth)
            counts["wrong"] += len(shown - truth)
            counts["missed"] += len(truth - shown)
            counts["wrong_names"] += [(article["id"], kind, n) for n in sorted(shown - truth)]
    counts["precision"] = counts["right"] / (counts["right"] + counts["wrong"])
    counts["recall"] = counts["right"] / (counts["right"] + counts["missed"])
    return counts


def test_labelled_sample_precision_and_recall():
    articles = json.loads(LABELLED.read_text(encoding="utf-8"))["articles"]
    assert len(articles) == 100 and all(set(a) == {"id", *KINDS} for a in articles)
    texts = _labelled_texts([a["id"] for a in articles])
    tagger = EntityTagger()
    every, read_first, held_out = (_score(part, texts, tagger)
                                   for part in (articles, articles[:HELD_OUT], articles[HELD_OUT:]))
    for name, counts in (("all 100", every), ("first 56", read_first), ("held-out 44", held_out)):
        print(f"entities, {name}: precision {counts['precision']:.3f} recall {counts['recall']:.3f} "
              f"({counts['right']} right, {counts['wrong']} wrong, {counts['missed']} missed)")
    print("wrong:", held_out["wrong_names"])
    assert every["precision"] >= 0.9, every["wrong_names"]
    assert held_out["precision"] >= 0.88, held_out["wrong_names"]
    # What the extractor keeps is about half of what a reader finds (measured 0.565): it keeps only vouched-for names.
    assert every["recall"] >= 0.45


def test_rules_on_sentences():
    tagger = EntityTagger()
    found = tagger.extract("习近平会见联合国秘书长古特雷斯",
                           "国家主席习近平在北京人民大会堂会见古特雷斯。中共中央政治局委员王毅参加会见。"
                           "两国高水平合作，弘扬文明，中美关系。")
    assert found["person"] == ["习近平", "古特雷斯", "王毅"]  # 古特雷斯 whole (entities.txt), 王毅 after 委员
    assert found["place"] == ["北京人民大会堂"]
    assert found["org"] == ["联合国", "中共中央政治局"]
    for word in ("文明", "高水平", "中美", "弘扬"):  # tagged as names by jieba, or relations: never kept
        assert all(word not in names for names in found.values())
    assert tagger.extract("", "俄罗斯总统普京表示")["person"] == ["普京"]  # tagged as a place by jieba
    assert tagger.extract("", "他说：“2024年GDP增长5%”")["person"] == []


# ---- an index of corpus items -------------------------------------------------


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory):
    """Build an index of 400 corpus items (2016, many people and places); return (index dir, items)."""
    items = corpus_items(400, 30_000)
    folder = tmp_path_factory.mktemp("entities")
    (folder / "items.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                                        encoding="utf-8")
    build_index([str(folder / "items.jsonl")], folder / "index", jobs=1)
    return folder / "index"


@pytest.fixture(scope="module")
def truth(corpus_index):
    """Return each stored article's names by id, found again by the extractor from its stored title and body."""
    tagger, names = EntityTagger(), {}
    with whoosh_index.open_dir(str(live_build(corpus_index))).searcher() as searcher:
        for fields in searcher.all_stored_fields():
            names[fields["id"]] = tagger.extract(normalize(fields.get("title") or ""), normalize(fields.get("body") or ""))
    return names


@pytest.fixture(scope="module")
def corpus_engine(corpus_index):
    with closing(Engine(corpus_index)) as engine:
        yield engine


def search(engine, **params) -> dict:
    return engine.search(parse_request({"size": "50", "collapse": "0", **params}), now=NOW)


def ids_of(engine, **params) -> set[str]:
    answer = search(engine, **params)
    assert answer["total"] <= 50
    return {hit["id"] for hit in answer["hits"]}


def test_person_filter_keeps_only_articles_naming_the_person(corpus_engine, truth):
    top = search(corpus_engine, q="会见")["facets"]["person"][0]["value"]
    every = {i for i, names in truth.items() if top in names["person"]}
    found = ids_of(corpus_engine, q="会见", person=top)
    matching = ids_of(corpus_engine, q="会见")
    assert found and found == every & matching
    others = matching - every  # matched by the query, not naming the person: must not come back
    assert others and not (found & others)


def test_values_of_one_kind_are_ored_and_kinds_are_anded(corpus_engine, truth):
    a, b = (v["value"] for v in search(corpus_engine, q="发展")["facets"]["place"][:2])
    one, two = ids_of(corpus_engine, q="发展", place=a), ids_of(corpus_engine, q="发展", place=b)
    both = ids_of(corpus_engine, q="发展", place=[a, b])
    assert both == one | two and both > one and both > two
    narrowed = search(corpus_engine, q="发展", place=a)
    person = next(v["value"] for v in narrowed["facets"]["person"] if v["count"] < narrowed["total"])
    anded = ids_of(corpus_engine, q="发展", place=a, person=person)
    assert anded == {i for i in one if person in truth[i]["person"]} and anded < one


def test_counts_are_the_filtered_totals_and_other_facets_follow(corpus_engine):
    answer = search(corpus_engine, q="中国")
    for kind in KINDS:
        assert answer["facets"][kind], kind
        assert len(answer["facets"][kind]) <= facets.ENTITY_LIMIT
        for entry in answer["facets"][kind][:3]:
            narrowed = search(corpus_engine, q="中国", **{kind: entry["value"]})
            assert narrowed["total"] == entry["count"]
            assert sum(v["count"] for v in narrowed["facets"]["source"]) == entry["count"]
            chosen = next(v for v in narrowed["facets"][kind] if v["value"] == entry["value"])
            assert chosen == {"value": entry["value"], "count": entry["count"], "selected": True}
    assert "entities" not in answer["work"]["capped"]


def test_a_word_that_is_no_name_is_never_counted_or_matched(corpus_engine):
    answer = search(corpus_engine, q="文明")  # jieba tags 文明 as a person name; the rules drop it
    assert answer["total"] > 0
    assert all(v["value"] != "文明" for kind in KINDS for v in answer["facets"][kind])
    narrowed = search(corpus_engine, q="文明", person="文明")
    assert narrowed["total"] == 0
    assert {"value": "文明", "count": 0, "selected": True} in narrowed["facets"]["person"]


def test_counting_is_capped_and_scaled(corpus_engine, monkeypatch):
    exact = search(corpus_engine, q="的")
    assert exact["total"] > 40 and "entities" not in exact["work"]["capped"]
    monkeypatch.setattr(facets, "ENTITY_SAMPLE", 40)  # the cap the answer names when it is reached
    sampled = search(corpus_engine, q="的")
    assert "entities" in sampled["work"]["capped"]
    assert sampled["total"] == exact["total"]  # the filter and the hits are exact: only the counts are estimated
    top = exact["facets"]["place"][0]
    estimate = next(v["count"] for v in sampled["facets"]["place"] if v["value"] == top["value"])
    assert abs(estimate - top["count"]) <= top["count"] // 2 + 5


def test_json_shape(corpus_index):
    client = create_app({"TESTING": True, "INDEX_DIR": str(corpus_index), "FIXED_NOW": NOW}).test_client()
    body = client.get("/api/search", query_string={"q": "会见"}).get_json()
    for kind in KINDS:
        assert body["facets"][kind] and all(set(v) == {"value", "count", "selected"} for v in body["facets"][kind])
        assert [v["count"] for v in body["facets"][kind]] == sorted((v["count"] for v in body["facets"][kind]),
                                                                     reverse=True)
    person = body["facets"]["person"][0]["value"]
    narrowed = client.get("/api/search", query_string={"q": "会见", "person": person}).get_json()
    assert narrowed["facets"]["person"][0] == {"value": person, "count": narrowed["total"], "selected": True}
    bad = client.get("/api/search", query_string={"q": "会见", "persons": person})
    assert bad.status_code == 400 and "persons" in bad.get_data(as_text=True)


def test_page_lists_three_groups_of_filter_links_and_escapes(corpus_index):
    client = create_app({"TESTING": True, "INDEX_DIR": str(corpus_index), "FIXED_NOW": NOW}).test_client()
    html = client.get("/search", query_string={"q": "会见"}).get_data(as_text=True)
    for title, kind in (("人物", "person"), ("地点", "place"), ("机构", "org")):
        assert f'<h3 class="facet-title">{title}</h3>' in html
        assert re.search(rf'href="/search\?q=%E4%BC%9A%E8%A7%81&amp;{kind}=[^"]+"', html), kind
    probe = "<script>alert(1)</script>"
    html = client.get("/search", query_string={"q": "会见", "person": probe}).get_data(as_text=True)
    assert probe not in html
    assert "人物：&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the chip that removes the filter
    assert "没有找到" in html


def test_cli_prints_the_groups(corpus_index, runner):
    result = runner.invoke(cli, ["query", "会见", "--index", str(corpus_index)])
    assert result.exit_code == 0, result.output
    assert re.search(r"^人物: \S+ \(\d+\)", result.output, re.M)
    assert re.search(r"^地点: \S+ \(\d+\)", result.output, re.M)
    assert re.search(r"^机构: \S+ \(\d+\)", result.output, re.M)
    person = re.search(r"^人物: (\S+) \(\d+\)", result.output, re.M).group(1)
    narrowed = runner.invoke(cli, ["query", "会见", "--person", person, "--index", str(corpus_index), "--json"])
    assert json.loads(narrowed.output)["facets"]["person"][0]["selected"] is True


def test_entities_file_has_no_pickles_and_an_update_keeps_it(corpus_index, tmp_path):
    build = live_build(corpus_index)
    with np.load(build / entities.ENTITIES_FILE, allow_pickle=False) as data:
        for kind in KINDS:
            offsets, codes = data[f"{kind}_offsets"], data[f"{kind}_codes"]
            assert offsets.dtype == np.int64 and codes.dtype == np.int32 and offsets[-1] == len(codes)
            assert (np.diff(offsets) >= 0).all() and list(data[f"{kind}_labels"]) == sorted(data[f"{kind}_labels"])
    index, first = tmp_path / "index", corpus_items(100, 30_000)
    (tmp_path / "first.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in first),
                                          encoding="utf-8")
    build_index([str(tmp_path / "first.jsonl")], index, jobs=1)
    added = corpus_items(20, 60_000)
    (tmp_path / "more.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in added),
                                         encoding="utf-8")
    summary = update_index([str(tmp_path / "more.jsonl")], index, jobs=1)
    assert summary["added"] == 20
    tagger, engine = EntityTagger(), Engine(index)
    try:
        for item in added[:5]:
            names = tagger.extract(normalize(item["title"]), normalize("\n".join(item["body"].splitlines())))
            for kind in KINDS:
                for name in names[kind][:1]:
                    found = {h["id"] for h in search(engine, q=item["title"][:6], **{kind: name})["hits"]}
                    assert item["id"] in found, (kind, name)
        old = search(engine, q="会见")["facets"]["person"]
        assert old  # the documents the update did not write keep their names
    finally:
        engine.close()


def test_the_readme_states_the_limits():
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"counted over at most {facets.ENTITY_SAMPLE:,} of them" in text
    assert f"the matches' top {facets.ENTITY_LIMIT} of each" in text
    assert f"the first {entities.MAX_CHARS:,} characters of the body" in text
    for parameter in ("person", "place", "org"):
        assert f"`{parameter}`" in text and f"--{parameter}" in text


def test_names_and_words_are_kept_once_and_an_update_joins_what_a_rebuild_joins(tmp_path):
    """The build's entities.npz is the only copy (no segment keeps its own file); an update takes the earlier
    segments' rows from the live build's file and gives the arrays a rebuild of the same items gives."""
    first, more = corpus_items(300, 20_000), corpus_items(40, 50_000)
    sources = []
    for name, items in (("first", first), ("more", more)):
        sources.append(tmp_path / f"{name}.jsonl")
        sources[-1].write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    build_index([str(sources[0])], tmp_path / "updated", jobs=2)
    assert not list(live_build(tmp_path / "updated").glob("*.ents.npz"))
    update_index([str(sources[1])], tmp_path / "updated", jobs=1)
    build_index([str(p) for p in sources], tmp_path / "rebuilt", jobs=1)
    updated, rebuilt = (live_build(tmp_path / name) for name in ("updated", "rebuilt"))
    assert not list(updated.glob("*.ents.npz")) and not list(rebuilt.glob("*.ents.npz"))
    a, b = entities.load_entities(updated), entities.load_entities(rebuilt)
    expected = {f"{kind}_{part}" for kind in entities.STORED for part in ("labels", "offsets", "codes")}
    assert set(a) == set(b) == expected | {"word_written"}
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert len(a["word_offsets"]) == len(first) + len(more) + 1 and len(a["word_codes"]) > 10 * len(first)
