"""Per-document arrays of a build, saved beside it so a reader opens in milliseconds.

Whoosh's column readers yield one value per Python call (~1 s for the corpus);
the indexer joins each segment's keys file (written with the segment, see
indexer/segment.py) into ``columns.npz`` when a build is written, so the cost
does not grow with the archive's text:

    category_labels (sorted str), category (int32 code per document),
    source_labels, source, published (int64 seconds, 0 = unknown),
    title_len, body_len (word counts),
    headlines (document numbers of headline-only entries),
    story (int32 code per document), story_keys (uint64 story key per code, sorted),
    story_size (live documents per code): the stories of indexer/stories.py

A build without the file (written by other tools) is read the slow way.
Deleted documents are not kept here: ``load_columns`` reads them from the
segments in Whoosh's TOC, their one copy (``deleted_of``).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
from whoosh import index as whoosh_index
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC

from indexer import entities, store, stories
from indexer.keys import keys_file
from indexer.schema import BODY_LEN, CATEGORY, HEADLINE, KIND, PUBLISHED, SOURCE, TITLE_LEN
from indexer.segment import INDEX_NAME

COLUMNS_FILE = "columns.npz"
NAMES = {f"{CATEGORY}_labels", CATEGORY, f"{SOURCE}_labels", SOURCE, PUBLISHED, TITLE_LEN, BODY_LEN, "headlines"}


def read_columns(reader) -> dict[str, np.ndarray]:
    """Read the per-document arrays from an open Whoosh reader."""
    count = reader.doc_count_all()
    arrays = {}
    for name in (CATEGORY, SOURCE):
        values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in reader.column_reader(name)]
        labels = sorted(set(values))
        index = {label: i for i, label in enumerate(labels)}
        arrays[f"{name}_labels"] = np.array(labels, dtype=str)
        arrays[name] = np.fromiter((index[v] for v in values), dtype=np.int32, count=count)
    arrays[PUBLISHED] = np.fromiter(reader.column_reader(PUBLISHED), dtype=np.int64, count=count)
    for name in (TITLE_LEN, BODY_LEN):
        arrays[name] = np.fromiter(reader.column_reader(name), dtype=np.int32, count=count)
    live = np.zeros(count, dtype=bool)
    live[np.fromiter(reader.all_doc_ids(), dtype=np.int64)] = True
    arrays["deleted"] = np.flatnonzero(~live)
    headlines = reader.postings(KIND, HEADLINE).all_ids() if (KIND, HEADLINE) in reader else ()
    arrays["headlines"] = np.fromiter(headlines, dtype=np.int64)
    return arrays


def write_columns(build: Path) -> None:
    """Save the arrays of a finished build into it."""
    segments = TOC.read(FileStorage(str(build)), INDEX_NAME).segments
    if all((Path(build) / keys_file(seg)).is_file() for seg in segments):
        arrays = join_keys(build, segments)
    else:  # segments written by other tools
        with whoosh_index.open_dir(str(build)).reader() as reader:
            arrays = read_columns(reader)
    arrays.pop("deleted")  # the TOC keeps them (deleted_of)
    with store.create_file(Path(build) / COLUMNS_FILE) as f:
        np.savez(f, **arrays)
    entities.write_entities(build, segments)


def join_keys(build: Path, segments: list) -> dict[str, np.ndarray]:
    """Return the arrays of a build from its segments' keys files, in document number order."""
    parts: dict[str, list] = {name: [] for name in (CATEGORY, SOURCE, PUBLISHED, TITLE_LEN, BODY_LEN)}
    labels: dict[str, list] = {CATEGORY: [], SOURCE: []}
    deleted, headlines, id_keys, base = [], [], [], 0
    for seg in segments:
        with np.load(Path(build) / keys_file(seg), allow_pickle=False) as keys:
            for name in parts:
                parts[name].append(keys[name])
            for name in labels:
                labels[name].append(keys[f"{name}_labels"])
            kind = keys["kind"]
            id_keys.append(keys["id_key"])
        gone = np.fromiter(seg.deleted_docs(), dtype=np.int64) if seg.has_deletions() else np.zeros(0, np.int64)
        live = np.ones(len(kind), dtype=bool)
        live[gone] = False
        deleted.append(np.sort(gone) + base)
        headlines.append(np.flatnonzero((kind == 1) & live) + base)
        base += len(kind)
    arrays = {}
    for name in (CATEGORY, SOURCE):
        every = np.unique(np.concatenate(labels[name])) if labels[name] else np.array([], dtype=str)
        arrays[f"{name}_labels"] = every
        codes = [np.searchsorted(every, seg_labels)[seg_codes] if len(seg_codes) else seg_codes
                 for seg_labels, seg_codes in zip(labels[name], parts.pop(name))]
        arrays[name] = np.concatenate(codes).astype(np.int32) if codes else np.zeros(0, np.int32)
    for name, values in parts.items():
        arrays[name] = np.concatenate(values)
    arrays["deleted"] = np.concatenate(deleted) if deleted else np.zeros(0, np.int64)
    arrays["headlines"] = np.concatenate(headlines) if headlines else np.zeros(0, np.int64)
    arrays.update(story_columns(build, np.concatenate(id_keys) if id_keys else np.zeros(0, np.uint64),
                                arrays["deleted"]))
    return arrays


def story_columns(build: Path, id_keys: np.ndarray, deleted: np.ndarray) -> dict[str, np.ndarray]:
    """Return each document's story code, the story key of each code and its live documents."""
    keys, codes = np.unique(stories.story_of_rows(build, id_keys), return_inverse=True)
    live = np.ones(len(id_keys), dtype=bool)
    live[deleted] = False
    sizes = np.bincount(codes[live], minlength=len(keys)).astype(np.int32)
    return {"story": codes.astype(np.int32).reshape(-1), "story_keys": keys, "story_size": sizes}


def load_columns(build: Path, reader) -> dict[str, np.ndarray]:
    """Return the arrays of a build: from its columns.npz, else read from the index.

    :raises store.DamagedFileError: when its columns.npz cannot be read.
    """
    path = Path(build) / COLUMNS_FILE
    if path.is_file():
        try:
            with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as data:  # closed if not a zip
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise store.DamagedFileError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
        if set(arrays) >= NAMES:
            return {**arrays, "deleted": deleted_of(reader), **entities.load_entities(build)}
    return read_columns(reader)


def deleted_of(reader) -> np.ndarray:
    """Return the ascending build numbers of the deleted documents, from each segment's deleted set (the TOC)."""
    parts = [np.sort(np.fromiter(leaf.segment().deleted_docs(), dtype=np.int64)) + base
             for leaf, base in reader.leaf_readers() if leaf.has_deletions()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
