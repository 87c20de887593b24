"""The exact-copy check against the baseline: chance duplicates pass, copying does not."""

import pandas as pd
import pytest

from synth_assets.validation import Thresholds, evaluate
from synth_assets.validation.thresholds import Threshold, binomial_upper_bound


def _with_training_rows(independent: pd.DataFrame, train: pd.DataFrame, n: int) -> pd.DataFrame:
    """``independent`` with its first ``n`` rows replaced by training records."""
    mixed = independent.copy()
    mixed.iloc[:n] = train.iloc[:n].to_numpy()
    return mixed.astype(independent.dtypes.to_dict())


def _copy_check(result):
    return next(c for c in result.checks if c.metric == "exact_copy_rate")


def test_binomial_upper_bound_is_the_rule_of_three_for_no_copies():
    assert binomial_upper_bound(0, 2000) == pytest.approx(1 - 0.05 ** (1 / 2000))
    assert binomial_upper_bound(0, 2000) == pytest.approx(3 / 2000, rel=0.01)
    assert binomial_upper_bound(2, 2000) > 2 / 2000
    assert binomial_upper_bound(5, 5) == 1.0


def test_limit_is_the_upper_bound_of_the_baseline_given_its_rows():
    threshold = Thresholds.default().items["exact_copy_rate"]
    limit, basis = threshold.resolve({"exact_copy_rate": 0.0}, 2000)
    assert limit == pytest.approx(binomial_upper_bound(0, 2000))
    assert "0 of 2,000 holdout rows" in basis and "95% upper bound" in basis
    # without the holdout's size the baseline is taken as it is
    assert threshold.resolve({"exact_copy_rate": 0.0})[0] == 0.0
    # other relative thresholds are unchanged by the holdout's size
    assert Thresholds.default().items["kmarginal_3"].resolve({"kmarginal_3": 900.0}, 2000)[0] == pytest.approx(720)


def test_tolerance_survives_a_yaml_update_and_is_validated():
    updated = Thresholds.default().updated({"exact_copy_rate": {"max": 0.0, "relative": 1.0}})
    assert updated.items["exact_copy_rate"].tolerance == "binomial"
    assert Thresholds.default().updated(
        {"exact_copy_rate": {"max": 0.0, "relative": 1.0, "tolerance": None}}).items["exact_copy_rate"].tolerance is None
    with pytest.raises(ValueError, match="tolerance"):
        Thresholds.default().updated({"exact_copy_rate": {"max": 0.0, "relative": 1.0, "tolerance": "poisson"}})
    assert Threshold("exact_copy_rate", 0.0, 1.0) != Thresholds.default().items["exact_copy_rate"]


def test_independent_sample_with_one_chance_duplicate_is_not_refused(train, holdout, independent):
    sample = _with_training_rows(independent, train, 1)
    result = evaluate(train, sample, holdout=holdout, figures=False)
    check = _copy_check(result)
    assert result.baseline["exact_copy_rate"] == 0
    assert check.value == pytest.approx(1 / len(sample)) and check.value > 0
    assert check.passed, check.message
    assert check.threshold == pytest.approx(binomial_upper_bound(0, len(holdout)))


def test_copies_of_training_records_beyond_the_bound_are_refused(train, holdout, independent):
    sample = _with_training_rows(independent, train, len(independent) // 100)  # 1% copied
    result = evaluate(train, sample, holdout=holdout, figures=False)
    check = _copy_check(result)
    assert not check.passed
    assert "exact_copy_rate = 0.01 FAILED" in check.message and "upper bound of baseline 0" in check.message


def test_without_a_holdout_one_copy_is_refused(train, independent):
    result = evaluate(train, _with_training_rows(independent, train, 1), figures=False)
    check = _copy_check(result)
    assert not check.passed and check.threshold == 0 and check.basis == "absolute"
