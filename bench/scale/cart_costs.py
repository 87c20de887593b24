"""CART's own costs on a finished run's data: the population model's fit, step by step, and its draws.

    PYTHONPATH=. .venv/bin/python bench/scale/cart_costs.py --data ROOT [--fit] [--n-jobs 1] [--draws 5] [--persons 100000]

On the root of a finished CART run (``synth-assets run --family cart`` or ``scale/run.py``), in this
process: ``--fit`` refits the stored population model (its own settings, ``n_jobs`` threads) on the
run's training sample and prints each tree's step (rows, seconds; block steps marked) and the whole
fit; then ``--draws`` draws of ``--persons`` persons from the stored model (one chunk of the region
step's, without its checks), the median and each one's seconds. Run it with each version's code on
the same root to compare them: the stored model is the same, and so are its draws where a version
changes only how they are computed (the digest of the last draw is printed to say so).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from pathlib import Path

import pandas as pd

from synth_assets.synthesis import cart
from synth_assets.synthesis.base import Synthesizer


def _timed_steps() -> None:
    """Print each CART step's fit as it ends (the method wrapped in this process only)."""
    fit_step = cart.CARTSynthesizer._fit_step_on_rows

    def timed(self, column, j, matrix, rows, gate, block, order, rng):
        started = time.perf_counter()
        step = fit_step(self, column, j, matrix, rows, gate, block, order, rng)
        print(f"| {column} | {'block' if block is not None else ''} | {len(rows):,} | "
              f"{time.perf_counter() - started:.1f} |", flush=True)
        return step

    cart.CARTSynthesizer._fit_step_on_rows = timed  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--wave", default=None, help="default: the latest of the warehouse's training sample")
    parser.add_argument("--fit", action="store_true", help="refit the model on the training sample, step by step")
    parser.add_argument("--n-jobs", type=int, default=1, help="threads of the refit (1: each step's own time)")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--persons", type=int, default=100_000)
    args = parser.parse_args()
    wave = args.wave or sorted(p.stem for p in (args.data / "warehouse" / "training_sample").glob("*.parquet"))[-1]
    model = Synthesizer.load(args.data / "models" / "population_model" / f"{wave}.model")
    if args.fit:
        training = pd.read_parquet(args.data / "warehouse" / "training_sample" / f"{wave}.parquet")
        training = training.drop(columns=[c for c in ("person_id",) if c in training])
        refit = model.clone()
        for params in (getattr(refit, "household_params", None), getattr(refit, "person_params", None)):
            if params is not None:
                params["n_jobs"] = args.n_jobs
        _timed_steps()
        print("| step | | rows | s |\n|---|---|---|---|")
        started = time.perf_counter()
        refit.fit(training)
        print(f"fit: {time.perf_counter() - started:.1f} s ({args.n_jobs} thread(s), {len(training):,} persons)")
        del refit, training
    model.sample(min(args.persons, 20_000), seed=0)  # first-call costs out of the timings
    seconds, drawn = [], pd.DataFrame()
    for seed in range(1, args.draws + 1):
        started = time.perf_counter()
        drawn = model.sample(args.persons, seed=seed)
        seconds.append(time.perf_counter() - started)
    digest = hashlib.sha256(pd.util.hash_pandas_object(drawn, index=False).to_numpy().tobytes()).hexdigest()[:12]
    print(f"draws of {args.persons:,} persons: median {statistics.median(seconds):.2f} s "
          f"({', '.join(f'{s:.2f}' for s in seconds)}); last draw's digest {digest}")


if __name__ == "__main__":
    main()
