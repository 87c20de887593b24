"""Rank hot deck (StatMatch ``rankNND.hotdeck``).

Recipients and donors are placed on their own weighted empirical CDF of one
numeric X, within donation classes, and each recipient takes the donor whose
CDF value is nearest.  Matching on ranks rather than values removes level
shifts between sources (e.g. income measured net in one survey, gross in the
other).  Donors with equal values share a CDF value and are drawn ∝ weight.
Recipients with the variable missing draw a donor ∝ weight among the class's
donors with it missing, or among all the class's donors if none is.
"""

from __future__ import annotations

import numpy as np

from synth_assets.common.columns import is_numeric
from synth_assets.matching.encoding import as_float
from synth_assets.matching.methods.base import MethodOutput
from synth_assets.matching.neighbors import draw_nearest
from synth_assets.matching.problem import FusionProblem
from synth_assets.matching.sampling import draw_proportional


def weighted_ecdf(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """F(v_i) = share of weight at values <= v_i, for every i (unweighted if the weights sum to 0)."""
    if weights.sum() <= 0:
        weights = np.ones_like(values)
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    last_of_value = np.searchsorted(values[order], values, side="right") - 1
    return cum[last_of_value] / cum[-1]


def run(problem: FusionProblem, rng: np.random.Generator, *, var: str | None = None) -> MethodOutput:
    """Option ``var``: the numeric X to rank on (default: the first numeric of ``on``)."""
    var = var or next((c for c in problem.on if is_numeric(problem.donor[c])), None)
    if var is None or var not in problem.on:
        raise ValueError(f"rank_hotdeck needs a numeric variable of 'on' to rank on (got {var!r})")
    if not is_numeric(problem.donor[var]):
        raise ValueError(f"rank_hotdeck: column {var!r} is not numeric")
    rec_all, don_all = as_float(problem.recipient[var]), as_float(problem.donor[var])
    chosen = np.empty(len(rec_all), dtype=np.int64)
    for block in problem.blocks:
        rec, don = rec_all[block.recipients], don_all[block.donors]
        rec_obs, don_obs = ~np.isnan(rec), ~np.isnan(don)
        w_rec = problem.recipient_weights[block.recipients][rec_obs]
        w_don = problem.donor_weights[block.donors]
        if rec_obs.any() and don_obs.any():
            local, _ = draw_nearest(
                weighted_ecdf(rec[rec_obs], w_rec)[:, None],
                weighted_ecdf(don[don_obs], w_don[don_obs])[:, None],
                w_don[don_obs],
                rng,
                tie_candidates=2,
            )
            chosen[block.recipients[rec_obs]] = block.donors[np.flatnonzero(don_obs)[local]]
        elif rec_obs.any():  # no donor observed: nothing to rank against
            chosen[block.recipients[rec_obs]] = block.donors[draw_proportional(w_don, int(rec_obs.sum()), rng)]
        pool = np.flatnonzero(~don_obs) if (~don_obs).any() else np.arange(len(don))
        picks = draw_proportional(w_don[pool], int((~rec_obs).sum()), rng)
        chosen[block.recipients[~rec_obs]] = block.donors[pool[picks]]
    return MethodOutput(donor_index=chosen, extra={"rank_variable": var})
