"""How good is a fusion?  Weighted distances, Fréchet bounds and truth comparisons.

Statistical matching can reproduce what the two sources show (the Z marginal,
the X-by-Z relation) but not what neither shows: the Y-by-Z relation is only
identified under conditional independence (CIA) or with auxiliary
information.  The diagnostics therefore measure the first two against the
donor (weighted by the donor weights, the fused side by the recipient
weights), and :func:`frechet_bounds` says how much room the data leave for the
third.  :func:`compare_to_truth` is for benchmarks where the truth is known.

Numerics are compared in discrete form where a table is needed: bins at the
weighted quintiles of the reference (donor, or truth), missing as a level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.common.distances import code_shares, cramers_v, total_variation
from synth_assets.common.frames import ParquetTable
from synth_assets.matching.encoding import as_float, joint_codes


def weighted_quantile_edges(values: np.ndarray, weights: np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Interior cut points at the weighted 1/n, …, (n-1)/n quantiles of the observed values (no duplicates)."""
    observed = ~np.isnan(values)
    v, w = values[observed], weights[observed]
    if v.size == 0:
        return np.empty(0)
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    at = np.searchsorted(cum / cum[-1], np.arange(1, n_bins) / n_bins, side="left")
    return np.unique(v[order][np.minimum(at, v.size - 1)])


