"""Train/holdout split by group, so that no household sits on both sides."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_by_group(
    data: pd.DataFrame, group: str | None, holdout_fraction: float, *, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (train, holdout) keeping every ``group`` (household) whole.

    Without a group column, rows are split individually.
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    rng = np.random.default_rng(seed)
    keys = data[group].to_numpy() if group else np.arange(len(data))
    unique = pd.unique(keys)
    held = rng.random(len(unique)) < holdout_fraction
    in_holdout = pd.Series(keys).isin(unique[held]).to_numpy()
    return data.loc[~in_holdout].reset_index(drop=True), data.loc[in_holdout].reset_index(drop=True)
