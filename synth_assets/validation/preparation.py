"""Preparing tables for the validation metrics: column kinds, alignment, discretisation.

All metrics must agree on what a "numeric" and a "categorical" column is, and on how a
number becomes a level, otherwise the k-marginal score, Cramér's V and the per-variable
plots would each describe a slightly different table. This module is that single place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.common.frames import ParquetTable


class ColumnMismatchError(ValueError):
    """Two tables that must describe the same variables do not."""


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if is_numeric(frame[c])]


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not is_numeric(frame[c])]


def align_columns(
    real: pd.DataFrame, other: pd.DataFrame, *, names: tuple[str, str] = ("real", "synthetic")
) -> pd.DataFrame:
    """Return ``other`` with ``real``'s columns, in ``real``'s order and kinds.

    A synthesiser (or a CSV round trip) may hand back a numeric column as text; it is
    converted when every value parses, because comparing "34" with 34 would otherwise
    count as a total mismatch. Missing or extra columns are an error: silently
    comparing on the intersection would hide a broken generator.
    """
    missing = [c for c in real.columns if c not in other.columns]
    extra = [c for c in other.columns if c not in real.columns]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing in {names[1]}: {', '.join(map(str, missing))}")
        if extra:
            parts.append(f"not in {names[0]}: {', '.join(map(str, extra))}")
        raise ColumnMismatchError(f"columns differ ({'; '.join(parts)})")
    to_convert = [c for c in real.columns if is_numeric(real[c]) and not is_numeric(other[c])]
    if not to_convert and list(other.columns) == list(real.columns):
        return other  # no copy: validation hands whole populations through here
    aligned = other[list(real.columns)].copy()
    for column in to_convert:
        try:
            aligned[column] = pd.to_numeric(aligned[column])
        except (TypeError, ValueError) as error:
            raise ColumnMismatchError(
                f"column '{column}' is numeric in {names[0]} but not in {names[1]}: {error}"
            ) from error
    return aligned


class LabelMismatchError(ColumnMismatchError):
    """A categorical column whose labels in the two tables have nothing in common."""


def _labels(series: pd.Series) -> list[str]:
    return sorted({str(v) for v in series.dropna().unique()})


def check_label_overlap(
    real: Table, other: Table, *, names: tuple[str, str] = ("real", "synthetic")
) -> None:
    """Refuse categorical columns whose observed labels in ``other`` share none with ``real``.

    ``sex`` coded F/M against female/male makes every category-based metric compare two
    disjoint distributions, which reads as bad utility (or, worse, as perfect privacy) rather
    than as the coding error it is. Partial overlap is left to the metrics: a rare category
    may legitimately be absent from one table.
    """
    columns = [c for c in categorical_columns(table_empty(real)) if c in other.columns]
    real_labels, other_labels = _table_labels(real, columns), _table_labels(other, columns)
    for column in columns:
        left, right = real_labels[column], other_labels[column]
        if left and right and not set(left) & set(right):
            raise LabelMismatchError(
                f"column '{column}': no label in common between {names[0]} {_show(left)} "
                f"and {names[1]} {_show(right)}; the two tables code it differently"
            )


def _table_labels(table: Table, columns: Sequence[str]) -> dict[str, list[str]]:
    """:func:`_labels` of each of ``columns``; of a file, in one pass over its row groups (those columns only)."""
    if not isinstance(table, ParquetTable):
        return {c: _labels(table[c]) for c in columns}
    labels: dict[str, set[str]] = {c: set() for c in columns}
    if columns:
        for block in table.select(list(columns)).frames():
            for column in columns:
                labels[column].update(_labels(block[column]))
    return {c: sorted(values) for c, values in labels.items()}


def _show(labels: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in labels[:limit])
    return "{" + shown + (f", ... ({len(labels)} in all)" if len(labels) > limit else "") + "}"


def sample_rows(frame: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``n`` rows drawn without replacement (all of them when ``n`` is None)."""
    if n is None or len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))]


#: A table the validation reads: in memory, or left in its Parquet file (read by row groups).
Table = pd.DataFrame | ParquetTable


def table_rows(table: Table) -> int:
    return table.num_rows if isinstance(table, ParquetTable) else len(table)


def table_empty(table: Table) -> pd.DataFrame:
    """No rows, the table's columns and dtypes (what a column's kind is decided on)."""
    return table.empty() if isinstance(table, ParquetTable) else table.iloc[:0]


def table_blocks(table: Table) -> Iterator[pd.DataFrame]:
    """The table's rows, a row group at a time from a file (the frame itself in memory)."""
    if isinstance(table, ParquetTable):
        yield from table.frames()
    else:
        yield table


def sample_positions(length: int, n: int, seed: int) -> np.ndarray:
    """The positions ``frame.sample(n=n, random_state=seed)`` takes of a frame of ``length`` rows
    (they depend on the length and the seed only), in the order it takes them."""
    return pd.RangeIndex(length).to_series().sample(n=n, random_state=seed).to_numpy()


