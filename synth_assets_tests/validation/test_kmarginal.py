import numpy as np
import pandas as pd
import pytest

from synth_assets.validation.preparation import ColumnMismatchError
from synth_assets.validation.utility.kmarginal import column_combinations, kmarginal_score, kmarginal_scores
from synth_assets_tests.validation.populations import shuffle_columns


def test_identical_data_scores_1000(train):
    assert kmarginal_scores(train, train.copy()) == {1: 1000.0, 2: 1000.0, 3: 1000.0}


def test_independent_shuffle_keeps_1way_but_lowers_2way(train):
    shuffled = shuffle_columns(train, seed=5)
    scores = kmarginal_scores(train, shuffled)
    assert scores[1] == pytest.approx(1000.0)
    assert scores[2] < 950
    assert scores[3] < scores[2]


def test_hand_computed_tvd():
    real = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": [1, 2, 1, 2]})
    syn = pd.DataFrame({"a": ["x", "x", "x", "y"], "b": [1, 1, 2, 2]})
    # 1-way: a (.5,.5) vs (.75,.25) -> .25; b identical -> 0; mean .125
    assert kmarginal_score(real, syn, k=1) == pytest.approx(875.0)
    # 2-way cells x1,x2,y1,y2: (.25,.25,.25,.25) vs (.25,.5,0,.25) -> TVD .25
    assert kmarginal_score(real, syn, k=2) == pytest.approx(750.0)


def test_numbers_use_real_quantile_bins_and_missing_is_a_level():
    real = pd.DataFrame({"x": np.arange(1.0, 21.0)})
    # all synthetic values beyond the real maximum land in the top bin (2 of 20 real values)
    assert kmarginal_score(real, real + 100, k=1) == pytest.approx(100.0)
    with_missing = real.copy()
    with_missing.loc[:4, "x"] = np.nan  # 5 of 20 missing vs none
    assert kmarginal_score(with_missing, real, k=1) == pytest.approx(1000 * (1 - 0.25))


def test_a_point_mass_at_zero_is_its_own_bin():
    """95% zeros: every interior quantile is 0, bins must still split zero from positive."""
    real = pd.DataFrame({"allowance": np.r_[np.zeros(950), np.arange(1.0, 51.0)]})
    all_zero = pd.DataFrame({"allowance": np.zeros(1000)})
    assert kmarginal_score(real, all_zero, k=1) == pytest.approx(1000 * (1 - 0.05))


def test_combinations_all_or_random_sample():
    rng = np.random.default_rng(0)
    assert len(column_combinations(10, 2, 200, rng)) == 45
    drawn = column_combinations(30, 2, 200, rng)
    assert len(drawn) == len(set(drawn)) == 200
    many = column_combinations(300, 3, 200, rng)  # too many to enumerate
    assert len(set(many)) == 200 and all(a < b < c for a, b, c in many)


def test_column_mismatch_is_an_error(train):
    with pytest.raises(ColumnMismatchError, match="income"):
        kmarginal_score(train, train.drop(columns=["income"]), k=1)
