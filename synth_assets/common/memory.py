"""Hand freed memory back to the operating system between the large phases of a step.

pandas and NumPy free their arrays, but glibc's allocator keeps much of what they freed in its
heap for reuse (arrays under its mmap threshold, which rises as large arrays are freed), so a
step's resident set after one replicate stays near that replicate's peak, and the next
replicate's working set comes on top of it; so does Arrow's memory pool. ``malloc_trim`` returns
glibc's free pages (elsewhere than glibc, macOS or musl, it does nothing), ``release_unused`` Arrow's.

A step's peak is the kernel's high-water mark of the process's resident set (``VmHWM``), reset when
the step ends (Linux 4.0+: ``clear_refs``), so the next step's peak is its own even when one process
runs every step: what a step's pod or process needs, exactly, without polling.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Give the allocators' free pages back to the system (Arrow's pool, then glibc's heap);
    whether glibc's could be trimmed."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()  # Arrow keeps freed buffers for reuse too (mimalloc, jemalloc)
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


_STATUS = "/proc/self/status"


def peak_resident_bytes() -> int | None:
    """The process's resident-set high-water mark since it started or since :func:`reset_peak`, in
    bytes (None where the kernel does not say: not Linux)."""
    try:
        with open(_STATUS) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Start the high-water mark again from the resident set now; whether the kernel allowed it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True
