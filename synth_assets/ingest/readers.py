"""Readers for files as statistical offices deliver them: CSV, Parquet, Stata, SPSS, SAS.

Values are read raw (codes, not labels): the catalog's ``codes`` say what they mean, and the
value labels found in Stata/SPSS files are kept beside the data for harmonisation to fall
back on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.catalog import Source

# Text that numeric parsers turn into infinities or NaN: in a delivered numeric column it is
# a fault of the export (a division by zero, a NaN written out), not a value or a missing code.
NON_FINITE_TEXT = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"})


class IngestError(ValueError):
    """A delivered file cannot be read or does not hold what the catalog declares."""


@dataclass
class RawTable:
    data: pd.DataFrame
    path: Path
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)


#: Records read at a time by :func:`read_source_batches`: the delivered file is never held whole
#: (the register of a country is about 170 bytes a person once read), only a batch and the Parquet
#: row group it is written out as.
READ_BATCH_ROWS = 250_000


def _csv_batches(path: Path, options: dict[str, Any], rows: int | None) -> Iterator[RawTable]:
    if rows is None:
        yield RawTable(pd.read_csv(path, **options), path)
        return
    # A column's type is pandas' for the whole file, not a batch's: a column of integers that shows a
    # blank or a decimal only in a later batch is float throughout, one with a word anywhere is text
    # throughout. So a first pass learns each column's type over every batch, the second reads with it.
    kinds: dict[Any, str] = {}
    with pd.read_csv(path, chunksize=rows, **options) as reader:
        for chunk in reader:
            for column in chunk.columns:
                kinds[column] = _wider_kind(kinds.get(column), _batch_kind(chunk[column]))
    given = options.get("dtype")
    forced: dict[Any, str] = {}
    if given is None or isinstance(given, dict):  # a catalog's dtype for every column stands as given
        forced = {column: ("str" if kind == "text" else "float64")
                  for column, kind in kinds.items() if kind in ("text", "float", "empty")}
        options = {**options, "dtype": {**forced, **(given or {})}}
    # True/False with a blank anywhere: the whole read's Python booleans and NaN, whatever a batch holds
    # (no dtype option reads that: "boolean" is pandas' nullable type, "str" the words)
    booleans = [column for column, kind in kinds.items()
                if kind == "bool_or_blank" and not (isinstance(given, dict) and column in given)]
    with pd.read_csv(path, chunksize=rows, **options) as reader:
        for chunk in reader:
            if booleans:
                chunk = chunk.astype({column: object for column in booleans})
            yield RawTable(chunk, path)


def _batch_kind(values: pd.Series) -> str:
    """How pandas typed one batch's column: a number, booleans (with blanks), text, or blanks alone."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "empty" if values.isna().all() else "float"
    present = values.dropna()
    if pd.api.types.is_object_dtype(dtype) and len(present) and all(type(value) is bool for value in present):
        return "bool_or_blank"  # True/False and a blank: pandas keeps the booleans, as objects
    return "text"


def _wider_kind(seen: str | None, kind: str) -> str:
    """The kind a column read whole takes, given its kind so far and its kind in one more batch."""
    if seen is None or seen == kind:
        return kind
    pair = {seen, kind}
    if "empty" in pair:  # blanks alone take the other batches' type, made able to hold a blank
        other = (pair - {"empty"}).pop()
        return {"int": "float", "bool": "bool_or_blank"}.get(other, other)
    if pair == {"int", "float"}:
        return "float"
    if pair == {"bool", "bool_or_blank"}:
        return "bool_or_blank"
    return "text"


def _parquet_batches(path: Path, options: dict[str, Any], rows: int | None) -> Iterator[RawTable]:
    if rows is None or set(options) - {"columns"}:  # pandas' other options have no batched equivalent
        yield RawTable(pd.read_parquet(path, **options), path)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    for batch in file.iter_batches(batch_size=rows, columns=options.get("columns")):
        # through a table, so the file's pandas metadata (dtypes, categories) applies as in a whole read
        yield RawTable(pa.Table.from_batches([batch]).to_pandas().reset_index(drop=True), path)


def _pyreadstat_batches(reader_name: str):
    def read(path: Path, options: dict[str, Any], rows: int | None) -> Iterator[RawTable]:
        import pyreadstat  # lazy: only Stata/SPSS/SAS sources need it

        reader = getattr(pyreadstat, reader_name)
        if reader_name != "read_xport":  # SAS transport files carry no value labels
            options = {"apply_value_formats": False, **options}
        chunks = ([reader(str(path), **options)] if rows is None else
                  pyreadstat.read_file_in_chunks(reader, str(path), chunksize=rows, **options))
        labels: dict[str, dict[Any, str]] | None = None
        for data, meta in chunks:
            if labels is None:
                labels = {column: dict((meta.value_labels or {}).get(label_set, {}))
                          for column, label_set in (meta.variable_to_label or {}).items()}
            yield RawTable(data, path, labels)

    return read


