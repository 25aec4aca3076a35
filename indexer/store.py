"""Index folders on disk: builds, the live link, the writer lock.

An index path such as ``./index`` is a symbolic link to one build folder in
``./index.builds/``. A rebuild writes a new build folder and swaps the link
with one atomic rename, so a reader that opened the old build keeps reading
it, and a rebuild that fails or is killed never touches the live index.

    index -> index.builds/20261130-031500-123456
    index.builds/
        20261130-031500-123456/    whoosh files + newsearch.json (+ userdict.txt)
        write.lock                 flock held by the one running writer
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

META_FILE = "newsearch.json"
# The version of a build's files (indexer/FORMAT.md), kept in newsearch.json: a build of another one is refused
# at open, with the message to rebuild. 2: the term dictionary with the terms' text, posting arrays for every
# indexed field, segments of codec.ArrayCodec (no Whoosh term table or postings). 3: positions located by
# one length byte a posting (positions.py), not a uint32 offset; list starts only (pstarts), not (start, end).
# 4: stored fields compressed alone with a dictionary (perdoc.py), lengths and columns from keys: no Whoosh 3 file.
# 5: word frequencies one byte a posting (freqs.py), not two.
# 6: stored fields without the values the keys file holds (id, kind, category, source, published, path,
# content_hash): the per-document reader composes them (perdoc.from_keys); columns.npz holds the stories only,
# the per-document arrays are joined from the keys files at open (columns.load_columns).
# The pair fields also hold the bridges over punctuation (analysis.iter_bridges: 下，各).
# 7: entities files also hold each document's related-search words (kind "word", indexer/related_words.py).
FORMAT_VERSION = 7
USERDICT_FILE = "userdict.txt"
LOCK_FILE = "write.lock"
KEEP_BUILDS = 2  # the live build and the one before it, for readers still on it


_held_locks: set[int] = set()  # lock file descriptors this process holds


class IndexBusyError(RuntimeError):
    """Another writer holds the index."""


class DamagedFileError(RuntimeError):
    """A file of a build is missing, cut short or not what it should be: the build must be rebuilt."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)


def builds_dir(index_dir: Path) -> Path:
    """Return the folder that holds an index path's builds."""
    index_dir = Path(index_dir)
    return index_dir.parent / (index_dir.name + ".builds")


def live_build(index_dir: Path) -> Path | None:
    """Return the build folder an index path points at, or None when there is none."""
    index_dir = Path(index_dir)
    if not (index_dir / META_FILE).is_file():
        return None
    return index_dir.resolve()


