"""Applying the catalog's mappings: renames, code maps, missing codes and units.

The result has the harmonised names, the common schema's category sets and dtypes, and
nothing else. An unknown code is an error naming the file, the column and the value: a new
category in a new wave is schema drift, and must stop the wave rather than become a null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.catalog import Catalog, SourceVariable
from synth_assets.harmonise.records import person_table, with_derived


class HarmonisationError(ValueError):
    """A raw value cannot be mapped to the common schema."""


def _key(value: Any) -> str:
    """Normalise a raw value so that 1, 1.0, '1' and ' 1 ' name the same code."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _is_null(series: pd.Series) -> pd.Series:
    if series.dtype == object:
        return series.isna() | series.astype(str).str.strip().eq("")
    return series.isna()


def _to_category(
    raw: pd.Series,
    codes: dict[str, str],
    categories: list[str],
    labels: dict[str, str],
    where: str,
) -> pd.Categorical:
    keys = raw.map(_key, na_action="ignore")
    known = set(categories)
    mapped = keys.map(lambda k: codes.get(k, k if k in known else None), na_action="ignore")
    unmapped = mapped.isna() & keys.notna()
    if unmapped.any() and labels:
        # Stata/SPSS files: the catalog may name the value labels rather than the codes.
        via_labels = keys[unmapped].map(labels).map(lambda lab: codes.get(_key(lab), lab if lab in known else None))
        mapped = mapped.where(~unmapped, via_labels)
        unmapped = mapped.isna() & keys.notna()
    if unmapped.any():
        bad = raw[unmapped]
        counts = bad.astype(str).value_counts()
        shown = ", ".join(f"{value!r} ({n} rows)" for value, n in counts.head(5).items())
        raise HarmonisationError(
            f"{where}: unknown value(s) {shown}; known codes: {sorted(codes) or '-'}, "
            f"categories: {categories}"
        )
    return pd.Categorical(mapped, categories=categories)


def _to_number(raw: pd.Series, where: str) -> pd.Series:
    if raw.dtype == object:
        text = raw.astype("string").str.strip().str.replace(",", ".", regex=False)
        numbers = pd.to_numeric(text, errors="coerce")
        bad = numbers.isna() & text.notna() & text.ne("")
        if bad.any():
            examples = ", ".join(repr(v) for v in raw[bad].astype(str).unique()[:5])
            raise HarmonisationError(f"{where}: not a number: {examples} ({int(bad.sum())} rows)")
        return numbers.astype("float64")
    if raw.dtype == bool:
        return raw.astype("float64")
    return pd.to_numeric(raw, errors="raise").astype("float64")


def harmonise_table(
    raw: pd.DataFrame,
    catalog: Catalog,
    source_name: str,
    *,
    file: Path | str = "<data>",
    value_labels: dict[str, dict[Any, str]] | None = None,
    check_ranges: bool = True,
    first_row: int = 0,
) -> pd.DataFrame:
    """Map one raw file of ``source_name`` to the harmonised schema.

    With ``check_ranges`` (the default) a value outside the catalog's ``min``/``max`` (special
    codes exempt) or an infinity is an error naming the file, column, value and rows.
    A source of one row per unit is harmonised row by row, so ``raw`` may be a part of its file
    (its rows from ``first_row`` + 1, as errors name them): the parts, joined, are the file
    harmonised whole. A record source (``records``) aggregates a person's records: pass it whole.
    """
    source = catalog.sources[source_name]
    value_labels = value_labels or {}
    columns: dict[str, Any] = {}
    for name, var in source.variables.items():
        if var.column is None:
            continue  # an aggregate of the records, computed below
        columns[name] = _harmonise_column(raw, var, catalog.variable_type(source_name, name),
                                          catalog.categories(source_name, name), file, name, value_labels)
    if source.records is not None:
        return _harmonise_records(raw, catalog, source_name, columns, file=file, value_labels=value_labels,
                                  check_ranges=check_ranges)
    table = pd.DataFrame(columns, index=raw.index).reset_index(drop=True)
    if check_ranges:
        refuse_out_of_range(catalog, source_name, table, file=file, first_row=first_row)
    return table


