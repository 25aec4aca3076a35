"""The build's lexicon: every word of the word fields with its document frequency, full pinyin and initials.

Completion and did-you-mean read it instead of the term dictionaries: one
table for the whole build (however many segments), sorted for prefix look-up
by the word itself, by its full pinyin (``衢州`` -> ``quzhou``) and by its
initials (``qz``), with the documents holding it to rank by. Written by a
rebuild and by every update (write_lexicon), mapped at open (open_lexicon).

Files (FORMAT.md):

- ``lexicon.json``: {"version", "words": n, "pinyin": m, "initials": k};
- ``lexicon.text.npy`` (uint8): the UTF-8 of the n words (sorted by bytes, so
  by code point), then the m pinyin keys, then the k initials keys, each
  table sorted by bytes;
- ``lexicon.ends.npy`` (uint32, n + m + k): where each string ends in text;
- ``lexicon.rows.npy`` (uint32): df (n: documents holding the word in the
  title or the body, the larger of the two counts, deleted documents
  included), then the word number of each pinyin key (m) and of each
  initials key (k);
- ``lexicon.flags.npy`` (uint8, n): bit 0 (NAME) set for a word jieba's
  dictionary tags as a person, place or organisation (nr, nrt, nrfg, ns,
  nt): a Latin prefix lists names first, as initials are typed mostly for
  names (``bj`` is 北京 before 比较).

A key is made by pypinyin with its phrase dictionary, so polyphones read as
in their word (重庆 chongqing, 银行 yinhang); letters and digits in a word stay
as they are (5g手机 -> 5gshouji, 5gsj). Only words holding an ideograph, of at
most MAX_KEY_CHARS characters and in at least MIN_KEYED_DF documents have
keys; only words of two syllables or more have initials (a one-syllable
word's initial is a prefix of its pinyin anyway).
"""

from __future__ import annotations

import heapq
import itertools
import json
import multiprocessing
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from indexer import store
from indexer.arrays import PostingArrays
from indexer.postings import list_spans
from indexer.mapped import map_npy
from indexer.schema import WORD_FIELDS

VERSION = 1
META_FILE = "lexicon.json"
PARTS = ("text", "ends", "rows", "flags")
MAX_BYTES = 2**32 - 1  # ends are uint32
DF_RANKED = 2**31 - 1  # weighted documents counted in a rank (Lexicon.top): more rank alike
WORDS, PINYIN, INITIALS = 0, 1, 2  # the three sorted tables
NAME = 1  # flags bit: a person, place or organisation
NAME_TAGS = frozenset({"nr", "nrt", "nrfg", "ns", "nt"})
# A word of one article gets no keys: typed by its pinyin it would find one article, and such words are
# 41% of a 20,000-item sample's words that have keys (pypinyin's time is most of the lexicon's).
MIN_KEYED_DF = 2
KEYS_CHUNK = 5_000  # words a process makes keys for at a time
MAX_KEY_CHARS = 12  # longer words get no keys: nobody types them by pinyin, and their keys are long
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KEPT = re.compile(r"[^a-z0-9]")


def lexicon_files() -> list[str]:
    """Return the names of a build's lexicon files."""
    return [META_FILE, *(f"lexicon.{part}.npy" for part in PARTS)]


def word_frequencies(folder: str | Path, segments: list) -> Iterator[tuple[bytes, int]]:
    """Yield (word as UTF-8, documents holding it) for every word of the word fields, in byte order.

    The documents are counted in the title and in the body over every set of
    posting arrays (the joined set and the segments it does not cover), and
    the larger count is kept. Read from the sets' term dictionaries, one
    sorted stream per set and field, merged: nothing of the size of the
    lexicon is held here.
    """
    postings = PostingArrays.open(Path(folder), segments)
    if postings is None:
        return
    try:
        streams = [_field_items(terms, arrays, n, field) for terms, (_, arrays) in zip(postings.dicts, postings.parts)
                   for n, field in enumerate(WORD_FIELDS)]
        for text, group in itertools.groupby(heapq.merge(*streams), key=lambda item: item[0]):
            counts = [0] * len(WORD_FIELDS)
            for _, n, df in group:
                counts[n] += df
            yield text, max(counts)
    finally:
        postings.close()


def _field_items(terms, arrays: dict, n: int, field: str) -> Iterator[tuple[bytes, int, int]]:
    """Yield (term, n, documents) of one field of a set's term dictionary, in byte order."""
    first, end = terms.rows(field)
    spans = list_spans(arrays, slice(first, end))
    lengths = (spans[:, 1] - spans[:, 0]).tolist()
    for row, length in zip(range(first, end), lengths):
        yield terms.term(row), n, length


