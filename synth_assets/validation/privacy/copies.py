"""Exact copies of real records in the synthetic data.

Rows are compared on their shared columns after normalising values: numbers rounded to
6 significant digits (a float written to CSV and read back, or 34 vs 34.0, is the same
value), missing equals missing, categories compared as text. Each normalised row is
hashed (64 bits), which keeps the comparison linear in the number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from synth_assets.validation._tables import is_numeric

_SIGNIFICANT_DIGITS = 6
#: Rounding goes up from .5137 rather than .5. Recorded values are decimal (cents), so a
#: 7-digit amount like 12345.65 sits exactly on the usual .5 boundary and one ulp of
#: float noise from a generator or a file round trip would flip it; the shifted
#: boundary is at least 0.0037 of a unit away from any value with one more decimal.
_ROUNDING_OFFSET = 0.5 - 0.0137


def _normalise_numbers(values: pd.Series) -> pd.DataFrame:
    """(mantissa, exponent) integer pair of each number at 6 significant digits."""
    x = values.to_numpy(dtype=float)
    finite = np.isfinite(x) & (x != 0)
    exponent = np.zeros(x.shape, dtype=np.int64)
    exponent[finite] = np.floor(np.log10(np.abs(x[finite]))).astype(np.int64) - (_SIGNIFICANT_DIGITS - 1)
    mantissa = np.zeros(x.shape, dtype=np.float64)
    scaled = x[finite] / 10.0 ** exponent[finite]
    mantissa[finite] = np.sign(scaled) * np.floor(np.abs(scaled) + _ROUNDING_OFFSET)
    carried = np.abs(mantissa) >= 10**_SIGNIFICANT_DIGITS  # 9.999995 rounds up a digit
    mantissa[carried] /= 10
    exponent[carried] += 1
    mantissa[np.isnan(x)] = np.inf  # missing: a value no number takes
    mantissa[np.isinf(x)] = np.sign(x[np.isinf(x)]) * 2.0**60
    return pd.DataFrame({"m": mantissa, "e": exponent})


def _normalise(frame: pd.DataFrame, columns: Sequence[str], numeric: set[str]) -> pd.DataFrame:
    parts = []
    for column in columns:
        if column in numeric:
            part = _normalise_numbers(frame[column])
            part.columns = [f"{column}\x00m", f"{column}\x00e"]
        else:
            values = frame[column]
            part = pd.DataFrame({column: values.astype(str).where(values.notna(), "\x00<NA>")})
        parts.append(part.reset_index(drop=True))
    return pd.concat(parts, axis=1)


def row_hashes(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> list[np.ndarray]:
    """64-bit hashes of normalised rows, comparable across ``frames``.

    A column is compared as numbers only if it is numeric in every frame; otherwise all
    frames compare it as text (so 3 and "3" still match).
    """
    numeric = {c for c in columns if all(is_numeric(f[c]) for f in frames)}
    return [
        pd.util.hash_pandas_object(_normalise(f, columns, numeric), index=False).to_numpy() for f in frames
    ]


def _shared_columns(synthetic: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    columns = [c for c in synthetic.columns if c in reference.columns]
    if not columns:
        raise ValueError("synthetic and reference data share no column")
    return columns


def exact_copy_rate(synthetic: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Share of synthetic rows identical (on all shared columns) to some reference row."""
    if len(synthetic) == 0:
        return float("nan")
    syn, ref = row_hashes([synthetic, reference], _shared_columns(synthetic, reference))
    return float(np.isin(syn, ref).mean())


def replicated_uniques(
    synthetic: pd.DataFrame, reference: pd.DataFrame, quasi_identifiers: Sequence[str] | None = None
) -> dict[str, float]:
    """Reference records unique on the quasi-identifiers and replicated in the synthetic data.

    synthpop's ``replicated.uniques``: a record unique in the real data on its key
    (here the quasi-identifiers; all shared columns when None) is "replicated" when a
    synthetic record has the same key AND the same values on every other shared column,
    i.e. the one person who could be recognised has been copied whole.
    """
    columns = _shared_columns(synthetic, reference)
    keys = list(columns if quasi_identifiers is None else quasi_identifiers)
    unknown = [k for k in keys if k not in columns]
    if unknown:
        raise ValueError(f"quasi-identifier(s) not in both tables: {', '.join(unknown)}")
    ref_keys, _ = row_hashes([reference, synthetic], keys)
    ref_rows, syn_rows = row_hashes([reference, synthetic], columns)
    key_counts = pd.Series(ref_keys).map(pd.Series(ref_keys).value_counts()).to_numpy()
    unique = key_counts == 1
    replicated = unique & np.isin(ref_rows, syn_rows)
    n_unique, n_replicated = int(unique.sum()), int(replicated.sum())
    return {
        "n_unique": n_unique,
        "n_replicated": n_replicated,
        "share_of_records": n_replicated / len(reference) if len(reference) else float("nan"),
        "share_of_uniques": n_replicated / n_unique if n_unique else 0.0,
    }
