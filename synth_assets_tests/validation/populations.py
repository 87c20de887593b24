"""Small artificial populations with the awkward features of register data.

Income is zero for the non-employed and missing for children, status is missing for
children, weights are positive and continuous (so independent samples share no
identical record), and income depends on age and sex (so relations can be broken).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIONS = ["north", "south", "east", "west", "centre"]


def population(n: int, seed: int, income_scale: float = 1.0, region_p: list[float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 90, n)
    sex = rng.choice(["female", "male"], n)
    region = rng.choice(REGIONS, n, p=region_p or [0.3, 0.25, 0.2, 0.15, 0.1])
    adult = age >= 16
    employed = adult & (age < 65) & (rng.random(n) < 0.7)
    log_mean = 9.5 + 0.03 * np.clip(age, 16, 60) + 0.3 * (sex == "male")
    income = np.where(employed, np.round(income_scale * rng.lognormal(log_mean, 0.4), 2), 0.0)
    income[~adult] = np.nan
    other = rng.choice(["retired", "inactive"], n)
    status = np.where(employed, "employed", np.where(age >= 65, "retired", other)).astype(object)
    status[~adult] = None
    return pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "region": region,
            "hsize": rng.integers(1, 6, n),
            "status": status,
            "income": income,
            "weight": np.round(rng.uniform(50, 500, n), 3),
        }
    )


def shuffle_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Each column permuted independently: same marginals, no relations."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: frame[c].to_numpy()[rng.permutation(len(frame))] for c in frame.columns})
