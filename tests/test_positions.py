"""Where positional postings' bytes are: one length byte a posting, long ones apart, a mark a block."""

from __future__ import annotations

import json

import numpy as np
import pytest
from whoosh import index as whoosh_index
from whoosh.qparser import MultifieldParser

from conftest import corpus_lines
from indexer import freqs as freq_parts
from indexer import positions, segment
from indexer.postings import POSITIONAL, list_spans, position_shifts
from indexer.schema import BODY, BODY_GRAMS, TITLE_GRAMS
from indexer.store import live_build
from indexer.terms import FIELD_INDEX, TermDictionary
from indexer.writer import build_index
from search import Engine, SearchRequest

REPEATS = 300  # of one pair in one body: 601 bytes of positions, past a length byte


def written(folder, lengths: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Return the parts LengthsWriter writes for these runs of lengths, read back."""
    streams = {part: open(folder / part, "wb") for part in ("pvlens", "pvlong", "pvmarks")}
    writer = positions.LengthsWriter(streams)
    for run in lengths:
        writer.add(run)
    writer.close()
    for stream in streams.values():
        stream.close()
    return {"pvlens": np.fromfile(folder / "pvlens", dtype=np.uint8),
            "pvlong": np.fromfile(folder / "pvlong", dtype=np.uint32),
            "pvmarks": np.fromfile(folder / "pvmarks", dtype=np.uint32).reshape(-1, 2)}


@pytest.mark.parametrize("count", [0, 1, 127, 128, 300, 512, 1000])
def test_offsets_come_back_from_lengths_marks_and_long_lengths(tmp_path, count):
    rng = np.random.default_rng(count)
    lengths = rng.choice([3, 5, 9, 254, 255, 256, 70_000], size=count, p=[.4, .2, .2, .05, .05, .05, .05])
    cuts = np.sort(rng.integers(0, count + 1, 4))
    arrays = written(tmp_path, np.split(lengths, cuts))
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    assert len(arrays["pvlens"]) == count and len(arrays["pvmarks"]) == count // positions.MARK + 1
    assert list(arrays["pvlong"]) == [n for n in lengths.tolist() if n >= 255]
    rows = rng.permutation(count)  # any order
    begins, ends = positions.extents(arrays, rows)
    assert np.array_equal(begins, offsets[rows]) and np.array_equal(ends, offsets[rows + 1])
    for first in {0, count // 3, max(count - 1, 0)}:
        assert np.array_equal(positions.span(arrays, first, count - first), offsets[first:])
        assert not np.array_equal(positions.span(arrays, first, count - first), offsets[first:] + 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Return (build folder, engine, Whoosh index) of a corpus sample plus an item repeating a pair and one
    repeating a word."""
    folder = tmp_path_factory.mktemp("positions")
    lines = corpus_lines(300, 20_000)
    repeated = {"id": "repeat-1", "title": "甲乙重复", "body": "甲乙丙" * REPEATS + "丁戊", "category": None,
                "date": "2020-01-01 10:00:00", "source": "测试", "origin": "test", "tags": []}
    often = {**repeated, "id": "repeat-2", "title": "重复的词", "body": "中国，" * REPEATS}
    (folder / "items.jsonl").write_text("".join(lines) + "".join(json.dumps(item, ensure_ascii=False) + "\n"
                                                                 for item in (repeated, often)), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segment, "SEGMENT_DOCS", 120)
        build_index([str(folder / "items.jsonl")], folder / "index", jobs=1)
    engine = Engine(folder / "index")
    ix = whoosh_index.open_dir(str(live_build(folder / "index")))
    yield live_build(folder / "index"), engine, ix
    engine.close()
    ix.close()


def test_each_positional_posting_has_its_own_bytes_in_a_real_build(built):
    build = built[0]
    arrays = {part: np.load(build / f"whole.{part}.npy") for part in
              ("pvlens", "pvlong", "pvmarks", "pvals", "pstarts", "pfields", "ptext", "ptends")}
    count = len(arrays["pvlens"])
    begins, ends = positions.extents(arrays, np.arange(count))
    assert begins[0] == 0 and ends[-1] == len(arrays["pvals"]) and np.array_equal(begins[1:], ends[:-1])
    assert len(arrays["pvlong"]) >= 1  # the repeated pair's posting
    kinds = arrays["pvals"][begins]
    assert set(kinds.tolist()) <= {ord("H"), ord("I")}
    assert ((ends - begins - 1) % np.where(kinds == ord("H"), 2, 4) == 0).all()
    shifts = position_shifts(arrays)
    dictionary = TermDictionary.of(arrays)
    row = int(dictionary.find(BODY_GRAMS, ["甲乙".encode()])[0])
    start, end = list_spans(arrays, [row])[0]
    first = start + shifts[FIELD_INDEX[BODY_GRAMS]]
    b, e = positions.extents(arrays, np.array([first + end - start - 1]))  # the last document: the repeated one
    assert e[0] - b[0] == 1 + 2 * REPEATS
    placed = sum(arrays["pfields"][FIELD_INDEX[f] + 1] - arrays["pfields"][FIELD_INDEX[f]] for f in POSITIONAL)
    assert placed > 0 and {TITLE_GRAMS, BODY_GRAMS} == POSITIONAL


def test_phrases_over_a_long_posting_match_in_the_engine_and_in_whoosh(built):
    _, engine, ix = built
    parser = MultifieldParser([TITLE_GRAMS, BODY_GRAMS], ix.schema)
    for q, found in (('"甲乙丙甲乙"', True), ('"丙丁戊"', True), ('"乙甲"', False), ('"甲乙丁"', False)):
        answer = engine.search(SearchRequest(q=q, collapse=False))
        assert ("repeat-1" in [hit["id"] for hit in answer["hits"]]) is found, q
        with ix.searcher() as searcher:
            ids = {searcher.stored_fields(hit.docnum)["id"] for hit in searcher.search(parser.parse(q), limit=None)}
        assert ("repeat-1" in ids) is found, q


@pytest.mark.parametrize("count", [0, 5, 1024, 3000])
def test_frequencies_come_back_from_bytes_marks_and_big_values(tmp_path, count):
    rng = np.random.default_rng(count)
    freqs = rng.choice([1, 2, 3, 254, 255, 256, 65535], size=count, p=[.5, .2, .1, .05, .05, .05, .05]).astype(np.uint16)
    streams = {part: open(tmp_path / part, "wb") for part in freq_parts.PARTS}
    writer = freq_parts.FreqsWriter(streams, np.uint32)
    for run in np.split(freqs, np.sort(rng.integers(0, count + 1, 3))):
        writer.add(run)
    writer.close()
    for stream in streams.values():
        stream.close()
    arrays = {"pfreqs": np.fromfile(tmp_path / "pfreqs", dtype=np.uint8),
              "pfbig": np.fromfile(tmp_path / "pfbig", dtype=np.uint16),
              "pfmarks": np.fromfile(tmp_path / "pfmarks", dtype=np.uint32)}
    assert len(arrays["pfreqs"]) == count and len(arrays["pfmarks"]) == count // freq_parts.MARK + 1
    rows = rng.permutation(count)
    assert np.array_equal(freq_parts.values(arrays, rows), freqs[rows])
    assert np.array_equal(freq_parts.values(arrays, slice(count // 2, count)), freqs[count // 2:])
    if count >= freq_parts.MARK:  # big ones in several blocks
        assert len(arrays["pfbig"]) > 10 and (freqs > 255).any()


def test_a_word_past_a_byte_of_frequency_weighs_its_count(built):
    _, engine, ix = built
    with ix.searcher() as searcher:
        number = searcher.document_number(id="repeat-2")
        matcher = searcher.postings(BODY, "中国")
        weights = {}
        while matcher.is_active():
            weights[matcher.id()] = matcher.weight()
            matcher.next()
    assert weights[number] == REPEATS and len(weights) > 20 and max(w for d, w in weights.items() if d != number) < 255
    docs, freqs = engine.current().cache.arrays.read(BODY, "中国")
    assert freqs[docs == number].tolist() == [REPEATS] and (freqs[docs != number] < REPEATS).all()
