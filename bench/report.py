"""The benchmark's tables, as markdown: `run`'s (rebuild, parsing, queries, cluster, HTTP, start-up, targets)
and `scale`'s, and how both share one results file.

Only figures and query kinds are printed, never corpus text (query texts are drawn from it).
"""

from __future__ import annotations

from pathlib import Path

from bench.queries import FILTERS, KINDS, SORTS, percentiles
from bench.vocabulary import PAIRS_BETA, WORDS_BETA
from search.opensearch_calls import REQUEST_SECONDS

MB = 1e6
SCALE_START, SCALE_END = "<!-- scale:start -->", "<!-- scale:end -->"


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return [_row(*header), _row(*align), *(_row(*r) for r in rows)]


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}×"


def rebuild_section(run: dict) -> list[str]:
    """Return the rebuild table and its ratios."""
    docs, text = run["meta"]["docs"], run["meta"]["text_bytes"]
    cores = run["meta"]["cores"]
    names = {
        "ours": f"(a) `newsearch rebuild`, defaults ({cores} cores)",
        "textbook": "(b) textbook: Whoosh + jieba `ChineseAnalyzer`, one writer, one commit",
        "jieba": f"(c) floor: `jieba.cut` of title + body alone, {cores} processes",
        "rjieba": f"(c′) extra: `rjieba.cut` (our segmenter) of the same text, {cores} processes",
    }
    rows = []
    for key, label in names.items():
        m = run["rebuild"][key]
        size = _f(m.index_bytes / MB) if m.index_bytes is not None else "—"
        rows.append([label, _f(m.wall_s), _f(m.cpu_s), _f(docs / m.wall_s), _f(text / MB / m.wall_s, 2),
                     _f(m.peak_rss / MB, 0), _f(m.peak_pss / MB, 0), size])
    lines = ["## Rebuild", "", f"{docs:,} documents, {text / MB:.1f} MB of title + body text (UTF-8). "
             "Wall time of the whole command (start-up and reading included); CPU = user + system "
             "seconds of its process tree; memory = peak over 0.2 s samples of the sum over the process tree.", ""]
    lines += _table(["setup", "wall s", "CPU s", "docs/s", "MB text/s", "peak RSS MB", "peak PSS MB", "index MB"], rows)
    ours, book, floor = (run["rebuild"][k] for k in ("ours", "textbook", "jieba"))
    lines += ["", *_table(["ratio", "value"], [
        ["(a)/(b) docs/s", _ratio(book.wall_s / ours.wall_s)],
        ["(a)/(b) index size", _ratio(ours.index_bytes / book.index_bytes)],
        ["(a)/(c) docs/s", _ratio(floor.wall_s / ours.wall_s)],
    ])]
    return lines


def parsing_section(run: dict) -> list[str]:
    """Return the snapshot parsing table."""
    p = run["parsing"]
    return ["## Parsing", "", "Corpus items rendered as snapshot pages (bench/snapshots.py) in a temporary folder, "
            "parsed by `indexer.snapshot.load_snapshot` in one process.", "",
            *_table(["pages", "MB", "seconds", "pages/s", "MB/s", "unparsed", "round-trip exact"],
                    [[f"{p['pages']:,}", _f(p["bytes"] / MB), _f(p["seconds"], 2), _f(p["pages_per_s"], 0),
                      _f(p["mb_per_s"], 2), p["failed"], f"{p['exact']:,}"]], right_from=0)]


def _pct_cells(stats: dict) -> list[str]:
    return [_f(stats["p50"]), _f(stats["p95"]), _f(stats["p99"]), _f(stats["mean"]), stats["n"]]


def queries_section(run: dict) -> list[str]:
    """Return the query latency table, its ratios and the breakdown by kind."""
    q = run["queries"]
    ours, book = q["ours"], q["textbook"]
    rows = [
        ["ours: `Engine.search` (top 10, highlights, all facets)", "first sight", *_pct_cells(ours["first"])],
        ["ours", "repeat", *_pct_cells(ours["repeat"])],
        ["textbook: `search(q, limit=10, groupedby=…)` + `highlights()`", "first sight", *_pct_cells(book["first"])],
    ]
    ratio = [_ratio(book["first"][k] / ours["first"][k]) for k in ("p50", "p95", "p99", "mean")]
    rows.append(["ratio textbook / ours", "first sight", *ratio, ""])
    counts = f"{len(run['items'])} queries: {', '.join(KINDS)} × {', '.join(FILTERS)} filter × {', '.join(SORTS)}"
    lines = ["## Queries", "", f"{counts}. Each path first answers {run['meta']['warmup']} other queries "
             "(warm-up), then every query once (\"first sight\"); ours then answers them all again (\"repeat\": "
             "its posting cache is warm).", ""]
    lines += _table(["path", "pass", "p50 ms", "p95 ms", "p99 ms", "mean ms", "n"], rows, right_from=2)
    lines += ["", *_kind_table(run)]
    return lines


