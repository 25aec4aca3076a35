"""Join a build's segments' posting arrays into one set, and find the set again when a build is opened.

A rebuild joins its segments' arrays (postings.py) into one set, the same
parts named ``whole.<part>.npy`` (``whole_files``), with ``whole.json`` naming
the segments it covers, in order, and their documents. A term's list is then
one run of bytes, not one per segment: on a cold page cache a read faults once
per list instead of once per segment (50 at 16x), each fault reading up to
read_ahead_kb. The set also keeps its skip marks (SKIP).

The set is then the covered segments' only copy of their postings: their own
arrays are deleted, and Whoosh's codec reads a covered segment as its slice of
the set (codec.py). An update that rewrites a covered segment, or has enough
large segments outside the set, joins them again (``rejoin``): from the old
set, less the documents of the segments gone, and the other segments' own
arrays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from indexer import store
from indexer.mapped import ADVICE, ExactReads, map_npy
from indexer.postings import ARRAY_PARTS, POSITION_PARTS, array_files, copy_lists

WHOLE = "whole"
WHOLE_FILE = "whole.json"
# The joined set also keeps every SKIP-th document number of its lists (whole.pskip.npy, 3.2 MB at a million
# items, read into memory): a document probed in a long list is then found on its page of the list by a
# search in memory, and only that page is read, where a binary search over the mapped list faults in a
# page at each step. Optional: a set without the file is searched as before.
SKIP = 1024  # document numbers of a page (4 KB of uint32)
SKIP_FILE = f"{WHOLE}.pskip.npy"
# The joined set's large arrays are read exactly (see ExactReads); its term tables, a few MB, by the kernel's
# read-around as usual.
EXACT_PARTS = ("pdocs", "pfreqs", "pvlens", "pvals")


def whole_files() -> dict[str, str]:
    """Return the names of a build's joined posting array files by part."""
    return {part: f"{WHOLE}.{part}.npy" for part in ARRAY_PARTS + POSITION_PARTS}


def join_arrays(folder: str | Path, segments: list, old: tuple | None = None, drop: bool = True) -> bool:
    """Join the segments' posting arrays into one set in folder, then delete their own; False when there
    is nothing to join (no segment, or one and no old set).

    old: the set being replaced (see rejoin), which holds the segments that have no arrays of their own.
    drop: False leaves the segments' arrays for drop_covered, when another process may still read them.
    """
    folder = Path(folder)
    if not segments or (len(segments) < 2 and old is None):
        return False
    maps, parts, docmaps, offset = [], [], {}, 0
    own = [all((folder / name).is_file() for name in array_files(seg).values()) for seg in segments]
    if any(mine and not later for mine, later in zip(own, own[1:])):  # the old set's documents go first
        raise ValueError("segments the joined set holds must come before those with arrays of their own")
    if old is not None and not all(own):
        docmaps[0] = _docmap(old, segments, own)
        parts.append((0, old[2]))
    for seg, mine in zip(segments, own):
        if mine:
            arrays = {}
            for part, name in array_files(seg).items():
                m, arrays[part] = map_npy(folder / name)
                maps.append(m)
            parts.append((offset, arrays))
        elif old is None or seg.segment_id() not in old[0]:
            raise store.DamagedFileError(folder / array_files(seg)["pdocs"], "missing, and no joined set holds it")
        offset += seg.doc_count_all()
    copy_lists(parts, maps, {**{part: folder / name for part, name in whole_files().items()},
                             "pskip": folder / SKIP_FILE}, skip=SKIP, docmaps=docmaps)
    counts = [seg.doc_count_all() for seg in segments]
    with store.create_file(folder / WHOLE_FILE) as stream:
        stream.write(json.dumps({"segments": [seg.segment_id() for seg in segments], "counts": counts,
                                 "documents": offset}).encode())
    if drop:
        drop_covered(folder, segments)
    return True


def drop_covered(folder: str | Path, segments: list) -> None:
    """Delete the joined segments' own arrays: the set is their only copy now (in an update's build, links to
    the live build's)."""
    for seg in segments:
        for name in array_files(seg).values():
            (Path(folder) / name).unlink(missing_ok=True)


