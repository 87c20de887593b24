"""Content hashes: of files, of whole tables, and of single rows compared across tables.

Row hashes compare records after normalising values: numbers rounded to 6 significant
digits (a float written to CSV and read back, or 34 vs 34.0, is the same value), missing
equals missing, categories compared as text. Each normalised row is hashed (64 bits),
which keeps a comparison of two tables linear in their number of rows. The privacy
metrics, the synthesiser's copy filter and the audit all use these same hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric


def file_sha256(path: Path | str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataframe_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table that does not depend on how it was serialised."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update("|".join(map(str, df.columns)).encode())
    return digest.hexdigest()


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
