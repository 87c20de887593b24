"""The resident set of this process, read from /proc, and its highest value polled on a thread.

Not tracemalloc: it misses NumPy and Arrow buffers. A spike shorter than the interval can be missed.
"""

from __future__ import annotations

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
