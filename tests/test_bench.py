"""The benchmark's quick mode runs end to end and prints every section with figures.

It is run as CI runs it, `python -m bench run --docs 3000`, so the benchmark never rots. Nothing here
asserts a timing: only that each section's rows are there and hold numbers, and the counts that are
not timings (documents, queries, requests, HTTP errors).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert list(tables(quick_run[0])) == ["Rebuild", "Parsing", "Queries", "HTTP", "Start-up", "Targets"]


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
        "kind = word", "kind = two", "kind = phrase", "kind = substring",
        "filter = none", "filter = category", "filter = date", "sort = relevance", "sort = newest"]
    assert all(numeric(cell) for row in breakdown for cell in row[1:])
    assert sum(int(row[1]) for row in breakdown[:4]) == 300


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
