"""Combining rules for inference from m synthetic replicates: the project's one implementation.

What a replicate of a release is
--------------------------------
Replicate r of a release is one draw of the whole chain (issue 12), not a resample of one
fitted model:

1. every donor survey is redrawn by its design bootstrap (Rao-Wu rescaling bootstrap of
   households, within strata where the survey has them; ``synth_assets.matching.resample``)
   and its item non-response imputed afresh;
2. the surveys are fused into the register with a fusion seed of their own
   (``synth_assets.matching.replicates.fuse_replicates``): replicate r's matched data;
3. the generative model learns replicate r's matched training households and a posterior
   draw of its parameters is taken (``synthesis.replicates.chain_replicate_models``; CART: the
   fitted trees' leaves filled with replicate r's records, drawn with Bayesian-bootstrap
   weights; the networks: fine-tuned on them; the SDV families: refitted on a bootstrap);
4. a fictitious population is drawn from it and calibrated to the register's margins.

So an estimate's spread over the replicates holds the surveys' sampling variance (of the
750 to 2,000 respondents a survey variable rests on), the matching's own variance (Rässler
2002: statistical matching as multiple imputation), the model's parameter uncertainty and
the synthetic sampling noise. This is fully synthetic data in the sense of Raghunathan,
Reiter & Rubin (2003, "RRR"): every record is drawn from a posterior predictive of the
population given the sources.

The fully synthetic rule
------------------------
With estimates q_i and within-replicate variances u_i (what the analyst's model reports on
replicate i, as if it were real data of its size n_syn):

    q̄ = mean(q_i),  b = var(q_i) (ddof 1, between),  ū = mean(u_i) (within),
    T_f = (1 + 1/m) b − ū,   ν_f = (m − 1)(1 − m ū / ((m + 1) b))²  (RRR; see the floor below).

b estimates the posterior variance of the estimand given the sources plus the synthetic
sampling variance ū, so T_f estimates the former alone.

The floor, for negative (and too small) T_f
-------------------------------------------
T_f can be negative when b is small against ū (chance, with m = 5 and 4 degrees of freedom
for b: about one time in five for an estimate on register variables only, whose between
variance is little more than ū), and its degrees of freedom ν_f fall towards 0 as T_f
nears 0 (ν_f = (m − 1) (T_f / ((1 + 1/m) b))², Satterthwaite's for a difference), which
makes intervals absurdly wide (t quantiles of 10^30 were seen on the demo). The rule used
here is

    T = max(T_f, T*),   T* = (n_syn / n_real) ū   (Reiter 2002),   ν = m − 1,

``fallback`` marking where T* was used. T* is the variance the analyst's model reports
for real data of the size the estimate rests on: ``n_real`` is the register's persons for
register-only estimates (then T* ≈ ū, the population-size variance) and the respondents of
the smallest survey involved otherwise (1,000 respondents of the living-conditions survey
in a population of 50,000 give T* = 50 ū, what that survey alone would have given). It is
a lower bound of the true variance of these replicates' q̄, which holds that survey's
sampling variance plus the matching's and the synthesis' own: no estimate can be more
precise than the smallest source it rests on. Degrees of freedom: ν_f ≤ m − 1 always, and
its heavy tails protect against a T_f too small, which the floor now excludes; what remains
uncertain is b, estimated with m − 1 degrees of freedom, hence ν = m − 1 (RRR's own choice
where T* is used).
Simulated (a normal model, proper replicates, m = 5, 2,000 runs, survey-size real data and
replicates of 1 to 100 times its size): coverage of the 95% interval 0.986 to 0.994, median
width 1.4 to 1.5 times the real data's own interval (the t quantile with 4 df alone is 1.42
times 1.96); plain RRR with the floor for negative T_f only gave widths of 3.8 times.
Without ``n_real`` the sizes are taken as equal (T* = ū), which understates the floor
for survey variables: pass it (``Release.n_real`` gives it for a published release).

Partially synthetic data (Reiter 2003): T_p = ū + b/m, ν_p = (m − 1)(1 + m ū / b)², kept
for comparison; it does not fit these replicates (every record is synthetic).

The rules hold only for replicates drawn as above. Used by the validation report's
regressions and by analysts (``synth_assets.inference.fit_replicates``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import stdtrit

METHODS = ("fully", "partially")


@dataclass(frozen=True)
class CombinedEstimate:
    """Combined estimates: floats for one parameter, arrays (one entry per parameter) for several."""

    estimate: Any
    variance: Any
    df: Any  # inf where the normal reference distribution applies
    between: Any
    within: Any
    fallback: Any  # fully synthetic: True where T_f fell below the floor T* and T* was used
    m: int
    method: str

    @property
    def se(self) -> Any:
        return np.sqrt(self.variance)

    def interval(self, level: float = 0.95) -> tuple[Any, Any]:
        half = stdtrit(self.df, 0.5 + level / 2) * self.se
        return self.estimate - half, self.estimate + half


def combine_estimates(
    estimates: Any,
    variances: Any,
    *,
    method: str = "fully",
    n_real: float | None = None,
    n_syn: float | None = None,
) -> CombinedEstimate:
    """Combine per-replicate ``estimates`` and their ``variances``: shape ``(m,)`` or ``(m, p)``.

    ``n_real`` and ``n_syn`` (real and per-replicate synthetic sizes) scale the fully
    synthetic floor T* (module doc); without them the sizes are taken as equal.
    """
    if method not in METHODS:
        raise ValueError(f"method must be 'fully' or 'partially', got {method!r}")
    q, u = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    if q.shape != u.shape or q.ndim not in (1, 2) or len(q) == 0:
        raise ValueError(f"estimates {q.shape} and variances {u.shape} must share a shape (m,) or (m, p)")
    m = len(q)
    if method == "partially" and m < 2:
        raise ValueError("the partially synthetic rule needs at least two replicates")
    scalar = q.ndim == 1
    q, u = q.reshape(m, -1), u.reshape(m, -1)
    q_bar, u_bar = q.mean(axis=0), u.mean(axis=0)
    b = q.var(axis=0, ddof=1) if m > 1 else np.full_like(q_bar, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "partially":
            variance = u_bar + b / m
            df = np.where(b > 0, (m - 1) * (1 + m * u_bar / b) ** 2, np.inf)
            fallback = np.zeros_like(q_bar, dtype=bool)
        else:
            t_f = (1 + 1 / m) * b - u_bar
            scale = n_syn / n_real if n_real and n_syn else 1.0
            t_star = scale * u_bar
            fallback = ~(t_f > t_star) if m > 1 else np.ones_like(q_bar, dtype=bool)
            variance = np.where(fallback, t_star, t_f)
            # ν_f = (m − 1)(1 − m ū / ((m + 1) b))² ≤ m − 1: bounded below by the floor's m − 1 (module doc)
            df = np.full_like(q_bar, m - 1.0 if m > 1 else np.inf)

    def out(values: np.ndarray) -> Any:
        return values.item() if scalar else values

    return CombinedEstimate(out(q_bar), out(variance), out(df.astype(float)), out(b), out(u_bar),
                            out(fallback), m, method)
