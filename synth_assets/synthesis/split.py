"""Train/holdout split by group, so that no household sits on both sides."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Households a stratum may hold (among those not held out) and still be taken whole into a capped
#: training sample: a sample at rate f misses a stratum of c households with probability (1 - f)^c,
#: and a model that draws from its training records (CART's donors) could then never draw its
#: structure, so the release could not be calibrated to it. At 1.2 million persons and a cap of
#: 400,000 (f = 0.42), 2.8 of 417 strata (municipality x type x size) would be missed (bench/README.md,
#: "Twelfth pass"); taken whole below 30 households, none (0.58^30 = 8e-8 each).
TAKE_ALL_BELOW = 30


def split_masks(
    keys: np.ndarray | pd.Series, holdout_fraction: float, *, seed: int = 0, max_training_rows: int | None = None,
    strata: np.ndarray | pd.Series | None = None, take_all_below: int = TAKE_ALL_BELOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over the rows of ``keys`` (each row's group: its household): (training, holdout).

    Each group is held out with probability ``holdout_fraction``. With ``max_training_rows``, the
    training side is a seeded simple random sample of the other groups, drawn whole until the next
    would pass that many rows; the groups left out are on neither side. A model's working set then
    stops growing with the population (bench/README.md, issue 16): a sample of households is
    unbiased for the population's joint distribution, and the release is calibrated to the
    register's margins afterwards.

    ``strata`` (each row's, constant within a group: the household structure the release is
    calibrated on): with the cap, the groups of a stratum with fewer than ``take_all_below``
    groups not held out are all kept, and the rest sampled within what they leave of the cap, so
    no structure goes missing from the sample. A rare stratum is then over-represented by at most
    1/f, which the calibration's choice of households by stratum undoes.
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
        whole = np.zeros(len(unique), dtype=bool)
        if strata is not None:
            first = np.unique(codes, return_index=True)[1]  # each group's first row
            stratum, _ = pd.factorize(np.asarray(strata)[first], use_na_sentinel=False)
            in_stratum = np.bincount(stratum[trained], minlength=int(stratum.max()) + 1)
            whole = trained & (in_stratum[stratum] < take_all_below)
        budget = max_training_rows - int(sizes[whole].sum())
        candidates = rng.permutation(np.flatnonzero(trained & ~whole))
        kept = candidates[np.cumsum(sizes[candidates]) <= budget]
        trained = whole.copy()
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
