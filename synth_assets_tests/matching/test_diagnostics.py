"""Diagnostics helpers against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.common.distances import cramers_v
from synth_assets.matching import compare_to_truth, frechet_bounds
from synth_assets.matching.diagnostics import weighted_ks, weighted_quantile_edges, weighted_tvd


def test_weighted_tvd() -> None:
    a, b = pd.Series(["x", "x", "y"]), pd.Series(["x", "y"])
    # P_a(x) = 2/4 with weights (1, 1, 2); P_b(x) = 1/4 with weights (1, 3).
    assert weighted_tvd(a, b, np.array([1.0, 1.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(0.25)
    assert weighted_tvd(pd.Series(["x", None]), pd.Series(["x", "x"])) == pytest.approx(0.5)  # missing is a level


def test_weighted_ks_counts_missing_values() -> None:
    assert weighted_ks(pd.Series([1.0, 2.0]), pd.Series([2.0, 3.0])) == pytest.approx(0.5)
    assert weighted_ks(pd.Series([1.0, 2.0]), pd.Series([1.0, 2.0]), np.array([3.0, 1.0])) == pytest.approx(0.25)
    assert weighted_ks(pd.Series([1.0, np.nan]), pd.Series([1.0, 1.0])) == pytest.approx(0.5)


def test_weighted_quantile_edges() -> None:
    values = np.arange(1.0, 11.0)
    assert list(weighted_quantile_edges(values, np.ones(10), 5)) == [2.0, 4.0, 6.0, 8.0]
    heavy_tail = np.where(values > 5, 4.0, 1.0)  # 80% of the weight on 6..10
    assert weighted_quantile_edges(values, heavy_tail, 2)[0] == 7.0


def test_cramers_v() -> None:
    assert cramers_v(np.array([[5.0, 0.0], [0.0, 5.0]])) == pytest.approx(1.0)
    assert cramers_v(np.outer([1.0, 2.0, 3.0], [4.0, 1.0])) == pytest.approx(0.0)


def test_frechet_bounds_by_hand() -> None:
    cells = pd.Index(["young", "old"], name="x")
    x_y = pd.DataFrame({"low": [30.0, 10.0], "high": [10.0, 50.0]}, index=cells)
    x_z = pd.DataFrame({"work": [40.0, 10.0], "rest": [20.0, 30.0]}, index=cells)
    bounds = frechet_bounds(x_y, x_z)
    # P(x) pooled: young 100/200, old 100/200; P(low|young)=.75, P(work|young)=2/3; P(low|old)=1/6, P(work|old)=.25
    row = bounds.loc[("low", "work")]
    assert row.cia == pytest.approx(0.5 * 0.75 * 2 / 3 + 0.5 * (1 / 6) * 0.25)
    assert row.low_cx == pytest.approx(0.5 * (0.75 + 2 / 3 - 1))
    assert row.up_cx == pytest.approx(0.5 * 2 / 3 + 0.5 * 1 / 6)
    assert row.low_u == pytest.approx(max(0.0, (0.5 * 0.75 + 0.5 / 6) + (0.5 * 2 / 3 + 0.5 * 0.25) - 1))
    assert (bounds.low_u <= bounds.low_cx + 1e-12).all() and (bounds.up_cx <= bounds.up_u + 1e-12).all()
    assert ((bounds.low_cx <= bounds.cia) & (bounds.cia <= bounds.up_cx)).all()
    assert bounds.cia.sum() == pytest.approx(1.0)
    assert bounds.attrs["mean_width_conditional"] < bounds.attrs["mean_width_unconditional"]


def test_frechet_bounds_collapse_when_x_determines_y() -> None:
    cells = pd.Index(["a", "b"])
    x_y = pd.DataFrame({"y1": [5.0, 0.0], "y2": [0.0, 5.0]}, index=cells)
    x_z = pd.DataFrame({"z1": [3.0, 1.0], "z2": [1.0, 3.0]}, index=cells)
    bounds = frechet_bounds(x_y, x_z, x_table=pd.Series([1.0, 1.0], index=cells))
    assert np.allclose(bounds.low_cx, bounds.up_cx) and np.allclose(bounds.cia, bounds.low_cx)
    with pytest.raises(ValueError, match="X cell 'c' has no observations in x_z_table"):
        frechet_bounds(x_y.reindex(["a", "b", "c"], fill_value=1.0), x_z)


def test_compare_to_truth() -> None:
    rng = np.random.default_rng(0)
    truth = pd.DataFrame({"y": rng.normal(size=1000), "z": rng.choice(["a", "b"], 1000), "w": 1.0})
    truth["z"] = np.where(truth["y"] > 0, "a", truth["z"])
    same = compare_to_truth(truth, truth, "y", "z", "w")
    assert same["yz_tvd_vs_truth"] == 0 and same["cramers_v_fused"] == same["cramers_v_truth"] > 0.3
    shuffled = truth.assign(z=rng.permutation(truth["z"].to_numpy()))
    scores = compare_to_truth(shuffled, truth, "y", "z", "w")
    assert scores["z_tvd_vs_truth"] == pytest.approx(0.0)
    assert scores["yz_tvd_vs_truth"] > 0.1 and scores["cramers_v_fused"] < 0.1
