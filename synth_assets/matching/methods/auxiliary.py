"""Hot deck informed by an auxiliary file that observes Y and Z together (``aux_hotdeck``).

Without auxiliary information every matching method can at best reproduce the
CIA: Y and Z independent given X.  A small file C holding Y and Z together
(an older survey, a 5% subsample asked both questions) identifies part of the
Y-Z association.  Following D'Orazio, Di Zio & Scanu (2006, ch. 3) and
Renssen (1998), C is used only for the *contingency table* of Y-cells by
Z-levels, the part it estimates reliably, while X-Z keeps coming from the big
donor file:

1. target table T(Y, Z): C's weighted table, shrunk towards the CIA table
   (``prior`` pseudo-observations, default one per cell, so empty cells of a
   small C do not become structural zeros), then raked (IPF) to the recipient's
   Y margin and the donor's Z margin;
2. each recipient gets P(Z | X) from a donor-fitted classifier, tilted per
   Y-cell as P(Z | X) · a(Y, Z) with a(Y, ·) solved so that the recipients of
   each Y-cell reproduce row Y of T (a log-linear model with the Y-Z
   interaction taken from C and the X-Z one from the donor);
3. a Z level is *drawn* from the tilted probabilities and the recipient
   takes the nearest donor on X (Gower/Mahalanobis) among donors of its
   donation class with that level, so the whole Z block still comes from one
   real donor record.

Numeric Y (and Z) are cut into weighted quintile cells (``n_bins``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.matching.diagnostics import shared_codes, weighted_quantile_edges
from synth_assets.matching.encoding import as_float, design_matrix
from synth_assets.matching.methods.base import MethodOutput
from synth_assets.matching.methods.model_draw import fit_classifier, openmp_threads, sample_rows
from synth_assets.matching.methods.nnd import embed
from synth_assets.matching.neighbors import draw_nearest
from synth_assets.matching.problem import FusionProblem, check_weights, require_columns

logger = logging.getLogger("synth_assets.matching")


def cell_codes(
    reference: pd.DataFrame, other: pd.DataFrame, columns: list[str], weights: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cross-classified cells of ``columns`` in two frames; numerics cut at weighted quantiles of ``reference``."""
    ref_cells, other_cells, n_cells = np.zeros(len(reference), np.int64), np.zeros(len(other), np.int64), 1
    for col in columns:
        edges = (
            weighted_quantile_edges(as_float(reference[col]), weights, n_bins) if is_numeric(reference[col]) else None
        )
        rc, oc, n = shared_codes(reference[col], other[col], edges)
        ref_cells, other_cells, n_cells = ref_cells * n + rc, other_cells * n + oc, n_cells * n
    return ref_cells, other_cells, n_cells


