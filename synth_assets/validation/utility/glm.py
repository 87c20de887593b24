"""Ordinary least squares and logistic regression with standard errors, in numpy.

statsmodels would do this, but it is one more heavy dependency for two estimators whose
algebra fits on a page; the regressions here only need coefficients and their
model-based (not robust) standard errors, as in the synthpop/Karr comparisons.
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


def fit_ols(X: np.ndarray, y: np.ndarray) -> Fit:
    """OLS by least squares; the pseudo-inverse keeps aliased columns from crashing."""
    coef, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    fitted = X @ coef
    df_resid = max(X.shape[0] - int(rank), 1)
    sigma2 = float(((y - fitted) ** 2).sum()) / df_resid
    cov = sigma2 * np.linalg.pinv(X.T @ X)
    return Fit(coef, np.sqrt(np.clip(np.diag(cov), 0, None)), fitted, int(rank), df_resid, True)


def fit_logit(X: np.ndarray, y: np.ndarray, max_iter: int = 50, tol: float = 1e-8) -> Fit:
    """Maximum-likelihood logit by Newton-Raphson (IRLS).

    Linear predictors are clipped at ±30 so that separated data (a category seen only in
    one of the two samples) converge to probabilities of ~0/1 instead of overflowing;
    ``converged`` is False when the steps never became small.
    """
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
    hessian = X.T @ (X * (p * (1 - p))[:, None])
    cov = np.linalg.pinv(hessian)
    rank = int(np.linalg.matrix_rank(X))
    return Fit(beta, np.sqrt(np.clip(np.diag(cov), 0, None)), p, rank, None, converged)
