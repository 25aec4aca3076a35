"""The 64-bit keys of texts, and the name of a segment's keys file.

Each segment has a keys file, ``<segment id>.keys.npz``, holding its documents'
keys and per-document values (written by segment.SegmentKeys; read by
columns.py, stories.py and update.py instead of unpickling stored documents).
A key is the first 8 bytes of a text's BLAKE2b digest, little-endian.
"""

from __future__ import annotations

import hashlib


def key_of(text: str) -> int:
    """Return the 64-bit key of a text (an id, a folded title, a path)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def keys_file(seg) -> str:
    """Return the name of a segment's keys file: Whoosh's clean-up keeps and drops it with the segment."""
    return f"{seg.segment_id()}.keys.npz"
