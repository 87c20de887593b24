"""Benchmark of synth_assets.validation on EU-SILC: agreement with references, timing.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/validation/run.py [--splits 5] [--out bench/validation/results.md]

1. Baseline (holdout vs train, split 50/50 by household ``db030``, ids dropped) with our
   functions, over several random splits, against the reference runs' baseline row (bench/README.md).
2. Agreement with sdmetrics where it implements the same quantity: TVComplement,
   KSComplement, ContingencySimilarity (categorical pairs); LogisticDetection for context.
3. Reference generators (a copy of train; train with every column shuffled
   independently) to show each metric moving the right way.
4. Timing of ``evaluate`` on the 7k-row split, and of the Great Expectations suite.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.common.distances import codes_total_variation
from synth_assets.common.expectations import load_suite, run_suite
from synth_assets.validation import evaluate
from synth_assets.validation.preparation import discretise, joint_codes
from synth_assets.validation.privacy import dcr, exact_copy_rate
from synth_assets.validation.privacy.gower import gower_encode, nearest_neighbours
from synth_assets.validation.utility import compare_columns, kmarginal_scores, pmse, propensity_auc

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "eusilc.csv"
HERE = Path(__file__).resolve().parent
REFERENCE_BASELINE = {"k1": 983, "k2": 964, "k3": 933, "AUC": 0.86, "S_pMSE": 14.3, "copies": 0.0, "DCR share": 0.45}
IDS = ["db030", "rb030"]
QIS = ["age", "rb090", "db040", "hsize", "pb220a"]
SENSITIVE = ["py010n", "pl030"]


def split(data: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    households = data["db030"].unique()
    chosen = np.random.default_rng(seed).choice(households, size=len(households) // 2, replace=False)
    in_train = data["db030"].isin(chosen)
    return (
        data[in_train].drop(columns=IDS).reset_index(drop=True),
        data[~in_train].drop(columns=IDS).reset_index(drop=True),
    )


def holdout_dcr_share(train: pd.DataFrame, holdout: pd.DataFrame, seed: int, sample: int = 5000) -> float:
    """The reference runs' baseline DCR share: each holdout record's closest train record vs closest
    OTHER holdout record (itself excluded: the second neighbour of a record in its own set)."""
    rng = np.random.default_rng(seed)
    n = min(len(train), len(holdout))
    train_s = train.iloc[rng.choice(len(train), n, replace=False)]
    holdout_s = holdout.iloc[rng.choice(len(holdout), n, replace=False)]
    probe = holdout_s.iloc[: min(sample, n)]
    probe_e, train_e, holdout_e = gower_encode([probe, train_s, holdout_s], train)
    to_train = nearest_neighbours(probe_e, train_e, k=1)[0][:, 0]
    to_other_holdout = nearest_neighbours(probe_e, holdout_e, k=2)[0][:, 1]
    return float((to_train < to_other_holdout).mean() + 0.5 * (to_train == to_other_holdout).mean())


def headline(train: pd.DataFrame, other: pd.DataFrame, seed: int, holdout: pd.DataFrame | None = None) -> dict:
    k = kmarginal_scores(train, other, seed=seed)
    row = {
        "k1": k[1],
        "k2": k[2],
        "k2 (all pairs)": kmarginal_scores(train, other, (2,), n_combinations=10**6, seed=seed)[2],
        "k3": k[3],
        "AUC": propensity_auc(train, other, seed=seed),
        "S_pMSE": pmse(train, other, "cart", seed=seed, with_auc=False)["s_pmse"],
        "copies": exact_copy_rate(other, train),
    }
    if holdout is not None:
        row["DCR share"] = dcr(other, train, holdout, seed=seed).dcr_share
    return row


def sdmetrics_agreement(train: pd.DataFrame, holdout: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    from sdmetrics.column_pairs import ContingencySimilarity
    from sdmetrics.single_column import KSComplement, TVComplement
    from sdmetrics.single_table import LogisticDetection

    ours = compare_columns(train, holdout).set_index("column")
    rows = []
    for column in train.columns:
        if is_numeric(train[column]):
            theirs, mine, name = KSComplement.compute(train[column], holdout[column]), 1 - ours.loc[column, "ks"], "KSComplement"
        else:
            theirs, mine, name = TVComplement.compute(train[column], holdout[column]), 1 - ours.loc[column, "tvd"], "TVComplement"
        rows.append({"column": column, "metric": name, "sdmetrics": theirs, "ours": mine})
    per_column = pd.DataFrame(rows)

    # pairs of columns both kept as levels by our discretisation (categories, numbers with <= 10 values)
    levels = [c for c in train.columns if not is_numeric(train[c]) or train[c].nunique() <= 10]
    coded = discretise(train[levels], [holdout[levels]])
    diffs = []
    for i, j in itertools.combinations(range(len(levels)), 2):
        a, b = joint_codes([coded.codes[0][:, [i, j]], coded.codes[1][:, [i, j]]], coded.levels[[i, j]])
        theirs = ContingencySimilarity.compute(train[[levels[i], levels[j]]], holdout[[levels[i], levels[j]]])
        diffs.append(abs((1 - codes_total_variation(a, b)) - theirs))
    metadata = {
        "columns": {c: {"sdtype": "numerical" if is_numeric(train[c]) else "categorical"} for c in train.columns}
    }
    start = time.perf_counter()
    detection = LogisticDetection.compute(train, holdout, metadata)
    summary = {
        "max abs diff TVComplement": float(per_column.query("metric == 'TVComplement'").eval("abs(sdmetrics - ours)").max()),
        "max abs diff KSComplement": float(per_column.query("metric == 'KSComplement'").eval("abs(sdmetrics - ours)").max()),
        "mean TVComplement (sdmetrics / ours)": tuple(per_column.query("metric == 'TVComplement'")[["sdmetrics", "ours"]].mean()),
        "mean KSComplement (sdmetrics / ours)": tuple(per_column.query("metric == 'KSComplement'")[["sdmetrics", "ours"]].mean()),
        "ContingencySimilarity pairs": len(diffs),
        "max abs diff ContingencySimilarity (categorical pairs)": float(max(diffs)),
        "LogisticDetection score": float(detection),
        "LogisticDetection as AUC": 0.5 + (1 - float(detection)) / 2,
        "LogisticDetection seconds": time.perf_counter() - start,
    }
    return per_column, summary


def auc_sensitivity(train: pd.DataFrame, holdout: pd.DataFrame) -> pd.DataFrame:
    """Propensity AUC of the baseline under other boosting lengths: on clustered data the
    classifier memorises household values shared across folds, the longer the more."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    from synth_assets.validation.utility.propensity import hgb_frame

    X = hgb_frame(train, holdout)
    y = np.r_[np.zeros(len(train)), np.ones(len(holdout))]
    rows = []
    settings = {
        "default (early stopping, as in evaluate)": {},
        "100 rounds, no early stopping": {"early_stopping": False},
        "300 rounds, no early stopping": {"early_stopping": False, "max_iter": 300},
    }
    for name, options in settings.items():
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0, **options)
        with threadpool_limits(limits=1, user_api="openmp"):
            proba = cross_val_predict(model, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
        rows.append({"HistGradientBoosting": name, "baseline AUC": roc_auc_score(y, proba[:, 1])})
    return pd.DataFrame(rows)


def fmt(value: object) -> str:
    if isinstance(value, tuple):
        return " / ".join(fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=5, help="random household splits for the baseline")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"SKIPPED: {DATA} not found (the shared data folder is not beside this checkout)")
        return 0
    data = pd.read_csv(DATA)
    load_before = os.getloadavg()

    start = time.perf_counter()
    suite_report = run_suite(data, load_suite(HERE / "eusilc_suite.json"))
    suite_seconds = time.perf_counter() - start

    baselines = []
    for seed in range(args.splits):
        train, holdout = split(data, seed)
        row = headline(train, holdout, seed)
        row["DCR share"] = holdout_dcr_share(train, holdout, seed)
        baselines.append({"split seed": seed, "train rows": len(train), **row})
    baseline = pd.DataFrame(baselines)
    metrics = [c for c in baseline.columns if c not in ("split seed", "train rows")]
    summary = pd.DataFrame(
        {
            "metric": metrics,
            "reference baseline": [REFERENCE_BASELINE.get(m, "–") for m in metrics],
            "ours: mean over splits": [baseline[m].mean() for m in metrics],
            "ours: sd": [baseline[m].std(ddof=1) for m in metrics],
            "ours: min": [baseline[m].min() for m in metrics],
            "ours: max": [baseline[m].max() for m in metrics],
        }
    )

    train, holdout = split(data, 0)
    per_column, agreement = sdmetrics_agreement(train, holdout)
    sensitivity = auc_sensitivity(train, holdout)
    rng = np.random.default_rng(0)
    shuffled = pd.DataFrame({c: train[c].to_numpy()[rng.permutation(len(train))] for c in train.columns})
    references = pd.DataFrame(
        [
            {"synthetic": "holdout (baseline)", **headline(train, holdout, 0), "DCR share": holdout_dcr_share(train, holdout, 0)},
            {"synthetic": "copy of train", **headline(train, train.copy(), 0, holdout)},
            {"synthetic": "train, columns shuffled", **headline(train, shuffled, 0, holdout)},
        ]
    )

    start = time.perf_counter()
    result = evaluate(train, holdout, holdout=holdout, quasi_identifiers=QIS, sensitive=SENSITIVE, seed=0)
    evaluate_seconds = time.perf_counter() - start
    load_after = os.getloadavg()

    text = [
        "# synth_assets.validation on EU-SILC: agreement and timing",
        "",
        f"Command: `PYTHONPATH=. .venv/bin/python bench/validation/run.py --splits {args.splits}`  ",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        "(the machine is shared: timings are upper bounds).  ",
        f"Data: {DATA.name}, {len(data)} rows; train/holdout 50/50 by household `db030`, ids dropped.",
        "",
        "## 1. Baseline (holdout vs train) against the reference runs",
        "",
        f"Our functions over {args.splits} random household splits; the reference runs report one split. "
        "`k2` samples 200 of the 325 pairs (as specified), `k2 (all pairs)` uses all of them as the reference runs "
        "describe. `DCR share` here is the reference runs' baseline definition: each holdout record's closest train "
        "record vs its closest *other* holdout record.",
        "",
        markdown_table(summary),
        "",
        "Per split:",
        "",
        markdown_table(baseline),
        "",
        "Propensity AUC of the baseline by boosting length (split seed 0):",
        "",
        markdown_table(sensitivity),
        "",
        "## 2. Agreement with sdmetrics 0.32 (split seed 0, holdout vs train)",
        "",
        markdown_table(pd.DataFrame({"quantity": list(agreement), "value": list(agreement.values())})),
        "",
        "## 3. Reference generators (split seed 0; metrics vs train)",
        "",
        markdown_table(references),
        "",
        "## Notes on the differences",
        "",
        "- k-marginal: same construction as the reference runs (quantile bins of train, missing a level, "
        "all 1-way, 200 random 3-way); numbers with at most 10 distinct values are kept as levels. "
        "Binning those too, left-closed bins, or `pd.cut` with train's min/max as outer edges all "
        "moved k3 further from 933 (938, 944, 946 over three splits), so the remaining gap is "
        "within split-to-split and triple-sampling noise (see the per-split rows).",
        "- Propensity AUC is a property of the classifier as much as of the data: on household "
        "data the boosting model memorises household values shared across folds, and the longer "
        "it boosts the higher the baseline (table above). `evaluate` keeps sklearn's defaults.",
        "- S_pMSE: our CART replays rpart's growth and pruning on sklearn's Gini tree, with "
        "synthpop's cp = 1e-3, minbucket = 5 and a 10-permutation null. Known differences from R: "
        "rpart splits factors into subsets of levels (emulating that by ordering levels moved "
        "split 0 from 9.4 to 10.3 only) and routes missing values by surrogate splits (18% of "
        "person-level values are missing). The relative threshold compares a synthetic file with "
        "OUR baseline, so the scale difference does not bias the check.",
        "- A copy of the training data gets AUC well below 0.5: each record's twin sits in the "
        "training folds with the opposite label. Read an AUC far below 0.5 as a copying alarm.",
        "- LogisticDetection (sdmetrics) is a linear model on transformed data: it barely "
        "separates holdout from train, which is why it is reported for context only.",
        "",
        "## 4. Timing",
        "",
        f"- `evaluate` on {len(train)} train rows × {train.shape[1]} columns, holdout as the synthetic "
        f"file, with holdout, {len(QIS)} quasi-identifiers, {len(SENSITIVE)} sensitive variables: "
        f"**{evaluate_seconds:.1f} s** wall.",
        "- per step (s): " + ", ".join(f"{k} {v}" for k, v in result.details["timings_s"].items()),
        f"- Great Expectations suite `eusilc_suite.json` on all {len(data)} rows "
        f"({suite_report.n_expectations} expectations, first GE import included): {suite_seconds:.1f} s; "
        f"{'passed' if suite_report.success else 'FAILED: ' + suite_report.describe()}",
        "",
        "Per-column sdmetrics agreement:",
        "",
        markdown_table(per_column),
        "",
    ]
    args.out.write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