def _harmonise_column(raw: pd.DataFrame, var: SourceVariable, kind: str, categories: list[str] | None,
                      file: Path | str, name: str, value_labels: dict[str, dict[Any, str]]) -> Any:
    """One delivered column on the harmonised schema: missing codes, codes, type, scale."""
    column = var.raw_column
    where = f"{file}: column '{column}' (harmonised '{name}')"
    if column not in raw.columns:
        raise HarmonisationError(f"{where}: not in the file; columns are {', '.join(map(str, raw.columns))}")
    series = raw[column]
    missing = {_key(v) for v in var.missing_values}
    is_missing = _is_null(series)
    if missing:
        is_missing |= series.map(_key, na_action="ignore").isin(missing).fillna(False).astype(bool)
    series = series.where(~is_missing)
    if kind == "category":
        codes = {_key(k): str(v) for k, v in (var.codes or {}).items()}
        labels = {_key(k): str(v) for k, v in value_labels.get(column, {}).items()}
        return _to_category(series, codes, categories or [], labels, where)
    if var.codes:
        codes = {_key(k): v for k, v in var.codes.items()}
        series = series.map(lambda v, codes=codes: codes.get(_key(v), v), na_action="ignore")
    if kind == "boolean":
        truthy = {"1", "true", "yes", "y"}
        falsy = {"0", "false", "no", "n"}
        keys = series.map(lambda v: _key(v).lower(), na_action="ignore")
        bad = keys.notna() & ~keys.isin(truthy | falsy)
        if bad.any():
            raise HarmonisationError(f"{where}: not a boolean: {series[bad].unique()[:5].tolist()}")
        return keys.map(lambda k, truthy=truthy: k in truthy, na_action="ignore").astype("boolean")
    numbers = _to_number(series, where)
    if var.scale != 1.0:
        special = numbers.isin([float(v) for v in var.special_values])
        numbers = numbers.where(special, numbers * var.scale)
    if kind == "integer" or var.role in ("id", "household_id"):
        fractional = numbers.notna() & (numbers % 1 != 0)
        if fractional.any():
            raise HarmonisationError(f"{where}: integer variable holds fractions, e.g. {numbers[fractional].iloc[0]!r}")
        return numbers.astype("Int64")
    return numbers


def harmonise_record_rows(raw: pd.DataFrame, catalog: Catalog, source_name: str, *, file: Path | str = "<data>",
                          value_labels: dict[str, dict[Any, str]] | None = None,
                          check_ranges: bool = True) -> pd.DataFrame:
    """A record source's rows (episodes, trips) harmonised: the person's variables read from
    columns, ``day_id``, ``record_id``, the record variables and the derived ones."""
    source = catalog.sources[source_name]
    value_labels = value_labels or {}
    columns = {name: _harmonise_column(raw, var, catalog.variable_type(source_name, name),
                                       catalog.categories(source_name, name), file, name, value_labels)
               for name, var in source.variables.items() if var.column is not None}
    return _record_rows(raw, catalog, source_name, columns, file=file, value_labels=value_labels,
                        check_ranges=check_ranges)


