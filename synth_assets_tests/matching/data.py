"""Synthetic recipient/donor pairs with a known data-generating process.

X = age, sex, region; Z = economic status and weekly hours (hours 0 unless
working) with annual hours = 52 × weekly hours exactly (a within-survey
relation a block hot deck must keep); Y = income, which depends on status
*beyond* X, so conditional independence is false and auxiliary information
has something to add.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

X = ["age", "sex", "region"]
Z = ["status", "hours", "annual_hours"]
REGIONS = ["north", "south", "east", "west", "island"]  # "island" is never drawn: an unused category


def population(n: int, seed: int) -> pd.DataFrame:
    """Persons with X, Y and Z all observed (the truth)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(16, 90, n)
    sex = rng.choice(["f", "m"], n)
    region = pd.Categorical(rng.choice(REGIONS[:4], n, p=[0.4, 0.3, 0.2, 0.1]), categories=REGIONS)
    p_work = 1 / (1 + np.exp(-(2.0 - 0.004 * (age - 40) ** 2 + 0.6 * (sex == "m"))))
    p_retired = np.where(age >= 60, 0.85, 0.02)
    u = rng.random(n)
    status = np.where(u < p_work, "work", np.where(u < p_work + (1 - p_work) * p_retired, "retired", "other"))
    hours = np.where(status == "work", np.clip(np.round(rng.normal(36, 7, n)), 5, 60), 0.0)
    income = np.select(
        [status == "work", status == "retired"],
        [rng.lognormal(9.6 + 0.01 * hours, 0.4, n), rng.lognormal(9.3, 0.3, n)],
        default=np.where(rng.random(n) < 0.7, 0.0, rng.lognormal(8.0, 0.5, n)),
    )
    return pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "region": region,
            "income": income,
            "status": pd.Categorical(status, categories=["work", "retired", "other"]),
            "hours": hours,
            "annual_hours": (52 * hours).astype(np.int64),
            "weight": rng.uniform(0.5, 2.5, n),
        }
    )


def survey_pair(
    n_recipient: int = 5000, n_donor: int = 2000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(recipient with X, Y; donor with X, Z; truth = the recipient rows with their hidden Z)."""
    truth = population(n_recipient, seed)
    donor = population(n_donor, seed + 1000).drop(columns=["income"])
    return truth.drop(columns=Z), donor, truth


def count_trainings(monkeypatch) -> list[int]:
    """Record every network ``neural_draw`` trains (one entry each) while the test runs."""
    from synth_assets.matching.methods import neural

    trained: list[int] = []
    fit_network = neural.fit_network

    def counted(*args, **kwargs):
        trained.append(1)
        return fit_network(*args, **kwargs)

    monkeypatch.setattr(neural, "fit_network", counted)
    return trained
