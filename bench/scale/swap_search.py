"""Time of the calibration's selection (its swap search) alone, on a finished run's release as candidates.

    PYTHONPATH=. .venv/bin/python bench/scale/swap_search.py --data ROOT [--repeats 3] [--seed 7] [--drop-share 0.3]

The region step's selection chooses a register's worth of households among the model's draws,
two for one at a million persons or more. This bench needs no model: a finished run's
``fictitious_dataset`` (``ROOT/warehouse``, its replicates' households given ids of their own)
is the candidates, the same run's ``calibration_targets`` the controls, so half the candidates
are chosen, the initial selection at random within strata and the swaps from there, as the
region step's. The release's replicates each meet the register already, so their pool is nearer to
it than a model's draws (at 1.2 million persons about 10,000 swaps where the region step made 134,000):
``--drop-share`` leaves out that share of the households with a member aged 20 to 39 (seeded), as a
model that under-draws young adults would, for the search to make up. Per repeat (the same seed: the same work): seconds of ``select_households``
(search, members read, weighting), its swaps, the search's last chi-square distance, the
largest count residual at unit weights and the weights' largest relative residual. Run with each
version's code on the same root to compare them.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.calibration import spec_from_catalog
from synth_assets.calibration.margins import Targets
from synth_assets.calibration.selection import select_households
from synth_assets.catalog import load_catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drop-share", type=float, default=0.3)
    args = parser.parse_args()
    catalog = load_catalog(args.data / "catalog.yaml")
    household_id = catalog.register.household_id_column
    if household_id is None:
        raise SystemExit("the catalog's register declares no household id: the selection chooses households")
    spec = spec_from_catalog(catalog)
    wave = sorted((args.data / "warehouse" / "fictitious_dataset").glob("*.parquet"))[-1]
    columns = [household_id, "replicate", *dict.fromkeys(spec.variables)]
    candidates = pd.read_parquet(wave, columns=columns)
    # a household id of each replicate's own: the replicates' households are candidates side by side
    codes, _ = pd.factorize(pd.MultiIndex.from_arrays([candidates["replicate"], candidates[household_id]]))
    candidates[household_id] = codes.astype(np.int64)
    candidates = candidates.drop(columns="replicate")
    young = candidates.loc[candidates["age"].between(20, 39), household_id].unique()
    dropped = np.random.default_rng(args.seed).choice(young, int(args.drop_share * len(young)), replace=False)
    candidates = candidates.loc[~candidates[household_id].isin(dropped)].reset_index(drop=True)
    targets = Targets.from_frame(spec, pd.read_parquet(args.data / "warehouse" / "calibration_targets" / wave.name))
    print(f"{len(candidates):,} candidate persons in {codes.max() + 1:,} households; {platform.processor() or platform.machine()}")
    print("| repeat | s | swaps | chi-square distance | largest count residual | weights' largest relative residual |\n"
          "|---|---|---|---|---|---|")
    seconds = []
    for repeat in range(1, args.repeats + 1):
        began = time.perf_counter()
        result = select_households(candidates, targets, household_id, seed=args.seed)
        seconds.append(time.perf_counter() - began)
        summary = result.summary()
        print(f"| {repeat} | {seconds[-1]:.1f} | {result.swaps:,} | {result.history[-1]:.4g} | "
              f"{summary['max_abs_count_residual']:g} | {summary['max_relative_total_residual']:.3g} |", flush=True)
        del result
    print(f"median {statistics.median(seconds):.1f} s")


if __name__ == "__main__":
    main()
