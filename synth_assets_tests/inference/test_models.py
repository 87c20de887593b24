"""OLS and IRLS logit against closed forms and known values; the combined fit helpers."""

import numpy as np
import pandas as pd
import pytest

from synth_assets.inference import fit_ols, logit, logit_on_replicates, ols, ols_on_replicates


def test_ols_matches_closed_form_and_hc0():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(50), rng.normal(size=50)])
    y = 1 + 2 * X[:, 1] + rng.normal(size=50) * (1 + np.abs(X[:, 1]))
    coef, var = ols(X, y)
    expected = np.linalg.solve(X.T @ X, X.T @ y)
    assert coef == pytest.approx(expected)
    resid = y - X @ expected
    assert var == pytest.approx(np.diag(np.linalg.inv(X.T @ X)) * (resid @ resid) / 48)
    _, hc0 = ols(X, y, cov="hc0")
    bread = np.linalg.inv(X.T @ X)
    assert hc0 == pytest.approx(np.diag(bread @ (X.T * resid**2) @ X @ bread))
    _, hc1 = ols(X, y, cov="hc1")
    assert hc1 == pytest.approx(hc0 * 50 / 48)


def test_logit_known_values():
    # 2x2 table: the logit is saturated, coefficients are the log odds and the log odds ratio
    x = np.array([0] * 40 + [1] * 60, float)
    y = np.array([1] * 10 + [0] * 30 + [1] * 30 + [0] * 30, float)
    X = np.column_stack([np.ones_like(x), x])
    coef, var, converged = logit(X, y)
    assert converged
    assert coef == pytest.approx([np.log(10 / 30), np.log((30 / 30) / (10 / 30))])
    assert var == pytest.approx([1 / 10 + 1 / 30, 1 / 10 + 1 / 30 + 1 / 30 + 1 / 30])  # Woolf


def test_design_expressions_and_dummies():
    frame = pd.DataFrame({"y": [1.0, 2.0, 4.0, 8.0, 9.0], "age": [20, 30, 40, 50, 60],
                          "sex": pd.Categorical(["f", "m", "f", "m", "f"])})
    fit = fit_ols(frame, "log(y)", ["age", "age ** 2", "sex"])
    assert fit.names == ["(Intercept)", "age", "age ** 2", "sex[m]"]
    assert fit.n == 5


def test_combined_helpers_on_replicates():
    rng = np.random.default_rng(1)
    reps = []
    for _ in range(5):
        x = rng.normal(size=2000)
        reps.append(pd.DataFrame({"x": x, "y": 1 + 0.5 * x + rng.normal(size=2000),
                                  "z": rng.random(2000) < 1 / (1 + np.exp(-x))}))
    fit = ols_on_replicates(reps, "y", ["x"], n_real=2000)
    table = fit.table()
    assert list(table.index) == ["(Intercept)", "x"]
    assert table.loc["x", "lower"] < 0.5 < table.loc["x", "upper"]
    lfit = logit_on_replicates(reps, "z", ["x"], where="x > -3")
    assert lfit.table().loc["x", "lower"] < 1.0 < lfit.table().loc["x", "upper"]