def _kind_table(run: dict) -> list[str]:
    """Return p50/p95 by query kind and by filter, first sight, for both paths."""
    items = run["items"]
    rows = []
    for attr, values in (("kind", KINDS), ("filter", FILTERS), ("sort", SORTS)):
        for value in values:
            picked = [i for i, item in enumerate(items) if getattr(item, attr) == value]
            if not picked:
                continue
            cells = []
            for key in ("ours", "textbook"):
                stats = percentiles([run["queries"][key]["seconds"][i] for i in picked])
                cells += [_f(stats["p50"]), _f(stats["p95"])]
            for key in ("ours", "textbook"):
                hits = sorted(run["queries"][key]["totals"][i] for i in picked)
                cells.append(f"{hits[len(hits) // 2]:,}")
            rows.append([f"{attr} = {value}", len(picked), *cells])
    return _table(["first sight, by", "n", "ours p50", "ours p95", "textbook p50", "textbook p95",
                   "median hits ours", "median hits textbook"], rows)


def cluster_section(run: dict) -> list[str]:
    """Return the embedded index beside the 3-node OpenSearch cluster: rebuild items/s and query p50/p95."""
    c = run.get("cluster")
    if not c:
        return ["## Cluster", "", "skipped (--skip-cluster)"]
    docs, ours, mine = run["meta"]["docs"], run["rebuild"]["ours"], run["queries"]["ours"]
    theirs = c["queries"]
    same = sum(a == b for a, b in zip(mine["totals"], theirs["totals"]))
    first = theirs["first"] or {"p50": None, "p95": None, "n": 0}  # None: every query timed out
    rows = [["embedded index (`newsearch rebuild`)", "—", _f(ours.wall_s), _f(docs / ours.wall_s), "—", "—",
             _f(mine["first"]["p50"]), _f(mine["first"]["p95"]), mine["first"]["n"], "—", "—"],
            [f"OpenSearch, {c['nodes']} nodes (`--backend opensearch`)", c["nodes"], _f(c["rebuild"].wall_s),
             _f(docs / c["rebuild"].wall_s), _f(c["load_s"]), _f(c["sent"] / c["load_s"]),
             *(_f(first[k]) if first[k] is not None else "—" for k in ("p50", "p95")), first["n"],
             f"{same}/{len(theirs['totals'])}", theirs.get("timed_out", 0)]]
    return ["## Cluster", "", f"A local cluster of {c['nodes']} OpenSearch nodes (one JVM each, 512 MB heap) "
            f"started by `newsearch cluster start` in the work folder (green in {c['start_s']:.1f} s) on the same "
            "machine, stopped after. Rebuild = `newsearch rebuild --backend opensearch --json`, timed as (a) above: "
            "our build of the same documents, then their bulk load into a new index (2 primary shards, 1 replica) "
            "and the alias swap; load = that load alone, from the command's summary. Queries = the same "
            f"{len(run['items'])}, first sight after the same warm-up, through `OpenSearchEngine.search` (top 10, highlights, all "
            "facets); same total = queries whose total equals the embedded engine's; timed out = queries the "
            f"cluster did not answer within the request's deadline ({REQUEST_SECONDS:g} s, `search/opensearch_calls.py`), left out "
            "of p50, p95 and n, and counted as not the same total.", "",
            *_table(["backend", "nodes", "rebuild wall s", "items/s", "load s", "load items/s", "query p50 ms",
                     "query p95 ms", "n", "same total", "timed out"], rows)]


