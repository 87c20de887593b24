"""Peak resident memory of the calibration's selection alone, at several population sizes.

    PYTHONPATH=. .venv/bin/python bench/scale/selection.py --data ROOT --persons 100000 300000 [--mode disk]

The slow part of ``fictitious_dataset`` is drawing and checking the surplus; what grows with
the population is the selection among it. So this bench skips the model: from a finished
run's matched dataset (``ROOT/warehouse/matched_dataset``), a register of N persons and a
surplus of 3 N persons are both drawn as whole households with replacement (own seeds, new
household ids), the surplus in chunks of ``--chunk-persons`` as the draw yields them; the
register's margins are the targets (``spec_from_catalog``). ``--mode memory`` joins the chunks
and selects among the frame (what ``fictitious_dataset`` did before the candidates went to
disk, and what a version without ``Candidates`` can run); ``--mode disk`` hands the chunks to
``calibrated_population`` as they come (``Candidates``). A thread reads VmRSS every 20 ms;
the line gives the resident set before the selection (imports, source, targets) and the
peak during it, in MB, and MB per 100,000 persons above the start.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.calibration import calibrated_population, register_targets, spec_from_catalog
from synth_assets.catalog import load_catalog


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def households(source: pd.DataFrame, household_id: str, persons: int, seed: int, first_id: int,
               chunk_persons: int) -> Iterator[pd.DataFrame]:
    """About ``persons`` persons in whole households drawn from ``source`` with replacement, by chunks."""
    codes, _ = pd.factorize(source[household_id])
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(codes.max() + 2))
    sizes = np.diff(starts)
    rng = np.random.default_rng(seed)
    drawn, next_id = 0, first_id
    while drawn < persons:
        picked = rng.integers(0, len(sizes), max(1, int(min(chunk_persons, persons - drawn) / sizes.mean())))
        rows = np.concatenate([order[starts[h]:starts[h + 1]] for h in picked])
        chunk = source.iloc[rows].reset_index(drop=True)
        chunk[household_id] = np.repeat(np.arange(next_id, next_id + len(picked)), sizes[picked])
        next_id += len(picked)
        drawn += len(chunk)
        yield chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--persons", type=int, nargs="+", default=[100_000])
    parser.add_argument("--mode", choices=["memory", "disk"], default="disk")
    parser.add_argument("--chunk-persons", type=int, default=100_000)
    args = parser.parse_args()
    catalog = load_catalog(args.data / "catalog.yaml")
    household_id = catalog.register.household_id_column
    wave = sorted((args.data / "warehouse" / "matched_dataset").glob("*.parquet"))[-1]
    source = pd.read_parquet(wave)
    spec = spec_from_catalog(catalog)
    print("| persons | mode | candidates | MB at the start | peak MB | MB per 100,000 persons | s |\n"
          "|---|---|---|---|---|---|---|")
    for persons in args.persons:
        register = pd.concat(list(households(source, household_id, persons, 1, 1, persons)), ignore_index=True)
        targets = register_targets(register, spec, household_id)
        del register

        def draw(n: int, seed: int):
            chunks = households(source, household_id, n, seed, 10**9, args.chunk_persons)
            if args.mode == "memory":
                return pd.concat(list(chunks), ignore_index=True)  # as draw_in_chunks did
            return chunks

        start = rss_mb()
        peak = [start]
        stop = threading.Event()

        def poll(peak: list[float] = peak, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mb())
                time.sleep(0.02)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        began = time.perf_counter()
        result = calibrated_population(draw, targets, household_id, surplus=3.0, seed=2)
        seconds = time.perf_counter() - began
        stop.set()
        watcher.join()
        print(f"| {persons:,} | {args.mode} | {result.candidate_households:,} households | {start:.0f} | "
              f"{peak[0]:.0f} | {(peak[0] - start) / persons * 1e5:.0f} | {seconds:.0f} |", flush=True)
        del result


if __name__ == "__main__":
    main()
