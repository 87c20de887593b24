"""Process-wide settings that must hold before heavy libraries are imported."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: NumPy's own switch (read when numpy is imported): 1 asks the kernel for transparent huge pages
#: for every array of 4 MB or more, 0 does not.
NUMPY_HUGE_PAGES = "NUMPY_MADVISE_HUGEPAGE"


def prepare_process() -> None:
    """Every setting below, for this process and the processes it starts (the CLI, the definitions,
    the tests)."""
    quiet_telemetry()
    numpy_without_huge_pages()


def quiet_telemetry() -> None:
    """No library may phone home: the machines this runs on have no network, by design."""
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("SDV_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # SDV writes a logging config under XDG_DATA_HOME on import: keep it inside the project.
    os.environ.setdefault("XDG_DATA_HOME", str(PROJECT_ROOT / ".xdg"))


def numpy_without_huge_pages() -> None:
    """NumPy's arrays on the kernel's ordinary pages, unless ``NUMPY_MADVISE_HUGEPAGE`` is set.

    NumPy advises huge pages for its large arrays on Linux 4.6 and later. The pipeline makes and
    frees arrays of tens to hundreds of MB all the time, and on the 2-core virtual machines it is
    measured on every fresh huge page cost more kernel time than the pages saved: a replicate's CART
    model was made in 30.7 s with the advice and 16.6 s without (medians, the same draws), its
    process's system CPU time 30 s against 11 s (bench/README.md, "Forty-sixth pass"). An explicit
    ``NUMPY_MADVISE_HUGEPAGE`` (NumPy's own variable) is kept: a machine where huge pages pay sets 1.
    """
    if NUMPY_HUGE_PAGES in os.environ:
        return
    os.environ[NUMPY_HUGE_PAGES] = "0"  # numpy reads it when imported: the processes this one starts
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # imported already, its setting read: switched at run time, as its import does
        core = getattr(numpy, "_core", None) or numpy.core
        core.multiarray._set_madvise_hugepage(False)