def keys_of(word: str) -> tuple[str, str, int] | None:
    """Return a word's full pinyin and initials keys (no initials: "") and its flags, or None when it holds
    no ideograph."""
    if len(word) > MAX_KEY_CHARS or not _HAN.search(word):
        return None
    from pypinyin import lazy_pinyin  # its phrase dictionary loads on first use: only where keys are made

    syllables = lazy_pinyin(word, errors=lambda run: ["#" + run])  # "#": a run of letters or digits, kept whole
    full = _KEPT.sub("", "".join(syllables).lower())
    initials = "".join(s[1:] if s.startswith("#") else s[:1] for s in syllables)
    initials = _KEPT.sub("", initials.lower())
    if not full:
        return None
    initials = initials if sum(not s.startswith("#") for s in syllables) > 1 else ""
    return full, initials, NAME if len(word) > 1 and _tag_of(word) in NAME_TAGS else 0  # 岘 is tagged ns


def _tag_of(word: str) -> str | None:
    """Return jieba's part-of-speech tag of a word it reads as one word (None when it splits it)."""
    import rjieba

    tagged = rjieba.tag(word)
    return tagged[0][1] if len(tagged) == 1 else None


def write_lexicon(folder: str | Path, segments: list, previous: str | Path | None = None, jobs: int = 1) -> int:
    """Write the build's lexicon files from its segments' words; return how many words it holds.

    previous: a build whose lexicon's keys are taken for the words it already
    had (an update), so only new words are read by pypinyin, in jobs processes.
    """
    folder = Path(folder)
    words, df = [], []
    for text, count in word_frequencies(folder, segments):
        words.append(text)
        df.append(count)
    known = _known_keys(previous)
    wanted = [n for n, count in enumerate(df) if count >= MIN_KEYED_DF]
    new = [n for n in wanted if words[n] not in known]
    made = dict(zip(new, _keys_all([words[n].decode("utf-8") for n in new], jobs)))
    keyed = [(n, made[n] if n in made else known[words[n]]) for n in wanted]
    arrays, meta = _arrays(words, df, [(n, k) for n, k in keyed if k is not None])
    for part in PARTS:
        with store.create_file(folder / f"lexicon.{part}.npy") as f:
            np.save(f, arrays[part], allow_pickle=False)
    with store.create_file(folder / META_FILE) as f:
        f.write(json.dumps(meta).encode())
    return len(words)


def _arrays(words: list[bytes], df: list[int], keyed: list[tuple[int, tuple[str, str, int]]]) -> tuple[dict, dict]:
    """Return the lexicon's arrays by part and its lexicon.json, from the words, their documents and keys."""
    pinyin = sorted((k[0].encode(), n) for n, k in keyed)
    initials = sorted((k[1].encode(), n) for n, k in keyed if k[1])
    strings = list(itertools.chain(words, (k for k, _ in pinyin), (k for k, _ in initials)))
    text = b"".join(strings)
    if len(text) > MAX_BYTES:
        raise ValueError(f"a lexicon of {len(text):,} bytes does not fit uint32 offsets")
    arrays = {"text": np.frombuffer(text, dtype=np.uint8),
              "ends": np.cumsum(np.array([len(s) for s in strings], dtype=np.uint64)).astype(np.uint32),
              "rows": np.array(df + [n for _, n in pinyin] + [n for _, n in initials], dtype=np.uint32),
              "flags": np.zeros(len(words), dtype=np.uint8)}
    arrays["flags"][[n for n, k in keyed if k[2]]] = NAME
    return arrays, {"version": VERSION, "words": len(words), "pinyin": len(pinyin), "initials": len(initials)}


def _keys_all(words: list[str], jobs: int) -> list[tuple[str, str, int] | None]:
    """Return keys_of() of each word, in jobs processes when there are many (pypinyin: ~20 us a word)."""
    if jobs < 2 or len(words) < 2 * KEYS_CHUNK:
        return [keys_of(w) for w in words]
    chunks = [words[i:i + KEYS_CHUNK] for i in range(0, len(words), KEYS_CHUNK)]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return list(itertools.chain.from_iterable(pool.imap(_keys_chunk, chunks)))


def _keys_chunk(words: list[str]) -> list[tuple[str, str, int] | None]:
    return [keys_of(w) for w in words]


def _known_keys(build: str | Path | None) -> dict[bytes, tuple[str, str, int]]:
    """Return keys_of() of every keyed word of a build's lexicon by the word's UTF-8 (none without one)."""
    found = open_lexicon(build) if build is not None else None
    if found is None:
        return {}
    return {found.bytes_of(WORDS, word): value for word, value in found.keys().items()}


def make_lexicon(entries: Iterable[tuple[str, int, tuple[str, str, int] | None]]) -> Lexicon:
    """Return a lexicon held in memory from (word, documents, keys_of() or None) entries of distinct words."""
    ordered = sorted((word.encode("utf-8"), df, keys) for word, df, keys in entries)
    arrays, meta = _arrays([w for w, _, _ in ordered], [df for _, df, _ in ordered],
                           [(n, keys) for n, (_, _, keys) in enumerate(ordered) if keys is not None])
    return Lexicon([meta["words"], meta["pinyin"], meta["initials"]], arrays)


