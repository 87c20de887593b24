"""A report on a finished fusion: what the data support, what matching cannot know, and (demo) the truth.

:func:`fusion_diagnostics` looks at the matched base survey by survey:

* per imputed variable, the weighted marginal distance of the matched values to the
  donor's (TVD for categories, Kolmogorov-Smirnov for numbers), matched rows weighted by
  the recipient weight, donor rows by the survey weight;
* the X-by-Z tables against the donor's (TVD per X-Z pair, and their mean);
* for a few cross-source pairs (Y from the register or from a survey fused before, Z from
  this survey) the Fréchet bounds of every cell P(Y=j, Z=k) given X cells, as StatMatch's
  ``Frechet.bounds.cat`` reports them: the range any fusion is equally compatible with,
  i.e. the uncertainty that matching cannot remove.  Each cell also shows the estimate
  under conditional independence (CIA) and the matched file's estimate, and whether the
  latter lies within the bounds.

:func:`truth_comparison` is for the demo population, where every variable of every person
is known: the TVD of each cross-source joint table, matched against true.

Both are plain functions returning plain data (``to_dict`` is JSON-ready); the Dagster
assets put them into their metadata.  Numbers are compared in classes: weighted quintiles
(``n_bins``) of the reference side, missing values as a class of their own.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.common.distances import code_shares, cramers_v
from synth_assets.matching.diagnostics import (
    compare_to_truth,
    frechet_bounds,
    marginal_distance,
    shared_codes,
    weighted_quantile_edges,
    x_by_z_tvds,
)
from synth_assets.matching.encoding import as_float


def _cell_rows(cells: pd.DataFrame) -> list[tuple[Any, Any, dict[Any, Any]]]:
    """(y, z, values) of each row of a cells table indexed by (y, z)."""
    ys, zs = cells.index.get_level_values(0), cells.index.get_level_values(1)
    return list(zip(ys, zs, cells.to_dict(orient="records")))


# A matched share outside the bounds by less than this is sampling noise, not a violation.
BOUNDS_TOLERANCE = 0.005


class DonorSpec(NamedTuple):
    """One survey of the fusion: its donor file and how it was used.

    ``on``: the person-level common variables (for household surveys, the members' values);
    ``universe``: pandas query selecting the matched rows the survey applies to (default:
    rows where any imputed variable is filled).
    """

    frame: pd.DataFrame
    weight: str | None
    on: list[str]
    imputed: list[str]
    universe: str | None = None


@dataclass
class PairBounds:
    """Fréchet bounds of one Y×Z table, with the CIA and matched cell shares."""

    y: str
    z: str
    y_source: str  # "register" or the survey Y was imputed from
    x_cells: list[str]
    cells: pd.DataFrame  # index (y, z); low_u, up_u, low_cx, up_cx, cia, matched, within
    dropped_share: float  # recipient weight in X cells without donors (left out of the bounds)

    @property
    def width_unconditional(self) -> float:
        return float((self.cells.up_u - self.cells.low_u).mean())

    @property
    def width_conditional(self) -> float:
        return float((self.cells.up_cx - self.cells.low_cx).mean())

    @property
    def share_within(self) -> float:
        return float(self.cells.within.mean())

    def to_dict(self) -> dict[str, Any]:
        return {
            "y": self.y,
            "z": self.z,
            "y_source": self.y_source,
            "x_cells": list(self.x_cells),
            "mean_width_unconditional": self.width_unconditional,
            "mean_width_given_x": self.width_conditional,
            "share_cells_within_bounds": self.share_within,
            "dropped_share": self.dropped_share,
            "cells": [
                {"y": str(y), "z": str(z), **{str(k): _plain(v) for k, v in row.items()}}
                for y, z, row in _cell_rows(self.cells)
            ],
        }


@dataclass
class SurveyReport:
    """Diagnostics of one survey's fusion."""

    survey: str
    rows: int
    donors: int
    marginal: dict[str, dict[str, Any]]
    x_by_z_tvd: dict[str, float]
    mean_x_by_z_tvd: float | None
    pairs: list[PairBounds] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "survey": self.survey,
            "rows": self.rows,
            "donors": self.donors,
            "marginal": self.marginal,
            "x_by_z_tvd": self.x_by_z_tvd,
            "mean_x_by_z_tvd": self.mean_x_by_z_tvd,
            "pairs": [p.to_dict() for p in self.pairs],
        }


