"""Top-coding: extreme amounts are capped at a real order statistic, counted."""

import numpy as np
import pandas as pd
import pytest

from synth_assets.calibration.tails import tail_thresholds, top_code


def test_an_absurd_value_is_capped_at_a_real_value_below_it():
    rng = np.random.default_rng(0)
    income = np.where(rng.random(2000) < 0.4, 0.0, rng.lognormal(10, 1, 2000))
    income[7] = 1e15
    real = pd.DataFrame({"income": income, "loss": -np.abs(rng.normal(0, 100, 2000))})
    thresholds = tail_thresholds(real, ["income", "loss"], 0.999)
    positive = np.sort(income[income > 0])
    assert thresholds["income"] in set(positive) and thresholds["income"] < 1e15  # an order statistic
    capped, counts = top_code(real, thresholds)
    assert capped["income"].max() == thresholds["income"]
    assert counts["income"] == int((income > thresholds["income"]).sum()) >= 1
    assert capped["loss"].min() == -thresholds["loss"]  # both tails
    untouched = income <= thresholds["income"]
    np.testing.assert_array_equal(capped["income"].to_numpy()[untouched], income[untouched])


def test_quantile_out_of_range_is_refused():
    with pytest.raises(ValueError, match="between 0.5 and 1"):
        tail_thresholds(pd.DataFrame({"x": [1.0, 2.0]}), ["x"], 1.0)
