"""nnd_hotdeck: nearest donor on Gower / Mahalanobis distance, block imputation, classes, ties."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from synth_assets.matching import fuse
from synth_assets.matching.diagnostics import weighted_tvd
from synth_assets_tests.matching.data import X, Z, survey_pair


def gower(a: pd.Series, donors: pd.DataFrame, numeric: list[str]) -> np.ndarray:
    """Reference Gower distance of one record to every donor; missing = distance 1 unless both missing."""
    parts = []
    for col in donors.columns:
        d, v = donors[col], a[col]
        if col in numeric:
            span = d.max() - d.min()
            diff = (np.clip(v, d.min(), d.max()) - d).abs() / span if pd.notna(v) else pd.Series(1.0, index=d.index)
        else:
            diff = (d.astype(object) != v).astype(float) if pd.notna(v) else pd.Series(1.0, index=d.index)
        both_missing = d.isna() & pd.isna(v)
        diff = diff.where(~d.isna() | pd.isna(v), 1.0).where(~both_missing, 0.0)
        parts.append(diff.to_numpy(dtype=float))
    return np.mean(parts, axis=0)


def test_imputed_marginal_and_x_by_z_follow_the_donor() -> None:
    recipient, donor, _ = survey_pair()
    result = fuse(recipient, donor, on=X, impute=Z, recipient_weight="weight", donor_weight="weight")
    tvd = weighted_tvd(result.data["status"], donor["status"], recipient["weight"], donor["weight"])
    assert tvd < 0.03
    assert result.diagnostics.marginal["status"] == {"statistic": "tvd", "value": pytest.approx(tvd)}
    assert result.diagnostics.marginal["hours"]["statistic"] == "ks"
    assert result.diagnostics.marginal["hours"]["value"] < 0.05
    assert result.diagnostics.mean_x_by_z_tvd < 0.06
    assert result.diagnostics.donor_usage["donors_used"] > 1000


def test_rows_index_and_dtypes_are_kept() -> None:
    recipient, donor, _ = survey_pair(500, 300)
    recipient.index = [f"r{i}" for i in range(len(recipient))][::-1]
    result = fuse(recipient, donor, on=X, impute=Z)
    pd.testing.assert_frame_equal(result.data[recipient.columns], recipient)
    assert list(result.data.columns) == list(recipient.columns) + Z
    for col in Z:
        assert result.data[col].dtype == donor[col].dtype
    assert list(result.data["status"].cat.categories) == list(donor["status"].cat.categories)


def test_whole_block_comes_from_one_donor() -> None:
    recipient, donor, _ = survey_pair(2000, 800)
    result = fuse(recipient, donor, on=X, impute=Z, donor_weight="weight")
    assert (result.data["annual_hours"] == 52 * result.data["hours"]).all()
    taken = donor.iloc[result.donor_index][Z].reset_index(drop=True)
    pd.testing.assert_frame_equal(result.data[Z].reset_index(drop=True), taken)


def test_chosen_donor_is_nearest_by_reference_gower_with_missing_values() -> None:
    recipient, donor, _ = survey_pair(300, 400, seed=3)
    rng = np.random.default_rng(7)
    donor["score"] = rng.normal(size=len(donor))
    recipient["score"] = rng.normal(size=len(recipient)) * 1.5  # some outside the donor range
    for frame in (recipient, donor):
        frame.loc[frame.sample(frac=0.1, random_state=1).index, "score"] = np.nan
        frame.loc[frame.sample(frac=0.1, random_state=2).index, "sex"] = None
    on = ["age", "sex", "region", "score"]
    result = fuse(recipient, donor, on=on, impute=Z, k=1)
    for i in range(0, len(recipient), 7):
        dist = gower(recipient.iloc[i], donor[on], numeric=["age", "score"])
        assert dist[result.donor_index[i]] == pytest.approx(dist.min(), abs=1e-9)
    assert result.data.loc[recipient["score"].isna(), "status"].notna().all()


def test_mahalanobis_finds_the_nearest_donor() -> None:
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    donor = pd.DataFrame(rng.multivariate_normal([0, 0], cov, 600), columns=["a", "b"]).assign(z=np.arange(600))
    recipient = pd.DataFrame(rng.multivariate_normal([0, 0], cov, 200), columns=["a", "b"])
    result = fuse(recipient, donor, on=["a", "b"], impute=["z"], distance="mahalanobis")
    inverse = np.linalg.inv(np.cov(donor[["a", "b"]].to_numpy(), rowvar=False))
    for i in range(len(recipient)):
        diff = donor[["a", "b"]].to_numpy() - recipient.iloc[i].to_numpy()
        d2 = np.einsum("ij,jk,ik->i", diff, inverse, diff)
        assert d2[result.donor_index[i]] == pytest.approx(d2.min())


def test_ties_are_broken_at_random_in_proportion_to_weight() -> None:
    donor = pd.DataFrame({"g": ["a"] * 200, "z": np.arange(200), "w": np.where(np.arange(200) < 100, 10.0, 1.0)})
    recipient = pd.DataFrame({"g": ["a"] * 22_000})
    result = fuse(recipient, donor, on=["g"], impute=["z"], donor_weight="w")
    uses = np.bincount(result.donor_index, minlength=200)
    assert (uses > 0).mean() > 0.95
    assert 8.5 < uses[:100].sum() / uses[100:].sum() < 11.8


def test_k_nearest_draws_among_the_k_nearest() -> None:
    rng = np.random.default_rng(2)
    donor = pd.DataFrame({"x": rng.permutation(1000).astype(float), "z": np.arange(1000)})
    recipient = pd.DataFrame({"x": rng.uniform(0, 999, 3000)})
    one = fuse(recipient, donor, on=["x"], impute=["z"], k=1)
    five = fuse(recipient, donor, on=["x"], impute=["z"], k=5)
    gap_one = np.abs(donor["x"].to_numpy()[one.donor_index] - recipient["x"].to_numpy())
    gap_five = np.abs(donor["x"].to_numpy()[five.donor_index] - recipient["x"].to_numpy())
    assert gap_one.max() <= 0.5 + 1e-9
    assert gap_five.max() <= 3.0 + 1e-9  # the 5 nearest integers lie within 2.5 (3 at a boundary)
    assert gap_five.mean() > 2 * gap_one.mean()


def test_donation_classes_are_respected() -> None:
    recipient, donor, _ = survey_pair(3000, 1000)
    result = fuse(recipient, donor, on=["age"], impute=Z, donation_classes=["sex", "region"])
    donors = donor.iloc[result.donor_index]
    assert (donors["sex"].to_numpy() == recipient["sex"].to_numpy()).all()
    assert (donors["region"].to_numpy() == recipient["region"].to_numpy()).all()
    assert result.diagnostics.n_classes == 8
    assert result.diagnostics.fallback_classes == 0


def test_a_class_without_donors_falls_back_to_all_donors(caplog: pytest.LogCaptureFixture) -> None:
    recipient, donor, _ = survey_pair(1000, 500)
    recipient.loc[recipient.index[:10], "region"] = "island"
    with caplog.at_level(logging.WARNING, logger="synth_assets.matching"):
        result = fuse(recipient, donor, on=["age", "sex"], impute=Z, donation_classes=["region"])
    assert "no donor" in caplog.text and "island" in caplog.text
    assert result.diagnostics.fallback_classes == 1
    assert result.data["status"].notna().all()


def test_same_seed_same_result_and_progress_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    recipient, donor, _ = survey_pair(1000, 500)
    with caplog.at_level(logging.INFO, logger="synth_assets.matching"):
        first = fuse(recipient, donor, on=X, impute=Z, seed=4)
    assert "1000 of 1000 recipients matched" in caplog.text
    again = fuse(recipient, donor, on=X, impute=Z, seed=4)
    other = fuse(recipient, donor, on=X, impute=Z, seed=5)
    assert (first.donor_index == again.donor_index).all()
    assert (first.donor_index != other.donor_index).any()
