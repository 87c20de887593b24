"""Spread of the singling-out risk over the attack's seeds: one replicate against the five pooled.

On a finished run's data root (`--data`): the training and holdout samples and the release
(`fictitious_dataset`) as the validation report takes them (seeded samples of `--max-rows`),
the attack run with each seed on replicate 1 alone and on every replicate pooled (what the
gate judges). `--reference` adds a model-free row: an independent real population from the
same generator (e.g. `synth-assets demo-data --seed 777`'s truth), split into as many parts
as the release has replicates, in the release's place.

    PYTHONPATH=. .venv/bin/python bench/validation/singling_out_spread.py --data data \
        --reference /tmp/demo777/truth/population_2024.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.validation.preparation import seeded_sample
from synth_assets.validation.privacy.singling_out import singling_out_risk

IDS = {"person_id", "household_id", "replicate"}


def _spread(name: str, parts: list[pd.DataFrame], real: pd.DataFrame, holdout: pd.DataFrame, seeds: int) -> None:
    one = [singling_out_risk(parts[0], real, holdout, seed=s).risk for s in range(seeds)]
    pooled = [singling_out_risk(parts, real, holdout, seed=s).risk for s in range(seeds)]
    for label, risks in (("one replicate", one), (f"{len(parts)} pooled", pooled)):
        print(f"| {name} | {label} | {min(risks):.3f} | {np.median(risks):.3f} | {max(risks):.3f} | "
              f"{np.std(risks):.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--wave", default="2024")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--max-rows", type=int, default=20_000)
    parser.add_argument("--reference", type=Path, default=None)
    args = parser.parse_args()
    warehouse = args.data / "warehouse"
    train = pd.read_parquet(warehouse / "training_sample" / f"{args.wave}.parquet")
    holdout = pd.read_parquet(warehouse / "holdout_sample" / f"{args.wave}.parquet")
    release = pd.read_parquet(warehouse / "fictitious_dataset" / f"{args.wave}.parquet")
    columns = [c for c in train.columns if c not in IDS]
    n = min(args.max_rows, len(train), len(holdout))
    real, held = seeded_sample(train[columns], n, 0), seeded_sample(holdout[columns], n, 0)
    replicates = [seeded_sample(release.loc[release["replicate"] == r, columns].reset_index(drop=True), n, 0)
                  for r in sorted(release["replicate"].unique())]
    print("| synthetic data | attack on | min | median | max | std |\n|---|---|---|---|---|---|")
    _spread(str(args.data), replicates, real, held, args.seeds)
    if args.reference is not None:
        other = pd.read_parquet(args.reference)[columns]
        for c in columns:  # the reference's dtypes as the pipeline's tables have them
            if isinstance(real[c].dtype, pd.CategoricalDtype):
                other[c] = other[c].astype(real[c].dtype)
        order = np.random.default_rng(0).permutation(len(other))
        parts = [other.iloc[order[i * n:(i + 1) * n]].reset_index(drop=True) for i in range(len(replicates))]
        _spread(f"independent population ({args.reference.name})", parts, real, held, args.seeds)


if __name__ == "__main__":
    main()
