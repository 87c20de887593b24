import os
import threading

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from synth_assets.validation.utility.cart import rpart_propensities
from synth_assets.validation.utility.propensity import logit_design, pmse, propensity_auc, tree_design
from synth_assets_tests.validation.populations import population


@pytest.fixture(scope="module")
def different():
    """Incomes three times higher and another regional distribution."""
    return population(1500, seed=4, income_scale=3.0, region_p=[0.05, 0.05, 0.1, 0.3, 0.5])


def test_same_distribution_is_indistinguishable(train, independent):
    cart = pmse(train, independent, "cart", seed=0)
    assert 0.5 <= cart["s_pmse"] <= 3.0
    assert 0.5 - 0.06 <= cart["propensity_auc"] <= 0.5 + 0.06


def test_threads_give_the_same_figures(train, different):
    # the real labels' tree and each permutation's are fitted apart: their order must not matter
    assert pmse(train, different, "cart", seed=5, n_jobs=3) == pmse(train, different, "cart", seed=5)


def test_the_auc_is_scikit_learn_s_out_of_fold_auc_whatever_the_threads(train, different):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from synth_assets.validation.utility.propensity import hgb_frame

    y = np.r_[np.zeros(len(train)), np.ones(len(different))]
    proba = cross_val_predict(HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=2),
                              hgb_frame(train, different), y, method="predict_proba",
                              cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=2))[:, 1]
    expected = roc_auc_score(y, proba)
    assert propensity_auc(train, different, seed=2, n_jobs=1) == expected
    assert propensity_auc(train, different, seed=2, n_jobs=3) == expected


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenMP's default is already one thread")
def test_each_fold_fits_with_one_openmp_thread_in_its_own_thread(train, different, monkeypatch):
    """OpenMP keeps its thread count per thread: a limit set by the caller alone leaves the folds'
    worker threads at one OpenMP thread per core, two folds spinning four threads on two cores."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_info

    seen: list[tuple[str, set[int]]] = []
    fit = HistGradientBoostingClassifier.fit

    def recording_fit(self, *args, **kwargs):
        openmp = {info["num_threads"] for info in threadpool_info() if info["user_api"] == "openmp"}
        seen.append((threading.current_thread().name, openmp))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", recording_fit)
    propensity_auc(train, different, n_jobs=2)
    assert len(seen) == 5
    assert len({name for name, _ in seen}) == 2  # two folds at a time, on two threads
    assert all(threads == {1} for _, threads in seen), seen


def test_different_distribution_is_detected(train, different):
    assert propensity_auc(train, different) > 0.8
    # CART S_pMSE is capped near c(1 − c) / null ≈ 4.5 at this sample size: deep null trees
    assert pmse(train, different, "cart", with_auc=False)["s_pmse"] > 2
    assert pmse(train, different, "logit", with_auc=False)["s_pmse"] > 5


def test_logit_pmse_matches_synthpop_formula(train, independent):
    """pMSE = mean (p̂ − c)², null = (k − 1)(1 − c)² c / N (Snoke et al. 2018, synthpop)."""
    syn = independent.iloc[:1000]
    result = pmse(train, syn, "logit", with_auc=False)
    X = logit_design(train, syn)
    y = np.r_[np.zeros(len(train)), np.ones(len(syn))]
    reference = LogisticRegression(C=np.inf, max_iter=5000, tol=1e-10).fit(X[:, 1:], y)
    n, c = len(y), len(syn) / len(y)
    assert result["pmse"] == pytest.approx(np.mean((reference.predict_proba(X[:, 1:])[:, 1] - c) ** 2), rel=1e-4)
    # intercept + age, hsize, income, income missing, weight + 1 sex + 4 region + 3 status
    # dummies, less one: "status missing" and "income missing" both mark the children
    k = 1 + 5 + 1 + 4 + 3 - 1
    assert np.linalg.matrix_rank(X) == k
    assert result["pmse_null"] == pytest.approx((k - 1) * (1 - c) ** 2 * c / n)


def test_logit_null_follows_synthpop_and_its_known_bias():
    """synthpop's null (k − 1)(1 − c)² c / N is short by a factor (1 − c): the exact null
    mean is (k − 1) c (1 − c) / N, so S_pMSE averages 1 / (1 − c) = 2 here, not 1."""
    ratios = [
        pmse(population(400, seed=s), population(400, seed=100 + s), "logit", with_auc=False)["s_pmse"]
        for s in range(20)
    ]
    assert 1.6 <= np.mean(ratios) <= 2.4


def test_rpart_port_is_pinned():
    """Regression values of the rpart emulation (sklearn 1.9 trees, seed 0) on a fixed
    sample and on permuted labels; a change here changes every CART S_pMSE, so it must
    be deliberate (and re-checked against synthpop)."""
    a, b = population(1500, 1), population(1500, 3, income_scale=1.5)
    X = tree_design(a, b)
    y = np.r_[np.zeros(1500), np.ones(1500)]
    fitted = rpart_propensities(X, y, 1e-3, 5, 0)
    assert np.mean((fitted - 0.5) ** 2) == pytest.approx(0.06195991975026817, rel=1e-9)
    assert len(np.unique(fitted)) == 75
    null = rpart_propensities(X, np.random.default_rng(0).permutation(y), 1e-3, 5, 0)
    assert np.mean((null - 0.5) ** 2) == pytest.approx(0.060074044965980664, rel=1e-9)


def test_unknown_model_is_rejected(train):
    with pytest.raises(ValueError, match="unknown propensity model"):
        pmse(train, train, model="forest")


def test_gate_judges_the_mean_s_pmse_of_all_replicates(train, independent, different):
    from synth_assets.validation import evaluate

    alone = evaluate(train, independent, figures=False)
    release = evaluate(train, independent, replicates=[independent, different], figures=False)
    by_replicate = release.details["s_pmse_by_replicate"]
    assert by_replicate[0] == pytest.approx(alone.metrics["s_pmse"])  # same samples, same value
    assert by_replicate[1] > by_replicate[0]  # the unlike replicate is seen...
    assert release.metrics["s_pmse"] == pytest.approx(np.mean(by_replicate))  # ...and counts
    assert release.metrics["s_pmse_first_replicate"] == alone.metrics["s_pmse"]


def test_a_replicate_that_is_synthetic_is_not_fitted_again(train, independent, different, monkeypatch):
    import importlib

    evaluate_module = importlib.import_module("synth_assets.validation.evaluate")  # the package's name is the function
    fitted: list[int] = []

    def counting_pmse(real, other, *args, **kwargs):
        fitted.append(int(other["age"].sum()))  # which table the model was fitted on
        return pmse(real, other, *args, **kwargs)

    monkeypatch.setattr(evaluate_module, "pmse", counting_pmse)
    release = evaluate_module.evaluate(train, independent, replicates=[independent, different], figures=False)
    # the utility figures' propensity model, then only the second replicate's: the first is ``synthetic``
    assert fitted == [independent["age"].sum(), different["age"].sum()]
    assert release.details["s_pmse_by_replicate"][0] == release.metrics["s_pmse_first_replicate"]
    fitted.clear()
    reordered = evaluate_module.evaluate(train, independent, replicates=[different, independent], figures=False)
    assert fitted == [independent["age"].sum(), different["age"].sum()]
    assert reordered.details["s_pmse_by_replicate"] == release.details["s_pmse_by_replicate"][::-1]
    fitted.clear()
    # replicates other than ``synthetic`` are each fitted
    shifted = different.assign(age=different["age"] + 1)
    apart = evaluate_module.evaluate(train, independent, replicates=[different, shifted], figures=False)
    assert fitted == [independent["age"].sum(), different["age"].sum(), shifted["age"].sum()]
    assert apart.details["s_pmse_by_replicate"][0] == release.details["s_pmse_by_replicate"][1]
