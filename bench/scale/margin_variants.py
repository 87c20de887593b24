"""The calibration's selection and weights for variants of the catalog's margins, on a finished run's data.

    PYTHONPATH=. .venv/bin/python bench/scale/margin_variants.py --data ROOT --catalog A.yaml [B.yaml ...]
        [--drop-share 0.3] [--seed 7]

A margin added to the calibration costs the selection's search (more person cells to meet) and can
leave the weights' bounds infeasible (no weights within ``calibration.weight_bounds`` meet every
control, so the weights are raked without bounds). This bench tells both apart from a model: for each
catalog, the targets are computed from the finished run's register (``ROOT/warehouse/harmonised_register``,
top-coded as ``calibration_targets`` does), and the candidates are the run's release
(``ROOT/warehouse/fictitious_dataset``, its replicates side by side under ids of their own, ``--drop-share``
of the households with a member aged 20 to 39 left out, as ``swap_search.py`` does, for the search to
make up). Per catalog: the controls, the seconds of ``select_households`` (search, members, weights) and of
its weighting alone, the swaps, the count cells off at unit weights and by how much at most, whether
every control is within the gate's tolerance at unit weights, and the weights' range (within the
bounds, or raked without them).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.calibration import register_targets, selection, spec_from_catalog
from synth_assets.catalog import load_catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.defs.calibration.assets import amount_thresholds


def candidates_of(data: Path, wave: str, household_id: str, columns: list[str], drop_share: float,
                  seed: int) -> pd.DataFrame:
    frame = pd.read_parquet(data / "warehouse" / "fictitious_dataset" / wave,
                            columns=[household_id, "replicate", *columns])
    codes, _ = pd.factorize(pd.MultiIndex.from_arrays([frame["replicate"], frame[household_id]]))
    frame[household_id] = codes.astype(np.int64)
    frame = frame.drop(columns="replicate")
    young = frame.loc[frame["age"].between(20, 39), household_id].unique()
    dropped = np.random.default_rng(seed).choice(young, int(drop_share * len(young)), replace=False)
    return frame.loc[~frame[household_id].isin(dropped)].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, nargs="+", required=True)
    parser.add_argument("--drop-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    wave = sorted((args.data / "warehouse" / "fictitious_dataset").glob("*.parquet"))[-1].name
    register = ParquetTable(args.data / "warehouse" / "harmonised_register" / wave)
    weighting: dict[str, Any] = {}
    weights_of = selection._weights

    def timed_weights(*args: Any) -> Any:  # the weighting's own seconds, and its weights
        began = time.perf_counter()
        result = weights_of(*args)
        weighting.update(seconds=time.perf_counter() - began, weights=result.weights)
        return result

    selection._weights = timed_weights  # type: ignore[assignment]
    print(f"wave {wave}; {platform.processor() or platform.machine()}")
    print("| catalog | controls | selection s | weighting s | swaps | count cells off | largest off | all within "
          "tolerance | weights | within bounds |\n|---|---|---|---|---|---|---|---|---|---|")
    for path in args.catalog:
        catalog = load_catalog(path)
        household_id = catalog.register.household_id_column
        if household_id is None:
            raise SystemExit(f"{path}: the register declares no household id: the selection chooses households")
        spec = spec_from_catalog(catalog)
        targets = register_targets(register, spec, household_id, top_coding=amount_thresholds(catalog, register))
        candidates = candidates_of(args.data, wave, household_id, list(dict.fromkeys(spec.variables)),
                                   args.drop_share, args.seed)
        began = time.perf_counter()
        result = selection.select_households(candidates, targets, household_id, seed=args.seed)
        seconds = time.perf_counter() - began
        summary = result.summary()
        weights = weighting["weights"]
        low, high = spec.weight_bounds or (0.0, np.inf)
        print(f"| {path.name} | {len(targets.controls)} | {seconds:.1f} | {weighting['seconds']:.1f} | {result.swaps:,} | "
              f"{summary['count_cells_off']} | {summary['max_abs_count_residual']:g} | {result.within_tolerance} | "
              f"{weights.min():.3g} to {weights.max():.3g} | {bool(low <= weights.min() and weights.max() <= high)} |",
              flush=True)


if __name__ == "__main__":
    main()