def _docmap(old: tuple, segments: list, own: list[bool]) -> np.ndarray:
    """Return the new document number of each of the old set's documents: those of its segments still
    among these (and with no arrays of their own) at their new place, the others -1."""
    ids, counts, arrays = old
    docmap = np.full(sum(counts), -1, dtype=np.int64)
    bases = dict(zip(ids, np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()))
    offset = 0
    for seg, mine in zip(segments, own):
        if not mine and seg.segment_id() in bases:
            start = bases[seg.segment_id()]
            docmap[start:start + seg.doc_count_all()] = np.arange(offset, offset + seg.doc_count_all())
        offset += seg.doc_count_all()
    kept = docmap[docmap >= 0]
    if len(kept) and (np.diff(kept) < 0).any():
        raise ValueError("the joined set's segments must keep their order")
    return docmap


def rejoin(folder: str | Path, segments: list) -> bool:
    """Join these segments' arrays anew in place of the build's joined set (see join_arrays), reading the
    segments that set holds from it."""
    folder = Path(folder)
    old = joined_set(folder)
    for name in (*whole_files().values(), SKIP_FILE, WHOLE_FILE):
        (folder / name).unlink(missing_ok=True)  # links to the live build's (mapped above): that one keeps its own
    return join_arrays(folder, segments, old)


def joined_set(folder: Path) -> tuple[list[str], list[int], dict[str, np.ndarray]] | None:
    """Return the build's joined set as (its segments' ids, their document counts, its arrays), or None."""
    try:
        meta = json.loads((folder / WHOLE_FILE).read_text())
    except (OSError, ValueError):
        return None
    ids, counts = meta.get("segments"), meta.get("counts")
    if not isinstance(ids, list) or not isinstance(counts, list) or len(ids) != len(counts):
        raise store.DamagedFileError(folder / WHOLE_FILE, "not the list of segments the joined arrays cover")
    return ids, counts, {part: map_npy(folder / name)[1] for part, name in whole_files().items()}


def joined_ids(folder: str | Path) -> list[str]:
    """Return the ids of the segments the build's joined set was made of (none when it has none)."""
    try:
        covers = json.loads((Path(folder) / WHOLE_FILE).read_text())["segments"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return covers if isinstance(covers, list) else []


def open_joined(folder: Path, segments: list) -> tuple[int, dict[str, np.ndarray], dict[str, ExactReads]] | None:
    """Return (how many of the first segments it covers, its arrays, their exact reads) of the build's
    joined set, if it covers the first segments as they are (an update may have rewritten one of them).

    Its arrays hold "pskip" (see SKIP) when the set has a file of the right length.
    """
    covered = covered_count(folder, segments, check=True)
    if covered is None:
        return None
    arrays, reads = {}, {}
    for part, name in whole_files().items():
        m, arrays[part] = map_npy(folder / name)
        if m is not None and part in EXACT_PARTS and ADVICE:
            reads[part] = ExactReads(m, arrays[part])
    try:
        skip = np.load(folder / SKIP_FILE)
    except (OSError, ValueError, EOFError):  # none, or not an array: searched without it
        skip = None
    if skip is not None and skip.dtype == np.uint32 and len(skip) == -(-len(arrays["pdocs"]) // SKIP):
        arrays["pskip"] = skip
    return covered, arrays, reads


def covered_count(folder: str | Path, segments: list, check: bool = False) -> int | None:
    """Return how many of the first segments the build's joined set covers; None when it has none, or it
    does not cover the first segments as they are (an update rewrote one of them).

    :raises store.DamagedFileError: with check, when whole.json cannot be read or a file of the set is missing.
    """
    folder = Path(folder)
    path = folder / WHOLE_FILE
    if not path.is_file():
        return None
    covers = joined_ids(folder)
    if not covers:
        if check:
            raise store.DamagedFileError(path, "not the list of segments the joined arrays cover")
        return None
    if covers != [seg.segment_id() for seg in segments[:len(covers)]]:
        return None
    for name in whole_files().values():
        if not (folder / name).is_file():
            if check:
                raise store.DamagedFileError(folder / name, f"missing (the joined arrays {WHOLE_FILE} names)")
            return None
    return len(covers)
