"""Rows of one table equal to rows of another: the structure matches of the household redraws."""

from __future__ import annotations

import numpy as np
import pandas as pd


def batch_rows(missing: int, round_: int) -> int:
    """Rows to draw in round ``round_`` (from 0) of a search for ``missing`` wanted rows: twenty per
    row (at least 1,000), doubled each round, at most 500,000 (one batch's memory)."""
    return min(max(1000, 20 * missing) * 2**round_, 500_000)


def match_rows(wanted: pd.DataFrame, candidates: pd.DataFrame) -> np.ndarray:
    """For each wanted row, a distinct candidate row equal to it (its position), or -1.

    Candidates are taken in order: the k-th wanted row of a structure gets the k-th candidate
    of that structure.
    """
    def keys(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(pd.util.hash_pandas_object(frame, index=False).to_numpy())

    w, c = keys(wanted), keys(candidates)
    w_rank = w.groupby(w).cumcount().to_numpy()
    c_rank = c.groupby(c).cumcount().to_numpy()
    lookup = pd.Series(np.arange(len(c)), index=pd.MultiIndex.from_arrays([c.to_numpy(), c_rank]))
    hit = lookup.reindex(pd.MultiIndex.from_arrays([w.to_numpy(), w_rank]))
    return hit.fillna(-1).to_numpy(dtype=np.int64)
