"""The resident set of this process, read from /proc, and its highest value polled on a thread.

Not tracemalloc: it misses NumPy and Arrow buffers. A spike shorter than the interval can be missed.
"""

from __future__ import annotations

import os
import threading
import time


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


class PeakPoller:
    """``peak``: the highest resident set (MB) seen since the start or the last :meth:`reset`."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = rss_mb()
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.interval)

    def reset(self) -> float:
        """Start again from the resident set now, which is returned."""
        self.peak = now = rss_mb()
        return now


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """Resident and proportional memory (RSS, PSS) of ``pid`` and its descendants, in MiB (0 once gone).

    With steps forked from a fork server, each process's RSS counts the pages it shares with the
    server (the imports) again; PSS divides a shared page among its sharers, so the tree's PSS is
    the physical memory it holds. Both are given: RSS to compare with the passes before.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    rss = pss = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            with open(f"/proc/{current}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) / 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return rss, pss


class TreePeakPoller:
    """With it, ``peak``: the highest proportional set size (MiB) of ``pid`` and its descendants
    (:func:`tree_memory_mb`), polled every ``interval`` seconds until the block ends."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_memory_mb(self.pid)[1])

    def __enter__(self) -> TreePeakPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
