"""Contract of the newsearch command group (web/cli.py, indexer/cli.py, search/cli.py).

Exit 0 when anything was indexed, 1 when nothing could be (one-line message),
2 on usage errors. --json prints the summary or the search answer as JSON on
stdout; `query --json` is the same answer the search layer gives.
"""

import json
import shutil

from conftest import SEEDS
from web.cli import cli


def test_rebuild_json_summary_and_stats(runner, tmp_path):
    index_dir = tmp_path / "index"
    result = runner.invoke(cli, ["rebuild", str(SEEDS), "--index", str(index_dir), "--json", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("ok", "files", "articles", "headlines", "duplicates", "skipped", "documents")} == {
        "ok": True, "files": 10, "articles": 9, "headlines": 15, "duplicates": 1, "skipped": 0, "documents": 24}
    stats = json.loads(runner.invoke(cli, ["stats", "--index", str(index_dir), "--json"]).stdout)
    assert stats["kinds"] == {"article": 9, "headline": 15}
    assert stats["categories"]["财经"] == 4
    assert (stats["first"], stats["last"]) == ("2023-11-16 08:30:00", "2026-04-28 20:10:00")
    assert stats["stories"] == {"stories": 24, "with_copies": 0, "documents_in_them": 0}  # no copies among the seeds
    plain = runner.invoke(cli, ["stats", "--index", str(index_dir)]).output
    assert "汽车" in plain and "stories 24 (0 with more than one copy" in plain


def test_rebuild_plain_output_reports_skips(runner, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SEEDS / "002_4c49dbb481987059.txt", src)
    (src / "empty.txt").write_bytes(b"")
    result = runner.invoke(cli, ["rebuild", str(src), "--index", str(tmp_path / "index")])
    assert result.exit_code == 0
    assert "indexed 1 articles and 2 headlines from 2 files" in result.stdout
    assert result.stderr.startswith(
        "warning: 50% of 2 inputs were not indexed (0 duplicates, 1 skipped): check the sources\n")
    assert f"skipped (empty file): 1\n    {src / 'empty.txt'}" in result.stderr


def test_rebuild_with_nothing_indexable_exits_1_with_one_line(runner, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    result = runner.invoke(cli, ["rebuild", str(tmp_path / "empty.txt"), "--index", str(tmp_path / "index")])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: nothing could be indexed; the old index (if any) is unchanged"


def test_usage_errors_exit_2(runner, tmp_path):
    assert runner.invoke(cli, ["rebuild", str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(cli, ["rebuild", "--jobs", "0"]).exit_code == 2
    assert runner.invoke(cli, ["query", "x", "--sort", "sideways"]).exit_code == 2


def test_query_json_is_the_search_answer(runner, seed_index, engine):
    from search import SearchRequest

    result = runner.invoke(cli, ["query", "金砖电池", "--index", str(seed_index), "--json"])
    assert result.exit_code == 0
    answer = json.loads(result.stdout)
    expected = engine.search(SearchRequest(q="金砖电池"))
    for key in ("took_ms",):
        answer.pop(key), expected.pop(key)
    assert answer == {"ok": True, **expected}
    assert [h["title"] for h in answer["hits"]] == ["衢州新能源汽车产业链加速成形 多个电池项目年内投产"]


def test_query_prints_ranked_hits(runner, seed_index):
    result = runner.invoke(cli, ["query", "南京市长江大桥", "--index", str(seed_index)], color=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("约 1 条结果")
    assert lines[2] == "  1. 南京长江大桥夜间检修 部分公交线路临时绕行"
    assert "南京市长江大桥" in result.stdout
    assert "衢州" not in result.stdout


def test_query_bad_page_is_a_usage_error(runner, seed_index):
    result = runner.invoke(cli, ["query", "衢州", "--index", str(seed_index), "--size", "51"])
    assert result.exit_code == 2
    assert "--size" in result.stderr and "1 to 50" in result.stderr


def test_query_without_index_says_how_to_build_one(runner, tmp_path):
    result = runner.invoke(cli, ["query", "衢州", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "newsearch rebuild" in result.stderr


def test_explain_prints_tokens(runner):
    result = runner.invoke(cli, ["explain", "南京市长江大桥"])
    assert result.exit_code == 0
    assert "  ('长江大桥', 1, 3, 7)" in result.stdout
    assert "  ('市长', 2, 2, 4)" in result.stdout
