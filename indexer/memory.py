"""The peak memory of a command's whole process tree, sampled while it runs (Linux /proc).

PSS (proportional set size) splits the pages forked workers share, so the sum
over the processes is what the command really holds. Where /proc has no
smaps_rollup, RSS is summed instead.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

# Reading smaps_rollup walks a process's maps: every 0.25 s, the sampling took ~7 % of a core from the writers.
SAMPLE_SECONDS = 1.0


class PeakMemory:
    """Sample this process and its descendants in a thread; ``peak`` is the largest sum seen, in bytes."""

    def __init__(self, every: float = SAMPLE_SECONDS) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 1e6, 1)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> int:
        """Add up the tree's memory now; return it."""
        me = os.getpid()
        total = sum(_memory_of(pid) for pid in [me, *_descendants(me)])
        self.peak = max(self.peak, total)
        return total


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def proc_kb(path: str, name: str) -> int | None:
    """Return the "Name:   N kB" figure of a /proc file in bytes, or None where there is none."""
    try:
        with open(path, encoding="ascii") as stream:
            for line in stream:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def available_memory() -> int | None:
    """Return the memory the system can give without swapping (MemAvailable), or None where unknown."""
    return proc_kb("/proc/meminfo", "MemAvailable")


def _memory_of(pid: int) -> int:
    pss = proc_kb(f"/proc/{pid}/smaps_rollup", "Pss")
    if pss is not None:
        return pss
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
