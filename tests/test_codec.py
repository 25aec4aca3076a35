"""A build is a Whoosh index of our codec: Whoosh's own searcher and query parser find what our engine finds.

The sample is a few hundred corpus items, written in three segments (so the
engine reads the joined arrays and Whoosh each segment's own) and built by the
real indexer. Whoosh reads the build through indexer/codec.py only: the build
holds no Whoosh term table or postings.
"""

from __future__ import annotations

import calendar
import datetime
import os
import re
import shutil
from collections import Counter

import numpy as np
import pytest
from whoosh import index as whoosh_index
from whoosh.filedb.filestore import FileStorage
from whoosh.qparser import MultifieldParser, QueryParser
from whoosh.query import And, NumericRange, Or, Term
from whoosh.util.numeric import byte_to_length, length_to_byte

from conftest import corpus_items, corpus_lines
from indexer import perdoc, segment
from indexer.analysis import STOP_WORDS, normalize
from indexer.codec import ArrayCodec, ArraySegment
from indexer.columns import COLUMNS_FILE, NAMES, STORY_NAMES, load_columns
from indexer.keys import keys_file
from indexer.schema import (
    BODY, BODY_CHARS, BODY_GRAMS, BODY_LEN, CATEGORY, HEADLINE, KIND, PUBLISHED, SOURCE, TITLE, TITLE_CHARS,
    TITLE_GRAMS, TITLE_LEN,
)
from indexer.segment import word_chars as body_chars
from indexer.store import live_build
from indexer.terms import FIELDS, TERM_PARTS, TermDictionary, TermsWriter, merge_order
from indexer.writer import build_index
from search import Engine, SearchRequest
from search.request import MAX_SIZE

SAMPLE = 600
STARTS = (0, 30_000, 55_000)  # three stretches of the corpus: two sources, items with and without a category
SEGMENT_DOCS = 250  # documents a segment: the sample's articles in three segments
HAN_RUN = re.compile("[\u4e00-\u9fff]{6,}")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Return (index path, engine, Whoosh index) of a sample built in several segments."""
    folder = tmp_path_factory.mktemp("codec")
    lines = folder / "items.jsonl"
    parts = [corpus_lines(SAMPLE // 3, start) for start in STARTS]
    lines.write_text("".join(line for part in parts for line in part), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segment, "SEGMENT_DOCS", SEGMENT_DOCS)
        build_index([str(lines)], folder / "index", jobs=1)
    engine = Engine(folder / "index")
    ix = whoosh_index.open_dir(str(live_build(folder / "index")))
    yield folder / "index", engine, ix
    engine.close()
    ix.close()


def engine_hits(engine: Engine, q: str, **filters) -> set[str]:
    """Return the ids of every document the engine answers q with (every page, stories not collapsed)."""
    found: set[str] = set()
    page = 1
    while True:
        answer = engine.search(SearchRequest(q=q, collapse=False, size=MAX_SIZE, page=page, **filters))
        found.update(hit["id"] for hit in answer["hits"])
        if len(found) >= answer["total"] or not answer["hits"]:
            assert len(found) == answer["total"]
            return found
        page += 1


def whoosh_hits(ix, query) -> set[str]:
    """Return the ids of every document Whoosh's own searcher finds for a query object."""
    with ix.searcher() as searcher:
        return {searcher.stored_fields(hit.docnum)["id"] for hit in searcher.search(query, limit=None)}


def substring_query(ix, text: str):
    """Return Whoosh's query for documents whose title or body holds text: its pairs as a quoted phrase
    (Whoosh's Phrase over the pair fields), or a single character in the character fields."""
    if len(text) == 1:
        return Or([Term(TITLE_CHARS, text), Term(BODY_CHARS, text)])
    return MultifieldParser([TITLE_GRAMS, BODY_GRAMS], ix.schema).parse(f'"{text}"')


def stored(ix) -> list[dict]:
    with ix.searcher() as searcher:
        return [dict(searcher.stored_fields(d)) for d in range(searcher.doc_count_all())]


