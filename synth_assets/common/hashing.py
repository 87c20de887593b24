"""Content hashes: of files, of whole tables, and of single rows compared across tables.

Row hashes compare records after normalising values: numbers rounded to 6 significant
digits (a float written to CSV and read back, or 34 vs 34.0, is the same value), missing
equals missing, categories compared as text. Each normalised row is hashed (64 bits),
which keeps a comparison of two tables linear in their number of rows. The privacy
metrics, the synthesiser's copy filter and the audit all use these same hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synth_assets.common.columns import is_numeric


def file_sha256(path: Path | str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Rows hashed at a time: pandas' row hashes take 8 bytes per cell while a column is hashed (and
#: normalised rows a text copy of each category), more than the table itself; by blocks of rows
#: that working set is one block's. Row hashes are row by row, so the result is the same.
HASH_ROWS = 100_000


class TableSha256:
    """:func:`dataframe_sha256` of a table given a block of rows at a time (in order): ``update``
    each block, then ``hexdigest``. The same hash as of the blocks joined, with one block in memory."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._columns: list[str] | None = None
        self.blocks = 0

    def update(self, block: pd.DataFrame) -> None:
        columns = list(map(str, block.columns))
        if self._columns is not None and columns != self._columns:
            raise ValueError(f"block columns {columns} differ from the first block's {self._columns}")
        self._columns = columns
        self.blocks += 1
        for start in range(0, len(block), HASH_ROWS):
            rows = block.iloc[start:start + HASH_ROWS]
            self._digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())

    def hexdigest(self) -> str:
        digest = self._digest.copy()
        digest.update("|".join(self._columns or []).encode())
        return digest.hexdigest()


