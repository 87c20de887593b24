"""Sampling a population of 1.2 million persons to Parquet in chunks, with bounded memory.

    .venv/bin/python bench/synthesis/population_scale.py [--persons 1200000]

Fits the pipeline's population model (households then members, CART) on the matched demo
dataset of the last `make run` (data/warehouse/matched_dataset/<wave>.parquet), streams the
sample to Parquet and prints seconds and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from synth_assets.synthesis import build_population_synthesizer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=1_200_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    args = parser.parse_args()
    files = sorted(Path("data/warehouse/matched_dataset").glob("*.parquet"))
    if not files:
        print("no matched dataset: run `make run` first", file=sys.stderr)
        return 2
    matched = pd.read_parquet(files[-1]).drop(columns=["person_id"])
    model = build_population_synthesizer("cart", household_id="household_id", seed=0)
    started = time.perf_counter()
    model.fit(matched)
    fitted = time.perf_counter() - started
    rss_after_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = Path(tempfile.mkdtemp()) / "population.parquet"
    started = time.perf_counter()
    model.sample_to_parquet(args.persons, out, seed=1, chunk_size=args.chunk_size)
    sampled = time.perf_counter() - started
    rows = pq.ParquetFile(out).metadata.num_rows
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {len(matched):,} | {rows:,} | {args.chunk_size:,} | {fitted:.1f} | {sampled:.1f} | "
          f"{rss_after_fit:.0f} | {peak:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
