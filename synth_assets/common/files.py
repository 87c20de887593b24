"""Writing files without leaving halves behind: the project's one atomic write.

Whatever is written (a table, a report, a model file, a release folder) goes to a
temporary path beside the target and is moved into place with ``os.replace`` only when
writing succeeded. A rename is atomic within one file system, so a reader (or a Dagster
sensor, or a crashed run) sees the old target or the new one, never a truncated file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place only on success.

    Works for files and folders. A reader never sees a half-written result, and a failure
    leaves any previous ``target`` untouched. The temporary path lies in a fresh hidden
    folder beside the target, so what is written there gets the usual permissions.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {target}")
        if tmp.is_dir() and target.exists():
            # os.replace cannot swap a folder onto an existing one: move the old one aside first.
            old = tmp_dir / (target.name + ".old")
            os.replace(target, old)
            os.replace(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_parquet(df: pd.DataFrame, path: Path | str) -> Path:
    """Write ``df`` (without its index) to a Parquet file atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path
