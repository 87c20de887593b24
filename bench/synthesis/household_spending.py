"""Food spending ~ household size + labour income, person level: training sample vs the household model.

Reproduces the README's figures on the household model's `stratum` and `household_totals`
(model "The model" table): run after `make run`, which leaves the training sample in the warehouse.

    PYTHONPATH=. .venv/bin/python bench/synthesis/household_spending.py [--wave 2024] [--draws 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.catalog import load_catalog
from synth_assets.synthesis import build_population_synthesizer


def coefficients(data: pd.DataFrame) -> tuple[float, float]:
    """OLS of spend_food on household_size and labour_income: the two slopes."""
    d = data.dropna(subset=["spend_food", "household_size", "labour_income"])
    x = np.column_stack([np.ones(len(d)), d["household_size"], d["labour_income"]]).astype(float)
    beta = np.linalg.lstsq(x, d["spend_food"].to_numpy(float), rcond=None)[0]
    return float(beta[1]), float(beta[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--wave", default="2024")
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    catalog = load_catalog(args.data / "catalog.yaml")
    register = catalog.register
    training = pd.read_parquet(args.data / "warehouse" / "training_sample" / f"{args.wave}.parquet")
    size, income = coefficients(training)
    print(f"training sample: household size {size:.1f}, labour income {income:.2e}")
    variants = {
        "neither": {"household_params": {"stratum": None}, "person_params": {"stratum": None}, "totals": ()},
        "stratum and household totals (default)": {"totals": tuple(catalog.register_amounts())},
    }
    for name, variant in variants.items():
        model = build_population_synthesizer(
            "cart", person_family="cart", household_id=register.household_id_column, person_id=register.id_column,
            blocks=[[v for v in s.specific if v in training] for s in catalog.surveys.values()],
            household_level=catalog.household_variables(), household_totals=variant["totals"],
        )
        for side in ("household_params", "person_params"):  # None: no stratum
            getattr(model, side).update(variant.get(side, {}))
        model.fit(training.drop(columns=[register.id_column]))
        slopes = [coefficients(model.posterior_draw(d).sample(len(training), seed=d)) for d in range(args.draws)]
        print(f"{name}: household size " + ", ".join(f"{s:.1f}" for s, _ in slopes)
              + "; labour income " + ", ".join(f"{i:.2e}" for _, i in slopes))


if __name__ == "__main__":
    main()
