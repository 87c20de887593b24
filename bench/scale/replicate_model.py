"""A replicate's model, as the region step makes it, on a finished run's data: its seconds, peak and draws.

    PYTHONPATH=. .venv/bin/python bench/scale/replicate_model.py --data ROOT [--replicates 2] [--persons 100000]

On the root of a finished run (``synth-assets run`` or ``scale/run.py``), in this process: the stored
population model is loaded and ``chain_replicate_models`` makes each replicate's model from the
run's matched replicates (for CART, its trees' leaves refilled with the replicate's training
records: ``replicate_draw``), as the region step does before it draws. Per replicate: seconds, this
process's peak resident set so far (``ru_maxrss``: kernel-kept) and the digest of a draw of
``--persons`` persons (seed 5). Run it with each version's code on the same root to compare them: a
version that changes only how a model is made draws what the other draws (equal digests).
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import time
from pathlib import Path

import pandas as pd

from synth_assets.catalog.loader import load_catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.defs.calibration.assets import household_key
from synth_assets.synthesis.factory import load_synthesizer
from synth_assets.synthesis.replicates import ReplicateTrainingSets, chain_replicate_models


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a finished run's data root")
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--persons", type=int, default=100_000, help="persons drawn from each replicate's model")
    args = parser.parse_args()
    catalog = load_catalog(args.data / "catalog.yaml")
    warehouse = args.data / "warehouse"

    def latest(name: str) -> Path:
        return sorted((warehouse / name).glob("*.parquet"))[-1]

    register = catalog.register
    fitted = load_synthesizer(sorted((args.data / "models" / "population_model").glob("*"))[-1])
    print(f"model loaded: peak {_peak_mb()} MB")
    key = household_key(catalog)
    training = ReplicateTrainingSets(ParquetTable(latest("matched_replicates")),
                                     ParquetTable(latest("training_sample")).read([key]), key, args.replicates,
                                     drop=[c for c in (register.id_column,) if c])
    models = chain_replicate_models(fitted, training, 1, refit=None, cluster=register.household_id_column)
    del fitted  # as the region step: the chain keeps what its draws need
    print("| replicate | s | peak MB | draw digest |\n|---|---|---|---|")
    for replicate in range(1, args.replicates + 1):
        started = time.perf_counter()
        model, _ = next(models)
        seconds = time.perf_counter() - started
        drawn = model.sample(args.persons, seed=5)
        digest = hashlib.sha256(pd.util.hash_pandas_object(drawn, index=False).to_numpy().tobytes()).hexdigest()
        print(f"| {replicate} | {seconds:.1f} | {_peak_mb()} | {digest[:16]} |")
        del model, drawn


if __name__ == "__main__":
    main()
