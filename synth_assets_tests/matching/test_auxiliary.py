"""aux_hotdeck: a small file observing Y and Z together moves the fused Y×Z towards the truth."""

from __future__ import annotations

import pytest

from synth_assets.matching import compare_to_truth, fuse
from synth_assets_tests.matching.data import X, Z, population, survey_pair


def test_auxiliary_brings_the_y_by_z_table_closer_to_the_truth() -> None:
    recipient, donor, truth = survey_pair()
    auxiliary = population(250, seed=77)[X + ["income", "status", "weight"]]  # 5% of the recipient size
    common = dict(on=X, impute=Z, recipient_weight="weight", donor_weight="weight")
    cia = fuse(recipient, donor, **common)
    informed = fuse(recipient, donor, auxiliary=auxiliary, method="aux_hotdeck", **common)
    without = compare_to_truth(cia.data, truth, "income", "status", "weight")
    with_aux = compare_to_truth(informed.data, truth, "income", "status", "weight")
    assert with_aux["yz_tvd_vs_truth"] < 0.6 * without["yz_tvd_vs_truth"]
    assert abs(with_aux["cramers_v_fused"] - with_aux["cramers_v_truth"]) < abs(
        without["cramers_v_fused"] - without["cramers_v_truth"]
    )
    # What the donor shows is not given up for it.
    assert informed.diagnostics.marginal["status"]["value"] < 0.03
    assert informed.diagnostics.mean_x_by_z_tvd < 0.06
    assert (informed.data["annual_hours"] == 52 * informed.data["hours"]).all()
    assert informed.diagnostics.extra["aux_y"] == ["income"]


def test_auxiliary_needs_a_shared_y_and_the_right_method() -> None:
    recipient, donor, _ = survey_pair(500, 300)
    auxiliary = population(100, seed=5)
    with pytest.raises(ValueError, match="cannot use an auxiliary file"):
        fuse(recipient, donor, on=X, impute=Z, auxiliary=auxiliary)
    with pytest.raises(ValueError, match="shares no Y variable"):
        fuse(recipient, donor, on=X, impute=Z, auxiliary=auxiliary[X + ["status"]], method="aux_hotdeck")
    with pytest.raises(ValueError, match="auxiliary has no column 'status'"):
        fuse(recipient, donor, on=X, impute=Z, auxiliary=auxiliary[X + ["income"]], method="aux_hotdeck")
    with pytest.raises(ValueError, match="needs an auxiliary file"):
        fuse(recipient, donor, on=X, impute=Z, method="aux_hotdeck")