def read_meta(build: Path) -> dict:
    """Return the newsearch.json of a build folder.

    :raises DamagedFileError: when it is not a JSON object.
    """
    path = Path(build) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DamagedFileError(path, f"unreadable ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise DamagedFileError(path, "not a JSON object")
    return meta


def create_file(path: Path):
    """Open a new file of a build for writing, never an existing one: that may be a live build's (a hard link)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    return open(path, "xb")


def sync_build(folder: Path) -> None:
    """Flush every file a build folder's writer wrote, then the folder itself, to the disk (before it is published).

    A file with more than one link is an earlier build's, linked in by an update:
    it was flushed before that build was published, and the folder's flush makes
    the new link durable.
    """
    folder = Path(folder)
    for path in sorted(folder.iterdir()):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            _fsync_dir(path)  # a file opened read-only is flushed as a folder is
    _fsync_dir(folder)


@contextmanager
def writer_lock(index_dir: Path, wait: float = 30.0, what: str = "rebuild"):
    """Hold the index's writer lock, waiting at most `wait` seconds for it.

    :raises IndexBusyError: naming the process that holds it.
    """
    folder = builds_dir(index_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, wait, folder / LOCK_FILE)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what} pid {os.getpid()} since {datetime.now():%Y-%m-%d %H:%M:%S}\n".encode(), 0)
        _held_locks.add(fd)
        yield
    finally:
        _held_locks.discard(fd)
        os.close(fd)  # closing drops the flock; a killed writer's lock goes with its process


def init_worker() -> None:
    """Prepare a forked worker: die with the parent, and let go of its copy of the lock.

    A flock belongs to the open file, which forked children share: a worker that
    kept its copy would keep the index locked after a kill -9 of the parent.
    """
    for fd in list(_held_locks):
        os.close(fd)
    _held_locks.clear()
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _acquire(fd: int, wait: float, path: Path) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            holder = path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
            raise IndexBusyError(f"index is busy: {holder} holds {path} (waited {wait:g} s)")
        time.sleep(0.2)


def crash_point(name: str) -> None:
    """Die here as a kill -9 would, when NEWSEARCH_CRASH_AT names this point (crash-safety tests).

    Points: "parsed" (sources read, nothing written), "writing" (segments half
    written), "written" (build complete, not yet swapped), "swap" (build
    renamed into place, link not yet switched).
    """
    if os.environ.get("NEWSEARCH_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def new_build_dir(index_dir: Path) -> Path:
    """Create and return an empty temporary build folder (call under the writer lock)."""
    folder = builds_dir(index_dir)
    clean_stale(folder, live_build(index_dir))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    tmp = folder / f"{stamp}.tmp"
    tmp.mkdir(parents=True)
    return tmp


def clean_stale(folder: Path, live: Path | None = None) -> None:
    """Remove builds left by a writer that died (call under the writer lock).

    Half-written ones end in .tmp; a finished one newer than the live build was
    renamed into place but never linked (killed during the swap).
    """
    for path in folder.glob("*.tmp"):
        shutil.rmtree(path, ignore_errors=True)
    if live is not None:
        for path in folder.iterdir():
            if path.is_dir() and path.name[:1].isdigit() and path.name > live.name:
                shutil.rmtree(path, ignore_errors=True)


def swap_in(index_dir: Path, tmp_build: Path) -> Path:
    """Publish a finished build as the live index with one atomic rename; return its folder.

    Nothing is published before it is on the disk: the build's files and folder
    are flushed first, then the rename and the link, each folder after its change.
    """
    index_dir = Path(index_dir)
    sync_build(tmp_build)
    final = tmp_build.with_suffix("")
    os.rename(tmp_build, final)
    _fsync_dir(final.parent)
    crash_point("swap")
    if index_dir.exists() and not index_dir.is_symlink():
        # An index folder from before builds existed: keep it as a build.
        legacy = final.parent / f"legacy-{datetime.now():%Y%m%d-%H%M%S-%f}"
        os.rename(index_dir, legacy)
    link_tmp = index_dir.parent / f".{index_dir.name}.link-{os.getpid()}"
    if link_tmp.is_symlink():
        link_tmp.unlink()
    os.symlink(os.path.relpath(final, index_dir.parent), link_tmp)
    os.replace(link_tmp, index_dir)
    _fsync_dir(index_dir.parent)
    prune_builds(final.parent, keep=final)
    return final


def prune_builds(folder: Path, keep: Path) -> None:
    """Delete all but the newest KEEP_BUILDS builds, never the live one nor one a reader holds (hold_build).

    A build a reader holds stays until a later swap finds it free.
    """
    builds = sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.endswith(".tmp")),
        key=lambda p: p.stat().st_mtime,
    )
    for old in builds[:-KEEP_BUILDS]:
        if old != keep:
            _remove_unheld(old)


def _remove_unheld(build: Path) -> None:
    """Delete a build unless a reader holds it; a reader coming meanwhile finds it gone (hold_build)."""
    try:
        fd = os.open(build / META_FILE, os.O_RDONLY)
    except FileNotFoundError:  # never finished: no reader can open it
        shutil.rmtree(build, ignore_errors=True)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return
    try:
        shutil.rmtree(build, ignore_errors=True)
    finally:
        os.close(fd)


def hold_build(build: Path) -> int | None:
    """Hold a build against pruning for as long as a reader has it open; return the descriptor to close, or
    None when the build is gone.

    The hold is a shared flock on the build's own newsearch.json (an update
    writes that file anew, never a hard link shared with the build before).
    """
    try:
        fd = os.open(Path(build) / META_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # a prune is removing it (only a prune locks it exclusively)
        os.close(fd)
        return None
    if os.fstat(fd).st_nlink == 0:  # a prune removed it before the lock was taken
        os.close(fd)
        return None
    return fd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dir_size(path: Path) -> int:
    """Return the bytes of all files in a folder."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
