"""Join a build's segments' posting arrays into one set, and find the set again when a build is opened.

A rebuild joins its segments' arrays (postings.py) into one set, the same
parts named ``whole.<part>.npy`` (``whole_files``), with ``whole.json`` naming
the segments it covers, in order, and their documents. A term's list is then
one run of bytes, not one per segment: on a cold page cache a read faults once
per list instead of once per segment (50 at 16x), each fault reading up to
read_ahead_kb. An update that rewrites a covered segment joins them again
(``rejoin``); a set that no longer covers the first segments as they are is
not read. The set also keeps its skip marks (SKIP).
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
EXACT_PARTS = ("pdocs", "pfreqs", "pvoffs", "pvals")


def whole_files() -> dict[str, str]:
    """Return the names of a build's joined posting array files by part."""
    return {part: f"{WHOLE}.{part}.npy" for part in ARRAY_PARTS + POSITION_PARTS}


def join_arrays(folder: str | Path, segments: list) -> bool:
    """Join the segments' posting arrays into one set in folder; False when there is nothing to join."""
    folder = Path(folder)
    names = [array_files(seg) for seg in segments]
    if len(segments) < 2 or not all((folder / n[part]).is_file() for n in names for part in n):
        return False
    maps, parts, offset = [], [], 0
    for seg, n in zip(segments, names):
        arrays = {}
        for part, name in n.items():
            m, arrays[part] = map_npy(folder / name)
            maps.append(m)
        parts.append((offset, arrays))
        offset += seg.doc_count_all()
    copy_lists(parts, maps, {**{part: folder / name for part, name in whole_files().items()},
                             "pskip": folder / SKIP_FILE}, skip=SKIP)
    with store.create_file(folder / WHOLE_FILE) as stream:
        stream.write(json.dumps({"segments": [seg.segment_id() for seg in segments], "documents": offset}).encode())
    return True


def rejoin(folder: str | Path, segments: list) -> bool:
    """Join these segments' arrays anew in place of the build's joined set (see join_arrays)."""
    folder = Path(folder)
    for name in (*whole_files().values(), SKIP_FILE, WHOLE_FILE):
        (folder / name).unlink(missing_ok=True)  # links to the live build's: that one keeps its own
    return join_arrays(folder, segments)


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
