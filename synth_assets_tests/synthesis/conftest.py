"""Small, fast test populations with the awkward features of real registers and surveys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

REGIONS = pd.CategoricalDtype(["north", "south", "east", "west", "atlantis"])  # atlantis unused
EDUCATION = pd.CategoricalDtype(["low", "mid", "high"], ordered=True)


def make_people(n_households: int = 300, seed: int = 0) -> pd.DataFrame:
    """Persons in households: heads, spouses and children with consistent ages.

    Person columns: ``hours`` is -8 ("not applicable") for children, 0 for the non-employed;
    ``income`` is 0 for about 40% of adults and missing for about 5% of persons;
    ``education`` is an ordered Categorical, missing for young children.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for hh in range(n_households):
        size = int(rng.choice([1, 2, 3, 4, 5], p=[0.3, 0.3, 0.2, 0.15, 0.05]))
        region = rng.choice(["north", "south", "east", "west"], p=[0.4, 0.3, 0.2, 0.1])
        tenure = rng.choice(["own", "rent"])
        hh_income = float(np.round(rng.lognormal(10, 0.5), 2))
        head_age = int(rng.integers(25, 80))
        for member in range(size):
            if member == 0:
                relation, age = "head", head_age
            elif member == 1:
                relation, age = "spouse", int(np.clip(head_age + rng.integers(-5, 6), 18, 90))
            else:
                relation, age = "child", int(rng.integers(0, max(1, head_age - 18)))
            adult = age >= 16
            employed = bool(adult and rng.random() < 0.6)
            hours = int(rng.integers(10, 50)) if employed else (0 if adult else -8)
            income = float(np.round(rng.lognormal(9 + 0.01 * age, 0.6), 2)) if employed else 0.0
            if rng.random() < 0.05:
                income = np.nan
            education = None if age < 6 else rng.choice(["low", "mid", "high"])
            rows.append(
                {
                    "household_id": 1000 + hh,
                    "household_size": size,
                    "region": region,
                    "tenure": tenure,
                    "household_income": hh_income,
                    "relation": relation,
                    "age": age,
                    "sex": rng.choice(["f", "m"]),
                    "employed": employed,
                    "hours": hours,
                    "income": income,
                    "education": education,
                }
            )
    people = pd.DataFrame(rows)
    people["region"] = people["region"].astype(REGIONS)
    people["education"] = people["education"].astype(EDUCATION)
    return people


@pytest.fixture(scope="session")
def people() -> pd.DataFrame:
    return make_people()


@pytest.fixture(scope="session")
def persons(people: pd.DataFrame) -> pd.DataFrame:
    """The same persons as a flat table (no household structure)."""
    return people.drop(columns=["household_id"])