def rake(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Iterative proportional fitting of ``table`` to row and column margins (shares)."""
    out = table.astype(float).copy()
    for _ in range(iterations):
        out *= np.divide(rows, out.sum(axis=1), out=np.zeros_like(rows), where=out.sum(axis=1) > 0)[:, None]
        out *= np.divide(cols, out.sum(axis=0), out=np.zeros_like(cols), where=out.sum(axis=0) > 0)[None, :]
        if np.abs(out.sum(axis=1) - rows).max() < 1e-10:
            break
    return out


def tilt(proba: np.ndarray, weights: np.ndarray, target: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Rescale the columns of row-stochastic ``proba`` so its weighted column sums hit ``target``."""
    factor = np.where(target > 0, 1.0, 0.0)
    for _ in range(iterations):
        q = proba * factor
        q /= np.maximum(q.sum(axis=1, keepdims=True), 1e-300)
        got = weights @ q
        if np.abs(got - target).max() <= 1e-8 * max(target.sum(), 1e-300):
            break
        factor *= np.divide(target, got, out=np.zeros_like(target), where=got > 0)
    return q


def run(
    problem: FusionProblem,
    rng: np.random.Generator,
    *,
    y: str | list[str] | None = None,
    z: str | None = None,
    weight: str | None = None,
    n_bins: int = 5,
    prior: float | None = None,
    k: int = 1,
    max_iter: int = 100,
    n_jobs: int | None = -1,
) -> MethodOutput:
    """Options: ``y`` recipient variables observed in the auxiliary file (default: all it shares
    with the recipient beyond X), ``z`` the imputed variable it observes (default: first of
    ``impute``), ``weight`` its weight column (default: the donor weight's name, if present),
    ``n_bins`` quantile cells for numerics, ``prior`` pseudo-observations of the CIA table,
    ``k`` nearest donors in the final match, ``max_iter`` boosting rounds of P(Z | X)."""
    aux = problem.auxiliary
    if aux is None:
        raise ValueError("aux_hotdeck needs an auxiliary file holding Y and Z together (auxiliary=...)")
    taken = set(problem.on + problem.impute + problem.donation_classes + [problem.recipient_weight])
    y = (
        [y]
        if isinstance(y, str)
        else list(y or [c for c in aux.columns if c in problem.recipient.columns and c not in taken])
    )
    z = z or problem.impute[0]
    if not y:
        raise ValueError(
            "auxiliary file shares no Y variable with the recipient beyond 'on' "
            f"(auxiliary columns: {', '.join(map(str, aux.columns))})"
        )
    if z not in problem.impute:
        raise ValueError(f"aux_hotdeck: z {z!r} is not one of the imputed variables {problem.impute}")
    require_columns(problem.recipient, y, "recipient")
    require_columns(aux, y + [z], "auxiliary")
    weight = weight or (problem.donor_weight if problem.donor_weight in aux.columns else None)
    w_aux = check_weights(aux, weight, "auxiliary", allow_zero=False) if weight else np.ones(len(aux))
    w_rec, w_don = problem.recipient_weights, problem.donor_weights

    y_rec, y_aux, n_y = cell_codes(problem.recipient, aux, y, w_rec, n_bins)
    z_edges = (
        weighted_quantile_edges(as_float(problem.donor[z]), w_don, n_bins) if is_numeric(problem.donor[z]) else None
    )
    z_don, z_aux, n_z = shared_codes(problem.donor[z], aux[z], z_edges)

    proba = _z_given_x(problem, z_don, n_z, rng, max_iter)
    aux_table = np.bincount(y_aux * n_z + z_aux, weights=w_aux, minlength=n_y * n_z).reshape(n_y, n_z)
    cia_table = np.vstack([w_rec[y_rec == j] @ proba[y_rec == j] for j in range(n_y)])
    n_eff = w_aux.sum() ** 2 / (w_aux**2).sum()
    prior = float(n_y * n_z if prior is None else prior)
    start = (n_eff * aux_table / aux_table.sum() + prior * cia_table / cia_table.sum()) / (n_eff + prior)
    y_margin = np.bincount(y_rec, weights=w_rec, minlength=n_y)
    z_margin = np.bincount(z_don, weights=w_don, minlength=n_z)
    target = rake(start, y_margin / y_margin.sum(), z_margin / z_margin.sum()) * w_rec.sum()

    level = np.empty(len(w_rec), dtype=np.int64)
    for j in range(n_y):
        rows = np.flatnonzero(y_rec == j)
        if rows.size:
            # A Y cell of zero total weight has no target row to meet: keep P(Z | X) as is.
            q = tilt(proba[rows], w_rec[rows], target[j]) if target[j].sum() > 0 else proba[rows]
            level[rows] = sample_rows(q, rng)

    names = {
        code: f"{z}={problem.donor[z].iloc[np.argmax(z_don == code)]}"
        if z_edges is None
        else f"{z} quantile bin {code + 1}"
        for code in np.unique(z_don)
    }
    chosen = _match_within_levels(problem, level, z_don, names, rng, k=k, n_jobs=n_jobs)
    logger.info("aux_hotdeck: Y×Z target from %d auxiliary records (effective n %.0f)", len(aux), n_eff)
    return MethodOutput(
        donor_index=chosen,
        extra={
            "aux_y": y,
            "aux_z": z,
            "aux_effective_n": float(n_eff),
            "aux_target_table": (target / target.sum()).tolist(),
        },
    )


def _z_given_x(
    problem: FusionProblem, z_don: np.ndarray, n_z: int, rng: np.random.Generator, max_iter: int
) -> np.ndarray:
    """P(Z level | X, class) for every recipient, from a classifier fitted on the donors."""
    proba = np.zeros((len(problem.recipient), n_z))
    present = np.unique(z_don)
    if present.size == 1:
        proba[:, present[0]] = 1.0
        return proba
    x_rec, x_don = design_matrix(problem.recipient, problem.donor, problem.predictors, fill_missing=False)
    with openmp_threads(len(x_don)):
        model = fit_classifier(x_don, z_don, problem.donor_weights, rng, max_iter)
        proba[:, model.classes_] = np.maximum(model.predict_proba(x_rec), 1e-12)
    return proba


def _match_within_levels(
    problem: FusionProblem,
    level: np.ndarray,
    z_don: np.ndarray,
    names: dict[int, str],
    rng: np.random.Generator,
    *,
    k: int,
    n_jobs: int | None,
) -> np.ndarray:
    """Nearest donor on X within (donation class, drawn Z level); the level over all classes if the class lacks it."""
    rec, don, metric, _ = embed(problem)
    chosen = np.empty(len(rec), dtype=np.int64)
    for block in problem.blocks:
        for lv in np.unique(level[block.recipients]):
            recipients = block.recipients[level[block.recipients] == lv]
            donors = block.donors[z_don[block.donors] == lv]
            if donors.size == 0:
                donors = np.flatnonzero(z_don == lv)
                logger.warning(
                    "aux_hotdeck: class %s has no donor with %s; using those of all classes", block.key, names[lv]
                )
            local, _ = draw_nearest(
                rec[recipients], don[donors], problem.donor_weights[donors], rng, k=k, metric=metric, n_jobs=n_jobs
            )
            chosen[recipients] = donors[local]
    return chosen
