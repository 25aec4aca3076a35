"""Map array files read-only, read them page-exactly, and find runs of indexes in sorted arrays.

``Mapping`` maps a whole file holding no file descriptor; ``map_npy`` and
``map_raw`` make read-only numpy arrays over one (a .npy file, checked against
its header, or a file of raw values). ``ExactReads`` makes reads of a mapped
array fetch the pages they need and no others. ``runs``, ``heads`` and
``indexes_in`` are the numpy index arithmetic the posting arrays' writers and
readers share.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import weakref
from pathlib import Path

import numpy as np

from indexer import store

ADVICE = all(hasattr(mmap, name) for name in ("MADV_RANDOM", "MADV_WILLNEED", "MADV_DONTNEED"))  # as on Linux

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_MAP_FAILED = ctypes.c_void_p(-1).value


class Mapping:
    """A whole file mapped read-only, holding no file descriptor; unmapped when no array over it is left.

    Python's mmap keeps a duplicate of the file's descriptor as long as the map
    lives (before 3.13's trackfd): seven per segment, so an index of ~146
    segments would reach a limit of 1,024 descriptors. A mapping needs no open
    descriptor, so the file is closed at once. pages (a ctypes array over the
    mapping) is what arrays are made over: numpy keeps it alive as their base,
    and the pages are unmapped when it is collected, never under a live array.
    """

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            self.size = os.fstat(fd).st_size
            address = _libc.mmap(None, self.size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        finally:
            os.close(fd)
        if address in (None, _MAP_FAILED):
            error = ctypes.get_errno()
            raise OSError(error, f"cannot map {path}: {os.strerror(error)}")
        self.address = address
        self.pages = (ctypes.c_ubyte * self.size).from_address(address)
        unmap = weakref.finalize(self.pages, _libc.munmap, address, self.size)
        unmap.atexit = False  # the process's end unmaps it; at exit other threads may still read it

    def advise(self, advice: int, start: int = 0, length: int | None = None) -> None:
        """Advise the kernel about bytes [start, start + length) (page-aligned start) of the map."""
        length = self.size - start if length is None else min(length, self.size - start)
        if length > 0 and _libc.madvise(self.address + start, length, advice) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))


def map_raw(path: Path, dtype) -> tuple[Mapping | None, np.ndarray]:
    """Map a file of raw values read-only: (the map, the array over it)."""
    return _map(path, np.dtype(dtype), (path.stat().st_size // np.dtype(dtype).itemsize,), 0)


def map_npy(path: Path) -> tuple[Mapping | None, np.ndarray]:
    """Map a .npy file read-only: (the map, to let go of its pages or advise it; the array over it).

    :raises store.DamagedFileError: when it is missing, not a .npy file, or shorter than its header says.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            start = f.tell()
            size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError) as exc:
        raise store.DamagedFileError(path, f"not a readable array ({type(exc).__name__}: {exc})") from None
    needed = start + int(np.prod(shape)) * dtype.itemsize
    if size < needed:
        raise store.DamagedFileError(path, f"cut short: {size:,} bytes of {needed:,}")
    return _map(path, dtype, shape, start)


def _map(path: Path, dtype: np.dtype, shape: tuple, start: int) -> tuple[Mapping | None, np.ndarray]:
    count = int(np.prod(shape))
    if not count:
        return None, np.zeros(shape, dtype=dtype)
    m = Mapping(path)
    found = np.frombuffer(m.pages, dtype=dtype, count=count, offset=start).reshape(shape)
    found.flags.writeable = False  # the pages are mapped read-only: a write would crash the process
    return m, found


class ExactReads:
    """Reads of a mapped array that fetch the pages they need and no others.

    The map is advised MADV_RANDOM: a page fault then reads its own page, not
    the kernel's read-around (up to read_ahead_kb, 8 MB on our machine) of
    unrelated terms' lists. What a request will read is asked for first, all
    at once (MADV_WILLNEED): the disk serves those pages together instead of one
    fault after another.
    """

    def __init__(self, mapped: Mapping, array: np.ndarray) -> None:
        self.mapped = mapped
        self.start = array.ctypes.data - mapped.address
        self.itemsize = array.dtype.itemsize * (array.shape[1] if array.ndim > 1 else 1)
        mapped.advise(mmap.MADV_RANDOM)

    def ask(self, starts, ends) -> None:
        """Ask for items [starts[i], ends[i]) of the array (numbers or arrays of them).

        One page alone is not asked for: the read faults it in with the one read the advice would
        start (MADV_RANDOM), and most asks are one page (a short list, a block of lengths): their
        system calls and arrays were a tenth of a warm full answer.
        """
        if isinstance(starts, (int, np.integer)) and isinstance(ends, (int, np.integer)):
            first, last = self.start + int(starts) * self.itemsize, self.start + int(ends) * self.itemsize
            wanted = [(first // mmap.PAGESIZE, (last - 1) // mmap.PAGESIZE + 1)] if last > first else []
        else:
            first = self.start + np.atleast_1d(np.asarray(starts, dtype=np.int64)) * self.itemsize
            last = self.start + np.atleast_1d(np.asarray(ends, dtype=np.int64)) * self.itemsize
            wanted = page_runs(first, last)
        if len(wanted) == 1 and wanted[0][1] - wanted[0][0] == 1:
            return
        try:
            for a, b in wanted:
                self.mapped.advise(mmap.MADV_WILLNEED, a * mmap.PAGESIZE, (b - a) * mmap.PAGESIZE)
        except (OSError, ValueError):  # advice only: the reads fault the pages in anyway
            pass


def page_runs(first: np.ndarray, last: np.ndarray) -> list[tuple[int, int]]:
    """Return the runs [a, b) of pages that hold bytes [first[i], last[i]), in order, none touching another."""
    keep = last > first
    if not keep.any():
        return []
    lo, hi = first[keep] // mmap.PAGESIZE, (last[keep] - 1) // mmap.PAGESIZE + 1
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], np.maximum.accumulate(hi[order])
    new = np.concatenate(([True], lo[1:] > hi[:-1]))  # a run starts past the end of every page before it
    ends_at = np.concatenate((np.flatnonzero(new)[1:] - 1, [len(lo) - 1]))
    return list(zip(lo[new].tolist(), hi[ends_at].tolist()))


# -- indexes in sorted arrays ---------------------------------------------------------


def runs(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Return the indexes start, start + 1, ... of each run, one run after another (no Python loop)."""
    total = int(lengths.sum())
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total, dtype=np.int64)


def heads(ordered: np.ndarray) -> np.ndarray:
    """Return a mask of the sorted values that differ from the one before (each distinct value's first).

    With a sort, what np.unique gives: since numpy 2.3 that hashes, and took
    44 ms for 100,000 document numbers here against 0.6 ms for a sort.
    """
    return np.concatenate(([True], ordered[1:] != ordered[:-1])) if len(ordered) else np.zeros(0, dtype=bool)


def indexes_in(docs: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Return the indexes of the sorted docs that fall in sorted, disjoint [start, end) rows."""
    bounds = np.clip(ranges, 0, np.iinfo(np.uint32).max).astype(np.uint32)
    at = np.searchsorted(docs, bounds.ravel()).reshape(-1, 2)
    lengths = at[:, 1] - at[:, 0]
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return runs(at[:, 0].astype(np.int64), lengths)
