"""Freed memory handed back to the system between a step's phases (glibc's malloc_trim)."""

import platform

import numpy as np
import pytest

from synth_assets.common.memory import release_free_memory


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_small_allocations_go_back_to_the_system():
    # many arrays under glibc's mmap threshold, as pandas makes them: freed, they stay in the heap
    arrays = [np.ones(2_000) for _ in range(60_000)]  # 16 KB each, about 1 GB in all
    keep = arrays[-1]  # the heap's top stays in use, so only a trim can give the rest back
    del arrays
    before = _rss_kb()
    assert release_free_memory()
    assert _rss_kb() < before - 500_000
    assert keep.sum() == 2_000


@pytest.mark.skipif(platform.system() != "Linux", reason="the kernel's high-water mark: Linux only")
def test_the_peak_is_the_processes_high_water_mark_until_reset():
    from synth_assets.common.memory import peak_resident_bytes, reset_peak

    block = np.ones(400_000_000 // 8)  # 400 MB, touched
    del block
    high = peak_resident_bytes()
    assert high is not None and high >= _rss_kb() * 1024 + 350_000_000  # freed, still the mark
    assert reset_peak()
    now = peak_resident_bytes()
    assert now is not None and abs(now - _rss_kb() * 1024) < 50_000_000  # the resident set now
