"""Validation's threaded pieces: one thread against ``--jobs`` (default 2), the same figures.

    PYTHONPATH=. .venv/bin/python bench/validation/threads.py [--rows 20000] [--jobs 2] [--repeats 5]

On two seeded demo-like tables of ``--rows`` persons each (a real and a synthetic sample, the
validation report's sample size): the CART propensity pMSE with its 10 permutation fits and
the fold-wise propensity AUC (``pmse``), the Gower DCR and the membership-inference AUC
(``dcr``, ``membership_inference_auc``). Prints the median seconds of ``--repeats`` runs of
each, on one thread and on ``--jobs``, their ratio, and whether the figures are equal.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from synth_assets.validation.privacy.distance import dcr, membership_inference_auc
from synth_assets.validation.utility.propensity import pmse


def table(rows: int, seed: int) -> pd.DataFrame:
    """A person table like the release's analysis columns: ages, sizes, incomes, categories."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 95, rows)
    return pd.DataFrame({
        "age": age,
        "household_size": rng.integers(1, 8, rows),
        "labour_income": np.where(age > 17, rng.lognormal(10, 1, rows), 0.0).round(0),
        "pension": np.where(age > 64, rng.lognormal(9.5, 0.5, rows), 0.0).round(0),
        "hours_worked": np.where(age > 17, rng.integers(0, 50, rows), 0),
        "sex": pd.Categorical(rng.choice(["f", "m"], rows)),
        "municipality": pd.Categorical(rng.choice([f"m{i}" for i in range(19)], rows)),
        "education": pd.Categorical(rng.choice(["low", "middle", "high"], rows)),
        "tenure": pd.Categorical(rng.choice(["owner", "tenant", "free"], rows)),
        "health": pd.Categorical(rng.choice(["good", "fair", "bad"], rows, p=[0.6, 0.3, 0.1])),
    })


def median_seconds(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    real, synthetic, holdout = table(args.rows, 1), table(args.rows, 2), table(args.rows, 3)
    pieces = {
        "pMSE (11 CART fits) and propensity AUC (5 folds)": lambda jobs: pmse(real, synthetic, "cart", seed=0,
                                                                               n_jobs=jobs),
        "DCR (3 Gower searches)": lambda jobs: dcr(synthetic, real, holdout, seed=0, n_jobs=jobs).metrics(),
        "MIA AUC (2 Gower searches)": lambda jobs: membership_inference_auc(synthetic, real, holdout, seed=0,
                                                                           n_jobs=jobs),
    }
    print(f"{args.rows:,} rows a table, median of {args.repeats}\n")
    print(f"| piece | 1 thread: s | {args.jobs} threads: s | ratio | same figures |\n|---|---|---|---|---|")
    for name, run in pieces.items():
        one, expected = median_seconds(lambda run=run: run(1), args.repeats)
        many, got = median_seconds(lambda run=run: run(args.jobs), args.repeats)
        print(f"| {name} | {one:.2f} | {many:.2f} | {one / many:.2f} | {got == expected} |", flush=True)


if __name__ == "__main__":
    main()