def _sas_batches(path: Path, options: dict[str, Any], rows: int | None) -> Iterator[RawTable]:
    reader = "read_xport" if path.suffix.lower() == ".xpt" else "read_sas7bdat"
    return _pyreadstat_batches(reader)(path, options, rows)


_READERS: dict[str, Callable[[Path, dict[str, Any], int | None], Iterator[RawTable]]] = {
    "csv": _csv_batches,
    "parquet": _parquet_batches,
    "stata": _pyreadstat_batches("read_dta"),
    "spss": _pyreadstat_batches("read_sav"),
    "sas": _sas_batches,
}


def delivered_rows(path: Path | str, source: Source) -> int | None:
    """How many records a delivered file holds, without reading its values: Parquet's footer, the
    header of a Stata, SPSS or SAS file, a CSV's lines (its header and blank last line left out;
    a quoted value spanning lines counts each line, so an upper bound); None where the header does
    not say (some SAS transport files). For choosing how to run, not for checking the file:
    :func:`read_source_file` does that."""
    path = Path(path)
    try:
        if source.format == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if source.format == "csv":
            with open(path, "rb") as handle:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b""))
                handle.seek(max(path.stat().st_size - 1, 0))
                unterminated = handle.read(1) not in (b"\n", b"")
            return max(lines + unterminated - 1, 0)
        import pyreadstat

        reader = {"stata": pyreadstat.read_dta, "spss": pyreadstat.read_sav}.get(
            source.format, pyreadstat.read_xport if path.suffix.lower() == ".xpt" else pyreadstat.read_sas7bdat)
        rows = reader(str(path), metadataonly=True)[1].number_rows
        return None if rows is None else int(rows)
    except Exception as exc:  # every reader has its own exception types
        raise IngestError(f"{path}: cannot be read as {source.format}: {exc}") from exc


def read_source_file(path: Path | str, source: Source) -> RawTable:
    """Read one delivered file whole and check it holds every column the catalog names."""
    return next(read_source_batches(path, source, rows=None))


