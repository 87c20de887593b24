"""Train/holdout split by group, so that no household sits on both sides."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_masks(
    keys: np.ndarray | pd.Series, holdout_fraction: float, *, seed: int = 0, max_training_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over the rows of ``keys`` (each row's group: its household): (training, holdout).

    Each group is held out with probability ``holdout_fraction``. With ``max_training_rows``, the
    training side is a seeded simple random sample of the other groups, drawn whole until the next
    would pass that many rows; the groups left out are on neither side. A model's working set then
    stops growing with the population (bench/README.md, issue 16): a sample of households is
    unbiased for the population's joint distribution, and the release is calibrated to the
    register's margins afterwards.
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    if max_training_rows is not None and max_training_rows < 1:
        raise ValueError(f"max_training_rows must be at least 1, got {max_training_rows}")
    rng = np.random.default_rng(seed)
    codes, unique = pd.factorize(np.asarray(keys), use_na_sentinel=False)  # groups in order of first appearance
    held = rng.random(len(unique)) < holdout_fraction
    trained = ~held
    if max_training_rows is not None and int(np.count_nonzero(trained[codes])) > max_training_rows:
        sizes = np.bincount(codes, minlength=len(unique))
        candidates = rng.permutation(np.flatnonzero(trained))
        kept = candidates[np.cumsum(sizes[candidates]) <= max_training_rows]
        trained = np.zeros(len(unique), dtype=bool)
        trained[kept] = True
    return trained[codes], held[codes]


def split_by_group(
    data: pd.DataFrame, group: str | None, holdout_fraction: float, *, seed: int = 0,
    max_training_rows: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (train, holdout) keeping every ``group`` (household) whole (:func:`split_masks`).

    Without a group column, rows are split individually.
    """
    keys = data[group].to_numpy() if group else np.arange(len(data))
    train, holdout = split_masks(keys, holdout_fraction, seed=seed, max_training_rows=max_training_rows)
    return data.loc[train].reset_index(drop=True), data.loc[holdout].reset_index(drop=True)
