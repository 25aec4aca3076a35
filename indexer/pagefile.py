"""Read a snapshot file's bytes as text: tell empty and binary files, decode UTF-8 or GB18030."""

from __future__ import annotations

from pathlib import Path

_CONTROL_BYTES = frozenset(range(32)) - frozenset(b"\t\n\r\f\v\x1b")


class SnapshotError(Exception):
    """A file or record that cannot become an Article; .reason is short and stable."""

    def __init__(self, path: str, reason: str):
        # Both go to args so the error survives pickling (worker processes).
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def read_text(path) -> str:
    """Read a snapshot file as text with LF line ends, decoding UTF-8 or GB18030.

    :raises SnapshotError: "empty file", "binary file" or "undecodable".
    """
    data = Path(path).read_bytes()
    if not data.strip():
        raise SnapshotError(str(path), "empty file")
    if _looks_binary(data):
        raise SnapshotError(str(path), "binary file")
    text = _decode_bytes(data, str(path))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _looks_binary(data: bytes) -> bool:
    """Tell binary data by a NUL byte or more than a tenth control bytes."""
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte in _CONTROL_BYTES)
    return controls * 10 > len(sample)


def _decode_bytes(data: bytes, path: str) -> str:
    """Decode as UTF-8 (BOM optional), else as GB18030, which covers GBK."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(data):
            return data[:exc.start].decode("utf-8-sig")  # cut inside its last character: keep the rest
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise SnapshotError(path, "undecodable") from None