def read_source_batches(path: Path | str, source: Source, rows: int | None = READ_BATCH_ROWS) -> Iterator[RawTable]:
    """Read one delivered file ``rows`` records at a time (None: whole, one batch), checking as it
    goes what :func:`read_source_file` checks: every catalog column present (on the first batch,
    before the rest is read), no infinity or NaN written as text (rows named in the whole file).

    The batches, joined, are the file read whole: same values and dtypes (a CSV's column types are
    learned over the whole file first). A file of no records raises; so does any unreadable batch.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: file is empty")
    batches = _READERS[source.format](path, dict(source.read_options), rows)
    texts = _csv_text_batches(path, source, rows) if source.format == "csv" else None
    first_row = 0
    while True:
        try:
            table = next(batches, None)
        except IngestError:
            raise
        except Exception as exc:  # every reader has its own exception types
            raise IngestError(f"{path}: cannot be read as {source.format}: {exc}") from exc
        if table is None:
            break
        if first_row == 0:
            if table.data.empty:
                raise IngestError(f"{path}: no rows")
            expected = source.raw_columns()
            missing = [column for column in expected if column not in table.data.columns]
            if missing:
                described = ", ".join(f"'{c}' (for {expected[c]})" for c in missing)
                raise IngestError(
                    f"{path}: missing column(s) {described}; the file has: {', '.join(map(str, table.data.columns))}"
                )
        as_written = None
        if texts is not None:
            try:
                as_written = next(texts, None)
            except Exception:  # the typed read succeeded; the float check below still applies
                texts = None
        check_finite(table, source, first_row=first_row, as_written=as_written)
        first_row += len(table.data)
        yield table
    if first_row == 0:
        raise IngestError(f"{path}: no rows")


def _non_finite_text(series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip().str.lower()
    return text.isin(NON_FINITE_TEXT).fillna(False).astype(bool)


def _csv_text_batches(path: Path, source: Source, rows: int | None) -> Iterator[pd.DataFrame]:
    """The catalog's columns of a CSV as written, batch by batch beside the typed read, so a literal
    ``NaN`` is not mistaken for a blank cell."""
    options = {k: v for k, v in dict(source.read_options).items() if k not in ("dtype", "converters", "usecols")}
    columns = list(source.raw_columns())
    options.update(dtype=str, keep_default_na=False, usecols=lambda column: column in columns)
    options.setdefault("na_values", [""])
    if rows is None:
        yield pd.read_csv(path, **options)
        return
    with pd.read_csv(path, chunksize=rows, **options) as reader:
        yield from reader


def check_finite(table: RawTable, source: Source, *, first_row: int = 0,
                 as_written: pd.DataFrame | None = None) -> None:
    """Refuse ``inf``, ``-inf`` and NaN written as text in the catalog's columns, naming file, column and rows.

    Done on the raw read, so such a file stops at ingest, before any later asset sees it.
    Text columns are only checked for these tokens when their other values are numbers
    (a category column may legitimately spell anything). ``first_row``: the batch's first row in
    the file (rows are named in the file); ``as_written``: a CSV batch's columns as text.
    """
    data = table.data
    columns = [column for column in source.raw_columns() if column in data.columns]
    problems = []
    for column in columns:
        series = data[column]
        if pd.api.types.is_float_dtype(series):
            bad = pd.Series(np.isinf(series.to_numpy(dtype="float64", na_value=np.nan)), index=series.index)
            if as_written is not None and column in as_written and len(as_written) == len(series):
                bad |= _non_finite_text(as_written[column]).to_numpy()
        elif series.dtype == object or pd.api.types.is_string_dtype(series):
            bad = _non_finite_text(series)
            text = series[~bad & series.notna()].astype(str).str.strip().str.replace(",", ".", regex=False)
            text = text[text.ne("")]
            if not bad.any() or pd.to_numeric(text, errors="coerce").isna().any():
                continue  # not a numeric column
        else:
            continue
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            shown = as_written[column] if as_written is not None and column in as_written else series
            values = sorted({str(v).strip() for v in shown.to_numpy()[rows[:20]]})
            problems.append(
                f"column '{column}': non-finite value(s) {', '.join(values)} in {len(rows)} row(s), "
                f"first rows {', '.join(str(first_row + r + 1) for r in rows[:5])} (1 = first data row)"
            )
    if problems:
        raise IngestError(f"{table.path}: " + "; ".join(problems))


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


def misnamed_files(incoming: Path | str, sources: dict[str, Source]) -> list[tuple[Path, str]]:
    """Files under ``incoming`` that no source's pattern takes, each with why.

    They would otherwise be ignored without a word: a register delivered as
    ``register_-2025.parquet`` or ``Register_2025.parquet`` simply never arrives. Hidden files
    (``.name``, e.g. a transfer in progress) are skipped.
    """
    incoming = Path(incoming)
    if not incoming.is_dir():
        return []
    patterns = {name: source.wave_pattern() for name, source in sources.items()}
    found = []
    for path in sorted(incoming.rglob("*")):
        relative = path.relative_to(incoming)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        name = relative.as_posix()
        if any(pattern.match(name) for pattern in patterns.values()):
            continue
        folder = relative.parent.as_posix()
        near = [s.path for s in sources.values() if Path(s.path).parent.as_posix() == folder]
        if near:
            why = (f"does not match {' or '.join(near)} (a wave is a four-digit year, optionally "
                   "followed by letters, digits or '_')")
        else:
            why = "is in no source's folder: " + ", ".join(s.path for s in sources.values())
        found.append((path, why))
    return found


def check_schema_drift(table: RawTable, source: Source, source_name: str, previous: dict[str, str] | None,
                       previous_file: str | None = None) -> None:
    """Refuse columns that are new since the previous delivery of this source, naming them.

    Columns the catalog names or lists in ``ignored_columns`` are known; any other column the
    previous delivery already had was accepted then. A new one means the export changed, and
    what it holds is unknown until the catalog says (``sources.<name>.ignored_columns``, or a
    variable). With no previous delivery there is nothing to compare with.
    """
    if previous is None:
        return
    known = set(source.raw_columns()) | set(source.ignored_columns) | set(previous)
    new = [str(c) for c in table.data.columns if str(c) not in known]
    if new:
        since = f" ({previous_file})" if previous_file else ""
        raise IngestError(
            f"{table.path}: new column(s) {', '.join(repr(c) for c in new)} not in the previous delivery{since} "
            f"nor in the catalog; declare them under sources.{source_name}.variables or "
            f"sources.{source_name}.ignored_columns"
        )


def source_path(incoming: Path | str, source: Source, wave: str) -> Path:
    return Path(incoming) / source.path.format(wave=wave)


def describe_schema(df: pd.DataFrame) -> dict[str, str]:
    return {str(column): str(dtype) for column, dtype in df.dtypes.items()}
