"""The benchmark's quick modes run end to end and print every section with figures.

They are run as CI runs them, `python -m bench run --docs 3000` (which starts a 3-node OpenSearch cluster
for its cluster row) and `python -m bench scale --docs 300
--factors 1,2`, so the benchmark never rots. Nothing here asserts a timing: only that each section's rows
are there and hold numbers, and the counts that are not timings (documents, queries, requests, HTTP
errors, items indexed and added), and that a results file keeps what is not its section.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import corpus_items

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "news.jsonl.gz"
NUMBER = re.compile(r"^\*{0,2}1?/?[\d,]+(\.\d+)?(×| s| ms| MB)?\*{0,2}$")


def tables(text: str) -> dict[str, list[list[str]]]:
    """Return each section's table rows, cells stripped; header rows (those above a separator) left out."""
    found: dict[str, list[list[str]]] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            found[section] = []
        elif section and line.startswith("| ---"):
            found[section].pop()
        elif section and line.startswith("|"):
            found[section].append([cell.strip() for cell in line.strip("|").split("|")])
    return found


def numeric(cell: str) -> bool:
    """Tell a cell that holds a figure (1,234.5, 2.30×, 1/5.7, 11.9 ms)."""
    return bool(NUMBER.match(cell))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Run the quick mode once; return its stdout and its --out and --results files."""
    if not CORPUS.is_file():
        pytest.fail(f"the shared corpus is missing: {CORPUS}")
    out = tmp_path_factory.mktemp("bench-out")
    results = out / "RESULTS.md"
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--docs", "3000", "--out", str(out),
                           "--results", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, out / "table.md", results


def test_quick_run_writes_the_printed_table(quick_run):
    stdout, table, results = quick_run
    assert table.read_text(encoding="utf-8").strip() == stdout.strip()
    assert results.read_text(encoding="utf-8").strip() == stdout.strip()
    assert re.search(r"^- date: \d{4}-\d\d-\d\d \d\d:\d\d; machine: \d+ cores .*; load average [\d.]+ before",
                     stdout, re.M)
    assert "- documents: 3,000 (an even sample of the 65,606 in `news.jsonl.gz`)" in stdout


def test_quick_run_has_every_section(quick_run):
    assert list(tables(quick_run[0])) == ["Rebuild", "Parsing", "Queries", "Cluster", "HTTP", "Start-up", "Targets"]


def test_rebuild_rows_hold_figures(quick_run):
    rows = tables(quick_run[0])["Rebuild"]
    assert [row[0].split(" ")[0] for row in rows[:4]] == ["(a)", "(b)", "(c)", "(c′)"]
    assert [row[0] for row in rows[4:]] == ["(a)/(b) docs/s", "(a)/(b) index size", "(a)/(c) docs/s"]
    for row in rows[:2]:
        assert all(numeric(cell) for cell in row[1:]), row
    for row in rows[2:4]:
        assert all(numeric(cell) for cell in row[1:7]) and row[7] == "—", row
    for row in rows[4:]:
        assert numeric(row[1]) and row[1].endswith("×"), row


def test_parsing_row_counts_every_page(quick_run):
    (row,) = tables(quick_run[0])["Parsing"]
    assert row[0] == "3,000"
    assert all(numeric(cell) for cell in row)
    assert row[5] == "0"  # unparsed pages
    assert row[6] == "3,000"  # pages that round-trip exactly


def test_query_rows_hold_percentiles(quick_run):
    rows = tables(quick_run[0])["Queries"]
    paths = [(row[0].split(":")[0], row[1]) for row in rows[:4]]
    assert paths == [("ours", "first sight"), ("ours", "repeat"), ("textbook", "first sight"),
                     ("ratio textbook / ours", "first sight")]
    for row in rows[:3]:
        assert all(numeric(cell) for cell in row[2:]) and row[6] == "300", row
    assert all(cell.endswith("×") and numeric(cell) for cell in rows[3][2:6])
    breakdown = rows[4:]
    assert [row[0] for row in breakdown] == [
        "kind = word", "kind = two", "kind = phrase", "kind = substring", "kind = title",
        "filter = none", "filter = category", "filter = date", "sort = relevance", "sort = newest"]
    assert all(numeric(cell) for row in breakdown for cell in row[1:])
    assert sum(int(row[1]) for row in breakdown[:5]) == 300


def test_cluster_row_beside_the_embedded_index(quick_run):
    embedded, cluster = tables(quick_run[0])["Cluster"]
    assert embedded[0].startswith("embedded index") and cluster[0].startswith("OpenSearch, 3 nodes")
    assert embedded[1] == "—" and cluster[1] == "3"
    assert all(numeric(cell) for cell in embedded[2:4] + embedded[6:9]) and embedded[4:6] == ["—", "—"], embedded
    assert all(numeric(cell) for cell in cluster[1:9]), cluster
    assert embedded[8] == "300" and int(cluster[8]) + int(cluster[10]) == 300  # answered, or out of time
    same, asked = (int(n) for n in cluster[9].split("/"))
    assert asked == 300 and same >= 285, cluster  # both backends answered the same queries, nearly all alike


def test_http_and_startup_rows_hold_figures(quick_run):
    found = tables(quick_run[0])
    (http,) = found["HTTP"]
    assert http[0] == "400" and http[-1] == "0"  # requests sent, errors
    assert all(numeric(cell) for cell in http)
    (startup,) = found["Start-up"]
    assert all(numeric(cell) for cell in startup)


def test_targets_are_reported_not_asserted(quick_run):
    rows = tables(quick_run[0])["Targets"]
    assert [row[0] for row in rows] == [
        "rebuild ≥ 2× textbook docs/s", "index ≤ 3× textbook size", "query p95 ≤ 1/5 of textbook p95 (first sight)",
        "query p95 ≤ 30 ms on the full corpus", "start-up ≤ 2 s", "worker private memory ≤ 300 MB"]
    assert all(row[2] in ("met", "**missed**", "—") for row in rows)
    assert rows[3][2] == "—"  # a quick run does not judge the full-corpus target


def test_help_has_an_example():
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "Example:" in done.stdout and "--docs" in done.stdout


SCALE_DOCS = 300
SCALE_UPDATE = min(1000, SCALE_DOCS)  # the update adds the first 1,000 items of the next copy


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory):
    """Run the growth benchmark's quick mode once; return its stdout, --out folder, --results and --work files."""
    if not CORPUS.is_file():
        pytest.fail(f"the shared corpus is missing: {CORPUS}")
    out, work = tmp_path_factory.mktemp("scale-out"), tmp_path_factory.mktemp("scale-work")
    results = out / "RESULTS.md"
    results.write_text("# earlier results\n\nkept text\n", encoding="utf-8")
    (work / "mine.txt").write_text("not the benchmark's", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bench", "scale", "--docs", str(SCALE_DOCS), "--factors", "1,2",
                           "--out", str(out), "--results", str(results), "--work", str(work)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, out, results, work


def test_scale_writes_the_printed_table(scale_run):
    stdout, out, results, _ = scale_run
    assert (out / "table.md").read_text(encoding="utf-8").strip() == stdout.strip()
    assert results.read_text(encoding="utf-8") == (
        f"# earlier results\n\nkept text\n\n<!-- scale:start -->\n{stdout.strip()}\n<!-- scale:end -->\n")
    assert f"- base: {SCALE_DOCS} items (an even sample of the 65,606 in `news.jsonl.gz`)" in stdout


def test_scale_has_a_row_per_factor_with_figures(scale_run):
    found = tables(scale_run[0])
    assert list(found) == ["Scale"]
    rows = found["Scale"]
    assert [(row[0], row[1]) for row in rows] == [("1×", "300"), ("2×", "600")]  # factor, items
    for row in rows:
        assert len(row) == 20 + 10 and all(numeric(cell) for cell in row[:-1]), row
        assert row[-1] in ("word", "two", "phrase", "substring", "title"), row  # the slowest query's kind
        assert row[4].endswith("×") and row[9].endswith("×") and int(row[14]) >= 1, row  # vs first, × raw, segments
        assert row[17] == str(SCALE_UPDATE), row  # update: items added
    assert rows[0][4] == "1.00×"


def test_scale_table_has_the_dictionary_and_vocabulary(scale_run, bench_report):
    from bench.vocabulary import PAIRS_BETA, WORDS_BETA

    stdout = scale_run[0]
    header = next(line for line in stdout.splitlines() if line.startswith("| factor"))
    assert [cell.strip() for cell in header.strip("|").split("|")][8:15] == [
        "index MB", "index × raw", "dictionary MB", "terms", "words", "pairs", "segments"]
    names = ("index", "raw", "dictionary", "terms", "words", "pairs")
    first, second = (dict(zip(names, (float(cell.rstrip("×").replace(",", "")) for cell in row[8:14])))
                     for row in tables(stdout)["Scale"])
    raw = [float(mb) for mb in re.findall(r"([\d.]+) MB of JSON Lines", stdout)]
    # Two copies hold the words and pairs of Heaps' law at twice the base, not the base's again.
    assert second["words"] == pytest.approx(first["words"] * 2 ** WORDS_BETA, rel=0.05)
    assert second["pairs"] == pytest.approx(first["pairs"] * 2 ** PAIRS_BETA, rel=0.05)
    for row, mb in zip((first, second), raw, strict=True):
        assert row["raw"] == pytest.approx(row["index"] / mb, rel=0.15)  # the header's JSON Lines MB
        assert 0 < row["dictionary"] < row["index"] and row["terms"] > row["words"] + row["pairs"]
    assert second["terms"] > first["terms"] * 1.2 and second["dictionary"] > first["dictionary"]


def test_scale_leaves_the_work_folder_as_it_found_it(scale_run):
    work = scale_run[3]
    assert sorted(path.name for path in work.iterdir()) == ["mine.txt"]


@pytest.fixture
def bench_report(monkeypatch):
    """Return bench.report, imported from the checkout (bench is not an installed package)."""
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import report

    return report


def test_scale_results_replace_their_section_only(bench_report, tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# newsearch benchmark\n\n## Rebuild\n\nrun table\n", encoding="utf-8")
    bench_report.write_scale_results(results, "## Scale\n\nfirst\n")
    bench_report.write_scale_results(results, "## Scale\n\nsecond\n")
    assert results.read_text(encoding="utf-8") == (
        "# newsearch benchmark\n\n## Rebuild\n\nrun table\n\n"
        "<!-- scale:start -->\n## Scale\n\nsecond\n<!-- scale:end -->\n")
    results.write_text("before\n<!-- scale:start -->\nold\n<!-- scale:end -->\nafter\n", encoding="utf-8")
    bench_report.write_scale_results(results, "## Scale\n\nthird")
    bench_report.write_scale_results(results, "## Scale\n\nfourth")
    assert results.read_text(encoding="utf-8") == (
        "before\n<!-- scale:start -->\n## Scale\n\nfourth\n<!-- scale:end -->\nafter\n")


def test_run_results_keep_the_scale_section(bench_report, tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# old run\n\n<!-- scale:start -->\n## Scale\n\nrows\n<!-- scale:end -->\n", encoding="utf-8")
    bench_report.write_run_results(results, "# new run\n")
    assert results.read_text(encoding="utf-8") == (
        "# new run\n\n<!-- scale:start -->\n## Scale\n\nrows\n<!-- scale:end -->\n")
    # Hand-written notes after the generated scale section stay through both writers.
    results.write_text("# old run\n\n<!-- scale:start -->\nrows\n<!-- scale:end -->\n\n### Notes\n\nkept\n",
                       encoding="utf-8")
    bench_report.write_run_results(results, "# new run\n")
    bench_report.write_scale_results(results, "## Scale\n\nnew rows")
    assert results.read_text(encoding="utf-8") == (
        "# new run\n\n<!-- scale:start -->\n## Scale\n\nnew rows\n<!-- scale:end -->\n\n### Notes\n\nkept\n")
    bench_report.write_run_results(tmp_path / "new.md", "# new run\n")
    assert (tmp_path / "new.md").read_text(encoding="utf-8") == "# new run\n"


def test_copies_are_new_items(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT))
    from bench.scale import ArchiveWriter

    base = [{"id": f"n{i}", "title": f"标题{i}", "body": f"第一段{i}\n第二段{i}", "category": "国内",
             "date": "2012-07-02 19:06:13", "source": "新华网"} for i in range(3)]
    base.append({"id": "n3", "title": "标题3", "body": "只有一段", "category": "国际", "source": "央视"})
    archive = ArchiveWriter(base, tmp_path)
    assert list(archive.docs(0)) == base
    # the last paragraph is replaced by another item's; a body of one paragraph gets it added
    assert list(archive.docs(2, 1)) == [{"id": "n0~2", "title": "标题0", "body": "第一段0\n第二段2",
                                         "category": "国内", "date": "2010-04-24 19:06:13", "source": "新华网"}]
    assert list(archive.docs(1))[3] == {"id": "n3~1", "title": "标题3", "body": "只有一段\n第二段2",
                                        "category": "国际", "source": "央视"}
    texts = [(doc["title"], doc["body"]) for copy in range(4) for doc in archive.docs(copy)]
    assert len(set(texts)) == len(texts) == 16
    archive.archive(2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy-00.jsonl", "copy-01.jsonl"]
    archive.remove()
    assert list(tmp_path.iterdir()) == []


def test_copies_bring_the_words_and_pairs_of_heaps_law_into_the_index(monkeypatch, tmp_path):
    """Copies 0 .. k-1 of a corpus sample hold the base's distinct words and pairs times k^β, as the index
    counts them (its word and pair fields' terms), while the copies before their words are made new do not."""
    monkeypatch.syspath_prepend(str(ROOT))
    from whoosh import index as whoosh_index

    from bench import corpus
    from bench.scale import ArchiveWriter
    from bench.vocabulary import PAIRS_BETA, WORDS_BETA, item_pairs, item_words
    from indexer.writer import build_index

    base = corpus_items(2400)[::12]
    archive = ArchiveWriter(base, tmp_path)
    plain_words = set().union(*(item_words(doc) for copy in range(3) for doc in archive.docs(copy)))
    build_index([str(path) for path in archive.archive(3)], tmp_path / "index", jobs=1)
    with whoosh_index.open_dir(str((tmp_path / "index").resolve())).reader() as reader:
        words = {term for field in ("title", "body") for term in reader.field_terms(field)}
        pairs = {term for field in ("title_grams", "body_grams") for term in reader.field_terms(field)
                 if term.isalnum()}  # not the bridges over punctuation (下，各)
    assert (len(words), len(pairs)) == archive.vocabulary[2]  # what the benchmark reports is the index's
    first_words, first_pairs = archive.vocabulary[0]
    assert len(words) == pytest.approx(first_words * 3 ** WORDS_BETA, rel=0.02)
    assert len(pairs) == pytest.approx(first_pairs * 3 ** PAIRS_BETA, rel=0.05)
    assert len(plain_words) < first_words * 1.1 < first_words * 3 ** WORDS_BETA * 0.9  # plain copies: no new words
    assert archive.vocabulary[0] == (len(set().union(*map(item_words, base))), len(set().union(*map(item_pairs, base))))
    grown = corpus.read_docs(archive.copies[1])
    assert [len(doc["body"]) for doc in grown] == [len(doc["body"]) for doc in archive.docs(1)]  # sizes kept


def test_scale_help_has_an_example():
    done = subprocess.run([sys.executable, "-m", "bench", "scale", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "Example:" in done.stdout and "--factors" in done.stdout and "--work" in done.stdout


def test_cold_drops_the_live_build_only(tmp_path):
    """`--cold` of bench.latency and bench.hostile: the files of the build the index link points to are
    dropped from the page cache, not those of other builds beside it."""
    from bench.environment import evict

    builds = tmp_path / "index.builds"
    for name, size in (("live", 5000), ("old", 7000)):
        (builds / name / "sub").mkdir(parents=True)
        (builds / name / "MAIN_x.pdocs.npy").write_bytes(b"\1" * size)
        (builds / name / "sub" / "part").write_bytes(b"\2" * 300)
    (tmp_path / "index").symlink_to(builds / "live")
    assert evict(tmp_path / "index") == 5300
    assert (builds / "live" / "MAIN_x.pdocs.npy").read_bytes() == b"\1" * 5000  # the files are left as they were
