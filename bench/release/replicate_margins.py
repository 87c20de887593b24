"""How far each released replicate's margins sit from its own matched data, and from matched_dataset.

    PYTHONPATH=. .venv/bin/python bench/release/replicate_margins.py --data data [--wave 2024]

After a run: the newest release's replicates, ``matched_replicates`` and ``matched_dataset`` of the
wave. For every variable the release shares with the matched data: the TVD of its margin (numbers in
deciles of the reference's non-zero values, zero, -8 and missing as bins of their own) between
replicate r and matched replicate r (what the model adds), between replicate r and matched_dataset,
and between matched replicate r and matched_dataset (the surveys' bootstrap spread); means over
replicates, then over variables. The matched replicates hold the training sample's households (since
the thirty-third pass): matched_dataset is taken for the same households.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SKIP = {"person_id", "household_id", "replicate", "calibration_weight"}


def _codes(values: pd.Series, reference: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if not pd.api.types.is_numeric_dtype(reference) or reference.nunique() < 15:
        return values.astype(str).to_numpy(), reference.astype(str).to_numpy()
    ref = pd.to_numeric(reference, errors="coerce")
    nonzero = ref[(ref != 0) & (ref != -8)].dropna()
    edges = np.unique(np.quantile(nonzero, np.linspace(0, 1, 11)))

    def code(x: np.ndarray) -> np.ndarray:
        out = np.digitize(x, edges[1:-1]).astype(float)
        out[x == 0], out[x == -8], out[np.isnan(x)] = -1, -2, -3
        return out

    return code(pd.to_numeric(values, errors="coerce").to_numpy(float)), code(ref.to_numpy(float))


def _tvd(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = pd.Series(a).value_counts(normalize=True), pd.Series(b).value_counts(normalize=True)
    return float(pa.sub(pb, fill_value=0).abs().sum() / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--wave", default="2024")
    args = parser.parse_args()
    warehouse = args.data / "warehouse"
    matched_replicates = pd.read_parquet(warehouse / "matched_replicates" / f"{args.wave}.parquet")
    matched = pd.read_parquet(warehouse / "matched_dataset" / f"{args.wave}.parquet")
    matched = matched.loc[matched["household_id"].isin(matched_replicates["household_id"].unique())]
    release = sorted((args.data / "public").glob(f"{args.wave}-*"))[-1]
    replicates = [pd.read_parquet(p) for p in sorted(release.glob("fictitious_population_r*.parquet"))]
    columns = [c for c in replicates[0].columns if c in matched_replicates.columns and c not in SKIP]
    rows = {}
    for c in columns:
        own = [matched_replicates[matched_replicates["replicate"] == r][c] for r in range(1, len(replicates) + 1)]
        rows[c] = {
            "release vs its matched replicate": np.mean([_tvd(*_codes(s[c], m)) for s, m in zip(replicates, own)]),
            "release vs matched_dataset": np.mean([_tvd(*_codes(s[c], matched[c])) for s in replicates]),
            "matched replicate vs matched_dataset": np.mean([_tvd(*_codes(m, matched[c])) for m in own]),
        }
    table = pd.DataFrame(rows).T.sort_values("release vs its matched replicate", ascending=False)
    print(f"release {release.name}: {len(replicates)} replicates, {len(columns)} variables")
    print("mean over variables:\n" + table.mean().round(4).to_string())
    print(table.head(12).round(4).to_markdown())


if __name__ == "__main__":
    main()
