import numpy as np
import pandas as pd
import pytest
from sdmetrics.single_column import KSComplement, TVComplement

from synth_assets.common.distances import codes_cramers_v
from synth_assets.validation.utility.association import association_differences, pca_alignment
from synth_assets.validation.utility.univariate import compare_columns, plausibility
from synth_assets_tests.validation.populations import shuffle_columns


def test_per_variable_distances_agree_with_sdmetrics(train, independent):
    table = compare_columns(train, independent).set_index("column")
    for column in ["sex", "region", "status"]:
        expected = 1 - TVComplement.compute(train[column], independent[column])
        assert table.loc[column, "tvd"] == pytest.approx(expected, abs=1e-9)
    for column in ["age", "hsize", "income", "weight"]:
        expected = 1 - KSComplement.compute(train[column], independent[column])
        assert table.loc[column, "ks"] == pytest.approx(expected, abs=1e-6)


def test_zero_and_missing_shares(train):
    syn = train.copy()
    syn["income"] = syn["income"].fillna(0.0)
    row = compare_columns(train, syn).set_index("column").loc["income"]
    assert row["share_missing_real"] == pytest.approx(train["income"].isna().mean())
    assert row["share_missing_synthetic"] == 0
    assert row["share_zero_synthetic"] == pytest.approx((train["income"].fillna(0) == 0).mean())


def test_plausibility_rules_report_broken_shares():
    real = pd.DataFrame({"age": [5, 30, 40, 50], "income": [0.0, 10.0, np.nan, 5.0]})
    syn = pd.DataFrame({"age": [5, 6, -1, 50], "income": [3.0, 1.0, 0.0, 5.0]})
    table = plausibility(real, syn, ["age >= 0", "not (age < 16 and income > 0)"]).set_index("rule")
    assert table.loc["age >= 0", "broken_synthetic"] == 0.25
    assert table.loc["not (age < 16 and income > 0)", "broken_real"] == 0
    assert table.loc["not (age < 16 and income > 0)", "broken_synthetic"] == 0.5
    with pytest.raises(ValueError, match="nonexistent"):
        plausibility(real, syn, ["nonexistent > 0"])


def test_cramers_v_extremes():
    a = np.repeat([0, 1, 2], 100)
    assert codes_cramers_v(a, a) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert codes_cramers_v(rng.integers(0, 3, 5000), rng.integers(0, 3, 5000)) < 0.05


def test_associations_and_pca_detect_broken_relations(train, independent):
    kept = association_differences(train, independent)
    broken = association_differences(train, shuffle_columns(train, seed=9))
    assert kept.correlation_diff < 0.05 < broken.correlation_diff
    assert kept.cramers_v_diff < broken.cramers_v_diff
    same = pca_alignment(train, train.copy())
    assert same["pca_pc1_cosine"] == pytest.approx(1.0)
    assert same["pca_variance_diff"] == pytest.approx(0.0, abs=1e-12)
    assert pca_alignment(train, shuffle_columns(train, seed=9))["pca_pc1_cosine"] < 0.9
