"""The one total variation distance and the one Cramér's V, on codes and on tables alike."""

from __future__ import annotations

import numpy as np
import pytest

from synth_assets.common.distances import (
    code_shares,
    codes_cramers_v,
    codes_total_variation,
    cramers_v,
    total_variation,
)


def test_total_variation_of_shares_and_of_codes_agree() -> None:
    assert total_variation([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]) == pytest.approx(0.5)
    a, b = np.array([0, 0, 1, 2]), np.array([1, 1, 2, 2, 3])
    assert codes_total_variation(a, b) == pytest.approx(total_variation(code_shares(a, 4), code_shares(b, 4)))
    assert codes_total_variation(a, a) == 0.0


def test_weighted_shares() -> None:
    assert code_shares(np.array([0, 1, 1]), 3, np.array([2.0, 1.0, 1.0])).tolist() == [0.5, 0.5, 0.0]
    assert code_shares(np.array([0]), 2, np.array([0.0])).tolist() == [0.0, 0.0]


def test_cramers_v_of_codes_is_that_of_their_table() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 500)
    b = (a + rng.integers(0, 2, 500)) % 4
    table = np.zeros((3, 4))
    np.add.at(table, (a, b), 1)
    assert codes_cramers_v(a, b) == pytest.approx(cramers_v(table))
    assert codes_cramers_v(a, a) == pytest.approx(1.0)
    assert codes_cramers_v(a, np.zeros_like(a)) == 0.0