def seeded_sample(frame: Table, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows drawn without replacement with ``seed``, index reset (all rows when fewer).

    A table on disk (``ParquetTable``, a view's columns only) gives the very rows and dtypes the
    frame read whole would: its positions are drawn from its length and taken a row group at a time.
    """
    if isinstance(frame, ParquetTable):
        rows = frame.num_rows
        return frame.take(sample_positions(rows, n, seed) if rows > n else np.arange(rows))
    return frame.sample(n=n, random_state=seed).reset_index(drop=True) if len(frame) > n else frame.reset_index(drop=True)


def replicate_samples(stacked: pd.DataFrame | ParquetTable, columns: Sequence[str], n: int, seed: int,
                      replicate: str = "replicate") -> list[pd.DataFrame]:
    """``seeded_sample(rows of r, n, seed)[columns]`` for each value r of ``replicate``, in order.

    The sample's positions are drawn first (``DataFrame.sample`` draws them from the length and
    the seed only), then only those rows are copied: a groupby would copy every replicate whole
    first, the size of the release again (1.7 GB for five replicates of 1.2 million persons).
    A table on disk (``ParquetTable``) is read a row group at a time, ``columns`` only.
    """
    if isinstance(stacked, ParquetTable):  # each replicate a view: its sample taken a row group at a time
        return [seeded_sample(stacked.where(replicate, [value]).select(list(columns)), n, seed)
                for value in stacked.values(replicate)]
    codes = stacked[replicate].to_numpy()
    wanted = stacked.columns.get_indexer(pd.Index(list(columns)))
    if (wanted < 0).any():
        raise KeyError(f"columns not in the table: {[c for c, i in zip(columns, wanted) if i < 0]}")
    samples = []
    for value in np.unique(codes):
        rows = seeded_sample(pd.DataFrame({"row": np.flatnonzero(codes == value)}), n, seed)["row"].to_numpy()
        samples.append(stacked.iloc[rows, wanted].reset_index(drop=True))
    return samples


def quantile_edges(values: pd.Series, bins: int) -> np.ndarray:
    """Interior edges of ``bins`` quantile bins of the observed values (duplicates dropped).

    Bins are right-closed, ``(-inf, e1], (e1, e2], ... (ek, inf)``: with a point mass
    at zero (96% of housing allowances) every interior quantile is 0, leaving the bins
    "zero or less" and "positive", which is exactly the distinction that matters.
    """
    observed = values.dropna().to_numpy(dtype=float)
    if observed.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(observed, np.arange(1, bins) / bins))


def factorize_together(series: Sequence[pd.Series]) -> tuple[list[np.ndarray], int]:
    """Integer codes of several columns on one shared coding; missing values get -1."""
    stacked = pd.concat(list(series), ignore_index=True)
    factor, uniques = pd.factorize(stacked, use_na_sentinel=True)
    return list(np.split(factor.astype(np.int64), np.cumsum([len(s) for s in series])[:-1])), len(uniques)


@dataclass(frozen=True)
class Discretised:
    """Integer level codes of several tables on a common coding, column by column.

    ``codes[i]`` is an ``(n_i, p)`` int64 array for the i-th table; ``levels[j]`` is the
    number of distinct codes column j can take (missing is a level of its own).
    """

    columns: list[str]
    codes: list[np.ndarray]
    levels: np.ndarray


def discretise(reference: pd.DataFrame, others: Sequence[pd.DataFrame], bins: int = 10) -> Discretised:
    """Code ``reference`` and ``others`` on levels defined by ``reference``.

    Numeric columns with more than ``bins`` distinct values in the reference are cut at
    the reference's quantiles (the same edges for every table, so a generator cannot
    move its own bins); numeric columns with few values (household size, economic status
    codes) keep their values as levels, since quantile bins would merge small classes for
    no reason. Categories are kept as is, values unseen in the reference get levels of
    their own so that they count as differences.
    """
    tables = [reference, *others]
    codes = [np.empty((len(t), reference.shape[1]), dtype=np.int64) for t in tables]
    levels = np.empty(reference.shape[1], dtype=np.int64)
    for j, column in enumerate(reference.columns):
        ref = reference[column]
        if is_numeric(ref) and ref.nunique(dropna=True) > bins:
            edges = quantile_edges(ref, bins)
            for out, table in zip(codes, tables):
                values = table[column].to_numpy(dtype=float)
                coded = np.searchsorted(edges, values, side="left")
                coded[np.isnan(values)] = edges.size + 1
                out[:, j] = coded
            levels[j] = edges.size + 2
        else:
            factors, n_values = factorize_together([t[column] for t in tables])
            for out, factor in zip(codes, factors):
                out[:, j] = np.where(factor < 0, n_values, factor)
            levels[j] = n_values + 1
    return Discretised(columns=list(reference.columns), codes=codes, levels=levels)


def joint_codes(codes: Sequence[np.ndarray], levels: np.ndarray) -> list[np.ndarray]:
    """Collapse several coded columns into one code per row, consistently across tables.

    Mixed-radix keys are compacted with ``np.unique`` so that a 3-way table of
    high-cardinality columns never needs an array of the full cross-product size.
    """
    keys = []
    for block in codes:
        key = np.zeros(block.shape[0], dtype=np.int64)
        for j in range(block.shape[1]):
            key = key * int(levels[j]) + block[:, j]
        keys.append(key)
    if int(np.prod(levels.astype(float))) <= 1 << 22:
        return keys
    _, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    return list(np.split(inverse, np.cumsum([len(k) for k in keys])[:-1]))
