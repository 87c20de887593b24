"""Multiple synthetic replicates and the combining rules for inference from them.

Fully synthetic data (Raghunathan, Reiter & Rubin 2003): from m replicates with estimates
q_i and within-replicate variances u_i,

    q̄ = mean(q_i),  b = var(q_i) (ddof 1),  ū = mean(u_i),
    T_f = (1 + 1/m) b − ū,   ν_f = (m − 1)(1 − m ū / ((m + 1) b))².

T_f can be negative; then (Reiter 2002) T* = (n_syn / n) ū is used, i.e. the variance as if
the estimate came from the real sample size, with the conservative ν = m − 1.
Partially synthetic data (Reiter 2003): T_p = ū + b/m, ν_p = (m − 1)(1 + m ū / b)².

The rules are valid only if each replicate is drawn with its own draw of the model's
parameters (a posterior predictive draw, "proper" synthesis). Drawing all replicates from
one fitted model understates the variance. :func:`sample_replicates` therefore draws each
replicate from :meth:`~synth_assets.synthesis.base.Synthesizer.posterior_draw` where the
family has one (CART: Bayesian-bootstrap weights on the training records), or from a clone
refitted on a bootstrap of ``data`` when given, and warns when neither is possible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from synth_assets.synthesis.base import LOGGER, Synthesizer


@dataclass(frozen=True)
class CombinedEstimate:
    """A point estimate with its combined variance and degrees of freedom."""

    estimate: float
    variance: float
    df: float
    between: float
    within: float
    m: int
    method: str
    adjusted: bool  # fully synthetic: T_f was not positive and the fallback was used

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        quantile = stats.t.ppf(0.5 + level / 2, self.df) if math.isfinite(self.df) else stats.norm.ppf(0.5 + level / 2)
        half = quantile * math.sqrt(self.variance)
        return self.estimate - half, self.estimate + half


def combine_estimates(
    estimates: Sequence[float],
    variances: Sequence[float],
    *,
    method: str = "fully",
    n_real: int | None = None,
    n_syn: int | None = None,
) -> CombinedEstimate:
    """Combine per-replicate estimates; ``method`` is ``"fully"`` or ``"partially"`` synthetic.

    ``n_real``/``n_syn`` (real and per-replicate synthetic sizes) scale the fallback for a
    negative fully synthetic variance; without them the sizes are taken as equal.
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = len(q)
    if m < 2 or len(u) != m:
        raise ValueError("need at least two replicates, each with an estimate and a variance")
    qbar, b, ubar = float(q.mean()), float(q.var(ddof=1)), float(u.mean())
    if method == "partially":
        variance = ubar + b / m
        df = (m - 1) * (1 + m * ubar / b) ** 2 if b > 0 else math.inf
        return CombinedEstimate(qbar, variance, df, b, ubar, m, method, adjusted=False)
    if method != "fully":
        raise ValueError(f"method must be 'fully' or 'partially', got {method!r}")
    variance = (1 + 1 / m) * b - ubar
    if variance > 0:
        df = (m - 1) * (1 - m * ubar / ((m + 1) * b)) ** 2
        return CombinedEstimate(qbar, variance, df, b, ubar, m, method, adjusted=False)
    scale = n_syn / n_real if n_real and n_syn else 1.0
    return CombinedEstimate(qbar, scale * ubar, float(m - 1), b, ubar, m, method, adjusted=True)


def _bootstrap(data: pd.DataFrame, cluster: str | None, rng: np.random.Generator) -> pd.DataFrame:
    """Resample rows, or whole clusters (households) when ``cluster`` is given."""
    if cluster is None:
        return data.iloc[rng.integers(0, len(data), len(data))].reset_index(drop=True)
    keys = data[cluster].unique()
    drawn = rng.choice(keys, len(keys), replace=True)
    groups = {k: g for k, g in data.groupby(cluster, sort=False)}
    parts = []
    for i, key in enumerate(drawn):  # each drawn cluster becomes a new, distinct cluster
        part = groups[key].copy()
        part[cluster] = i
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def replicate_models(
    synth: Synthesizer,
    m: int = 5,
    seed: int = 0,
    *,
    data: pd.DataFrame | None = None,
    cluster: str | None = None,
) -> Iterator[tuple[Synthesizer, int]]:
    """Yield ``(model, seed)`` for each of ``m`` replicates: each its own parameter draw.

    A family with a posterior draw (CART) yields :meth:`Synthesizer.posterior_draw`; otherwise,
    with ``data`` (and ``cluster`` for household data), a clone refitted on a bootstrap
    sample; otherwise the fitted model itself, with a warning (see module doc). Everything
    one replicate holds, refills included, should come from its own model.
    """
    seeds = np.random.SeedSequence(seed).generate_state(m)
    has_draw = synth.has_posterior_draw
    if not has_draw and data is None:
        LOGGER.warning(
            "%s has no posterior draw and no data was given: replicates differ only by sampling "
            "noise and the combining rules will understate variances", synth.family,
        )
    for replicate_seed in (int(s) for s in seeds):
        if has_draw:
            yield synth.posterior_draw(replicate_seed), replicate_seed
        elif data is not None:
            rng = np.random.default_rng(replicate_seed)
            yield synth.clone().fit(_bootstrap(data, cluster, rng)), replicate_seed
        else:
            yield synth, replicate_seed


def sample_replicates(
    synth: Synthesizer,
    n: int,
    m: int = 5,
    seed: int = 0,
    *,
    data: pd.DataFrame | None = None,
    cluster: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[pd.DataFrame]:
    """``m`` synthetic datasets of ``n`` rows, each from its own parameter draw (:func:`replicate_models`).

    ``progress(done_rows, total_rows)`` is called after each replicate.
    """
    replicates = []
    for model, replicate_seed in replicate_models(synth, m, seed, data=data, cluster=cluster):
        replicates.append(model.sample(n, seed=replicate_seed))
        if progress is not None:
            progress(sum(len(r) for r in replicates), n * m)
    return replicates
