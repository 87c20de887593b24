"""Combining rules for inference from m synthetic replicates: the project's one implementation.

Fully synthetic data (Raghunathan, Reiter & Rubin 2003): with estimates q_i and
within-replicate variances u_i from m synthetic data sets,

    q̄ = mean(q_i),  b = var(q_i) (ddof 1, between),  ū = mean(u_i) (within),
    T_f = (1 + 1/m) b − ū,   ν_f = (m − 1)(1 − m ū / ((m + 1) b))².

T_f can be negative (often, for small m); then (Reiter 2002) the always positive
T* = (n_syn / n) ū is used, the variance as if the estimate came from the real sample size,
with the conservative ν = m − 1 (a normal reference for a single replicate).
Partially synthetic data (Reiter 2003): T_p = ū + b/m, ν_p = (m − 1)(1 + m ū / b)².

The rules hold only for replicates drawn each from its own draw of the model's parameters
(``synth_assets.synthesis.replicate_models``). Used by the validation report's regressions
and by analysts combining fits over a release's replicates.
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
    fallback: Any  # fully synthetic: True where T_f was not positive and T* was used
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
    synthetic fallback; without them the sizes are taken as equal.
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
            fallback = ~(t_f > 0)
            scale = n_syn / n_real if n_real and n_syn else 1.0
            variance = np.where(fallback, scale * u_bar, t_f)
            df = np.where(fallback, m - 1 if m > 1 else np.inf, (m - 1) * (1 - m * u_bar / ((m + 1) * b)) ** 2)

    def out(values: np.ndarray) -> Any:
        return values.item() if scalar else values

    return CombinedEstimate(out(q_bar), out(variance), out(df.astype(float)), out(b), out(u_bar),
                            out(fallback), m, method)
