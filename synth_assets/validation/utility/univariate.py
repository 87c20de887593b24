"""Fit for purpose, variable by variable: distributions, zeros, missing values, rules.

The distances follow SDMetrics (TVComplement and KSComplement are 1 − these), so the
numbers can be checked against a reference implementation: TVD over the observed
categories, Kolmogorov-Smirnov over the observed numbers. Missingness and zero shares
are reported separately because they are what users of income data notice first
(a housing allowance that is zero for 96% of persons must stay so).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from synth_assets.catalog.rules import RuleError, broken_rows
from synth_assets.common.columns import is_numeric
from synth_assets.common.distances import codes_total_variation
from synth_assets.validation.preparation import align_columns, factorize_together


def tvd(real: pd.Series, synthetic: pd.Series) -> float:
    """Total variation distance between the observed (non-missing) category shares."""
    a, b = real.dropna(), synthetic.dropna()
    if a.empty or b.empty:
        return float("nan")
    (ca, cb), _ = factorize_together([a, b])
    return codes_total_variation(ca, cb)


def ks(real: pd.Series, synthetic: pd.Series) -> float:
    """Two-sample Kolmogorov-Smirnov statistic of the observed (non-missing) values."""
    a, b = real.dropna().to_numpy(dtype=float), synthetic.dropna().to_numpy(dtype=float)
    if a.size == 0 or b.size == 0:
        return float("nan")
    return float(ks_2samp(a, b).statistic)


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else float("nan")


def compare_columns(real: pd.DataFrame, synthetic: pd.DataFrame) -> pd.DataFrame:
    """One row per variable: kind, TVD (categories) or KS (numbers), zero and missing shares."""
    synthetic = align_columns(real, synthetic)
    rows = []
    for column in real.columns:
        numeric = is_numeric(real[column])
        r, s = real[column], synthetic[column]
        rows.append(
            {
                "column": column,
                "kind": "numeric" if numeric else "categorical",
                "tvd": float("nan") if numeric else tvd(r, s),
                "ks": ks(r, s) if numeric else float("nan"),
                "share_missing_real": _share(r.isna()),
                "share_missing_synthetic": _share(s.isna()),
                "share_zero_real": _share(r == 0) if numeric else float("nan"),
                "share_zero_synthetic": _share(s == 0) if numeric else float("nan"),
                "mean_real": float(r.mean()) if numeric else float("nan"),
                "mean_synthetic": float(s.mean()) if numeric else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def rule_violations(frame: pd.DataFrame, rule: str) -> pd.Series:
    """Boolean per record: True where the rule does NOT hold (the catalog's semantics).

    A record with a missing value in a column the rule names is not concerned by it
    (:mod:`synth_assets.catalog.rules`): the same reading as the publication gate's.
    """
    try:
        broken, _ = broken_rows(frame, [rule])
    except RuleError as error:
        raise ValueError(f"plausibility rule {rule!r} cannot be evaluated: {error.__cause__ or error}") from error
    return pd.Series(broken, index=frame.index)


def plausibility(real: pd.DataFrame, synthetic: pd.DataFrame, rules: Sequence[str]) -> pd.DataFrame:
    """Share of records breaking each rule, in the real and in the synthetic data.

    The real share matters: a rule the source already breaks (coding errors, legal
    exceptions) cannot be demanded of the synthetic data more strictly.
    """
    rows = [
        {
            "rule": rule,
            "broken_real": float(rule_violations(real, rule).mean()),
            "broken_synthetic": float(rule_violations(synthetic, rule).mean()),
        }
        for rule in rules
    ]
    table = pd.DataFrame(rows, columns=["rule", "broken_real", "broken_synthetic"])
    table["excess"] = table["broken_synthetic"] - table["broken_real"]
    return table


def worst_variable(table: pd.DataFrame) -> str:
    """The variable furthest from the real data (TVD for categories, KS for numbers)."""
    distance = table["tvd"].fillna(table["ks"])
    return str(table["column"].to_numpy()[int(np.nanargmax(distance.to_numpy(dtype=float)))]) if distance.notna().any() else ""


def summarise_columns(table: pd.DataFrame) -> dict[str, float]:
    """Averages of the per-variable table for the headline, and its worst variable's distance."""

    def mean(values: pd.Series) -> float:
        values = values.dropna()
        return float(values.mean()) if len(values) else float("nan")

    distance = table["tvd"].fillna(table["ks"])
    return {
        "worst_1way_distance": float(distance.max()) if distance.notna().any() else float("nan"),
        "mean_tvd": mean(table["tvd"]),
        "mean_ks": mean(table["ks"]),
        "max_missing_share_diff": float(
            np.nanmax(np.abs(table["share_missing_real"] - table["share_missing_synthetic"]))
        ),
    }
