"""File formats and atomic writes.

Every file is written through :func:`synth_assets.common.files.atomic_path`
(a temporary file beside the target, moved into place when complete), so a
reader (or a crashed run) never sees a half-written file.  Parquet and CSV output is byte-for-byte deterministic for
a given seed (no timestamps in these formats); the Stata and SPSS headers
carry a creation timestamp set by ReadStat, so only their content is
deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat

from synth_assets.common.files import atomic_path

from .mess import RawTable

#: The delivered CSV is written the way a continental office exports it.
CSV_SEPARATOR, CSV_DECIMAL, CSV_ENCODING = ";", ",", "latin-1"


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(
            tmp, index=False, lineterminator="\n", sep=CSV_SEPARATOR, decimal=CSV_DECIMAL, encoding=CSV_ENCODING
        )


def write_stata(table: RawTable, path: Path) -> None:
    with atomic_path(path) as tmp:
        pyreadstat.write_dta(
            table.frame,
            str(tmp),
            file_label="HBS demo household budget survey",
            column_labels=_column_labels(table),
            variable_value_labels=_value_labels(table),
            version=15,
        )


def write_spss(table: RawTable, path: Path) -> None:
    with atomic_path(path) as tmp:
        pyreadstat.write_sav(
            table.frame,
            str(tmp),
            file_label="LFS demo labour force survey",
            column_labels=_column_labels(table),
            variable_value_labels=_value_labels(table),
            missing_ranges=table.missing_ranges or None,
        )


def write_xport(table: RawTable, path: Path) -> None:
    with atomic_path(path) as tmp:
        pyreadstat.write_xport(table.frame, str(tmp), file_label="TUS demo time use", table_name="EPISODES",
                               file_format_version=5)


def write_table(table: RawTable, path: Path) -> None:
    if table.fmt == "parquet":
        write_parquet(table.frame, path)
    elif table.fmt == "csv":
        write_csv(table.frame, path)
    elif table.fmt == "stata":
        write_stata(table, path)
    elif table.fmt == "spss":
        write_spss(table, path)
    elif table.fmt == "sas":
        write_xport(table, path)
    else:  # pragma: no cover
        raise ValueError(f"unknown format {table.fmt!r}")


def write_json(obj: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _column_labels(table: RawTable) -> dict[str, str | None] | None:
    return {column: label for column, label in table.column_labels.items()} or None


def _value_labels(table: RawTable) -> dict[str, dict[int | float, str]] | None:
    return {
        column: {code: label for code, label in labels.items()} for column, labels in table.value_labels.items()
    } or None
