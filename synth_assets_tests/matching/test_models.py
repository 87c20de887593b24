"""pmm and model_draw: model-based matching that keeps distributions instead of collapsing them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from synth_assets.matching import fuse
from synth_assets.matching.diagnostics import weighted_ks, weighted_tvd
from synth_assets_tests.matching.data import X, Z, survey_pair


def test_pmm_imputes_observed_donor_values_matched_on_prediction() -> None:
    recipient, donor, _ = survey_pair()
    result = fuse(recipient, donor, on=X, impute=["hours", "status"], donor_weight="weight", method="pmm")
    assert result.diagnostics.extra["pmm_target"] == "hours"
    assert set(result.data["hours"]).issubset(set(donor["hours"]))
    assert weighted_ks(result.data["hours"], donor["hours"], None, donor["weight"]) < 0.05
    # The age profile of hours (hump-shaped in the truth) survives.
    fused_profile = result.data.groupby(pd.cut(result.data["age"], [15, 30, 50, 70, 90]), observed=True)["hours"].mean()
    donor_profile = donor.groupby(pd.cut(donor["age"], [15, 30, 50, 70, 90]), observed=True)["hours"].mean()
    assert np.abs(fused_profile - donor_profile).max() < 4.0


def test_pmm_with_only_categorical_targets_matches_on_predicted_shares() -> None:
    recipient, donor, _ = survey_pair(2000, 1000)
    result = fuse(recipient, donor, on=X, impute=["status"], method="pmm")
    assert result.diagnostics.extra["pmm_target"] == "status"
    assert result.diagnostics.marginal["status"]["value"] < 0.04


def test_model_draw_samples_classes_instead_of_taking_the_mode() -> None:
    recipient, donor, _ = survey_pair()
    result = fuse(recipient, donor, on=X, impute=["status"], donor_weight="weight", method="model_draw")
    drawn_tvd = weighted_tvd(result.data["status"], donor["status"], None, donor["weight"])
    features = pd.get_dummies(donor[X].assign(region=donor["region"].astype(str)), dtype=float)
    with threadpool_limits(1):  # small fit: threads only add contention
        argmax = HistGradientBoostingClassifier(random_state=0).fit(features, donor["status"].astype(str))
    recipient_features = pd.get_dummies(recipient[X].assign(region=recipient["region"].astype(str)), dtype=float)
    mode = pd.Series(argmax.predict(recipient_features.reindex(columns=features.columns, fill_value=0.0)))
    argmax_tvd = weighted_tvd(mode, donor["status"].astype(str), None, donor["weight"])
    assert drawn_tvd < 0.03
    assert argmax_tvd > 0.1  # the plug-in mode over-represents the majority class
    assert result.data["status"].dtype == donor["status"].dtype


def test_model_draw_numeric_draws_keep_spread_spike_and_sequence() -> None:
    recipient, donor, _ = survey_pair()
    result = fuse(recipient, donor, on=X, impute=Z, method="model_draw")
    fused = result.data
    assert weighted_ks(fused["hours"], donor["hours"]) < 0.05
    assert fused["hours"].std() > 0.9 * donor["hours"].std()  # a conditional mean would shrink it
    assert abs((fused["hours"] == 0).mean() - (donor["hours"] == 0).mean()) < 0.03
    # hours is drawn given the already imputed status: zero hours for non-workers is kept.
    joint_fused = pd.crosstab(fused["status"], fused["hours"] > 0, normalize=True)
    joint_donor = pd.crosstab(donor["status"], donor["hours"] > 0, normalize=True)
    assert 0.5 * np.abs(joint_fused - joint_donor).to_numpy().sum() < 0.03
    assert fused["annual_hours"].dtype == np.int64
    assert (fused[Z].dtypes == donor[Z].dtypes).all()


def test_model_draw_keeps_the_missing_share_of_a_numeric_variable() -> None:
    recipient, donor, _ = survey_pair(3000, 2000)
    donor["hours"] = donor["hours"].where(donor["status"] == "work")  # not asked of non-workers
    result = fuse(recipient, donor, on=X, impute=["hours"], method="model_draw", n_trees=20)
    assert abs(result.data["hours"].isna().mean() - donor["hours"].isna().mean()) < 0.03
    assert result.data["hours"].dropna().isin(donor["hours"].dropna()).all()
