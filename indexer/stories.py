"""Stories: copies of one news story (reprints) share a story key.

A reprint is the same body give or take the outlets' and the crawler's
boilerplate. Each article's body is reduced to its story text: folded (width,
case, traditional script), boilerplate lines and bylines removed (``本文转自:X``,
``来源:X``, ``责任编辑:X``, ``(记者 X)``, ``关注…``), only letters, digits and
ideographs kept. Its set of SHINGLE-character shingles is sketched with
MinHash (datasketch) when the segment is written, and the sketch's BANDS band
keys are kept in the segment's keys file: that is the LSH state, in arrays.

Grouping (after a rebuild's or an update's segments are written):

1. candidates: two articles sharing a band key and published at most
   WINDOW_DAYS apart (reprints follow within days; a window keeps the work per
   article bounded however large the archive): per band, rows sorted by
   (key, time), each paired with the next NEIGHBOURS rows of its key;
2. confirmation: the exact shingle sets of both stored bodies; a pair is one
   story when the smaller set lies at least CONTAINED inside the larger and
   their Jaccard similarity is at least JACCARD (see ``same_story``);
3. the confirmed pairs' connected components (scipy) are the stories. A
   story's key is the id key of its first-published article; a lone article's
   story key is its own id key, so only members of larger stories are written
   to the build's STORIES_FILE (id keys and story keys, sorted by id key).

An update assigns its new articles to existing stories (the earliest-founded
one a component touches) and never changes the key of an article it did not
add: stories are never renumbered.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
from datasketch import MinHash
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from indexer import store
from indexer.analysis import WORD_RUN, normalize
from indexer.keys import key_of, keys_file
from indexer.mapped import heads

STORIES_FILE = "stories.npz"
SHINGLE = 5  # characters per shingle: rarer than a word pair, common enough to survive small edits
NUM_PERM = 72
ROWS = 3  # MinHash values per band
BANDS = NUM_PERM // ROWS  # 24 bands of 3: a pair with Jaccard 0.45 shares a band with p = 0.90, 0.05 with p = 0.003
MIN_SHINGLES = 20  # shorter story texts are not grouped (too little text to tell stories apart)
WINDOW_DAYS = 7
NEIGHBOURS = 4  # rows of the same band key, in time order, each row is paired with
# A pair is one story when the smaller shingle set lies almost wholly inside the
# larger (a reprint that dropped a paragraph, or added an ad line, still does)
# and the two are alike overall: a news round-up holding a brief is not the
# brief's story, since the brief is a small part of it. Templated items (本台明天
# 将直播…开幕会 / …闭幕会, daily 通报最新疫情 with new numbers) differ inside their
# sentences: on the corpus such pairs lie 0.73-0.91 inside each other, copies of
# one text 0.98-1.0.
CONTAINED = 0.95
JACCARD = 0.45
_DAY = 86400
# NEWSEARCH_STORIES=0 leaves every body ungrouped (each article its own story): how the
# benchmark measures what grouping costs a rebuild (python -m bench stories).
ENABLED = os.environ.get("NEWSEARCH_STORIES", "1") != "0"
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=20121115, scheme="affine32")  # its permutations
_SKETCH_ROWS = 4096  # shingles per step of sketch(): 1.2 MB of scratch

# Boilerplate: whole lines an outlet or a crawler adds, and bylines inside a line.
_LINE = re.compile(
    r"^\s*(?:【?(?:本文转自|转自|来源|稿源|文章来源|责任编辑|责编|编辑|编审|审核|校对|监制|作者|记者|原标题|"
    r"原文标题|免责声明|声明)\s*[:：]|(?:关注|扫码|扫描二维码|点击|长按|更多精彩|阅读原文|推荐阅读|相关阅读|相关新闻))"
    r"[^\n]{0,80}$", re.MULTILINE)
_BYLINE = re.compile(
    r"[(（\[【]\s*(?:记者|通讯员|实习生|特约记者|见习记者|编辑|摄影|央视记者|总台记者)[^)）\]】\n]{0,40}[)）\]】]")
_BRACKETED_LEAD = re.compile(r"^\s*【[^】\n]{0,30}】", re.MULTILINE)
_DATELINE = re.compile(r"^\s*[^\s，,。]{0,12}?(?:网|社|报|台)?[^\s，,。]{0,12}?\d{1,2}月\d{1,2}日(?:电|讯)", re.MULTILINE)


def story_text(body: str) -> str:
    """Return the text a story is recognised by: folded, boilerplate removed, word characters only."""
    return folded_story_text(normalize(body or ""))


def folded_story_text(folded: str) -> str:
    """Return the story text of a body already folded by analysis.normalize."""
    folded = _LINE.sub("", folded)
    folded = _BYLINE.sub("", folded)
    folded = _BRACKETED_LEAD.sub("", folded)
    folded = _DATELINE.sub("", folded)
    return "".join(WORD_RUN.findall(folded))


def title_key(title: str) -> int:
    """Return the key of a title's words (0 for a title without word characters).

    A headline-only entry joins the story of an article whose title has the same
    key: the same words give or take a 【X】 prefix, punctuation, width and script.
    """
    text = "".join(WORD_RUN.findall(_BRACKETED_LEAD.sub("", normalize(title or ""))))
    return key_of(text) if text else 0


def shingles(text: str) -> np.ndarray:
    """Return the distinct 32-bit hashes of a story text's SHINGLE-character shingles, sorted."""
    if len(text) < SHINGLE:
        return np.zeros(0, dtype=np.uint32)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    hashes = np.zeros(len(codes) - SHINGLE + 1, dtype=np.uint64)
    for i in range(SHINGLE):  # a polynomial of the characters, wrapping at 64 bits
        hashes = hashes * np.uint64(0x100000001B3) + codes[i:len(codes) - SHINGLE + 1 + i]
    hashes ^= hashes >> np.uint64(29)
    hashes *= np.uint64(0xBF58476D1CE4E5B9)
    hashes ^= hashes >> np.uint64(32)
    found = np.sort((hashes & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    return found[heads(found)]  # np.unique, without its hashing (twice as long here)


def sketch(found: np.ndarray) -> np.ndarray:
    """Return the NUM_PERM MinHash values of distinct 32-bit shingle hashes, as datasketch's affine32 scheme does.

    The same values as ``MinHash.update_batch`` with the identity hash function
    (tests/test_stories.py compares them), without its Python call and list per
    shingle: a third of what sketching cost a rebuild.
    """
    values = np.full(NUM_PERM, np.iinfo(np.uint32).max, dtype=np.uint32)
    a, b = _TEMPLATE.permutations
    for start in range(0, len(found), _SKETCH_ROWS):  # bounded scratch however long the body
        mixed = _fmix32(found[start:start + _SKETCH_ROWS].astype(np.uint32))
        np.minimum(values, (mixed[:, None] * a + b).min(axis=0), out=values)
    return values


def _fmix32(h: np.ndarray) -> np.ndarray:
    """Return MurmurHash3's 32-bit finalizer of each value: datasketch's pre-mix before its affine permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def band_keys(body: str, folded: str | None = None) -> np.ndarray:
    """Return the BANDS band keys of a body's MinHash (all zero when it is too short to group).

    folded is the body as analysis.normalize folds it, when the caller has it already.
    """
    text = folded_story_text(folded) if folded is not None else story_text(body)
    found = shingles(text) if ENABLED else ()
    if len(found) < MIN_SHINGLES:
        return np.zeros(BANDS, dtype=np.uint64)
    values = sketch(found).astype(np.uint64).reshape(BANDS, ROWS)
    keys = (values[:, 0] << np.uint64(32) | values[:, 1]) ^ (values[:, 2] * np.uint64(0x9E3779B97F4A7C15))
    keys[keys == 0] = 1  # zero marks a body that is not grouped
    return keys


def same_story(a: np.ndarray, b: np.ndarray) -> bool:
    """Tell whether two shingle sets (sorted unique) are one story's text."""
    if min(len(a), len(b)) < MIN_SHINGLES:
        return False
    both = len(np.intersect1d(a, b, assume_unique=True))
    return both >= CONTAINED * min(len(a), len(b)) and both >= JACCARD * (len(a) + len(b) - both)


def candidate_pairs(bands: np.ndarray, published: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Return the (i, j) row pairs, i < j, that share a band key and were published within the window.

    bands: the band keys of the given rows (len(rows) × BANDS; a zero row is not
    grouped); published: those rows' times in seconds (0 = unknown, paired only
    with other unknown times).
    """
    grouped = bands[:, 0] != 0 if len(bands) else np.zeros(0, dtype=bool)
    bands, times, rows = bands[grouped], published[grouped], rows[grouped]
    found = []
    window = WINDOW_DAYS * _DAY
    for band in range(bands.shape[1] if len(rows) else 0):
        keys = bands[:, band]
        order = np.lexsort((times, keys))
        keys, at, when = keys[order], rows[order], times[order]
        for step in range(1, NEIGHBOURS + 1):
            if step >= len(keys):
                break
            near = (keys[step:] == keys[:-step]) & (when[step:] - when[:-step] <= window)
            near &= (when[step:] == 0) == (when[:-step] == 0)
            found.append(np.stack([at[:-step][near], at[step:][near]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    return np.unique(pairs, axis=0)


class Texts:
    """Shingle sets of stored bodies by row, read once each."""

    def __init__(self, body_of) -> None:
        self.body_of = body_of
        self.sets: dict[int, np.ndarray] = {}
        self.read = 0

    def __getitem__(self, row: int) -> np.ndarray:
        found = self.sets.get(row)
        if found is None:
            found = self.sets[row] = shingles(story_text(self.body_of(row)))
            self.read += 1
        return found


def confirmed(pairs: np.ndarray, texts: Texts) -> np.ndarray:
    """Keep the candidate pairs whose exact shingle sets are one story."""
    keep = [same_story(texts[int(a)], texts[int(b)]) for a, b in pairs.tolist()]
    return pairs[np.array(keep, dtype=bool)] if len(pairs) else pairs


def components(count: int, pairs: np.ndarray) -> np.ndarray:
    """Return each of count rows' component label under the pairs."""
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def group(rows: dict[str, np.ndarray], body_of, known: dict[int, int] | None = None,
          fresh: np.ndarray | None = None) -> tuple[dict[int, int], dict]:
    """Group rows into stories; return {id key: story key} of every member of a story of two or more, and figures.

    rows: id_key, published and live (bool) per row; bands, the band keys of the rows
    band_rows (live ones, and in an update only those near a new row in time).
    known, fresh (an update): the story keys of rows grouped before, and which rows
    are new; only pairs with a new row count, old rows keep their keys, and a new
    row joins the earliest-founded story its component touches.
    """
    started = time.perf_counter()
    live = rows["live"]
    published = rows["published"]
    pairs = candidate_pairs(rows["bands"], published[rows["band_rows"]], rows["band_rows"])
    if fresh is not None and len(pairs):  # an update: pairs of old rows were grouped before
        new = np.zeros(len(live), dtype=bool)
        new[fresh] = True
        pairs = pairs[new[pairs[:, 0]] | new[pairs[:, 1]]]
    texts = Texts(body_of)
    joined = confirmed(pairs, texts)
    labels = components(len(live), joined) if len(joined) else np.arange(len(live))
    ids = rows["id_key"]
    members: dict[int, int] = {}
    if len(joined):
        touched = np.unique(joined)
        order = touched[np.lexsort((ids[touched], np.where(published[touched] > 0, published[touched],
                                                              np.iinfo(np.int64).max)))]
        story_of: dict[int, int] = {}  # component -> story key
        if fresh is not None:
            new = np.zeros(len(live), dtype=bool)
            new[fresh] = True
            for row in order.tolist():  # old rows first found in time order found the component's story
                if not new[row]:
                    story_of.setdefault(int(labels[row]), (known or {}).get(int(ids[row]), int(ids[row])))
        for row in order.tolist():
            story_of.setdefault(int(labels[row]), int(ids[row]))
        for row in touched.tolist():
            if fresh is None or new[row]:
                members[int(ids[row])] = story_of[int(labels[row])]
            else:
                members[int(ids[row])] = (known or {}).get(int(ids[row]), int(ids[row]))
    figures = {"candidates": int(len(pairs)), "confirmed": int(len(joined)), "texts_read": texts.read,
               "grouped": len(members), "seconds": round(time.perf_counter() - started, 3)}
    return members, figures


def _headline_stories(rows: dict[str, np.ndarray], members: dict[int, int]) -> dict[int, int]:
    """Return {id key: story key} of headline-only entries whose title (title_key) is a live article's:
    that article's story.

    Of several articles with the title, the earliest published names it.
    """
    titled = rows["live"] & (rows["title_key"] != 0)
    articles = np.flatnonzero(titled & (rows["kind"] == 0))
    headlines = np.flatnonzero(titled & (rows["kind"] == 1))
    if not len(articles) or not len(headlines):
        return {}
    order = articles[np.lexsort((rows["id_key"][articles], rows["published"][articles], rows["title_key"][articles]))]
    titles = rows["title_key"][order]
    firsts = np.concatenate(([True], titles[1:] != titles[:-1]))
    titles, order = titles[firsts], order[firsts]
    at = np.minimum(np.searchsorted(titles, rows["title_key"][headlines]), len(titles) - 1)
    found = titles[at] == rows["title_key"][headlines]
    result = {}
    for headline, article in zip(headlines[found].tolist(), order[at[found]].tolist()):
        article_id = int(rows["id_key"][article])
        result[int(rows["id_key"][headline])] = members.get(article_id, article_id)
    return result


def save(build: Path, members: dict[int, int]) -> None:
    """Write the story keys of the members of multi-article stories into the build."""
    ids = np.fromiter(members.keys(), dtype=np.uint64, count=len(members))
    stories = np.fromiter(members.values(), dtype=np.uint64, count=len(members))
    order = np.argsort(ids)
    with store.create_file(Path(build) / STORIES_FILE) as stream:
        np.savez(stream, id_key=ids[order], story=stories[order])


def load(build: Path) -> dict[int, int]:
    """Return {id key: story key} of a build's multi-article stories (none for a build without the file)."""
    path = Path(build) / STORIES_FILE
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return dict(zip(data["id_key"].tolist(), data["story"].tolist()))


def story_of_rows(build: Path, id_keys: np.ndarray) -> np.ndarray:
    """Return the story key of each row of the given id keys: its listed story, else its own id key."""
    path = Path(build) / STORIES_FILE
    result = id_keys.astype(np.uint64, copy=True)
    if not path.is_file() or not len(id_keys):
        return result
    with np.load(path, allow_pickle=False) as data:
        listed, story = data["id_key"], data["story"]
    if len(listed):
        at = np.minimum(np.searchsorted(listed, id_keys), len(listed) - 1)
        hit = listed[at] == id_keys
        result[hit] = story[at[hit]]
    return result


def rows_of(build: Path, segments: list, fresh_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Return id_key, title_key, kind, published and live of every document of a build's segments, in
    document order, and the band keys (bands) of the live rows band_rows.

    With fresh_ids (an update), band_rows are only the live rows published within the
    window of a fresh one's time (and the fresh rows): no other row can pair with one.
    """
    names = ("id_key", "title_key", "kind", "published", "live")
    parts: dict[str, list] = {name: [] for name in names}
    counts = []
    for seg in segments:
        with np.load(Path(build) / keys_file(seg), allow_pickle=False) as keys:
            count = len(keys["kind"])
            for name in ("id_key", "kind", "published"):
                parts[name].append(keys[name])
            titles = keys["story_title"] if "story_title" in keys.files else np.zeros(count, dtype=np.uint64)
            parts["title_key"].append(titles)
        live = np.ones(count, dtype=bool)
        if seg.has_deletions():
            live[np.fromiter(seg.deleted_docs(), dtype=np.int64)] = False
        parts["live"].append(live)
        counts.append(count)
    empty = {"id_key": np.uint64, "title_key": np.uint64, "kind": np.uint8, "published": np.int64, "live": bool}
    rows = {name: np.concatenate(parts[name]) if segments else np.zeros(0, empty[name]) for name in names}
    wanted = rows["live"].copy()
    if fresh_ids is not None:
        fresh = wanted & np.isin(rows["id_key"], fresh_ids)
        near = fresh.copy()
        times = rows["published"][fresh]
        if len(times):
            window = WINDOW_DAYS * _DAY
            near |= (rows["published"] >= int(times.min()) - window) & (rows["published"] <= int(times.max()) + window)
            if (times == 0).any():
                near |= rows["published"] == 0
        wanted &= near
    bands, base = [], 0
    for seg, count in zip(segments, counts):
        mine = np.flatnonzero(wanted[base:base + count])
        if len(mine):
            with np.load(Path(build) / keys_file(seg), allow_pickle=False) as keys:
                if "bands" in keys.files:
                    bands.append(keys["bands"][mine])
                else:
                    bands.append(np.zeros((len(mine), BANDS), dtype=np.uint64))
        base += count
    rows["band_rows"] = np.flatnonzero(wanted)
    rows["bands"] = np.concatenate(bands) if bands else np.zeros((0, BANDS), dtype=np.uint64)
    return rows


def assign(build: Path, segments: list, previous: Path | None = None,
           fresh_ids: np.ndarray | None = None) -> dict:
    """Group a written build's articles into stories and save them into it; return figures.

    A rebuild groups every article. An update passes the build it replaces
    (previous) and the id keys of the articles it wrote (fresh_ids): only those
    are grouped, the others keep their stories.
    """
    from whoosh import index as whoosh_index

    rows = rows_of(build, segments, fresh_ids)
    known = load(previous) if previous is not None else {}
    fresh = None
    if fresh_ids is not None:
        fresh = np.flatnonzero(np.isin(rows["id_key"], fresh_ids) & rows["live"])
        fresh_set = set(fresh_ids.tolist())
        known = {k: v for k, v in known.items() if k not in fresh_set}
    ix = whoosh_index.open_dir(str(build))
    with ix.reader() as reader:
        members, figures = group(rows, lambda row: reader.stored_fields(row).get("body") or "", known, fresh)
    merged = {}
    if known:  # the stories of articles still live
        keys = np.fromiter(known, dtype=np.uint64, count=len(known))
        merged = {k: known[k] for k in keys[np.isin(keys, rows["id_key"][rows["live"]])].tolist()}
    merged.update(members)
    merged.update(_headline_stories(rows, merged))
    save(build, merged)
    figures["stories_of_two_or_more"] = len(set(merged.values()))
    figures["articles_in_them"] = len(merged)
    return figures
