"""Ordinary least squares and logistic regression with standard errors, in numpy.

statsmodels would do this, but it is one more heavy dependency for two estimators whose
algebra fits on a page. Variances are model-based by default (``cov="model"``: σ²(X'X)⁻¹
for OLS, the inverse Fisher information for the logit: what the synthpop/Karr comparisons
use) or the heteroskedasticity-robust sandwich (``cov="hc0"``, White 1980; ``cov="hc1"``
with the n/(n−p) factor). The project's one implementation: the validation's regressions
and the analysts' fits over replicates (``inference.models``) both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit


@dataclass(frozen=True)
class Fit:
    """Coefficients and standard errors of one fitted model.

    ``df_resid`` is the residual degrees of freedom for OLS (t intervals) and None for
    the logit (normal intervals). ``fitted`` holds fitted values: means for OLS,
    probabilities for the logit.
    """

    coef: np.ndarray
    se: np.ndarray
    fitted: np.ndarray
    rank: int
    df_resid: int | None
    converged: bool


COVARIANCES = ("model", "hc0", "hc1")


def _check_cov(cov: str) -> None:
    if cov not in COVARIANCES:
        raise ValueError(f"cov must be one of {COVARIANCES}, got {cov!r}")


def _sandwich(X: np.ndarray, bread: np.ndarray, scores: np.ndarray, cov: str) -> np.ndarray:
    meat = (X * scores[:, None] ** 2).T @ X
    out = bread @ meat @ bread
    if cov == "hc1":
        n, p = X.shape
        out *= n / max(n - p, 1)
    return out


def fit_ols(X: np.ndarray, y: np.ndarray, *, cov: str = "model") -> Fit:
    """OLS by least squares; the pseudo-inverse keeps aliased columns from crashing."""
    _check_cov(cov)
    X, y = np.asarray(X, float), np.asarray(y, float)
    coef, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    fitted = X @ coef
    df_resid = max(X.shape[0] - int(rank), 1)
    bread = np.linalg.pinv(X.T @ X)
    if cov == "model":
        covariance = bread * float(((y - fitted) ** 2).sum()) / df_resid
    else:
        covariance = _sandwich(X, bread, y - fitted, cov)
    return Fit(coef, np.sqrt(np.clip(np.diag(covariance), 0, None)), fitted, int(rank), df_resid, True)


def fit_logit(X: np.ndarray, y: np.ndarray, max_iter: int = 50, tol: float = 1e-8, *, cov: str = "model") -> Fit:
    """Maximum-likelihood logit by Newton-Raphson (IRLS).

    Linear predictors are clipped at ±30 so that separated data (a category seen only in
    one of the two samples) converge to probabilities of ~0/1 instead of overflowing;
    ``converged`` is False when the steps never became small.
    """
    _check_cov(cov)
    X, y = np.asarray(X, float), np.asarray(y, float)
    beta = np.zeros(X.shape[1])
    converged = False
    for _ in range(max_iter):
        p = expit(np.clip(X @ beta, -30, 30))
        hessian = X.T @ (X * (p * (1 - p))[:, None])
        step = np.linalg.lstsq(hessian, X.T @ (y - p), rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) <= tol * (1 + np.max(np.abs(beta))):
            converged = True
            break
    p = expit(np.clip(X @ beta, -30, 30))
    bread = np.linalg.pinv(X.T @ (X * (p * (1 - p))[:, None]))
    covariance = bread if cov == "model" else _sandwich(X, bread, y - p, cov)
    rank = int(np.linalg.matrix_rank(X))
    return Fit(beta, np.sqrt(np.clip(np.diag(covariance), 0, None)), p, rank, None, converged)
