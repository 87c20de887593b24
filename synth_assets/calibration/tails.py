"""Top-coding: no value beyond a quantile of the real variable is published as drawn.

A generator that draws real values (CART's leaf donors) or learns a tail can put an
extreme real amount, the one income that identifies its earner, in the release. As
statistical offices do for public-use files, every amount above the ``quantile`` of the
real variable's non-zero values is replaced by that threshold. The register's targets are
top-coded the same way, so a calibrated release still meets its totals exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def tail_thresholds(real: pd.DataFrame, variables: Sequence[str], quantile: float) -> dict[str, float]:
    """Per variable, the ``quantile`` of its non-zero finite values (absent: nothing to cap).

    Both tails: negative amounts (losses) are capped at the same quantile of their size.
    """
    if not 0.5 < quantile < 1:
        raise ValueError(f"top-coding quantile must lie between 0.5 and 1, got {quantile}")
    thresholds: dict[str, float] = {}
    for variable in variables:
        x = pd.to_numeric(real[variable], errors="coerce").to_numpy(dtype=float)
        x = x[np.isfinite(x) & (x != 0)]
        if len(x):
            # an order statistic, never an interpolation towards the largest (possibly absurd) value
            thresholds[variable] = float(np.quantile(np.abs(x), quantile, method="lower"))
    return thresholds


def top_code(frame: pd.DataFrame, thresholds: Mapping[str, float]) -> tuple[pd.DataFrame, dict[str, int]]:
    """``frame`` with every amount beyond its threshold set to it; how many, per variable."""
    out = frame.copy()
    counts: dict[str, int] = {}
    for variable, limit in thresholds.items():
        if variable not in out:
            continue
        x = pd.to_numeric(out[variable], errors="coerce")
        beyond = x.abs() > limit
        counts[variable] = int(beyond.sum())
        if counts[variable]:
            out[variable] = x.clip(lower=-limit, upper=limit).astype(out[variable].dtype)
    return out, counts
