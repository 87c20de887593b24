"""CART's weighted donor picks: the searches in the cumulative weights in random order (as drawn)
against increasing order (sorted first, what ``LeafDonors.draw_with_records`` does).

    PYTHONPATH=. .venv/bin/python bench/scale/donor_search.py [--donors 960000] [--rows 100000]

One search per drawn row in the cumulative record weights of a step's donors (a posterior draw:
960,000 donors at 1.2 million persons, a chunk of 100,000 rows). Prints the median of 7 of each,
the ratio, and whether the picks are equal.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def median_seconds(function, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--donors", type=int, default=960_000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cumulative = np.concatenate([[0.0], np.cumsum(rng.standard_exponential(args.donors))])
    targets = rng.random(args.rows) * cumulative[-1]

    def in_random_order() -> np.ndarray:
        return np.searchsorted(cumulative, targets, side="right")

    def in_increasing_order() -> np.ndarray:
        order = np.argsort(targets)
        picks = np.empty(len(targets), dtype=np.int64)
        picks[order] = np.searchsorted(cumulative, targets[order], side="right")
        return picks

    equal = np.array_equal(in_random_order(), in_increasing_order())
    random_order, increasing = median_seconds(in_random_order), median_seconds(in_increasing_order)
    print(f"{args.rows:,} searches in {args.donors:,} donors: random order {random_order * 1000:.0f} ms, "
          f"increasing order (sort included) {increasing * 1000:.0f} ms, ratio {random_order / increasing:.1f}; "
          f"the same picks: {'yes' if equal else 'NO'}")


if __name__ == "__main__":
    main()
