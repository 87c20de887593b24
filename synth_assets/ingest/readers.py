"""Readers for files as statistical offices deliver them: CSV, Parquet, Stata, SPSS, SAS.

Values are read raw (codes, not labels): the catalog's ``codes`` say what they mean, and the
value labels found in Stata/SPSS files are kept beside the data for harmonisation to fall
back on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synth_assets.catalog import Source


class IngestError(ValueError):
    """A delivered file cannot be read or does not hold what the catalog declares."""


@dataclass
class RawTable:
    data: pd.DataFrame
    path: Path
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)


def _read_csv(path: Path, options: dict[str, Any]) -> RawTable:
    return RawTable(pd.read_csv(path, **options), path)


def _read_parquet(path: Path, options: dict[str, Any]) -> RawTable:
    return RawTable(pd.read_parquet(path, **options), path)


def _read_with_pyreadstat(reader_name: str):
    def read(path: Path, options: dict[str, Any]) -> RawTable:
        import pyreadstat  # lazy: only Stata/SPSS/SAS sources need it

        reader = getattr(pyreadstat, reader_name)
        if reader_name != "read_xport":  # SAS transport files carry no value labels
            options = {"apply_value_formats": False, **options}
        data, meta = reader(str(path), **options)
        labels: dict[str, dict[Any, str]] = {}
        for column, label_set in (meta.variable_to_label or {}).items():
            labels[column] = dict((meta.value_labels or {}).get(label_set, {}))
        return RawTable(data, path, labels)

    return read


_READERS = {
    "csv": _read_csv,
    "parquet": _read_parquet,
    "stata": _read_with_pyreadstat("read_dta"),
    "spss": _read_with_pyreadstat("read_sav"),
    "sas": lambda path, options: (
        _read_with_pyreadstat("read_xport") if path.suffix.lower() == ".xpt" else _read_with_pyreadstat("read_sas7bdat")
    )(path, options),
}


def read_source_file(path: Path | str, source: Source) -> RawTable:
    """Read one delivered file and check it holds every column the catalog names."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: file is empty")
    try:
        table = _READERS[source.format](path, dict(source.read_options))
    except IngestError:
        raise
    except Exception as exc:  # every reader has its own exception types
        raise IngestError(f"{path}: cannot be read as {source.format}: {exc}") from exc
    if table.data.empty:
        raise IngestError(f"{path}: no rows")
    expected = {var.column: name for name, var in source.variables.items()}
    missing = [column for column in expected if column not in table.data.columns]
    if missing:
        described = ", ".join(f"'{c}' (for {expected[c]})" for c in missing)
        raise IngestError(
            f"{path}: missing column(s) {described}; the file has: {', '.join(map(str, table.data.columns))}"
        )
    return table


def discover_waves(incoming: Path | str, source: Source) -> dict[str, Path]:
    """Find this source's delivered files under ``incoming``, keyed by wave."""
    incoming = Path(incoming)
    pattern = source.wave_pattern()
    found: dict[str, Path] = {}
    folder = incoming / Path(source.path).parent
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        match = pattern.match(path.relative_to(incoming).as_posix())
        if match:
            found[match.group("wave")] = path
    return dict(sorted(found.items()))


def source_path(incoming: Path | str, source: Source, wave: str) -> Path:
    return Path(incoming) / source.path.format(wave=wave)


def describe_schema(df: pd.DataFrame) -> dict[str, str]:
    return {str(column): str(dtype) for column, dtype in df.dtypes.items()}
