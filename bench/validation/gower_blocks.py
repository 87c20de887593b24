"""Gower nearest neighbours in cache-sized blocks against blocks of ``max_cells``: seconds, the same neighbours.

    PYTHONPATH=. .venv/bin/python bench/validation/gower_blocks.py --data ROOT [--rows 20000] [--queries 5000] [--repeats 3]

On a finished run's data root (``synth-assets run --data ROOT ...``): the validation report's
samples as it draws them (``--rows`` rows of the training sample, the seeded sample of
``evaluate``) and ``--queries`` rows of the release's first replicate, encoded as DCR encodes them,
then the synthetic rows' two nearest training rows (what DCR searches), one thread and two:

- blocks of :data:`~synth_assets.validation.privacy.gower.BLOCK_CELLS` cells (the default), and
- blocks of ``DEFAULT_MAX_CELLS`` (10 million cells: the block size before the cache-sized blocks).

Per way: the median wall and CPU seconds of ``--repeats`` runs, and whether the neighbours and
distances are those of the first way. Print a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from synth_assets.catalog import load_catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.validation.preparation import align_columns, seeded_sample
from synth_assets.validation.privacy import gower


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    catalog = load_catalog(args.data / "catalog.yaml")
    warehouse = args.data / "warehouse"
    training = ParquetTable(sorted((warehouse / "training_sample").glob("*.parquet"))[-1])
    release = ParquetTable(sorted((warehouse / "fictitious_dataset").glob("*.parquet"))[-1])
    ids = {catalog.register.id_column, catalog.register.household_id_column, "replicate"}
    columns = [c for c in training.columns if c not in ids]
    real = seeded_sample(training.select(columns), args.rows, 0)
    synthetic = align_columns(real, seeded_sample(release.where("replicate", [1]).select(columns), args.queries, 0))
    query, reference = gower.gower_encode([synthetic, real], real)
    print(f"Command: `PYTHONPATH=. .venv/bin/python bench/validation/gower_blocks.py {' '.join(sys.argv[1:])}`")
    print(f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {query.n_rows:,} query rows against {reference.n_rows:,} "
          f"({reference.n_columns} columns, {reference.numeric.shape[0]} numeric), k = 2, median of {args.repeats}\n")
    print("| blocks | threads | s | CPU s | same neighbours and distances |")
    print("|---|---|---|---|---|")
    first = None
    cached = gower.BLOCK_CELLS
    for label, cells in ((f"{cached:,} cells (cache-sized, the default)", cached),
                         (f"{gower.DEFAULT_MAX_CELLS:,} cells (before)", gower.DEFAULT_MAX_CELLS)):
        gower.BLOCK_CELLS = cells
        for threads in (1, 2):
            seconds, cpu = [], []
            for _ in range(args.repeats):
                started, used = time.perf_counter(), _cpu()
                found = gower.nearest_neighbours(query, reference, k=2, n_jobs=threads)
                seconds.append(time.perf_counter() - started)
                cpu.append(_cpu() - used)
            first = found if first is None else first
            same = np.array_equal(first[0], found[0]) and np.array_equal(first[1], found[1])
            print(f"| {label} | {threads} | {statistics.median(seconds):.2f} | {statistics.median(cpu):.2f} | "
                  f"{'yes' if same else 'NO'} |", flush=True)
    gower.BLOCK_CELLS = cached


if __name__ == "__main__":
    main()