@dataclass
class FusionReport:
    """Every survey's diagnostics; ``to_markdown`` for a report section, ``plot_png`` for a figure."""

    surveys: list[SurveyReport]

    def __getitem__(self, survey: str) -> SurveyReport:
        for s in self.surveys:
            if s.survey == survey:
                return s
        raise KeyError(survey)

    def to_dict(self) -> dict[str, Any]:
        return {s.survey: s.to_dict() for s in self.surveys}

    def to_markdown(self, *, cells: bool = True) -> str:
        """A report section: distances to the donor, then the Fréchet bounds (with every cell if ``cells``)."""
        lines = ["## Fusion diagnostics", ""]
        lines += [
            "Distances of the matched file to the donor survey (weighted; TVD for categories, KS for numbers). "
            "Fréchet bounds: the range of each cross-source cell P(Y, Z) that is compatible with what the "
            "sources show given the X cells; matching cannot tell where in that range the truth lies. "
            f"'within' allows {BOUNDS_TOLERANCE} of sampling noise.",
            "",
        ]
        for s in self.surveys:
            lines += [f"### {s.survey} ({s.rows:,} matched rows, {s.donors:,} donors)", ""]
            lines += ["| imputed variable | statistic | distance to donor |", "|---|---|---|"]
            lines += [f"| {z} | {m['statistic'].upper()} | {m['value']:.4f} |" for z, m in s.marginal.items()]
            if s.mean_x_by_z_tvd is not None:
                worst = max(s.x_by_z_tvd.items(), key=lambda kv: kv[1])
                lines += ["", f"Mean X×Z TVD to the donor {s.mean_x_by_z_tvd:.4f} "
                          f"(largest: {worst[0]} {worst[1]:.4f})."]
            if s.pairs:
                lines += [
                    "",
                    "| Y (source) × Z | X cells | mean width, no X | mean width given X | cells within |",
                    "|---|---|---|---|---|",
                ]
                lines += [
                    f"| {p.y} ({p.y_source}) × {p.z} | {' × '.join(p.x_cells) or '-'} | {p.width_unconditional:.4f} "
                    f"| {p.width_conditional:.4f} | {p.share_within:.0%} |"
                    for p in s.pairs
                ]
                if cells:
                    for p in s.pairs:
                        has_truth = "truth" in p.cells
                        head = "| y | z | low | up | CIA | matched | within |" + (" truth |" if has_truth else "")
                        lines += ["", f"{p.y} × {p.z} (bounds given {' × '.join(p.x_cells) or 'no X'}):", "", head]
                        lines.append("|---" * (7 + has_truth) + "|")
                        for y, z, r in _cell_rows(p.cells):
                            lines.append(
                                f"| {y} | {z} | {r['low_cx']:.4f} | {r['up_cx']:.4f} | {r['cia']:.4f} | {r['matched']:.4f} "
                                f"| {'yes' if r['within'] else '**no**'} |" + (f" {r['truth']:.4f} |" if has_truth else "")
                            )
            lines.append("")
        return "\n".join(lines)

    def plot_png(self, *, max_pairs: int = 6, dpi: int = 100) -> bytes:
        """PNG of the bounds given X (bars), the CIA (circles) and the matched shares (crosses) per cell."""
        # matplotlib is imported here only: most callers want the numbers, not the plot.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        pairs = [(s.survey, p) for s in self.surveys for p in s.pairs][:max_pairs]
        n = max(len(pairs), 1)
        fig = Figure(figsize=(10, 2.6 * n))
        FigureCanvasAgg(fig)
        for i, (survey, p) in enumerate(pairs):
            ax = fig.add_subplot(n, 1, i + 1)
            pos = np.arange(len(p.cells))
            ax.vlines(pos, p.cells.low_u, p.cells.up_u, color="0.85", linewidth=6, label="bounds, no X")
            ax.vlines(pos, p.cells.low_cx, p.cells.up_cx, color="tab:blue", linewidth=3, label="bounds given X")
            ax.plot(pos, p.cells.cia, "o", color="tab:green", markersize=4, label="CIA")
            if "truth" in p.cells:
                ax.plot(pos, p.cells.truth, "_", color="tab:orange", markersize=12, mew=2, label="truth")
            outside = ~p.cells.within.to_numpy()
            ax.plot(pos[~outside], p.cells.matched[~outside], "x", color="black", label="matched")
            if outside.any():
                ax.plot(pos[outside], p.cells.matched[outside], "x", color="tab:red", label="matched, outside")
            ax.set_xticks(pos, [f"{y}|{z}" for y, z in p.cells.index], rotation=90, fontsize=6)
            ax.set_title(f"{survey}: {p.y} ({p.y_source}) × {p.z}", fontsize=9)
            ax.set_ylabel("share")
            ax.legend(fontsize=6, loc="upper right")
        if not pairs:
            fig.text(0.5, 0.5, "no cross-source pair", ha="center")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()


