"""What a run ran on: the machine, the commit and a hash of the measured source."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASURED = ("indexer", "search", "web")  # the code whose speed the benchmark reports


def machine() -> str:
    """Return the CPU model name (or the architecture)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""  # unstripped: porcelain lines start with a space


def code_version() -> str:
    """Return the checked-out commit, noting uncommitted changes outside bench/ (read-only git calls)."""
    commit = _git("rev-parse", "--short", "HEAD").strip()
    if not commit:
        return "unknown (not a git checkout)"
    changed = [line for line in _git("status", "--porcelain").splitlines() if not line[3:].startswith("bench/")]
    return commit + (f" + uncommitted changes in {len(changed)} files" if changed else "")


def source_hash() -> str:
    """Return a short hash of every file of the measured packages, as they are on disk now."""
    digest = hashlib.sha1()
    for package in MEASURED:
        for path in sorted((REPO / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def evict(index: Path) -> int:
    """Drop the live build of an index from the page cache (posix_fadvise DONTNEED on each file, no
    privileges needed): what a server finds when the machine has read other things since. Return the bytes."""
    build = Path(index).resolve()
    dropped = 0
    for path in build.rglob("*") if hasattr(os, "posix_fadvise") else ():
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            dropped += path.stat().st_size
    return dropped