def test_the_build_is_a_whoosh_index_of_our_codec_with_no_whoosh_postings(built):
    index_dir, _, ix = built
    build = live_build(index_dir)
    segments = ix._segments()
    assert len(segments) >= 3 and all(type(seg) is ArraySegment for seg in segments)
    assert all(isinstance(seg.codec(), ArrayCodec) for seg in segments)
    assert not [p.name for p in build.iterdir() if p.suffix in (".trm", ".pst")]
    docs = stored(ix)
    with ix.searcher() as searcher:
        for number in (0, len(docs) // 2, len(docs) - 1):
            assert searcher.document_number(id=docs[number]["id"]) == number
        assert searcher.document_number(id="no-such-id") is None
        reader = searcher.reader()
        words = list(reader.lexicon(TITLE))
        assert words == sorted(set(words)) and len(words) > 100  # every segment's words, merged, in order
        assert all(w.startswith("中".encode()) for w in reader.expand_prefix(TITLE, "中"))
        assert "中国".encode() in set(reader.expand_prefix(TITLE, "中"))
        assert not list(reader.expand_prefix(TITLE, "龘"))


def test_the_joined_set_is_the_covered_segments_only_copy_and_holds_each_term_once(built):
    """The joined set holds every segment's terms once, sorted by field and text; the segments it covers
    keep no arrays of their own, and Whoosh reads each one's terms from its slice of the set."""
    build = live_build(built[0])
    joined = TermDictionary(*(np.load(build / f"whole.{part}.npy") for part in TERM_PARTS))
    rows = [(field, joined.term(row)) for field in FIELDS for row in range(*joined.rows(field))]
    assert rows == sorted(set(rows))  # by field and text, no two rows alike
    assert not list(build.glob("MAIN_*.p*.npy"))
    with built[2].reader() as reader:
        leaves = [list(leaf.all_terms()) for leaf, _ in reader.leaf_readers()]
    assert len(leaves) >= 3 and all(terms == sorted(terms) for terms in leaves)
    assert set(rows) == {term for terms in leaves for term in terms}
    assert all(len(terms) < len(rows) for terms in leaves)  # a slice lists only its own segment's terms


def test_whoosh_and_the_engine_find_the_same_documents(built):
    """Words, quoted phrases, character pairs and single characters: Whoosh's hit set through the codec
    equals the engine's, and neither holds a document without the text."""
    _, engine, ix = built
    docs = stored(ix)
    run = next(m.group() for d in docs if (m := HAN_RUN.search(normalize(d["title"]))))
    pairs = (m.group()[4:6] for d in docs[len(docs) // 2:] if (m := HAN_RUN.search(normalize(d.get("body") or ""))))
    pair = next(p for p in pairs if not set(p) & STOP_WORDS)  # a stop word is matched by its own rules
    phrase = run[1:5]
    checked = 0
    for q, text in ((f'"{phrase}"', phrase), (pair, pair), ("经济", "经济"), ("发展", "发展"), (run[2], run[2])):
        found = engine_hits(engine, q)
        assert found == whoosh_hits(ix, substring_query(ix, text)), q
        assert found, q
        holds = {d["id"] for d in docs if text in normalize(d["title"]) or text in normalize(d.get("body") or "")}
        assert found == holds, q  # and no document without the text
        checked += 1
    # Whoosh's own word fields find a subset: a word is a piece of the text.
    words = whoosh_hits(ix, MultifieldParser([TITLE, BODY], ix.schema).parse("经济"))
    assert words and words <= engine_hits(engine, "经济")
    # The pairs of a phrase in another order are another phrase: its documents are not found by it.
    backwards = phrase[2:] + phrase[:2]
    found = engine_hits(engine, f'"{backwards}"')
    assert found == whoosh_hits(ix, substring_query(ix, backwards))
    assert found == {d["id"] for d in docs if backwards in normalize(d["title"]) + "\n" + normalize(d.get("body") or "")}
    assert engine_hits(engine, f'"{phrase}"') - found
    assert engine_hits(engine, '"鱻龘鱻"') == whoosh_hits(ix, substring_query(ix, "鱻龘鱻")) == set()
    assert checked == 5


def test_filters_select_the_same_documents_in_whoosh_and_the_engine(built):
    """Category, source and a published range, as Whoosh queries on the codec's postings and as the
    engine's filters: the same documents, and none outside the filter."""
    _, engine, ix = built
    docs = stored(ix)
    q, text = "中国", "中国"
    everything = engine_hits(engine, q)
    by_id = {d["id"]: d for d in docs}
    category = Counter(by_id[i].get(CATEGORY) for i in everything if by_id[i].get(CATEGORY)).most_common(1)[0][0]
    source = Counter(by_id[i].get(SOURCE) for i in everything if by_id[i].get(SOURCE)).most_common(1)[0][0]
    base = substring_query(ix, text)
    chosen = engine_hits(engine, q, categories=(category,))
    assert chosen == whoosh_hits(ix, And([base, Term(CATEGORY, category)]))
    assert chosen and chosen < everything  # another category's documents are left out
    assert all(by_id[i][CATEGORY] == category for i in chosen)
    chosen = engine_hits(engine, q, sources=(source,))
    assert chosen == whoosh_hits(ix, And([base, Term(SOURCE, source)]))
    assert all(by_id[i][SOURCE] == source for i in chosen)
    days = sorted({by_id[i]["published"] // 86400 for i in everything if by_id[i].get("published")})
    first, last = days[len(days) // 3], days[2 * len(days) // 3]
    epoch = datetime.date(1970, 1, 1)
    chosen = engine_hits(engine, q, date_from=epoch + datetime.timedelta(days=first),
                         date_to=epoch + datetime.timedelta(days=last))
    whoosh = whoosh_hits(ix, And([base, NumericRange("published", first * 86400, (last + 1) * 86400 - 1)]))
    assert chosen == whoosh and chosen and chosen < everything
    assert all(first * 86400 <= by_id[i]["published"] < (last + 1) * 86400 for i in chosen)


def test_whoosh_reads_each_words_frequency_and_one_for_pairs(built):
    """The word fields keep their frequencies (pfreqs holds theirs only): Whoosh's weight of a posting is
    how often the field's analyzer gives the word; a pair weighs 1.0 however often it occurs."""
    ix = built[2]
    with ix.searcher() as searcher:
        for field, word in ((BODY, "中国"), (TITLE, "中国"), (BODY, "发展")):
            analyzer, weights = ix.schema[field].analyzer, []
            matcher = searcher.postings(field, word)
            while matcher.is_active():
                text = searcher.stored_fields(matcher.id())[field]
                weights.append((matcher.weight(), sum(1 for token in analyzer(text) if token.text == word)))
                matcher.next()
            assert len(weights) > 5 and all(w == count for w, count in weights), (field, word)
            assert any(count > 1 for _, count in weights)  # not all ones
        matcher = searcher.postings(BODY_GRAMS, "中国")
        counts = []
        while matcher.is_active():
            counts.append((matcher.weight(), len(matcher.value_as("positions"))))
            matcher.next()
        assert all(w == 1.0 for w, _ in counts) and any(n > 1 for _, n in counts)


def test_dictionaries_find_list_and_merge_terms_by_their_whole_text():
    """Terms sharing their first bytes (ids, long words), differing only by trailing zero bytes (a number's
    bytes) or held by both of two parts are found by text, listed by prefix and merged into one row each."""
    pieces = [b"a", b"\0", b"ab", "中".encode()]
    texts = sorted({bytes().join(pieces[(seed >> (2 * k)) % 4] for k in range(1 + seed % 6)) for seed in range(900)})
    shared = [b"xwlb-VIDE" + str(n).encode() for n in range(50)]  # one 7-byte prefix for all
    halves = (texts[::2] + shared[:30], texts[1::3] + shared[20:])
    dicts = []
    for half in halves:
        writer = TermsWriter()
        for field in FIELDS:
            writer.add(field, sorted(set(half)) if field in (TITLE, "id") else [])
        dicts.append(TermDictionary.of(writer.arrays()))
    for d, half in zip(dicts, halves):
        rows = d.find("id", sorted(set(half)) + [b"xwlb-VIDE999", b"a\0\0\0\0\0\0\0"])
        assert list(rows[:-2]) == list(range(*d.rows("id"))) and list(rows[-2:]) == [-1, -1]
        assert [t for _, t in d.items_from(TITLE, b"ab")] == [t for t in sorted(set(half)) if t >= b"ab"]
        assert not list(d.items_from(BODY, b""))  # a field without terms lists none
    part = np.concatenate([np.full(len(d), i) for i, d in enumerate(dicts)])
    row = np.concatenate([np.arange(len(d)) for d in dicts])
    order, keys, head = merge_order(dicts, part, row)
    merged = [(FIELDS[int(k >> np.uint64(56))], dicts[p].term(r))
              for p, r, k, first in zip(part[order], row[order], keys, head) if first]
    assert merged == sorted({(field, t) for field in (TITLE, "id") for half in halves for t in half})


def whoosh_columns(reader) -> dict[str, np.ndarray]:
    """Return the per-document arrays as Whoosh's column readers give them (one value a call) and its kind postings."""
    arrays = {}
    for name in (CATEGORY, SOURCE):
        values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in reader.column_reader(name)]
        arrays[f"{name}_labels"], arrays[name] = np.unique(np.array(values, dtype=str), return_inverse=True)
    for name in (PUBLISHED, TITLE_LEN, BODY_LEN):
        arrays[name] = np.fromiter(reader.column_reader(name), dtype=np.int64)
    arrays["headlines"] = np.fromiter(reader.postings(KIND, HEADLINE).all_ids() if (KIND, HEADLINE) in reader
                                      else (), dtype=np.int64)
    return arrays


def test_whoosh_reads_columns_and_lengths_from_our_keys_not_its_own_files(built):
    """No Whoosh 3 file is written: Whoosh's columns (read the slow way, one value a call) and field
    lengths come from the keys files, and agree with the arrays the engine joins from them (columns.npz
    holds the stories only); Whoosh sorts by them."""
    index_dir, _, ix = built
    build = live_build(index_dir)
    assert not [p.name for p in build.iterdir() if p.suffix == ".col" or p.name.endswith(".raw")]
    with np.load(build / COLUMNS_FILE) as saved:
        assert sorted(saved.files) == sorted(STORY_NAMES)  # the keys files keep the per-document values
    with ix.reader() as reader:
        slow, saved = whoosh_columns(reader), load_columns(build, reader)
        assert not len(saved["deleted"]) and len(saved[PUBLISHED]) == reader.doc_count_all()
        for name in NAMES:
            assert np.array_equal(slow[name], saved[name]), name
        assert len(saved[f"{CATEGORY}_labels"]) > 1 and len(np.unique(saved[PUBLISHED])) > 1
        for d in (0, reader.doc_count_all() // 2, reader.doc_count_all() - 1):
            assert reader.doc_field_length(d, TITLE) == saved[TITLE_LEN][d]
            assert reader.doc_field_length(d, BODY) == saved[BODY_LEN][d]
        chars = len(body_chars(normalize(stored(ix)[0][BODY])))
        assert reader.doc_field_length(0, BODY_CHARS) == byte_to_length(length_to_byte(chars))
        assert reader.doc_field_length(0, "id") == 0  # not scored: no length
        assert reader.field_length(BODY) == int(saved[BODY_LEN].sum()) and reader.field_length("id") == 0
    with ix.searcher() as searcher:
        hits = searcher.search(Term(BODY_GRAMS, "中国"), sortedby="published", reverse=True, limit=None)
        published = [searcher.stored_fields(hit.docnum)["published"] for hit in hits]
        assert len(published) > 20 and published == sorted(published, reverse=True)
        assert published != sorted(published)


def test_stored_fields_come_back_as_written_each_document_alone(tmp_path):
    """Each document's fields are compressed alone, with the segment's dictionary: any document reads back
    exactly (text with lone surrogates, numbers, other values as JSON), in any order."""
    seg = ArrayCodec().new_segment(FileStorage(str(tmp_path)), "MAIN")
    docs = [{"id": f"d{i}\udcff", "title": "中国" * (i % 7), "published": -i * 1000, "related": "[]",
             "url": None, "kind": "article"} for i in range(perdoc.PRIME + 40)]
    writer = perdoc.StoredWriter(tmp_path, seg)
    for doc in docs:
        writer.add(doc)
    writer.close()
    seg.set_doc_count(len(docs))
    reader = perdoc.StoredReader(tmp_path, seg)
    for d in (len(docs) - 1, 0, perdoc.PRIME, 7):
        assert reader.get(d) == docs[d] and reader.get(d) != docs[d - 1]
    with pytest.raises(IndexError):
        reader.get(len(docs))
    ends = np.load(tmp_path / perdoc.stored_files(seg)["stored_ends"])
    assert np.diff(ends.astype(np.int64)).mean() < len(perdoc._encoded(docs[-1])) / 2  # the dictionary works


def test_stored_fields_hold_no_value_of_the_keys_file_and_whoosh_gets_them_whole(built):
    """A document's id, kind, category, source, published, path and content hash are kept once, in its
    segment's keys file: its stored bytes hold none of them, and Whoosh's stored_fields gives them back."""
    index_dir, _, ix = built
    build = live_build(index_dir)
    for seg in ix._segments():
        own = perdoc.StoredReader(build, seg)
        assert not [d for d in range(seg.doc_count_all()) if set(perdoc.FROM_KEYS) & set(own.get(d))]
        own.close()
    items = {item["id"]: item for start in STARTS for item in corpus_items(SAMPLE // 3, start)}
    docs = stored(ix)
    assert all(list(doc) == list(perdoc.STORED) for doc in docs)  # every field, in the stored order
    for doc in docs:
        item = items[doc["id"]]
        published = calendar.timegm(datetime.datetime.fromisoformat(item["date"]).timetuple())
        assert (doc["kind"], doc["category"], doc["source"], doc["published"]) == \
            ("article", item.get("category") or "", item["source"], published)
        assert re.fullmatch("[0-9a-f]{16}", doc["content_hash"]) and doc["path"]
    assert len({doc["id"] for doc in docs}) == len({doc["content_hash"] for doc in docs}) == len(docs) == len(items)
    assert {doc["category"] for doc in docs} >= {"", items[docs[-1]["id"]]["category"]}  # not one value for all


def test_a_value_the_keys_do_not_give_back_stays_stored_and_a_missing_one_stays_missing(tmp_path):
    """The keys file keeps "" for no category, 0 for no time, a bool for the kind and the content hash as a
    number: a document whose value differs from that (or which lacks the field) keeps its own."""
    docs = [{"id": "a1", "kind": "article", "title": "中国银行", "body": "今天", "category": "财经", "source": "新华",
             "published": 1_700_000_000, "path": "p/1.txt", "content_hash": "00ab12cd34ef5678", "related": "[]"},
            {"id": "h2", "kind": "headline", "title": "标题", "category": "", "published": 0, "path": "p/1.txt",
             "content_hash": "ABCDEF0123456789", "parent": "a1"},
            {"id": "x3", "title": "无类", "category": "x\0", "published": 5, "content_hash": "ff", "source": ""},
            {"title": "什么都没有", "kind": "other", "source": None, "published": None}]
    storage = FileStorage(str(tmp_path))
    builder = segment.SegmentBuilder(storage)
    for doc in docs:
        builder.add(doc)
    seg = builder.finish()
    reader, own = perdoc.ArrayPerDocReader(storage, seg), perdoc.StoredReader(tmp_path, seg)
    for d, doc in enumerate(docs):
        assert reader.stored_fields(d) == {name: value for name, value in doc.items() if value is not None}
    assert not set(perdoc.FROM_KEYS) & set(own.get(0))  # the plain article keeps none
    assert own.get(1)["content_hash"] == "ABCDEF0123456789" and "kind" not in own.get(1)
    assert own.get(2)["category"] == "x\0" and own.get(2)["kind"] is perdoc.ABSENT
    assert "kind" not in reader.stored_fields(2) and "source" not in reader.stored_fields(3)
    reader.close()
    own.close()
    keys = tmp_path / keys_file(seg)
    (tmp_path / "next").mkdir()
    os.link(keys, tmp_path / "next" / keys.name)  # as an update links a segment's files into its build
    held = perdoc.KeysValues.of(keys)
    assert perdoc.KeysValues.of(tmp_path / "next" / keys.name) is held  # the values once in memory
    shutil.copy(keys, tmp_path / "copy.keys.npz")
    assert perdoc.KeysValues.of(tmp_path / "copy.keys.npz") is not held  # another file: its own


def test_an_open_build_answers_without_reading_a_keys_file_again(built, tmp_path, monkeypatch):
    index_dir, _, _ = built
    copy = tmp_path / "index"  # files of its own: no values shared with the engines of other tests
    shutil.copytree(index_dir.parent / f"{index_dir.name}.builds", tmp_path / f"{copy.name}.builds", symlinks=True)
    os.symlink(os.readlink(index_dir), copy)
    engine = Engine(copy)
    engine.current()
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    found = engine_hits(engine, "的")  # every page: documents of every segment read
    articles = [engine.article(doc_id) for doc_id in sorted(found)[::50]]
    monkeypatch.undo()
    engine.close()
    assert len(found) > 2 * SEGMENT_DOCS and all(article is not None for article in articles)
    assert not [path for path in opened if path.endswith(".keys.npz")]  # its stored fields composed from held values
