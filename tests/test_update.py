"""Contract of indexer/update.py and `newsearch update`: change the index without a rebuild.

New documents are added, changed ones replaced, unchanged ones left alone; a
second identical update changes nothing and writes nothing. A re-crawl of an
indexed article under another id is a duplicate, never a second article. A full article
replaces the headline-only entry of its title. --delete-missing drops documents
whose file is gone. Many small updates are merged by tiers, and deletions never show.
"""

import json
import shutil
from collections import Counter

from whoosh.index import TOC
from whoosh.filedb.filestore import FileStorage

from conftest import SEEDS, corpus_items
from indexer.segment import INDEX_NAME
from indexer.store import live_build
from indexer.update import MERGE_FACTOR, tier_of, update_index
from indexer.writer import build_index
from search import Engine, SearchRequest
from web.cli import cli

SEED = {p.name[:3]: p for p in SEEDS.glob("*.txt")}
SCHOOL = "新能源汽车维修专业走俏 职校学生未毕业就被“预订”"


def found(index_dir, q):
    return sorted((h["kind"], h["title"]) for h in Engine(index_dir).search(SearchRequest(q=q, size=50))["hits"])


def copy(src, *names):
    src.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(SEED[name], src / SEED[name].name)


def test_new_changed_and_unchanged_documents(tmp_path):
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "002", "006")
    build_index([str(src)], index_dir, jobs=1)
    copy(src, "007")
    page = src / SEED["006"].name
    page.write_text(page.read_text(encoding="utf-8").replace("分车道", "分车道分时段"), encoding="utf-8")
    summary = update_index([str(src)], index_dir, jobs=1)
    assert {k: summary[k] for k in ("added", "replaced", "deleted", "changed")} == {
        "added": 3, "replaced": 1, "deleted": 0, "changed": True}
    assert found(index_dir, "分车道分时段") == [("article", "南京长江大桥夜间检修 部分公交线路临时绕行")]
    assert found(index_dir, "GDP") == [("article", "东南亚经济一季度增长强劲 出口和旅游业双双回暖")]
    assert found(index_dir, "南京市长江大桥") == [("article", "南京长江大桥夜间检修 部分公交线路临时绕行")]
    assert Engine(index_dir).stats()["documents"] == 3 + 6  # three articles, two titled headline entries each


def test_a_second_identical_update_changes_nothing(tmp_path, runner):
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "001", "002")
    build_index([str(src)], index_dir, jobs=1)
    before = live_build(index_dir)
    result = runner.invoke(cli, ["update", str(src), "--index", str(index_dir), "--json"])
    summary = json.loads(result.stdout)
    assert (result.exit_code, summary["changed"], summary["message"], summary["added"]) == (0, False, "nothing changed", 0)
    assert live_build(index_dir) == before
    text = runner.invoke(cli, ["update", str(src), "--index", str(index_dir)]).stdout
    assert text.startswith("nothing changed:")


def test_a_recrawl_under_another_id_is_a_duplicate_not_a_second_article(tmp_path):
    items = corpus_items(12)
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items[:10]), encoding="utf-8")
    build_index([str(first)], tmp_path / "index", jobs=1)
    again = [{**items[2], "id": items[2]["id"] + "-re"}, {**items[3], "id": items[3]["id"] + "-re", "source": "别处"},
             items[10]]
    second = tmp_path / "second.jsonl"
    second.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in again), encoding="utf-8")
    summary = update_index([str(second)], tmp_path / "index", jobs=1)
    assert {k: summary[k] for k in ("added", "replaced", "deleted", "unchanged", "duplicates")} == {
        "added": 2, "replaced": 0, "deleted": 0, "unchanged": 0, "duplicates": 1}  # another source: its own content
    engine = Engine(tmp_path / "index")
    ids = sorted(h["id"] for h in engine.search(SearchRequest(q=f'"{items[2]["body"][20:40]}"', collapse=False))["hits"])
    assert ids == [items[2]["id"]] and engine.stats()["documents"] == 12


def test_a_full_article_replaces_its_headline_entry(tmp_path):
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "001")
    build_index([str(src)], index_dir, jobs=1)
    assert found(index_dir, "title:职校学生未毕业") == [("headline", SCHOOL)]
    copy(src, "004")
    summary = update_index([str(src)], index_dir, jobs=1)
    assert summary["deleted"] == 1
    assert found(index_dir, "title:职校学生未毕业") == [("article", SCHOOL)]


def test_delete_missing_drops_documents_of_gone_files(tmp_path):
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "005", "006")
    build_index([str(src)], index_dir, jobs=1)
    (src / SEED["006"].name).unlink()
    assert update_index([str(src)], index_dir, jobs=1)["changed"] is False
    assert found(index_dir, "南京市长江大桥") != []
    summary = update_index([str(src)], index_dir, jobs=1, delete_missing=True)
    assert summary["deleted"] == 3  # the article and its two headline entries
    assert found(index_dir, "南京市长江大桥") == []
    assert found(index_dir, "马克思") == [("article", "高校思政课走出教室 大学生在田间地头上“大课”")]
    assert Engine(index_dir).stats()["documents"] == 1


def test_many_small_updates_are_merged(tmp_path):
    src, index_dir = tmp_path / "src", tmp_path / "index"
    copy(src, "001")
    build_index([str(src)], index_dir, jobs=1)
    for name in ("002", "003", "004", "005", "006", "007", "008"):
        copy(src, name)
        assert update_index([str(src)], index_dir, jobs=1)["changed"] is True
    segments = TOC.read(FileStorage(str(live_build(index_dir))), INDEX_NAME).segments
    tiers = Counter(tier_of(s.doc_count()) for s in segments)  # 15 segments were written, one or two an update
    assert max(tiers.values()) < MERGE_FACTOR and len(tiers) > 1  # eight of tier 0 merged into one of tier 1
    assert not any(s.has_deletions() for s in segments)  # merges dropped the replaced headline entries
    assert found(index_dir, "公司") == [("article", "国产磁吸充电器通过新版快充认证 可兼容多款手机"),
                                       ("article", "衢州新能源汽车产业链加速成形 多个电池项目年内投产")]
    assert found(index_dir, "title:职校学生未毕业") == [("article", SCHOOL)]
    assert found(index_dir, "长江大学") == []