def dataframe_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table that does not depend on how it was serialised."""
    hasher = TableSha256()
    hasher.update(df)
    return hasher.hexdigest()


_SIGNIFICANT_DIGITS = 6
#: Rounding goes up from .5137 rather than .5. Recorded values are decimal (cents), so a
#: 7-digit amount like 12345.65 sits exactly on the usual .5 boundary and one ulp of
#: float noise from a generator or a file round trip would flip it; the shifted
#: boundary is at least 0.0037 of a unit away from any value with one more decimal.
_ROUNDING_OFFSET = 0.5 - 0.0137


#: 10**e for every exponent a float64's parts can take (``_number_parts``), by ``e + _POWER_OFFSET``:
#: a table read costs a fifth of computing the power per value, a large part of the row hashes in the
#: copy filters' many calls; the same numbers as ``10.0 ** e`` (the same computation, done once).
_POWER_OFFSET = 340
with np.errstate(over="ignore"):
    _POWERS_OF_TEN = 10.0 ** np.arange(-_POWER_OFFSET, _POWER_OFFSET, dtype=np.int64)


def _number_parts(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(mantissa, exponent) integer pair of each number at 6 significant digits.

    Computed over the whole column at once (missing, infinite and zero values through ``np.where``,
    not boolean indexing): the same parts as computed value by value, in about two thirds of the time."""
    x = values.to_numpy(dtype=float)
    finite = np.isfinite(x) & (x != 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exponent = np.floor(np.log10(np.abs(np.where(finite, x, 1.0)))).astype(np.int64)
        exponent -= np.where(finite, _SIGNIFICANT_DIGITS - 1, 0)  # 0 where not finite, as 1.0's
        scaled = x / _POWERS_OF_TEN[exponent + _POWER_OFFSET]
        mantissa = np.where(finite, np.sign(scaled) * np.floor(np.abs(scaled) + _ROUNDING_OFFSET), 0.0)
    carried = np.abs(mantissa) >= 10**_SIGNIFICANT_DIGITS  # 9.999995 rounds up a digit
    if carried.any():
        mantissa[carried] /= 10
        exponent[carried] += 1
    mantissa = np.where(np.isnan(x), np.inf, mantissa)  # missing: a value no number takes
    infinite = np.isinf(x)
    if infinite.any():
        mantissa[infinite] = np.sign(x[infinite]) * 2.0**60
    return mantissa, exponent


def _normalised_hashes(frame: pd.DataFrame, columns: Sequence[str], numeric: set[str]) -> np.ndarray:
    """The hashes of the normalised rows: each normalised column hashed as pandas hashes a frame's
    column (``pd.util.hash_array``), the columns combined as it combines them (a number as two
    columns, mantissa and exponent; any other value as text). No frame is made: pandas' cost per
    frame and per column, not the hashing, was most of it for the copy filters' many small redraws
    (``bench/README.md``, "Fourteenth pass"). The hashes are ``hash_pandas_object``'s of the
    normalised frame (tested)."""
    hashes: list[np.ndarray] = []
    for column in columns:
        hashes += _column_hashes(frame[column], column in numeric)
    return _combined(hashes, len(frame))


def _column_hashes(values: pd.Series, as_number: bool) -> list[np.ndarray]:
    """One column's normalised hashes, as :func:`_normalised_hashes` combines them: a number's two parts
    (mantissa and exponent), any other value's text."""
    if as_number:
        return [pd.util.hash_array(part) for part in _number_parts(values)]
    text = _as_text(values)
    return [pd.util.hash_array(text.array if isinstance(text.dtype, pd.CategoricalDtype) else text.to_numpy())]


class ColumnHashes:
    """One frame's row hashes on several sets of its columns, each column's normalised hashes computed
    once whichever sets name it: the copy filters hash a generated chunk on every reference's shared
    columns (the matched dataset's, each survey's: the register's columns every time), which hashed
    each number column about four times per check (bench/README.md, "Forty-fourth pass"). It holds 8
    bytes a row per text column hashed and 16 per number column: hand it a block of rows."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._hashes: dict[tuple[str, bool], list[np.ndarray]] = {}

    def rows(self, columns: Sequence[str], numbers: Collection[str]) -> np.ndarray:
        """:func:`row_hashes` of the frame's ``columns`` once each is made what the comparison takes: a
        column of ``numbers`` holding text read as numbers (what cannot be, missing), any other column
        holding numbers written out as text."""
        hashes: list[np.ndarray] = []
        for column in columns:
            key = (column, column in numbers)
            if key not in self._hashes:
                values = self.frame[column]
                if key[1] and not is_numeric(values):
                    values = pd.to_numeric(values.astype("string"), errors="coerce")
                elif not key[1] and is_numeric(values):
                    values = values.astype(object)
                self._hashes[key] = _column_hashes(values, is_numeric(values))
            hashes += self._hashes[key]
        return _combined(hashes, len(self.frame))


def _combined(hashes: Sequence[np.ndarray], rows: int) -> np.ndarray:
    """One hash per row from its columns' hashes: pandas' ``combine_hash_arrays`` (CPython's tuple
    hash), which ``hash_pandas_object`` of a frame applies to its columns in order."""
    out = np.full(rows, 0x345678, dtype=np.uint64)
    multiplier = np.uint64(1000003)
    for i, column in enumerate(hashes):
        out ^= column
        out *= multiplier
        multiplier += np.uint64(82520 + 2 * (len(hashes) - i))
    out += np.uint64(97531)
    return out


_MISSING_TEXT = "\x00<NA>"


def _as_text(values: pd.Series) -> pd.Series:
    """Each value as text, missing as a text no value takes.

    A categorical stays categorical, its categories as text: pandas hashes a categorical's
    categories once and takes them by code, the same hashes as of its values as text, ten times
    faster than writing every value out (the copy filters hash every generated chunk).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        text = pd.Index([*values.cat.categories.astype(str), _MISSING_TEXT])
        if text.is_unique:  # else two categories write alike (1 and "1"): they must hash alike too
            codes = values.cat.codes.to_numpy().copy()
            codes[codes < 0] = len(text) - 1
            return pd.Series(pd.Categorical.from_codes(codes, categories=text), index=values.index)
    return values.astype(str).where(values.notna(), _MISSING_TEXT)


def in_sorted(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``reference``, sorted ascending (``np.unique``'s output): ``np.isin``
    by binary search. ``np.isin`` sorts or hashes ``reference`` again at every call, the copy
    filters' cost: at 300,000 persons their tens of thousands of calls on a few hundred redrawn
    rows each spent 80 of the release step's 460 s in it, against hash indexes of up to a million
    records; a search costs the values' count times log of the reference's."""
    values = np.asarray(values)
    if not len(reference) or not len(values):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(reference, values)
    at[at == len(reference)] = 0  # beyond the largest: compared with the first, a value it is not
    return reference[at] == values


def row_hashes(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> list[np.ndarray]:
    """64-bit hashes of normalised rows, comparable across ``frames``.

    A column is compared as numbers only if it is numeric in every frame; otherwise all
    frames compare it as text (so 3 and "3" still match).
    """
    numeric = numeric_in_all(frames, columns)
    return [_block_hashes(f, columns, numeric) for f in frames]


def numeric_in_all(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> set[str]:
    """The ``columns`` that :func:`row_hashes` compares as numbers: numeric in every frame (a dtype
    question, so frames of no rows with the tables' dtypes answer it for tables read by blocks)."""
    return {c for c in columns if all(is_numeric(f[c]) for f in frames)}


def block_row_hashes(blocks: Iterable[pd.DataFrame], columns: Sequence[str], numeric: set[str]) -> np.ndarray:
    """:func:`row_hashes` of a table given a block of rows at a time (``numeric`` from
    :func:`numeric_in_all` over every table compared): the same hashes, one block in memory."""
    parts = [_block_hashes(block, columns, numeric) for block in blocks]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)


def _block_hashes(frame: pd.DataFrame, columns: Sequence[str], numeric: set[str]) -> np.ndarray:
    """Row hashes of ``frame`` normalised ``HASH_ROWS`` rows at a time (the normalised copy is one block's)."""
    if len(frame) <= HASH_ROWS:
        return _normalised_hashes(frame, columns, numeric)
    out = np.empty(len(frame), dtype=np.uint64)
    for start in range(0, len(frame), HASH_ROWS):
        block = frame.iloc[start:start + HASH_ROWS]
        out[start:start + len(block)] = _normalised_hashes(block, columns, numeric)
    return out


#: The hash of a missing key value (any constant: rows missing a value compare equal on it).
_MISSING_KEY_HASH = np.uint64(0x9E3779B97F4A7C15)


def key_hashes(table: pa.Table, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the rows' exact values of ``columns`` (a key), and which rows hold a value of it.

    Exact, unlike :func:`row_hashes`: ids that round alike stay apart. The values are hashed by the
    column's Arrow type, which a Parquet file keeps in every row group (pandas would make an integer
    column a float one in a row group with a missing value, and 2 and 2.0 hash apart): so the hashes of
    two row groups compare. Equal values hash equal; unequal ones may too (a collision), so a caller
    confirms what the hashes find on the values themselves.
    """
    hashes = []
    present = np.zeros(table.num_rows, dtype=bool)
    for name in columns:
        column = table.column(name).combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        kind = column.type
        if pa.types.is_boolean(kind) or pa.types.is_signed_integer(kind):
            values = pc.cast(column, pa.int64()).fill_null(0).to_numpy()
        elif pa.types.is_unsigned_integer(kind):
            values = pc.cast(column, pa.uint64()).fill_null(0).to_numpy()
        elif pa.types.is_floating(kind):
            values = pc.cast(column, pa.float64()).fill_null(0.0).to_numpy()
            valid &= ~np.isnan(values)  # NaN is missing, as pandas reads it
            values = values + 0.0  # -0.0 is 0.0
        else:  # text, dates and anything else: by its text
            values = pc.cast(column, pa.string()).fill_null("").to_numpy(zero_copy_only=False)
        hashed = pd.util.hash_array(values)
        hashed[~valid] = _MISSING_KEY_HASH
        hashes.append(hashed)
        present |= valid
    return _combined(hashes, table.num_rows), present
