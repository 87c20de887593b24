"""Independent pieces of work run a few at a time on threads, results in order.

For work whose time goes to code that releases the GIL: scikit-learn's tree building, NumPy's
element-wise arithmetic, sorts and partitions. Threads, not processes: the pieces share their
inputs (a design matrix, a reference table) without a copy or a pickle, and a Dagster step
forks nothing. Measured on 2 cores, 2 threads against 1 (``bench/validation/threads.py``, tables
of 20,000 rows): the Gower DCR 2.0 times as fast, the membership attack 1.8, the propensity pMSE
with its permutations and folds 1.3 (its trees' pruning is Python); CART's fit 1.75 at 300,000
persons, about 1.4 at 1.2 million with its blocks one at a time (``bench/README.md``, "Fifteenth pass").

``n_jobs`` follows scikit-learn's convention: ``None`` or 1 one piece at a time in the calling
thread, -1 as many as the cores this process may use, k > 1 that many.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or ``taskset``'s share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolved_jobs(n_jobs: int | None) -> int:
    """The number of threads ``n_jobs`` asks for: ``None`` is 1, -1 every available core."""
    if n_jobs is None:
        return 1
    if n_jobs == -1:
        return available_cores()
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be -1, None or at least 1, got {n_jobs}")
    return n_jobs


def ordered_map(function: Callable[[T], R], items: Iterable[T], n_jobs: int | None = None,
                name: str = "synth-assets") -> list[R]:
    """``[function(item) for item in items]``, up to ``n_jobs`` items at a time on threads.

    The results come in the items' order whatever finishes first, so a caller whose pieces are
    each seeded gets the same answer for every ``n_jobs``. The first exception raised is raised
    here, once the pieces already started have ended.
    """
    items = list(items)
    workers = min(resolved_jobs(n_jobs), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        return list(pool.map(function, items))