def fusion_diagnostics(
    base_before: pd.DataFrame,
    matched: pd.DataFrame,
    donors: Mapping[str, DonorSpec | tuple],
    *,
    recipient_weight: str | None = None,
    pairs: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    x_cells: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    register_y: Sequence[str] | None = None,
    max_pairs: int = 3,
    n_bins: int = 5,
    min_donors_per_cell: int = 10,
    truth: pd.DataFrame | None = None,
) -> FusionReport:
    """Diagnose every survey of a fusion.

    ``base_before``: the register as it went in; its columns ``register_y`` (default: every
    column but ids, i.e. names ending in ``id``, and the weight) are the register's Y.
    ``matched``: the fused file, same rows.  ``donors``: survey name -> :class:`DonorSpec` or
    ``(frame, weight, on, imputed[, universe])``, in fusion order (a Y imputed from one survey
    may pair with the Z of a later one).  ``pairs``: per survey the (Y, Z) pairs to bound; by
    default the ``max_pairs`` pairs most associated in the matched file (Cramér's V; a Y and
    a Z not shown yet preferred), Y among the register's variables and the earlier surveys'
    imputed ones, never a variable of the survey's ``on``.  ``x_cells``: the X variables
    whose cross-classification conditions the bounds (per survey, or one list for all); by
    default the two ``on`` variables most associated with the pair's Z in the donor, numbers
    in ``n_bins`` weighted quantile classes.  X cells with fewer than ``min_donors_per_cell``
    donors are pooled into one; recipient weight in a cell without any donor is left out of
    the bounds and reported as ``dropped_share``.  ``truth`` (demo only: the true values of
    every variable, rows aligned with ``matched``) adds each cell's true share.
    Raises ``ValueError`` naming the column or pair for inputs that do not fit together.
    """
    if len(base_before) != len(matched):
        raise ValueError(f"base_before has {len(base_before)} rows but matched has {len(matched)}")
    if truth is not None and len(truth) != len(matched):
        raise ValueError(f"truth has {len(truth)} rows but matched has {len(matched)}")
    weights = _column_weights(matched, recipient_weight, "matched")
    if register_y is None:
        register_y = [c for c in base_before.columns if not str(c).lower().endswith("id") and c != recipient_weight]
    missing = [c for c in register_y if c not in base_before.columns]
    if missing:
        raise ValueError(f"base_before has no column {missing[0]!r}")
    y_source: dict[str, str] = {c: "register" for c in register_y}  # grows survey by survey
    reports = []
    for name, raw_spec in donors.items():
        spec = DonorSpec(*raw_spec)
        _require(matched, spec.on + spec.imputed, f"matched (survey {name!r})")
        _require(spec.frame, spec.on + spec.imputed, f"donor {name!r}")
        rows = _in_universe(matched, spec)
        fused, w_fused = matched.loc[rows], weights[rows]
        donor, w_donor = spec.frame, _column_weights(spec.frame, spec.weight, f"donor {name!r}")
        x_by_z = x_by_z_tvds(fused, donor, spec.on, spec.imputed, w_fused, w_donor) if len(fused) else {}
        report = SurveyReport(
            survey=name,
            rows=int(rows.sum()),
            donors=len(donor),
            marginal={z: marginal_distance(fused[z], donor[z], w_fused, w_donor) for z in spec.imputed},
            x_by_z_tvd=x_by_z,
            mean_x_by_z_tvd=float(np.mean(list(x_by_z.values()))) if x_by_z else None,
        )
        ys = {
            c: src
            for c, src in y_source.items()
            if c not in spec.on and c != recipient_weight and c in matched.columns and _usable(matched[c])
        }
        if pairs is not None:
            chosen = list(pairs.get(name, []))
        else:
            chosen = _strongest_pairs(fused, w_fused, ys, spec, max_pairs, n_bins)
        true_rows = truth.loc[rows] if truth is not None else None
        for y, z in chosen:
            if y not in ys:
                raise ValueError(f"survey {name!r}: Y {y!r} is neither a register variable nor imputed before it")
            if z not in spec.imputed:
                raise ValueError(f"survey {name!r}: Z {z!r} is not one of its imputed variables")
            cell_vars = _x_cells_for(name, x_cells, donor, w_donor, spec.on, z, n_bins)
            report.pairs.append(
                _pair_bounds(
                    fused, w_fused, donor, w_donor, y, z, ys[y], cell_vars, n_bins, min_donors_per_cell, true_rows
                )
            )
        reports.append(report)
        y_source.update({z: name for z in spec.imputed})
    return FusionReport(reports)