def _record_rows(raw: pd.DataFrame, catalog: Catalog, source_name: str, columns: dict[str, Any], *,
                 file: Path | str, value_labels: dict[str, dict[Any, str]], check_ranges: bool) -> pd.DataFrame:
    records = catalog.sources[source_name].records
    if records is None:
        raise HarmonisationError(f"{file}: source {source_name!r} has no 'records' in the catalog")
    keys = {"day_id": records.day_id, "record_id": records.record_id}
    for name, column in keys.items():
        key = SourceVariable(column=column, role="specific", type="integer")
        columns[name] = _harmonise_column(raw, key, "integer", None, file, name, value_labels)
    problems = []
    for name, var in records.variables.items():
        kind = var.type or "number"
        values = _harmonise_column(raw, var, kind, var.categories, file, name, value_labels)
        columns[name] = values
        if check_ranges and kind in ("integer", "number"):
            problems += _range_problems(var, name, pd.to_numeric(pd.Series(values), errors="coerce"), var.min, var.max)
    if problems:
        raise HarmonisationError(f"{file}: " + "; ".join(problems))
    return with_derived(pd.DataFrame(columns, index=raw.index).reset_index(drop=True), catalog.sources[source_name])


def _harmonise_records(raw: pd.DataFrame, catalog: Catalog, source_name: str, columns: dict[str, Any], *,
                       file: Path | str, value_labels: dict[str, dict[Any, str]], check_ranges: bool) -> pd.DataFrame:
    """A record source: its rows harmonised, then one row per person with the aggregates.

    The report of the records' checks (days failing ``covers_day`` or a rule) is kept in the
    table's ``attrs["records"]`` for the harmonised asset's metadata.
    """
    rows = _record_rows(raw, catalog, source_name, columns, file=file, value_labels=value_labels,
                        check_ranges=check_ranges)
    table, report = person_table(rows, catalog.sources[source_name])
    if check_ranges:
        refuse_out_of_range(catalog, source_name, table, file=file)
    table.attrs["records"] = report.to_dict()
    return table


def _range_problems(var: SourceVariable, name: str, numbers: pd.Series, low: float | None,
                    high: float | None, first_row: int = 0) -> list[str]:
    values = numbers.astype("float64").to_numpy()
    special = np.isin(values, [float(v) for v in var.special_values])
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values)
        if low is not None:
            bad |= values < low
        if high is not None:
            bad |= values > high
    bad &= ~special
    if not bad.any():
        return []
    rows = np.flatnonzero(bad)
    shown = ", ".join(f"{values[r]:g} (row {first_row + r + 1})" for r in rows[:5])
    declared = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
    return [f"column '{var.column}' (harmonised '{name}'): {len(rows)} value(s) outside the declared "
            f"range {declared}: {shown}"]


def refuse_out_of_range(catalog: Catalog, source_name: str, table: pd.DataFrame, *, file: Path | str = "<data>",
                        first_row: int = 0) -> None:
    """Raise :class:`HarmonisationError` for values outside the declared range or infinite.

    Rows are counted from 1 over the delivered file's data rows (the harmonised table keeps
    their order; ``table`` starts at row ``first_row`` + 1). Special codes (e.g. -8 'not
    applicable') are exempt, as in the checks.
    """
    source = catalog.sources[source_name]
    problems = []
    for name, var in source.variables.items():
        if name not in table or catalog.variable_type(source_name, name) not in ("integer", "number"):
            continue
        low, high = catalog.bounds(source_name, name)
        problems += _range_problems(var, name, pd.to_numeric(table[name], errors="coerce"), low, high, first_row)
    if problems:
        raise HarmonisationError(f"{file}: " + "; ".join(problems))


def out_of_range(catalog: Catalog, source_name: str, table: pd.DataFrame) -> dict[str, int]:
    """Count values outside each variable's declared range (special codes exempt)."""
    source = catalog.sources[source_name]
    counts: dict[str, int] = {}
    for name, var in source.variables.items():
        low, high = catalog.bounds(source_name, name)
        if (low is None and high is None) or name not in table:
            continue
        values = pd.to_numeric(table[name], errors="coerce").astype("float64")
        values = values[~values.isin([float(v) for v in var.special_values])]
        bad = ((values < low) if low is not None else False) | ((values > high) if high is not None else False)
        if int(np.sum(bad)):
            counts[name] = int(np.sum(bad))
    return counts