def open_lexicon(folder: str | Path) -> Lexicon | None:
    """Map a build's lexicon; None when the build has none (written before it had one).

    :raises store.DamagedFileError: when its files do not agree with lexicon.json or one cannot be read.
    """
    folder = Path(folder)
    path = folder / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        sizes = [int(meta[name]) for name in ("words", "pinyin", "initials")]
    except (OSError, ValueError, KeyError, TypeError):
        raise store.DamagedFileError(path, "not a lexicon description") from None
    if meta.get("version") != VERSION:
        raise store.DamagedFileError(path, f"lexicon version {meta.get('version')}, this code reads {VERSION}")
    arrays = {part: map_npy(folder / f"lexicon.{part}.npy")[1] for part in PARTS}
    n, m, k = sizes
    if len(arrays["ends"]) != n + m + k or len(arrays["rows"]) != n + m + k or len(arrays["flags"]) != n:
        raise store.DamagedFileError(folder / "lexicon.rows.npy", "not the size lexicon.json says")
    if (n + m + k and int(arrays["ends"][-1]) != len(arrays["text"])):
        raise store.DamagedFileError(folder / "lexicon.text.npy", "not the size its ends say")
    return Lexicon(sizes, arrays)


class Lexicon:
    """A build's lexicon, mapped read-only: prefix look-ups in its three tables, words ranked by documents."""

    def __init__(self, sizes: list[int], arrays: dict[str, np.ndarray]) -> None:
        n, m, _ = sizes
        rows = arrays["rows"]
        self.sizes = sizes
        self.text, self.ends, self.flags = arrays["text"], arrays["ends"], arrays["flags"]
        self.base = [0, n, n + m]  # each table's first string in ends
        self.df = rows[:n]
        self.owner = [None, rows[n:n + m], rows[n + m:]]  # each key's word (WORDS: the row is the word)

    def __len__(self) -> int:
        return self.sizes[WORDS]

    def bytes_of(self, table: int, row: int) -> bytes:
        """Return the UTF-8 of a table's row."""
        i = self.base[table] + row
        start = int(self.ends[i - 1]) if i else 0
        return self.text[start:int(self.ends[i])].tobytes()

    def keys(self) -> dict[int, tuple[str, str, int]]:
        """Return keys_of() of every word that has keys, by word number."""
        found: dict[int, list] = {}
        for table in (PINYIN, INITIALS):
            for row, word in enumerate(self.owner[table].tolist()):
                found.setdefault(word, ["", "", int(self.flags[word])])[table - 1] = self.bytes_of(table, row).decode()
        return {word: tuple(value) for word, value in found.items()}

    def word(self, number: int) -> str:
        """Return word number `number`."""
        return self.bytes_of(WORDS, number).decode("utf-8")

    def _bisect(self, table: int, key: bytes) -> int:
        """Return the first row of the table whose string is not below key."""
        lo, hi = 0, self.sizes[table]
        while lo < hi:
            mid = (lo + hi) // 2
            if self.bytes_of(table, mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def span(self, table: int, prefix: str, exact: bool = False) -> tuple[int, int]:
        """Return the rows [lo, hi) of the table whose string starts with prefix (exact: equals it)."""
        key = prefix.encode("utf-8")
        lo = self._bisect(table, key)
        # No UTF-8 string holds byte 0xFF, so key + 0xFF sorts after every string that starts with key.
        return lo, self._bisect(table, key + (b"\x00" if exact else b"\xff"))

    def find(self, word: str) -> int | None:
        """Return the number of a word, or None when the index does not hold it."""
        lo, hi = self.span(WORDS, word, exact=True)
        return lo if hi > lo else None

    def words_in(self, table: int, lo: int, hi: int) -> np.ndarray:
        """Return the word numbers of rows [lo, hi) of a table."""
        return np.arange(lo, hi, dtype=np.int64) if table == WORDS else self.owner[table][lo:hi].astype(np.int64)

    def top(self, words: np.ndarray, k: int, weight: np.ndarray | None = None) -> np.ndarray:
        """Return the k most frequent of the words (distinct), most frequent first; ties in word order.

        weight: a factor of each word's documents in the ranking.
        """
        return self.ranked(words, k, weight)[0]

    def ranked(self, words: np.ndarray, k: int, weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return top()'s words and their ranks: one total order (weighted documents, then word order),
        the same for every call, so the ranks of several calls merge."""
        df = self.df[words].astype(np.int64)
        if weight is not None:
            df *= weight
        rank = np.minimum(df, DF_RANKED) << 32 | (MAX_BYTES - words)
        if len(words) > k:
            rank = rank[np.argpartition(-rank, k - 1)[:k]] if k else rank[:0]
        rank = np.sort(rank)[::-1]
        return MAX_BYTES - (rank & MAX_BYTES), rank
