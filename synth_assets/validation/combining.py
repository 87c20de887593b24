"""Combining rules for estimates from m fully synthetic replicates.

Raghunathan, Reiter & Rubin (2003): with estimates q_i and variance estimates u_i from
m synthetic data sets,

    q̄ = mean(q_i),  b = var(q_i) (between),  ū = mean(u_i) (within),
    T_f = (1 + 1/m) b − ū,   ν_f = (m − 1)(1 − m ū / ((m + 1) b))².

T_f can be negative (often, for small m); Reiter (2002) then uses the always positive
T* = (n_syn / n) ū, with normal reference distribution.

A twin of ``synth_assets.synthesis.replicates.combine_estimates`` kept here so that
validation does not depend on the synthesis package; to be deduplicated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit


@dataclass(frozen=True)
class CombinedEstimate:
    """Combined point estimates and variances, one entry per parameter."""

    estimate: np.ndarray
    variance: np.ndarray
    between: np.ndarray
    within: np.ndarray
    df: np.ndarray  # np.inf where the normal reference distribution applies
    fallback: np.ndarray  # True where T_f <= 0 and the non-negative variance was used
    m: int

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(self.variance)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        quantile = stdtrit(self.df, 0.5 + level / 2)
        return self.estimate - quantile * self.se, self.estimate + quantile * self.se


def combine_estimates(
    estimates: np.ndarray, variances: np.ndarray, n_synthetic_over_n: float = 1.0
) -> CombinedEstimate:
    """Combine ``(m, p)`` arrays of estimates and their variances across m replicates."""
    q = np.atleast_2d(np.asarray(estimates, dtype=float))
    u = np.atleast_2d(np.asarray(variances, dtype=float))
    if q.shape != u.shape:
        raise ValueError(f"estimates {q.shape} and variances {u.shape} differ in shape")
    m = q.shape[0]
    q_bar, u_bar = q.mean(axis=0), u.mean(axis=0)
    b = q.var(axis=0, ddof=1) if m > 1 else np.full_like(q_bar, np.nan)
    t_f = (1 + 1 / m) * b - u_bar
    fallback = ~(t_f > 0)
    variance = np.where(fallback, n_synthetic_over_n * u_bar, t_f)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (m - 1) * (1 - m * u_bar / ((m + 1) * b)) ** 2
    df = np.where(fallback, np.inf, df)  # T_f > 0 implies ν_f > 0
    return CombinedEstimate(q_bar, variance, b, u_bar, df, fallback, m)
