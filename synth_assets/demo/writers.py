"""File formats and atomic writes.

Every file is written to a temporary file in the *same* folder and moved into
place with :func:`os.replace`, so a reader (or a crashed run) never sees a
half-written file.  Parquet and CSV output is byte-for-byte deterministic for
a given seed (no timestamps in these formats); the Stata and SPSS headers
carry a creation timestamp set by ReadStat, so only their content is
deterministic.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat

from .mess import RawTable

CSV_OPTIONS = {"sep": ";", "decimal": ",", "encoding": "latin-1"}


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()  # mkstemp creates 0600; give files the usual mode


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n", **CSV_OPTIONS)


def write_stata(table: RawTable, path: Path) -> None:
    with atomic_path(path) as tmp:
        pyreadstat.write_dta(
            table.frame,
            str(tmp),
            file_label="HBS demo household budget survey",
            column_labels=table.column_labels or None,
            variable_value_labels=table.value_labels or None,
            version=15,
        )


def write_spss(table: RawTable, path: Path) -> None:
    with atomic_path(path) as tmp:
        pyreadstat.write_sav(
            table.frame,
            str(tmp),
            file_label="LFS demo labour force survey",
            column_labels=table.column_labels or None,
            variable_value_labels=table.value_labels or None,
            missing_ranges=table.missing_ranges or None,
        )


def write_table(table: RawTable, path: Path) -> None:
    if table.fmt == "parquet":
        write_parquet(table.frame, path)
    elif table.fmt == "csv":
        write_csv(table.frame, path)
    elif table.fmt == "stata":
        write_stata(table, path)
    elif table.fmt == "spss":
        write_spss(table, path)
    else:  # pragma: no cover
        raise ValueError(f"unknown format {table.fmt!r}")


def write_json(obj: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
