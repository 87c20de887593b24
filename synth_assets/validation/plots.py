"""Figures for the report, as PNG bytes (no files, no display, no pyplot state).

Figures are built on ``matplotlib.figure.Figure`` directly, which needs no backend
selection and is safe in the threads and subprocesses a Dagster run may use.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric

_REAL, _SYN = "#1f77b4", "#ff7f0e"
_MAX_LEVELS = 15


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float = 4.6, height: float = 2.8):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def _share(mask: pd.Series) -> str:
    return f"{100 * mask.mean():.1f}%" if len(mask) else "-"


def variable_plot(real: pd.Series, synthetic: pd.Series, name: str) -> bytes:
    """Histogram (numbers) or bar chart of shares (categories), real vs synthetic.

    Numbers: nonzero observed values between the real 1st and 99th percentiles (outside
    values are piled on the edges), with zero and missing shares in the title, because
    a spike at zero would otherwise flatten everything else.
    """
    figure, axes = _figure()
    if is_numeric(real):
        r = real.dropna().to_numpy(dtype=float)
        s = synthetic.dropna().to_numpy(dtype=float)
        r_nz, s_nz = r[r != 0], s[s != 0]
        if r_nz.size:
            low, high = np.percentile(r_nz, [1, 99])
            high = high if high > low else low + 1
            bins = np.linspace(low, high, 31)
            axes.hist(np.clip(r_nz, low, high), bins=bins, density=True, histtype="step", color=_REAL, label="real")
            if s_nz.size:
                axes.hist(np.clip(s_nz, low, high), bins=bins, density=True, histtype="step", color=_SYN, label="synthetic")
        axes.set_title(
            f"{name}: zero {_share(real == 0)} / {_share(synthetic == 0)}, "
            f"missing {_share(real.isna())} / {_share(synthetic.isna())}",
            fontsize=8,
        )
    else:
        r_text = real.astype(object).where(real.notna(), "(missing)").astype(str)
        s_text = synthetic.astype(object).where(synthetic.notna(), "(missing)").astype(str)
        r_share, s_share = r_text.value_counts(normalize=True), s_text.value_counts(normalize=True)
        levels = list(r_share.index[:_MAX_LEVELS])
        other_r = 1 - r_share.reindex(levels).fillna(0).sum()
        other_s = 1 - s_share.reindex(levels).fillna(0).sum()
        labels = levels + (["(other)"] if max(other_r, other_s) > 1e-12 else [])
        r_vals = list(r_share.reindex(levels).fillna(0)) + ([other_r] if len(labels) > len(levels) else [])
        s_vals = list(s_share.reindex(levels).fillna(0)) + ([other_s] if len(labels) > len(levels) else [])
        x = np.arange(len(labels))
        axes.bar(x - 0.2, r_vals, width=0.4, color=_REAL, label="real")
        axes.bar(x + 0.2, s_vals, width=0.4, color=_SYN, label="synthetic")
        axes.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        axes.set_ylabel("share", fontsize=8)
        axes.set_title(name, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7)
    return _png(figure)


def variable_plots(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, bytes]:
    """``variable_plot`` for every column of ``real``, keyed ``variable:<column>``."""
    return {f"variable:{c}": variable_plot(real[c], synthetic[c], str(c)) for c in real.columns}


def dcr_plot(synthetic_to_train: np.ndarray, holdout_to_train: np.ndarray) -> bytes:
    """Distances to the closest training record: synthetic records vs holdout records."""
    figure, axes = _figure()
    top = float(np.percentile(np.r_[synthetic_to_train, holdout_to_train], 99)) or 1.0
    bins = np.linspace(0, top, 41)
    axes.hist(np.clip(holdout_to_train, 0, top), bins=bins, density=True, histtype="step", color=_REAL, label="holdout → train")
    axes.hist(np.clip(synthetic_to_train, 0, top), bins=bins, density=True, histtype="step", color=_SYN, label="synthetic → train")
    axes.set_xlabel("Gower distance to closest training record", fontsize=8)
    axes.set_title("Distance to closest record", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7)
    return _png(figure)


def association_plot(real: pd.DataFrame, synthetic: pd.DataFrame, title: str) -> bytes:
    """Heatmap of |association real − synthetic| for every pair of variables."""
    diff = np.abs(real.to_numpy() - synthetic.to_numpy())
    size = max(3.0, 0.22 * len(real))
    figure, axes = _figure(size + 1, size)
    image = axes.imshow(diff, vmin=0, vmax=max(0.1, float(np.nanmax(diff))), cmap="Reds")
    axes.set_xticks(range(len(real)), real.columns, rotation=90, fontsize=6)
    axes.set_yticks(range(len(real)), real.index, fontsize=6)
    axes.set_title(title, fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.8)
    return _png(figure)


def comparison_plot(
    families: list[str], k3_pct_of_baseline: list[float], dcr_share: list[float], *, k3_target_pct: float,
    dcr_target: float,
) -> bytes:
    """Fidelity and privacy of each model family side by side, against their targets.

    Left: the 3-way marginal score as a percentage of what the holdout reaches (higher is
    better); right: the share of synthetic records closer to a training record than to a
    holdout record (0.5 is no pull towards the training data). A family with no value
    (its fit failed) keeps its place with an empty bar, so the axis still lists it.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(6.0, 1.2 * len(families) + 3.0), 2.8))
    fidelity, privacy = figure.subplots(1, 2)
    x = np.arange(len(families))
    panels = (
        (fidelity, k3_pct_of_baseline, k3_target_pct, f"target {k3_target_pct:g}%", "3-way marginals, % of baseline"),
        (privacy, dcr_share, dcr_target, f"target {dcr_target:g}", "DCR share closer to train"),
    )
    for axes, values, target, target_label, title in panels:
        axes.bar(x, np.nan_to_num(np.asarray(values, dtype=float)), width=0.6, color=_SYN)
        axes.axhline(target, color=_REAL, linestyle="--", linewidth=1, label=target_label)
        axes.set_xticks(x, families, rotation=30, ha="right", fontsize=7)
        axes.set_title(title, fontsize=8)
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=7, loc="lower right")
    privacy.axhline(0.5, color="#888888", linestyle=":", linewidth=1)
    return _png(figure)
