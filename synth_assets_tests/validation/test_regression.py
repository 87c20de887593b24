import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synth_assets.inference.combining import combine_estimates
from synth_assets.inference.glm import fit_logit, fit_ols
from synth_assets.validation.utility.regression import (
    RegressionSpec,
    ci_overlap,
    compare_regression,
    compare_regressions,
)
from synth_assets_tests.validation.populations import population

SPECS = [
    RegressionSpec("ols", "income", ["age", "sex", "region"]),
    RegressionSpec("logit", "status == 'employed'", ["age", "sex"]),
]


def _adults(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["age"] >= 16) & (frame["age"] < 65)]


def test_same_distribution_gives_high_overlap(train):
    replicates = [_adults(population(1500, seed=s)) for s in (11, 12, 13)]
    for comparison in compare_regressions(_adults(train), replicates, SPECS):
        assert comparison.mean_ci_overlap > 0.5, comparison.table


def test_removed_relation_gives_low_overlap(train):
    broken = _adults(population(1500, seed=14)).copy()
    broken["income"] = np.random.default_rng(0).permutation(broken["income"].to_numpy())
    comparison = compare_regressions(_adults(train), [broken], SPECS[:1])[0]
    table = comparison.table.set_index("term")
    assert table.loc["age", "ci_overlap"] < 0  # income rises with age in the population
    assert comparison.mean_ci_overlap < 0.5


def test_ols_and_logit_match_textbook_values():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(500), rng.normal(size=500)])
    y = X @ [1.0, 2.0] + rng.normal(size=500)
    ols = fit_ols(X, y)
    scipy_fit = stats.linregress(X[:, 1], y)
    assert ols.coef[1] == pytest.approx(scipy_fit.slope)
    assert ols.se[1] == pytest.approx(scipy_fit.stderr)
    p = 1 / (1 + np.exp(-(X @ [-0.5, 1.0])))
    logit = fit_logit(X, (rng.random(500) < p).astype(float))
    assert logit.converged
    assert abs(logit.coef[1] - 1.0) < 3 * logit.se[1]


def test_ci_overlap_definition():
    assert ci_overlap(np.array([0.0]), np.array([2.0]), np.array([0.0]), np.array([2.0]))[0] == 1.0
    # [0,2] and [1,3]: overlap 1, half of each interval
    assert ci_overlap(np.array([0.0]), np.array([2.0]), np.array([1.0]), np.array([3.0]))[0] == 0.5
    # [0,4] and [1,3]: overlap 2 = half of the first, all of the second
    assert ci_overlap(np.array([0.0]), np.array([4.0]), np.array([1.0]), np.array([3.0]))[0] == 0.75
    assert ci_overlap(np.array([0.0]), np.array([1.0]), np.array([2.0]), np.array([3.0]))[0] < 0


def test_combining_rules_for_fully_synthetic_data():
    combined = combine_estimates(np.array([[1.0], [2.0], [3.0]]), np.full((3, 1), 0.5))
    # q̄ = 2, b = 1, ū = .5, T_f = (1 + 1/3)·1 − .5 above T* = ū; ν = max(ν_f, m − 1) = 2
    assert combined.estimate[0] == 2.0
    assert combined.variance[0] == pytest.approx(4 / 3 - 0.5)
    assert 2 * (1 - 1.5 / 4) ** 2 < 2
    assert combined.df[0] == pytest.approx(2)
    assert not combined.fallback[0]
    flat = combine_estimates(np.array([[1.0], [1.0]]), np.full((2, 1), 0.5), n_real=100, n_syn=200)
    assert flat.fallback[0] and flat.variance[0] == pytest.approx(1.0) and flat.df[0] == 1  # ν = m − 1
    single = combine_estimates(np.array([[1.0]]), np.array([[0.5]]))
    assert single.fallback[0] and single.variance[0] == 0.5 and np.isinf(single.df[0])


def test_bad_specs_are_reported(train):
    with pytest.raises(ValueError, match="unknown predictor"):
        compare_regressions(train, [train], [RegressionSpec("ols", "income", ["nope"])])
    with pytest.raises(ValueError, match="0/1"):
        compare_regressions(train, [train], [RegressionSpec("logit", "income", ["age"])])


def _separable(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 80, n)
    group = rng.choice(["a", "b", "c"], n)
    # in group "c" the outcome is always 1: its logit coefficient is infinite (separation)
    y = np.where(group == "c", 1, (rng.random(n) < 1 / (1 + np.exp(-(age - 50) / 10))).astype(int))
    return pd.DataFrame({"age": age, "group": group, "y": y})


def test_a_term_separated_in_the_real_data_is_excluded_with_its_reason():
    real = _separable()
    spec = RegressionSpec("logit", "y", ["age", "group"])
    result = compare_regression(real, [_separable(seed=s) for s in (1, 2, 3)], spec)
    assert "group[c]" not in set(result.table["term"])
    assert "separation" in result.excluded["group[c]"]
    assert set(result.table["term"]) == {"(Intercept)", "age", "group[b]"}
    assert np.isfinite(result.table["ci_overlap"]).all()


def test_a_term_degenerate_only_in_the_synthetic_data_scores_zero():
    rng = np.random.default_rng(5)
    real = _separable().assign(y=lambda d: (rng.random(len(d)) < 0.5).astype(int))  # no separation
    spec = RegressionSpec("logit", "y", ["age", "group"])
    result = compare_regression(real, [_separable(seed=s) for s in (1, 2)], spec)
    row = result.table.set_index("term").loc["group[c]"]
    # the huge synthetic interval would otherwise be credited with an overlap near 0.5
    assert bool(row["synthetic_degenerate"]) and row["ci_overlap"] == 0.0
    assert not result.excluded


def test_an_aliased_term_is_excluded():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(size=200)})
    real["x_copy"] = 2 * real["x"]
    real["y"] = real["x"] + rng.normal(size=200)
    result = compare_regression(real, [real.sample(frac=1, random_state=1)], RegressionSpec("ols", "y", ["x", "x_copy"]))
    assert {"x", "x_copy"} <= set(result.excluded)
