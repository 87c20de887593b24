"""Is the release the population? Calibration residuals and missing values, for the report.

The gate's check ``calibrated_to_register`` judges the residuals; this module shows them,
per margin and replicate, beside the missing share of every variable in the sources, the
matched dataset and the release (the population has no missing value a survey's item
non-response or universe could leave behind).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import pandas as pd

from synth_assets.calibration import Targets
from synth_assets.common.frames import ParquetTable
from synth_assets.matching import missing_shares


def residuals_by_margin(replicates: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Per replicate and margin: controls, how many beyond tolerance, largest differences (``replicates``:
    each replicate's residuals, as ``Targets.replicate_residuals`` gives them)."""
    rows = []
    for replicate, residuals in replicates.items():
        for margin, group in residuals.groupby("margin", sort=False):
            rows.append({
                "replicate": replicate,
                "margin": margin,
                "controls": len(group),
                "beyond_tolerance": int((~group["within"]).sum()),
                "max_abs_difference": float(group["difference"].abs().max()),
                "max_abs_relative": float(group["relative"].abs().max()),
            })
    return pd.DataFrame(rows)


def residual_plot(residuals: pd.DataFrame) -> bytes:
    """Released against register count for every count cell of one replicate's ``residuals`` (PNG)."""
    import matplotlib  # here only: plotting is optional, and matplotlib costs import time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = residuals[residuals["kind"] == "count"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for margin, group in counts.groupby("margin", sort=False):
        ax.scatter(group["target"], group["difference"], s=10, label=margin, alpha=0.7)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("register count of the cell")
    ax.set_ylabel("released minus register")
    ax.set_title("Calibration residuals, replicate 1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def population_tables(
    targets: Targets,
    release: pd.DataFrame | ParquetTable,
    household_id: str,
    sources: Mapping[str, pd.DataFrame | ParquetTable],
    matched: pd.DataFrame | ParquetTable,
    replicate_column: str = "replicate",
) -> tuple[dict[str, pd.DataFrame], dict[str, bytes]]:
    """The report's population section: residual table, missing shares, residual plot.

    The residuals and the missing values counted a row group at a time (a ``release`` on disk; the
    residuals in parts of whole households, ``Targets.replicate_residuals``): a replicate read whole
    was the validation's peak, 1.6 GB over a 2-million-person replicate. Sources and matched data on
    disk (``ParquetTable``) are counted a row group at a time too.
    """
    columns = [c for c in matched.columns if c in release.columns and c != household_id]
    residuals = targets.replicate_residuals(release, household_id, replicate_column)
    figures: dict[str, bytes] = {}
    if residuals:
        figures["population:calibration"] = residual_plot(next(iter(residuals.values())))
    missing = pd.Series(0, index=columns, dtype="int64")
    rows = 0
    for chunk in release.frames(columns) if isinstance(release, ParquetTable) else [release[columns]]:
        missing += chunk.isna().sum().reindex(columns).astype("int64")
        rows += len(chunk)
    shares = missing_shares(sources, matched.select(columns) if isinstance(matched, ParquetTable) else matched[columns])
    shares["release"] = (missing / rows if rows else missing * np.nan).reindex(shares.index)
    tables = {
        "population: calibration residuals by margin": residuals_by_margin(residuals),
        "population: missing values (share of records)": shares.reset_index(),
    }
    return tables, figures
