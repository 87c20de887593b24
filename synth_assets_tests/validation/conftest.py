"""Shared samples: a training set, a holdout and an independent 'synthetic' sample,
all drawn from one population, plus evaluations reused by several test modules."""

from __future__ import annotations

import pandas as pd
import pytest

from synth_assets.validation import evaluate
from synth_assets_tests.validation.populations import population

N = 1500


@pytest.fixture(scope="session")
def train() -> pd.DataFrame:
    return population(N, seed=1)


@pytest.fixture(scope="session")
def holdout() -> pd.DataFrame:
    return population(N, seed=2)


@pytest.fixture(scope="session")
def independent() -> pd.DataFrame:
    return population(N, seed=3)


@pytest.fixture(scope="session")
def copy_result(train, holdout):
    """The worst generator: it publishes its training data."""
    return evaluate(train, train.copy(), holdout=holdout, quasi_identifiers=["age", "sex", "region"], sensitive=["income"])


@pytest.fixture(scope="session")
def independent_result(train, holdout, independent):
    """The ideal generator: a fresh sample from the population."""
    return evaluate(
        train,
        independent,
        holdout=holdout,
        quasi_identifiers=["age", "sex", "region"],
        sensitive=["income"],
        rules=["age >= 0", "not (age < 16 and income > 0)"],
    )