def http_section(run: dict) -> list[str]:
    """Return the HTTP table (or a note that it was skipped)."""
    h = run.get("http")
    if not h:
        return ["## HTTP", "", "skipped (--skip-http)"]
    return ["## HTTP", "", f"gunicorn, {run['meta']['workers']} sync workers on 127.0.0.1, "
            f"{run['meta']['clients']} concurrent clients, GET /api/search over the query set "
            "(after 20 untimed requests).", "",
            *_table(["requests", "seconds", "requests/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
                    [[h["requests"], _f(h["seconds"], 2), _f(h["rps"]), _f(h["p50"]), _f(h["p95"]),
                      _f(h["p99"]), h["errors"]]], right_from=0)]


def startup_section(run: dict) -> list[str]:
    """Return the start-up and worker memory table."""
    s, h = run.get("startup"), run.get("http")
    if not s:
        return ["## Start-up", "", "skipped (--skip-http)"]
    memory = [_max_mb(h, key) for key in ("worker_uss", "worker_anon", "worker_rss")] if h else ["—"] * 3
    return ["## Start-up", "", "`newsearch serve --index <existing>` from spawn to the first 200 of "
            "/api/search?q=中国. Memory of one gunicorn worker after the HTTP run (the larger of the two "
            "workers' figures): USS = private pages, which include pages of the index files that only this "
            "worker has mapped; anonymous = its heap, file pages left out; RSS.", "",
            *_table(["start-up s", "worker USS MB", "worker anonymous MB", "worker RSS MB"],
                    [[_f(s["seconds"], 2), *memory]], right_from=0)]


def _max_mb(http: dict, key: str) -> str:
    values = [v for v in http.get(key) or [] if v is not None]
    return _f(max(values) / MB, 0) if values else "—"


def _check(ok: bool | None) -> str:
    return "—" if ok is None else "met" if ok else "**missed**"


def targets_section(run: dict) -> list[str]:
    """Return the targets (for information: the benchmark asserts nothing about time)."""
    rb, q, meta = run["rebuild"], run["queries"], run["meta"]
    speed = rb["textbook"].wall_s / rb["ours"].wall_s
    size = rb["ours"].index_bytes / rb["textbook"].index_bytes
    share = q["ours"]["first"]["p95"] / q["textbook"]["first"]["p95"]
    p95 = q["ours"]["first"]["p95"]
    full = meta["docs"] >= meta["corpus_docs"]
    rows = [
        ["rebuild ≥ 2× textbook docs/s", _ratio(speed), _check(speed >= 2)],
        ["index ≤ 3× textbook size", _ratio(size), _check(size <= 3)],
        ["query p95 ≤ 1/5 of textbook p95 (first sight)", f"1/{1 / share:.1f}", _check(share <= 0.2)],
        ["query p95 ≤ 30 ms on the full corpus", f"{p95:.1f} ms", _check(p95 <= 30 if full else None)],
    ]
    if run.get("startup"):
        rows.append(["start-up ≤ 2 s", f"{run['startup']['seconds']:.2f} s", _check(run["startup"]["seconds"] <= 2)])
    if run.get("http") and run["http"]["worker_uss"]:
        uss = max(run["http"]["worker_uss"]) / MB
        rows.append(["worker private memory ≤ 300 MB", f"{uss:.0f} MB", _check(uss <= 300)])
    note = "" if full else " (a quick run: the 30 ms target applies to the full corpus only)"
    return ["## Targets", "", f"For information; nothing here fails the run{note}.", "",
            *_table(["target", "measured", ""], rows)]


def _source_note(meta: dict) -> str:
    if meta["source_after"] == meta["source_before"]:
        return f"sha1 {meta['source_before']}, unchanged during the run"
    return (f"sha1 {meta['source_before']} at the start, **{meta['source_after']} at the end**: it changed "
            "during the run, so later sections may have measured other code")


def render(run: dict) -> str:
    """Return the whole report as markdown."""
    meta = run["meta"]
    sample = "all" if meta["docs"] >= meta["corpus_docs"] else "an even sample"
    lines = [
        "# newsearch benchmark", "",
        f"- date: {meta['date']}; machine: {meta['cores']} cores ({meta['machine']}); load average "
        f"{meta['load_before']:.2f} before the run, {meta['load_after']:.2f} after (other work on the machine)",
        f"- documents: {meta['docs']:,} ({sample} of the {meta['corpus_docs']:,} in `{meta['corpus']}`)",
        f"- command: `{meta['command']}` (total {meta['total_s']:.0f} s)",
        f"- code: {meta['code']}; source of indexer/, search/, web/ {_source_note(meta)}",
        f"- versions: {meta['versions']}", "",
    ]
    for section in (rebuild_section, parsing_section, queries_section, cluster_section, http_section,
                    startup_section, targets_section):
        lines += section(run) + [""]
    return "\n".join(lines)


def _scale_cells(row: dict, first: dict) -> list[str]:
    rebuild, update = row["rebuild"], row["update"]
    rate, first_rate = row["items"] / rebuild.wall_s, first["items"] / first["rebuild"].wall_s
    return [f"{row['factor']}×", f"{row['items']:,}", _f(rebuild.wall_s), _f(rate), _ratio(rate / first_rate),
            _f(rebuild.cpu_s), _f(rebuild.peak_pss / MB, 0), _f(rebuild.peak_rss / MB, 0),
            _f(row["index_bytes"] / MB), _ratio(row["index_bytes"] / row["raw_bytes"]),
            _f(row["dictionary_bytes"] / MB), f"{row['terms']:,}", *(f"{n:,}" for n in row["vocabulary"]),
            row["segments"], _f(row["open_ms"]), _f(row["first_query_ms"]),
            f"{row['added']:,}", _f(update.wall_s), _f(update.peak_pss / MB, 0)]


def render_scale(run: dict) -> str:
    """Return the growth table (`python -m bench scale`) as a markdown section."""
    meta, rows = run["meta"], run["rows"]
    sample = "all" if meta["docs"] >= meta["corpus_docs"] else "an even sample"
    extra = list(dict.fromkeys(name for row in rows for name in row.get("columns", {})))
    text = ", ".join(f"{row['factor']}× {row['text_bytes'] / MB:,.1f} MB ({row['raw_bytes'] / MB:,.1f} MB "
                     "of JSON Lines)" for row in rows)
    lines = [
        "## Scale", "",
        f"- date: {meta['date']}; machine: {meta['cores']} cores ({meta['machine']}); load average "
        f"{meta['load_before']:.2f} before the run, {meta['load_after']:.2f} after (other work on the machine)",
        f"- base: {meta['docs']:,} items ({sample} of the {meta['corpus_docs']:,} in `{meta['corpus']}`); "
        f"title + body text {text}",
        f"- command: `{meta['command']}` (total {meta['total_s']:.0f} s)",
        f"- code: {meta['code']}; source of indexer/, search/, web/ {_source_note(meta)}",
        f"- versions: {meta['versions']}", "",
        "Factor k is an archive of k copies of the base: copy 0 is the base, every other copy has new ids, "
        "dates 400 days earlier per copy and another item's last paragraph in place of its own (bench/scale.py), "
        "and rare words rewritten into new ones of the same length, so that the archive's distinct words and "
        f"character pairs are the base's times k^{WORDS_BETA} and k^{PAIRS_BETA}: Heaps' law as the corpus grows "
        "(bench/vocabulary.py). Words, pairs = distinct terms of the archive's word fields and pair fields (title "
        "and body together), counted through the index's own streams. Rebuild = "
        "`newsearch rebuild COPIES --index WORK/index-k --json` (its defaults: all cores) in a subprocess, "
        "wall time of the whole command; CPU = user + system seconds of its process tree; memory = peak over "
        "0.2 s samples of the sum over the process tree. Index MB = the live build's files; × raw = over the "
        "archive's JSON Lines bytes; dictionary MB = its files with a row per term (the term dictionaries *.ptext, "
        "*.ptends, *.pfields and the term tables *.pstarts); terms = distinct terms of "
        "every field (rows of the joined dictionary); segments = its Whoosh segments. "
        "Open = `Engine(index)` + `current()` in a fresh process; first query = "
        "`search(SearchRequest(q=\"中国\"))` right after it. Update = `newsearch update --json` of the first "
        f"{meta['update_items']:,} items of copy k (new to the archive), measured like the rebuild. "
        "Query columns: the full answer (top 10, highlights, every facet) of `bench run`'s fixed mix of "
        "300 queries drawn from the base (bench/queries.py: word, two words, quoted phrase, pasted span, "
        "whole title × filters × sorts), each asked once after 30 warm-up queries, in one process on the "
        "rebuilt index before the update; p95 per kind, and the slowest query's time and kind.", "",
    ]
    header = ["factor", "items", "rebuild wall s", "items/s", "items/s vs first", "CPU s", "peak PSS MB",
              "peak RSS MB", "index MB", "index × raw", "dictionary MB", "terms", "words", "pairs", "segments",
              "open ms", "first query ms", "update items", "update wall s", "update peak PSS MB", *extra]
    body = [_scale_cells(row, rows[0]) + [row.get("columns", {}).get(name, "—") for name in extra] for row in rows]
    return "\n".join(lines + _table(header, body)) + "\n"


def scale_block(text: str) -> str | None:
    """Return the marked scale section of a results text, markers included, or None."""
    start = text.find(SCALE_START)
    end = text.find(SCALE_END, start)
    if start < 0 or end < 0:
        return None
    return text[start:end + len(SCALE_END)]


def with_scale(text: str, section: str) -> str:
    """Return text with its scale section replaced by section, or with section appended when it has none."""
    block = f"{SCALE_START}\n{section.strip()}\n{SCALE_END}"
    old = scale_block(text)
    if old is not None:
        return text.replace(old, block, 1)
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"


def write_scale_results(path: Path, section: str) -> None:
    """Put the scale section into a results file, replacing the one there, leaving the rest as it is."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    path.write_text(with_scale(old, section), encoding="utf-8")


def write_run_results(path: Path, text: str) -> None:
    """Write `run`'s report to a results file, keeping its scale section and the notes after it (at the end)."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    start = old.find(SCALE_START) if scale_block(old) is not None else -1
    kept = old[start:].rstrip("\n") if start >= 0 else ""
    path.write_text(text.rstrip("\n") + "\n\n" + kept + "\n" if kept else text, encoding="utf-8")
