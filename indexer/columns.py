"""Per-document arrays of a build, joined from its segments' keys files when a reader opens it.

Each segment's keys file (indexer/segment.py) holds its documents' values, their
only copy; ``load_columns`` joins them for the whole build, in document number
order, in about as long as loading a saved copy would take (FORMAT.md, "Known
duplication"), so none is saved:

    category_labels (sorted str), category (int32 code per document),
    source_labels, source, published (int64 seconds, 0 = unknown),
    title_len, body_len (word counts),
    headlines (document numbers of live headline-only entries),
    deleted (document numbers, from each segment's deleted set in Whoosh's TOC)

``columns.npz``, written with a build, holds what is the build's and no
segment's: its stories (story: int32 code per document; story_keys: uint64
story key per code, sorted; story_size: live documents per code), from
indexer/stories.py.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC

from indexer import entities, store, stories
from indexer.keys import keys_file
from indexer.perdoc import KeysValues
from indexer.schema import BODY_LEN, CATEGORY, PUBLISHED, SOURCE, TITLE_LEN
from indexer.segment import INDEX_NAME

COLUMNS_FILE = "columns.npz"
NAMES = {f"{CATEGORY}_labels", CATEGORY, f"{SOURCE}_labels", SOURCE, PUBLISHED, TITLE_LEN, BODY_LEN, "headlines"}
STORY_NAMES = ("story", "story_keys", "story_size")
VALUES = (CATEGORY, SOURCE, PUBLISHED, TITLE_LEN, BODY_LEN)  # a keys file's arrays joined as they are


def write_columns(build: Path, previous: Path | None = None) -> None:
    """Save the stories of a finished build into it, and join its names (entities.npz; previous: the build an
    update started from, whose entities.npz holds its segments' names)."""
    segments = TOC.read(FileStorage(str(build)), INDEX_NAME).segments
    id_keys = [_keys(build, seg, ("id_key",))["id_key"] for seg in segments]
    arrays = story_columns(build, np.concatenate(id_keys) if id_keys else np.zeros(0, np.uint64),
                           deleted_rows(segments))
    with store.create_file(Path(build) / COLUMNS_FILE) as f:
        np.savez(f, **arrays)
    entities.write_entities(build, segments, previous, _rows(previous) if previous is not None else None)


def _rows(build: Path) -> dict[str, tuple[int, int]]:
    """Return each segment of a build with its first and end document numbers."""
    rows, first = {}, 0
    for seg in TOC.read(FileStorage(str(build)), INDEX_NAME).segments:
        rows[seg.segment_id()] = (first, first + seg.doc_count_all())
        first += seg.doc_count_all()
    return rows


def _keys(build: Path, seg, names) -> dict[str, np.ndarray]:
    return KeysValues(Path(build) / keys_file(seg)).read(names)  # a damaged file raises DamagedFileError


def deleted_rows(segments: list) -> np.ndarray:
    """Return the ascending build numbers of the deleted documents, from each segment's deleted set (the TOC)."""
    parts, base = [], 0
    for seg in segments:
        if seg.has_deletions():
            parts.append(np.sort(np.fromiter(seg.deleted_docs(), dtype=np.int64)) + base)
        base += seg.doc_count_all()
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def join_keys(build: Path, segments: list) -> dict[str, np.ndarray]:
    """Return the per-document arrays of a build (NAMES and deleted), joined from its segments' keys files."""
    parts: dict[str, list] = {name: [] for name in VALUES}
    labels: dict[str, list] = {CATEGORY: [], SOURCE: []}
    kinds = []
    for seg in segments:
        keys = _keys(build, seg, (*VALUES, f"{CATEGORY}_labels", f"{SOURCE}_labels", "kind"))
        for name in parts:
            parts[name].append(keys[name])
        for name in labels:
            labels[name].append(keys[f"{name}_labels"])
        kinds.append(keys["kind"])
    arrays = {}
    for name in (CATEGORY, SOURCE):
        every = np.unique(np.concatenate(labels[name])) if labels[name] else np.array([], dtype=str)
        arrays[f"{name}_labels"] = every
        codes = [np.searchsorted(every, seg_labels)[seg_codes] if len(seg_codes) else seg_codes
                 for seg_labels, seg_codes in zip(labels[name], parts.pop(name))]
        arrays[name] = np.concatenate(codes).astype(np.int32) if codes else np.zeros(0, np.int32)
    for name, values in parts.items():
        arrays[name] = np.concatenate(values) if values else np.zeros(0, np.int64 if name == PUBLISHED else np.int32)
    arrays["deleted"] = deleted_rows(segments)
    live = np.ones(sum(len(kind) for kind in kinds), dtype=bool)
    live[arrays["deleted"]] = False
    headline = np.concatenate(kinds) == 1 if kinds else np.zeros(0, dtype=bool)
    arrays["headlines"] = np.flatnonzero(headline & live).astype(np.int64)
    return arrays


def story_columns(build: Path, id_keys: np.ndarray, deleted: np.ndarray) -> dict[str, np.ndarray]:
    """Return each document's story code, the story key of each code and its live documents."""
    keys, codes = np.unique(stories.story_of_rows(build, id_keys), return_inverse=True)
    live = np.ones(len(id_keys), dtype=bool)
    live[deleted] = False
    sizes = np.bincount(codes[live], minlength=len(keys)).astype(np.int32)
    return {"story": codes.astype(np.int32).reshape(-1), "story_keys": keys, "story_size": sizes}


def load_columns(build: Path, reader) -> dict[str, np.ndarray]:
    """Return the arrays of a build: joined from its segments' keys files, with its stories and names.

    :raises store.DamagedFileError: when a keys file or its columns.npz cannot be read.
    """
    arrays = join_keys(build, [leaf.segment() for leaf, _ in reader.leaf_readers()])
    path = Path(build) / COLUMNS_FILE
    if path.is_file():  # else no stories: every article its own
        try:
            with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as data:  # closed if not a zip
                arrays.update((name, data[name]) for name in STORY_NAMES if name in data.files)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise store.DamagedFileError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
    return {**arrays, **entities.load_entities(build)}
