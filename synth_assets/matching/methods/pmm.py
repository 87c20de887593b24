"""Predictive mean matching.

A ridge regression of one Z on X is fitted on the donors (with donor weights);
recipients and donors are then matched on their *predicted* values and the
recipient takes the matched donor's observed Z block.  The model only defines
the distance: imputed values are real donor values, drawn among the ``k``
nearest (∝ weight), so their distribution is not shrunk towards the mean.

The target is ``target`` or the first numeric variable of ``impute``; when
``impute`` has no numeric variable, the first one's levels are one-hot coded
and matching happens on the vector of predicted level shares.  Donation class
variables enter the model as predictors, and matching stays within classes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from synth_assets.common.columns import is_numeric
from synth_assets.matching.encoding import as_float, design_matrix, one_hot
from synth_assets.matching.methods.base import MethodOutput
from synth_assets.matching.neighbors import draw_nearest
from synth_assets.matching.problem import FusionProblem


def _target(problem: FusionProblem, target: str) -> np.ndarray:
    """Donor target as a 2-d array (NaN rows for missing numeric values)."""
    column = problem.donor[target]
    if is_numeric(column):
        return as_float(column)[:, None]
    codes, levels = pd.factorize(column.astype(object), use_na_sentinel=False)
    return one_hot(codes, len(levels))


def run(
    problem: FusionProblem,
    rng: np.random.Generator,
    *,
    target: str | None = None,
    k: int = 5,
    alpha: float = 1.0,
    n_jobs: int | None = -1,
) -> MethodOutput:
    """Options: ``target`` Z variable to model, ``k`` nearest donors to draw from, ``alpha`` ridge penalty."""
    target = target or next((c for c in problem.impute if is_numeric(problem.donor[c])), problem.impute[0])
    if target not in problem.impute:
        raise ValueError(f"pmm target {target!r} is not one of the imputed variables {problem.impute}")
    x_rec, x_don = design_matrix(problem.recipient, problem.donor, problem.predictors, fill_missing=True)
    center = np.average(x_don, axis=0, weights=problem.donor_weights)
    scale = x_don.std(axis=0)
    scale[scale == 0] = 1.0
    x_rec, x_don = (x_rec - center) / scale, (x_don - center) / scale

    y = _target(problem, target)
    fit_rows = ~np.isnan(y).any(axis=1)
    if not fit_rows.any():
        raise ValueError(f"pmm target {target!r} is missing for every donor")
    model = Ridge(alpha=alpha).fit(x_don[fit_rows], y[fit_rows], sample_weight=problem.donor_weights[fit_rows])
    pred_rec, pred_don = model.predict(x_rec).reshape(len(x_rec), -1), model.predict(x_don).reshape(len(x_don), -1)
    spread = pred_don.std(axis=0)
    spread[spread == 0] = 1.0
    pred_rec, pred_don = pred_rec / spread, pred_don / spread

    chosen = np.empty(len(x_rec), dtype=np.int64)
    for block in problem.blocks:
        local, _ = draw_nearest(
            pred_rec[block.recipients],
            pred_don[block.donors],
            problem.donor_weights[block.donors],
            rng,
            k=k,
            metric="euclidean",
            n_jobs=n_jobs,
            label="pmm: ",
        )
        chosen[block.recipients] = block.donors[local]
    return MethodOutput(donor_index=chosen, extra={"pmm_target": target, "k": k})
