"""Calibrated weights by raking (Deville & Särndal 1992, the exponential distance).

Weights ``w = d * exp(A @ lam)`` with ``lam`` found by Newton's method on the calibration
equations ``A.T @ w = t``: the multiplicative form keeps every weight positive, and on
categorical margins it gives the same weights as iterative proportional fitting (the
test checks both). Linearly dependent controls (person cells that add up to the number
of persons, which household sizes also give) are handled by a least-squares Newton step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class RakingResult:
    weights: np.ndarray
    iterations: int
    max_relative_residual: float
    converged: bool


def rake(
    design: sp.spmatrix | np.ndarray,
    targets: np.ndarray,
    initial: np.ndarray | None = None,
    *,
    tolerance: float = 1e-9,
    max_iterations: int = 100,
) -> RakingResult:
    """Weights of the rows of ``design`` (units x controls) whose weighted sums equal ``targets``.

    ``initial`` are the design weights the result stays closest to (default 1). Stops when
    every control is within ``tolerance`` of its target, relative to ``max(|target|, 1)``;
    ``converged`` says whether it got there (an infeasible control, one no unit carries
    while its target is not 0, never does).
    """
    a = sp.csr_matrix(design, dtype=float)
    t = np.asarray(targets, dtype=float)
    d = np.ones(a.shape[0]) if initial is None else np.asarray(initial, dtype=float)
    scale = np.maximum(np.abs(t), 1.0)
    lam = np.zeros(a.shape[1])
    w = d.copy()

    def residual(weights: np.ndarray) -> np.ndarray:
        return (a.T @ weights - t) / scale

    r = residual(w)
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        if np.max(np.abs(r)) <= tolerance:
            iteration -= 1
            break
        hessian = (a.T @ a.multiply(w[:, None])).toarray()
        step = np.linalg.lstsq(hessian, -(a.T @ w - t), rcond=None)[0]
        norm = np.linalg.norm(r)
        size = 1.0
        while size > 1e-6:  # halve the step until the residual shrinks (Newton can overshoot)
            trial = d * np.exp(np.clip(a @ (lam + size * step), -50, 50))
            trial_r = residual(trial)
            if np.linalg.norm(trial_r) < norm:
                break
            size /= 2
        else:
            break
        lam = lam + size * step
        w, r = trial, trial_r
    worst = float(np.max(np.abs(r))) if len(r) else 0.0
    return RakingResult(w, iteration, worst, worst <= tolerance)