def cross_source_pairs(groups: Mapping[str, Sequence[str]]) -> list[tuple[str, str, str]]:
    """Every pair of variables from two different groups, as (a, b, "group a × group b")."""
    out = []
    for (ga, va), (gb, vb) in itertools.combinations(groups.items(), 2):
        out += [(a, b, f"{ga} × {gb}") for a in va for b in vb]
    return out


def truth_comparison(
    matched: pd.DataFrame,
    truth: pd.DataFrame,
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    key: str | None = None,
    weight: str | None = None,
    n_bins: int = 5,
) -> pd.DataFrame:
    """TVD of each joint table (y, z) in ``matched`` against ``truth`` (the demo population).

    Give ``pairs``, or ``groups`` (source -> variables) for every cross-source pair.  Rows
    align on ``key`` when given, else by position; rows where the matched y or z is missing
    (outside a survey's universe) are left out of that pair.  Numbers are cut at the
    truth's weighted quintiles (``n_bins``).  Returns one row per pair: y, z, sources,
    rows, tvd, cramers_v_matched, cramers_v_truth.
    """
    if (pairs is None) == (groups is None):
        raise ValueError("give either pairs or groups")
    listed = cross_source_pairs(groups) if groups is not None else [(y, z, "") for y, z in pairs or ()]
    if key is not None:
        truth = truth.set_index(key).reindex(matched[key]).reset_index()
    elif len(truth) != len(matched):
        raise ValueError(f"matched has {len(matched)} rows but truth has {len(truth)}; give key=")
    matched = matched.reset_index(drop=True)
    truth = truth.reset_index(drop=True)
    out = []
    for y, z, sources in listed:
        for frame, what in ((matched, "matched"), (truth, "truth")):
            for col in (y, z):
                if col not in frame.columns:
                    raise ValueError(f"{what} has no column {col!r}")
        keep = (matched[y].notna() & matched[z].notna()).to_numpy()
        if key is not None:
            keep &= truth[y].notna().to_numpy()
        cols = [y, z] + ([weight] if weight else [])
        scores = compare_to_truth(matched.loc[keep, cols], truth.loc[keep, cols], y, z, weight, n_bins)
        out.append(
            {
                "y": y,
                "z": z,
                "sources": sources,
                "rows": int(keep.sum()),
                "tvd": scores["yz_tvd_vs_truth"],
                "cramers_v_matched": scores["cramers_v_fused"],
                "cramers_v_truth": scores["cramers_v_truth"],
            }
        )
    return pd.DataFrame(out, columns=["y", "z", "sources", "rows", "tvd", "cramers_v_matched", "cramers_v_truth"])


# ---------------------------------------------------------------- helpers


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} has no column {missing[0]!r}")


def _column_weights(frame: pd.DataFrame, column: str | None, what: str) -> np.ndarray:
    if column is None:
        return np.ones(len(frame))
    if column not in frame.columns:
        raise ValueError(f"{what} has no weight column {column!r}")
    return frame[column].to_numpy(dtype=float, na_value=0.0)


def _in_universe(matched: pd.DataFrame, spec: DonorSpec) -> np.ndarray:
    if spec.universe:
        return np.asarray(matched.eval(spec.universe), dtype=bool)
    return matched[spec.imputed].notna().any(axis=1).to_numpy()


def _usable(column: pd.Series) -> bool:
    """A Y worth a table: numeric, or categorical with 2..30 levels (ids and free text are not)."""
    if is_numeric(column):
        return column.nunique(dropna=True) > 1
    return 2 <= column.nunique(dropna=True) <= 30


