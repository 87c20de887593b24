"""One release's fusion timed on a finished run's data: every survey fused into the register.

    PYTHONPATH=. .venv/bin/python bench/matching/fusion_time.py --data ROOT [--processes 2] [--output FILE]

On a finished run's data root (``synth-assets run --data ROOT ...``), ``fuse_sources`` is called as
``matched_dataset`` calls it (the latest register wave, every survey's donor table of the
warehouse, the catalog's methods, seed 0), with ``--processes`` surveys at a time (2: as the step
fuses them on 2 cores; 1: one after another, in this process). Prints wall seconds and this
process's CPU seconds (its own threads; with children, only the parent's), and writes the fused
table to ``--output`` (Parquet) so two versions' results can be compared.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from synth_assets.catalog.loader import load_catalog
from synth_assets.matching.sources import fuse_sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a finished run's data root")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--output", type=Path, help="write the fused table here (Parquet)")
    args = parser.parse_args()
    catalog = load_catalog(args.data / "catalog.yaml")
    warehouse = args.data / "warehouse"
    register = pd.read_parquet(sorted((warehouse / f"harmonised_{catalog.register_name}").glob("*.parquet"))[-1])
    surveys = {}
    for name in catalog.surveys:
        latest = sorted((warehouse / f"donor_{name}").glob("*.parquet"))[-1]
        surveys[name] = (latest.stem, pd.read_parquet(latest))
    wall, cpu = time.perf_counter(), time.process_time()
    fused, _ = fuse_sources(catalog, register, surveys, seed=0, processes=args.processes)
    print(f"{len(surveys)} surveys into {len(register):,} records, {args.processes} at a time: "
          f"{time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU (this process)")
    if args.output:
        fused.to_parquet(args.output)


if __name__ == "__main__":
    main()
