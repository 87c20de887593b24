"""What kind of column a column is, decided in one place for every stage."""

from __future__ import annotations

import pandas as pd


def is_numeric(series: pd.Series) -> bool:
    """Numbers are numeric; booleans are categories (a share, not a magnitude)."""
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))