def _classes(reference: pd.Series, w_reference: np.ndarray, n_bins: int) -> np.ndarray | None:
    return weighted_quantile_edges(as_float(reference), w_reference, n_bins) if is_numeric(reference) else None


def _codes(a: pd.Series, b: pd.Series, edges: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Shared class codes of two columns (see :func:`shared_codes`), with readable labels."""
    ca, cb, _ = shared_codes(a.reset_index(drop=True), b.reset_index(drop=True), edges)
    if edges is None:
        return ca, cb, [str(v) for v in _levels(a, b)]
    # Bin i holds edges[i-1] < v <= edges[i]; then the values above the last edge, then missing.
    labels = [f"≤{e:.4g}" for e in edges] + [f">{edges[-1]:.4g}" if len(edges) else "all", "missing"]
    return ca, cb, labels


def _strongest_pairs(
    fused: pd.DataFrame, w: np.ndarray, ys: dict[str, str], spec: DonorSpec, max_pairs: int, n_bins: int
) -> list[tuple[str, str]]:
    scored = []
    for y in ys:
        y_edges = _classes(fused[y], w, n_bins)
        for z in spec.imputed:
            z_edges = _classes(spec.frame[z], _column_weights(spec.frame, spec.weight, "donor"), n_bins)
            cy, _, ny = shared_codes(fused[y], fused[y].iloc[:0], y_edges)
            cz, _, nz = shared_codes(fused[z], fused[z].iloc[:0], z_edges)
            table = code_shares(cy * nz + cz, ny * nz, w).reshape(ny, nz)
            scored.append((cramers_v(table), y, z))
    scored.sort(key=lambda t: -t[0])
    # Strongest first, preferring a Y and a Z not shown yet, so a few pairs cover more variables.
    chosen: list[tuple[str, str]] = []
    for _, y, z in scored:
        if len(chosen) < max_pairs and all(y != a and z != b for a, b in chosen):
            chosen.append((y, z))
    for _, y, z in scored:
        if len(chosen) < max_pairs and (y, z) not in chosen:
            chosen.append((y, z))
    return chosen


def _x_cells_for(
    survey: str,
    x_cells: Mapping[str, Sequence[str]] | Sequence[str] | None,
    donor: pd.DataFrame,
    w_donor: np.ndarray,
    on: list[str],
    z: str,
    n_bins: int,
) -> list[str]:
    if isinstance(x_cells, Mapping):
        chosen = x_cells.get(survey)
        if chosen is not None:
            return list(chosen)
    elif x_cells is not None:
        return list(x_cells)
    z_edges = _classes(donor[z], w_donor, n_bins)
    cz, _, nz = shared_codes(donor[z], donor[z].iloc[:0], z_edges)
    scored = []
    for x in on:
        cx, _, nx = shared_codes(donor[x], donor[x].iloc[:0], _classes(donor[x], w_donor, n_bins))
        scored.append((cramers_v(code_shares(cx * nz + cz, nx * nz, w_donor).reshape(nx, nz)), x))
    scored.sort(key=lambda t: -t[0])
    return [x for _, x in scored[:2]]


def _pair_bounds(
    fused: pd.DataFrame,
    w_fused: np.ndarray,
    donor: pd.DataFrame,
    w_donor: np.ndarray,
    y: str,
    z: str,
    y_source: str,
    cell_vars: list[str],
    n_bins: int,
    min_donors: int,
    truth: pd.DataFrame | None = None,
) -> PairBounds:
    # X cells: cross-classification, numbers in donor-weighted quantile classes.
    cell_f, cell_d = np.zeros(len(fused), np.int64), np.zeros(len(donor), np.int64)
    for x in cell_vars:
        cf, cd, n = shared_codes(fused[x].reset_index(drop=True), donor[x].reset_index(drop=True),
                                 _classes(donor[x], w_donor, n_bins))
        cell_f, cell_d = cell_f * n + cf, cell_d * n + cd
    # Cells with too few donors are pooled into one cell.
    donors_in = pd.Series(cell_d).value_counts()
    sparse = set(donors_in.index[donors_in < min_donors]) | (set(np.unique(cell_f)) - set(donors_in.index))
    pooled = -1
    cell_f = np.where(np.isin(cell_f, list(sparse)), pooled, cell_f)
    cell_d = np.where(np.isin(cell_d, list(sparse)), pooled, cell_d)
    # Y: classes of the recipients' values; Z: classes of the donor's.
    y_edges = _classes(fused[y], w_fused, n_bins)
    z_edges = _classes(donor[z], w_donor, n_bins)
    cy, _, y_labels = _codes(fused[y], fused[y].iloc[:0], y_edges)
    cz_f, cz_d, z_labels = _codes(fused[z], donor[z], z_edges)
    ny, nz = len(y_labels), len(z_labels)
    fused_cells = np.unique(cell_f)
    dropped = ~np.isin(cell_f, np.unique(cell_d))
    keep = ~dropped
    xy_counts = np.zeros((len(fused_cells), ny))
    np.add.at(xy_counts, (np.searchsorted(fused_cells, cell_f[keep]), cy[keep]), w_fused[keep])
    xz_counts = np.zeros((len(fused_cells), nz))
    in_xy = np.isin(cell_d, fused_cells)
    np.add.at(xz_counts, (np.searchsorted(fused_cells, cell_d[in_xy]), cz_d[in_xy]), w_donor[in_xy])
    used = (xy_counts.sum(axis=1) > 0) & (xz_counts.sum(axis=1) > 0)
    xy = pd.DataFrame(xy_counts[used], index=fused_cells[used], columns=y_labels)
    xz = pd.DataFrame(xz_counts[used], index=fused_cells[used], columns=z_labels)
    # P(x) from the recipients: the bounds are about the matched population.
    bounds = frechet_bounds(xy, xz, x_table=xy.sum(axis=1))
    total = w_fused[keep].sum()
    matched = np.bincount(cy[keep] * nz + cz_f[keep], weights=w_fused[keep], minlength=ny * nz) / max(total, 1e-300)
    bounds["matched"] = matched
    bounds["within"] = (bounds.matched >= bounds.low_cx - BOUNDS_TOLERANCE) & (
        bounds.matched <= bounds.up_cx + BOUNDS_TOLERANCE
    )
    if truth is not None:
        ty, _, _ = shared_codes(truth[y].reset_index(drop=True), fused[y].iloc[:0], y_edges)
        tz, _, _ = shared_codes(truth[z].reset_index(drop=True), donor[z].reset_index(drop=True), z_edges)
        if z_edges is None:  # category codes must follow the fused/donor level order
            tz = _recode(truth[z], fused[z], donor[z])
        if y_edges is None:
            ty = _recode(truth[y], fused[y], fused[y].iloc[:0])
        # True values in a level the donor never shows (a rare class a small survey missed) fall in
        # no cell: they still count in the total, so the shares of the cells sum to less than 1.
        seen = keep & (ty >= 0) & (tz >= 0)
        true = np.bincount(ty[seen] * nz + tz[seen], weights=w_fused[seen], minlength=ny * nz)
        bounds["truth"] = true / max(w_fused[keep].sum(), 1e-300)
    # Empty classes (e.g. the missing class of a complete variable) carry nothing: drop their rows.
    y_mass, z_mass = xy.sum(axis=0), xz.sum(axis=0)
    occupied = [(a, b) for a, b in bounds.index if y_mass[a] > 0 and z_mass[b] > 0]
    bounds = bounds.loc[occupied]
    total_all = w_fused.sum()
    return PairBounds(
        y=y,
        z=z,
        y_source=y_source,
        x_cells=list(cell_vars),
        cells=bounds,
        dropped_share=float(w_fused[dropped].sum() / total_all) if total_all > 0 else 0.0,
    )


def _levels(a: pd.Series, b: pd.Series) -> np.ndarray:
    """The levels of two categorical columns in the order :func:`shared_codes` numbers them."""
    both = pd.concat([a.astype(object), b.astype(object)], ignore_index=True)
    return np.asarray(pd.factorize(both, use_na_sentinel=False)[1], dtype=object)


def _recode(values: pd.Series, a: pd.Series, b: pd.Series) -> np.ndarray:
    """Codes of ``values`` on the levels that :func:`_codes` gave ``a`` and ``b`` (other levels: -1)."""
    lookup = {v: i for i, v in enumerate(_levels(a, b))}
    return np.array([lookup.get(v, -1) for v in values.astype(object)], dtype=np.int64)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value
