"""Singling-out risk of a finished run's release, seed by seed, beside a model-free reference.

On a finished run's data root (`--data`): the training and holdout samples and the release's
replicates as the validation report samples them (`--max-rows` rows each, the seed's samples),
the attack run with each seed as the gate runs it (every replicate's predicates pooled). The
reference puts real persons the model never saw in the release's place: half the holdout, one
copy per replicate, the other half as the control; its risk is the attack's noise at this size,
with no model involved (a gate threshold is judged against it, never loosened).

    PYTHONPATH=. .venv/bin/python bench/validation/singling_out_release.py --data ROOT --seeds 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from synth_assets.catalog import load_catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.defs.validation.assets import _analysis_columns
from synth_assets.validation.preparation import replicate_samples, seeded_sample
from synth_assets.validation.privacy.singling_out import singling_out_risk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-rows", type=int, default=20_000)
    args = parser.parse_args()
    warehouse = args.data / "warehouse"
    wave = sorted(p.stem for p in (warehouse / "fictitious_dataset").glob("*.parquet"))[-1]
    catalog = load_catalog(args.data / "catalog.yaml")
    training = ParquetTable(warehouse / "training_sample" / f"{wave}.parquet")
    holdout = ParquetTable(warehouse / "holdout_sample" / f"{wave}.parquet")
    release = ParquetTable(warehouse / "fictitious_dataset" / f"{wave}.parquet")
    columns = _analysis_columns(training.empty(), catalog)
    n = min(args.max_rows, holdout.num_rows, training.num_rows)
    unseen = holdout.select(columns).read()
    half = len(unseen) // 2
    m = min(n, half)
    print(f"release: {release.num_rows:,} rows; samples of {n:,}; reference halves of {m:,}\n")
    print("| seed | release: risk | CI | predicates | reference: risk | CI | predicates |\n|---|---|---|---|---|---|---|")
    risks: dict[str, list[float]] = {"release": [], "reference": []}
    for seed in range(args.seeds):
        real = seeded_sample(training.select(columns), n=n, seed=seed)
        control = seeded_sample(holdout.select(columns), n=n, seed=seed)
        replicates = replicate_samples(release, columns, n, seed)
        shuffled = unseen.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        found = {
            "release": singling_out_risk(replicates, real, control, seed=seed),
            "reference": singling_out_risk([shuffled.iloc[:m]] * len(replicates), real.iloc[:m].reset_index(drop=True),
                                           shuffled.iloc[half:half + m].reset_index(drop=True), seed=seed),
        }
        cells = []
        for name, risk in found.items():
            risks[name].append(risk.risk)
            cells.append(f"{risk.risk:.4f} | [{risk.ci_low:.3f}, {risk.ci_high:.3f}] | {risk.attack.n_total}")
        print(f"| {seed} | {' | '.join(cells)} |", flush=True)
    for name, values in risks.items():
        print(f"\n{name}: mean {np.mean(values):.4f}, standard deviation {np.std(values):.4f}, "
              f"max {np.max(values):.4f}")


if __name__ == "__main__":
    main()
