"""OLS and logit with standard errors, in numpy, for fitting a model on every replicate.

The estimators are ``inference.glm``'s (the validation's regressions use them too). Variances are
model-based by default (``cov="model"``: σ²(X'X)⁻¹ for OLS, the inverse Fisher information
for the logit) or the heteroskedasticity-robust sandwich (``cov="hc0"``, White 1980;
``cov="hc1"`` with the n/(n−p) factor). Tested against closed forms and known values in
``synth_assets_tests/inference/test_models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.inference import glm


@dataclass(frozen=True)
class ModelFit:
    """Coefficients (named), their variances and the number of records used."""

    names: list[str]
    coef: np.ndarray
    variance: np.ndarray  # diagonal of the covariance matrix
    n: int
    converged: bool = True

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(self.variance)


def ols(X: np.ndarray, y: np.ndarray, *, cov: str = "model") -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and the diagonal of their covariance (``cov``: model, hc0, hc1)."""
    fit = glm.fit_ols(X, y, cov=cov)
    return fit.coef, fit.se**2


def logit(
    X: np.ndarray, y: np.ndarray, *, cov: str = "model", max_iter: int = 100, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Maximum-likelihood logit by IRLS (Newton-Raphson): coefficients, variances, converged."""
    fit = glm.fit_logit(X, y, max_iter, tol, cov=cov)
    return fit.coef, fit.se**2, fit.converged


def design(
    frame: pd.DataFrame, outcome: str, predictors: Sequence[str], *, levels: dict[str, list] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Response, design matrix (intercept first) and term names; incomplete rows dropped.

    ``outcome`` and each predictor are columns or pandas expressions (``"np.log(labour_income)"``
    is not allowed by pandas' eval, write ``"log(labour_income)"``; ``"age ** 2"``,
    ``"tenure == 'owner'"``). A non-numeric predictor enters as dummies of its ``levels``
    (default: its sorted observed values, added to ``levels``) with the first as reference.
    """
    levels = levels if levels is not None else {}  # filled here: pass one dict to fix levels across replicates

    def evaluate(expression: str) -> pd.Series:
        if expression in frame.columns:
            return frame[expression]
        return pd.Series(frame.eval(expression, engine="python"), index=frame.index)

    y = evaluate(outcome)
    if pd.api.types.is_bool_dtype(y):
        y = y.astype(float)
    y = pd.to_numeric(y, errors="coerce").astype(float)
    complete = np.isfinite(y.to_numpy())
    columns, names = [np.ones(len(frame))], ["(Intercept)"]
    for predictor in predictors:
        values = evaluate(predictor)
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            complete &= np.isfinite(x)
            columns.append(x)
            names.append(predictor)
            continue
        known = levels.setdefault(predictor, sorted(values.dropna().astype(str).unique().tolist()))
        text = values.astype("string")
        complete &= text.isin(known).fillna(False).to_numpy(dtype=bool)
        for level in known[1:]:
            columns.append((text == level).fillna(False).to_numpy(dtype=float))
            names.append(f"{predictor}[{level}]")
    X = np.column_stack(columns)[complete]
    return y.to_numpy()[complete], X, names


def fit_ols(frame: pd.DataFrame, outcome: str, predictors: Sequence[str], *, cov: str = "model",
            levels: dict[str, list] | None = None) -> ModelFit:
    y, X, names = design(frame, outcome, predictors, levels=levels)
    coef, variance = ols(X, y, cov=cov)
    return ModelFit(names, coef, variance, len(y))


def fit_logit(frame: pd.DataFrame, outcome: str, predictors: Sequence[str], *, cov: str = "model",
              levels: dict[str, list] | None = None) -> ModelFit:
    y, X, names = design(frame, outcome, predictors, levels=levels)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"logit: outcome {outcome!r} must be 0/1 or true/false")
    coef, variance, converged = logit(X, y, cov=cov)
    return ModelFit(names, coef, variance, len(y), converged)
