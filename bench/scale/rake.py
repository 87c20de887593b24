"""Memory and time of the calibration's raking on a release's households: the Hessian whole or in pieces.

    PYTHONPATH=. .venv/bin/python bench/scale/rake.py --data ROOT [--replicate 1]

On a finished run's data root, the design of one replicate of the release (its households'
incidence on every calibration control, as ``select_households`` builds it for the households
it chose) is raked to the register's targets twice: the Newton step's Hessian summed over
every row at once (``hessian_rows`` = the rows) and a piece at a time (the default,
``weights.HESSIAN_ROWS``). A thread reads VmRSS every 20 ms; per way: seconds, the rise of
the resident set over the design's, iterations, and the largest difference of the weights.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bench.scale.resident import PeakPoller
from synth_assets.calibration import Targets, spec_from_catalog
from synth_assets.calibration.selection import _design
from synth_assets.calibration.weights import HESSIAN_ROWS, rake
from synth_assets.catalog import load_catalog
from synth_assets.common.memory import release_free_memory
from synth_assets.defs.calibration.assets import household_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--replicate", type=int, default=1)
    args = parser.parse_args()
    poller = PeakPoller(interval=0.02)
    catalog = load_catalog(args.data / "catalog.yaml")
    warehouse = args.data / "warehouse"
    wave = sorted(p.stem for p in (warehouse / "calibration_targets").glob("*.parquet"))[-1]
    targets = Targets.from_frame(spec_from_catalog(catalog),
                                 pd.read_parquet(warehouse / "calibration_targets" / f"{wave}.parquet"))
    release = warehouse / "fictitious_dataset" / f"{wave}.parquet"
    names = set(pq.read_schema(release).names)
    columns = [c for c in sorted({household_key(catalog), *targets.spec.variables}) if c in names]
    persons = pd.read_parquet(release, columns=columns, filters=[("replicate", "=", args.replicate)])
    design = _design(persons, targets, household_key(catalog))
    del persons
    matrix = design.matrix
    print(f"Command: `PYTHONPATH=. .venv/bin/python bench/scale/rake.py {' '.join(sys.argv[1:])}`")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; design "
          f"{matrix.shape[0]:,} households x {matrix.shape[1]:,} controls, {matrix.nnz:,} entries, "
          f"{(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes) / 2**20:.0f} MiB\n")
    print("| Hessian | s | peak rise MB | iterations | converged | largest relative difference of the weights |")
    print("|---|---|---|---|---|---|")
    reference = None
    for label, rows in (("whole", matrix.shape[0]), (f"{HESSIAN_ROWS:,} rows at a time", HESSIAN_ROWS)):
        release_free_memory()  # the first way's freed pages back: the second's rise is its own
        base = poller.reset()
        started = time.perf_counter()
        result = rake(matrix, design.targets, hessian_rows=rows)
        seconds = time.perf_counter() - started
        reference = result.weights if reference is None else reference
        difference = float(np.max(np.abs(result.weights / reference - 1)))
        print(f"| {label} | {seconds:.1f} | {poller.peak - base:.0f} | {result.iterations} | {result.converged} | "
              f"{difference:.1e} |", flush=True)
        del result


if __name__ == "__main__":
    main()