def shared_codes(a: pd.Series, b: pd.Series, edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of two columns on shared levels: bins ``v <= edge`` for numerics given ``edges``, levels otherwise.

    Missing values get a level of their own.  Returns (codes a, codes b, number of levels).
    """
    if edges is None:
        return joint_codes(a, b)

    def binned(column: pd.Series) -> np.ndarray:
        v = as_float(column)
        return np.where(np.isnan(v), len(edges) + 1, np.searchsorted(edges, v, side="left"))

    return binned(a), binned(b), len(edges) + 2


def weighted_tvd(
    a: pd.Series,
    b: pd.Series,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
    edges: np.ndarray | None = None,
) -> float:
    """TVD between the weighted distributions of two columns (numerics binned at ``edges``)."""
    ca, cb, n = shared_codes(a, b, edges)
    return total_variation(code_shares(ca, n, _weights(weights_a, a)), code_shares(cb, n, _weights(weights_b, b)))


def weighted_ks(
    a: pd.Series, b: pd.Series, weights_a: np.ndarray | None = None, weights_b: np.ndarray | None = None
) -> float:
    """Kolmogorov–Smirnov statistic between two weighted numeric distributions.

    Missing values count as +inf, i.e. the CDFs are shares of *all* weight, so a
    difference in missingness shows up in the statistic instead of being ignored.
    """
    va, vb = np.nan_to_num(as_float(a), nan=np.inf), np.nan_to_num(as_float(b), nan=np.inf)
    wa, wb = _weights(weights_a, a), _weights(weights_b, b)
    grid = np.union1d(va, vb)

    def cdf(v: np.ndarray, w: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(w[order])])
        return cum[np.searchsorted(v[order], grid, side="right")] / max(cum[-1], 1e-300)

    return float(np.abs(cdf(va, wa) - cdf(vb, wb)).max()) if grid.size else 0.0


def frechet_bounds(x_y_table: pd.DataFrame, x_z_table: pd.DataFrame, x_table: pd.Series | None = None) -> pd.DataFrame:
    """Bounds for P(Y=j, Z=k) when Y and Z are never observed together (StatMatch ``Frechet.bounds.cat``).

    ``x_y_table``: rows are X cells, columns Y levels (counts or weighted counts);
    ``x_z_table`` likewise for Z.  P(Y|X) and P(Z|X) come from these; P(X)
    from ``x_table`` or, by default, from the two tables pooled.  For every
    (j, k) the result holds the unconditional Fréchet bounds ``low_u``/``up_u``
    (from the Y and Z margins only), the bounds given X ``low_cx``/``up_cx``

        Σ_x P(x) max(0, P(j|x) + P(k|x) − 1)  ≤  P(j, k)  ≤  Σ_x P(x) min(P(j|x), P(k|x)),

    and the CIA point estimate ``cia`` = Σ_x P(x) P(j|x) P(k|x).  ``attrs`` holds
    the mean widths of both kinds of bounds: how much X narrows the uncertainty.
    """
    cells = x_y_table.index.union(x_z_table.index)
    xy = x_y_table.reindex(cells, fill_value=0).astype(float)
    xz = x_z_table.reindex(cells, fill_value=0).astype(float)
    for name, table in (("x_y_table", xy), ("x_z_table", xz)):
        empty = table.index[table.sum(axis=1) <= 0]
        if len(empty):
            raise ValueError(f"X cell {empty[0]!r} has no observations in {name}; merge it with a neighbouring cell")
    x_counts = (xy.sum(axis=1) + xz.sum(axis=1)) if x_table is None else x_table.reindex(cells, fill_value=0).astype(float)
    p_x = (x_counts / x_counts.sum()).to_numpy()
    p_y_x = (xy.div(xy.sum(axis=1), axis=0)).to_numpy()  # cells × J
    p_z_x = (xz.div(xz.sum(axis=1), axis=0)).to_numpy()  # cells × K
    a, b = p_y_x[:, :, None], p_z_x[:, None, :]
    weight = p_x[:, None, None]
    low_cx = (weight * np.maximum(0.0, a + b - 1.0)).sum(axis=0)
    up_cx = (weight * np.minimum(a, b)).sum(axis=0)
    cia = (weight * a * b).sum(axis=0)
    p_y, p_z = p_x @ p_y_x, p_x @ p_z_x
    low_u = np.maximum(0.0, p_y[:, None] + p_z[None, :] - 1.0)
    up_u = np.minimum(p_y[:, None], p_z[None, :])
    index = pd.MultiIndex.from_product([xy.columns, xz.columns], names=["y", "z"])
    out = pd.DataFrame(
        {
            name: m.ravel()
            for name, m in (("low_u", low_u), ("up_u", up_u), ("cia", cia), ("low_cx", low_cx), ("up_cx", up_cx))
        },
        index=index,
    )
    out.attrs["mean_width_unconditional"] = float((out.up_u - out.low_u).mean())
    out.attrs["mean_width_conditional"] = float((out.up_cx - out.low_cx).mean())
    return out


def compare_to_truth(
    fused: pd.DataFrame,
    truth: pd.DataFrame,
    y: str,
    z: str,
    weight: str | None = None,
    n_bins: int = 5,
) -> dict[str, float]:
    """Compare the fused Y-by-Z relation with the true one (rows of ``fused`` and ``truth`` align by position).

    Numeric Y or Z are binned at the weighted quintiles (``n_bins``) of the truth.
    Returns the Z marginal TVD, the Y×Z joint TVD and Cramér's V of both tables.
    """
    if len(fused) != len(truth):
        raise ValueError(f"fused has {len(fused)} rows but truth has {len(truth)}")
    w = fused[weight].to_numpy(dtype=float) if weight else np.ones(len(fused))
    codes = {}
    for col in (y, z):
        edges = weighted_quantile_edges(as_float(truth[col]), w, n_bins) if is_numeric(truth[col]) else None
        codes[col] = shared_codes(fused[col].reset_index(drop=True), truth[col].reset_index(drop=True), edges)
    (fy, ty, ny), (fz, tz, nz) = codes[y], codes[z]
    fused_table = code_shares(fy * nz + fz, ny * nz, w).reshape(ny, nz)
    true_table = code_shares(ty * nz + tz, ny * nz, w).reshape(ny, nz)
    return {
        "z_tvd_vs_truth": total_variation(fused_table.sum(axis=0), true_table.sum(axis=0)),
        "yz_tvd_vs_truth": total_variation(fused_table, true_table),
        "cramers_v_fused": cramers_v(fused_table),
        "cramers_v_truth": cramers_v(true_table),
    }


@dataclass
class MatchingDiagnostics:
    """What one fusion reproduced, for logs and JSON metadata.

    ``marginal``: per imputed variable, fused vs donor, ``{"statistic": "tvd" | "ks", "value": …}``.
    ``x_by_z_tvd``: per "x|z" pair, TVD of the joint table fused vs donor.
    ``donor_usage``: hot-deck methods only, how evenly donors were used.
    """

    method: str
    seconds: float
    n_recipients: int
    n_donors: int
    n_classes: int
    fallback_classes: int
    marginal: dict[str, dict[str, Any]] = field(default_factory=dict)
    x_by_z_tvd: dict[str, float] = field(default_factory=dict)
    mean_x_by_z_tvd: float | None = None
    donor_usage: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"method {self.method}: {self.n_recipients} recipients, {self.n_donors} donors, "
            f"{self.n_classes} donation classes ({self.fallback_classes} without donors), {self.seconds:.2f} s"
        ]
        lines += [f"  {z}: {m['statistic'].upper()} vs donor {m['value']:.4f}" for z, m in self.marginal.items()]
        if self.mean_x_by_z_tvd is not None:
            lines.append(f"  mean X-by-Z TVD vs donor {self.mean_x_by_z_tvd:.4f}")
        if self.donor_usage:
            u = self.donor_usage
            lines.append(
                f"  donors used {u['donors_used']} ({u['share_donors_used']:.1%}), at most {u['max_uses']} times"
            )
        return "\n".join(lines)


def marginal_distance(fused: pd.Series, donor: pd.Series, w_fused: np.ndarray, w_donor: np.ndarray) -> dict[str, Any]:
    """KS for numerics, TVD otherwise."""
    if is_numeric(donor) and is_numeric(fused):
        return {"statistic": "ks", "value": weighted_ks(fused, donor, w_fused, w_donor)}
    return {"statistic": "tvd", "value": weighted_tvd(fused, donor, w_fused, w_donor)}


def x_by_z_tvds(
    fused: pd.DataFrame, donor: pd.DataFrame, on: list[str], impute: list[str], w_fused: np.ndarray, w_donor: np.ndarray
) -> dict[str, float]:
    """TVD fused vs donor of every X-by-Z joint table (numerics in donor-weighted quintiles)."""

    def codes(col: str) -> tuple[np.ndarray, np.ndarray, int]:
        edges = weighted_quantile_edges(as_float(donor[col]), w_donor) if is_numeric(donor[col]) else None
        fused_codes, donor_codes, n_levels = shared_codes(fused[col], donor[col], edges)
        return fused_codes.astype(np.int32), donor_codes, n_levels

    # The fused file is the register: its codes of every Z are kept, those of one X at a time, in
    # 32 bits (every column's, in 64, were a fusion's largest temporary: 160 MB at 1.2 million).
    z_codes = {z: codes(z) for z in impute}
    out = {}
    for x in on:
        fx, dx, nx = codes(x)
        for z in impute:
            fz, dz, nz = z_codes[z]
            out[f"{x}|{z}"] = total_variation(
                code_shares(fx.astype(np.int64) * nz + fz, nx * nz, w_fused), code_shares(dx * nz + dz, nx * nz, w_donor)
            )
    return out


def donor_usage(donor_index: np.ndarray, donor_weights: np.ndarray) -> dict[str, Any]:
    """How often donors were used, and whether use follows weight (correlation of uses with weight)."""
    uses = np.bincount(donor_index, minlength=len(donor_weights))
    used = uses > 0
    varies = uses.std() > 0 and donor_weights.std() > 0
    return {
        "donors_used": int(used.sum()),
        "share_donors_used": float(used.mean()),
        "max_uses": int(uses.max(initial=0)),
        "mean_uses_of_used": float(uses[used].mean()) if used.any() else 0.0,
        "uses_weight_correlation": float(np.corrcoef(uses, donor_weights)[0, 1]) if varies else None,
    }


def _weights(weights: np.ndarray | None, like: pd.Series) -> np.ndarray:
    return np.ones(len(like)) if weights is None else np.asarray(weights, dtype=float)


def missing_shares(
    sources: Mapping[str, pd.DataFrame | ParquetTable], matched: pd.DataFrame | ParquetTable,
    release: pd.DataFrame | ParquetTable | None = None,
) -> pd.DataFrame:
    """Share of missing values (nulls, unweighted) per variable in each table.

    One row per variable (the matched dataset's order, then variables found only elsewhere),
    one column per source (its name), then ``matched`` and, if given, ``release``; NaN where
    a table lacks the variable.  Special codes such as -8 are values, not missing.  Shows
    where missing values enter or leave: survey item non-response should not reach the
    matched dataset, nor any missing value the release. A table on disk (``ParquetTable``) is
    counted a row group at a time.
    """
    tables = dict(sources)
    for name in ("matched", "release"):
        if name in tables:
            raise ValueError(f"source name {name!r} clashes with the {name} column; rename the source")
    tables["matched"] = matched
    if release is not None:
        tables["release"] = release
    ordered = [matched, *sources.values(), *([release] if release is not None else [])]
    variables = list(dict.fromkeys(c for table in ordered for c in table.columns))
    shares = {name: _missing_share(table) for name, table in tables.items()}
    return pd.DataFrame(shares).reindex(variables).rename_axis("variable")


def _missing_share(table: pd.DataFrame | ParquetTable) -> pd.Series:
    """Share of missing values of each column (NaN for a table of no rows)."""
    blocks = table.frames() if isinstance(table, ParquetTable) else [table]
    missing = pd.Series(0, index=pd.Index(list(table.columns)), dtype="int64")
    rows = 0
    for block in blocks:
        missing += block.isna().sum().astype("int64")
        rows += len(block)
    return missing / rows if rows else pd.Series(np.nan, index=missing.index, dtype="float64")
