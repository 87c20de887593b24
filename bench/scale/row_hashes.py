"""Row hashes of the copy filters: ours (column by column, no frame) against the normalised frame
hashed by pandas (``hash_pandas_object``, what ``common.hashing`` did before the fourteenth pass).

    PYTHONPATH=. .venv/bin/python bench/scale/row_hashes.py [--repeats 5]

A release-like table (41 columns: 15 categorical, 26 numeric, some missing), hashed whole at
100,000 rows and as the copy filters' redraws hash it, 100 pieces of 300 rows. Prints the median
seconds of each over the repeats, their ratio, and whether the hashes are equal.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from synth_assets.common import hashing


def release_like(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for k in range(15):
        columns[f"category_{k}"] = pd.Categorical(rng.choice([f"level {i}" for i in range(2 + 3 * k)], n))
    for k in range(26):
        values = np.round(rng.lognormal(6 + k % 5, 1, n), 2) if k % 2 else rng.integers(0, 99, n).astype(float)
        values[rng.random(n) < 0.05] = np.nan
        columns[f"number_{k}"] = values
    return pd.DataFrame(columns)


def by_pandas(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The reference, as ``common.hashing`` did it before: a normalised frame made a column at a
    time (a frame per column, joined), then hashed by pandas."""
    numeric = hashing.numeric_in_all([frame], columns)
    parts = []
    for column in columns:
        if column in numeric:
            mantissa, exponent = hashing._number_parts(frame[column])
            part = pd.DataFrame({"m": mantissa, "e": exponent})
            part.columns = [f"{column}\x00m", f"{column}\x00e"]
        else:
            part = pd.DataFrame({column: hashing._as_text(frame[column])})
        parts.append(part.reset_index(drop=True))
    return pd.util.hash_pandas_object(pd.concat(parts, axis=1), index=False).to_numpy()


def ours(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return hashing.row_hashes([frame], columns)[0]


def median_seconds(function, pieces: list[pd.DataFrame], columns: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for piece in pieces:
            function(piece, columns)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    table = release_like(100_000)
    columns = list(table.columns)
    assert np.array_equal(ours(table, columns), by_pandas(table, columns)), "the hashes differ"
    print("hashes equal: yes")
    print("| table | before: a normalised frame, hashed by pandas | now: column by column | ratio |")
    print("|---|---|---|---|")
    for name, pieces in (("100,000 rows, whole", [table]),
                         ("100 pieces of 300 rows", [table.iloc[i * 300:(i + 1) * 300] for i in range(100)])):
        reference = median_seconds(by_pandas, pieces, columns, args.repeats)
        mine = median_seconds(ours, pieces, columns, args.repeats)
        print(f"| {name} | {reference:.3f} s | {mine:.3f} s | {reference / mine:.1f} |")


if __name__ == "__main__":
    main()
