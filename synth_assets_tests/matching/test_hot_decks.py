"""nnd_constrained, random_hotdeck and rank_hotdeck: weights, capacities, ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.matching import fuse
from synth_assets.matching.diagnostics import weighted_tvd
from synth_assets.matching.methods.constrained import integer_capacities
from synth_assets_tests.matching.data import X, Z, survey_pair


def heavy_and_light_donors(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Half the donors weigh 10, half weigh 1, with the same X distribution."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(16, 90, n),
            "sex": rng.choice(["f", "m"], n),
            "z": np.arange(n),
            "w": np.where(np.arange(n) % 2 == 0, 10.0, 1.0),
        }
    )


def test_random_hotdeck_uses_donors_in_proportion_to_weight() -> None:
    donor = heavy_and_light_donors()
    recipient = heavy_and_light_donors(5000, seed=1).drop(columns=["z", "w"])
    result = fuse(recipient, donor, on=["age"], impute=["z"], donor_weight="w", method="random_hotdeck")
    uses = np.bincount(result.donor_index, minlength=len(donor))
    assert 8.5 < uses[::2].sum() / uses[1::2].sum() < 11.8


def test_random_hotdeck_stays_within_classes() -> None:
    recipient, donor, _ = survey_pair(2000, 800)
    result = fuse(recipient, donor, on=["age"], impute=Z, donation_classes=["sex"], method="random_hotdeck")
    assert (donor["sex"].to_numpy()[result.donor_index] == recipient["sex"].to_numpy()).all()


def test_capacities_are_integer_roundings_that_sum_exactly() -> None:
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.1, 5.0, 997)
    expected = weights * 5000 / weights.sum()
    capacity = integer_capacities(weights, 5000, rng)
    assert capacity.sum() == 5000
    assert (capacity >= np.floor(expected)).all() and (capacity <= np.ceil(expected)).all()


def test_constrained_uses_donors_in_proportion_to_weight_and_stays_near() -> None:
    donor = heavy_and_light_donors(500)
    recipient = heavy_and_light_donors(5000, seed=1).drop(columns=["z", "w"])
    result = fuse(recipient, donor, on=["age", "sex"], impute=["z"], donor_weight="w", method="nnd_constrained")
    uses = np.bincount(result.donor_index, minlength=len(donor))
    expected = 5000 * donor["w"].to_numpy() / donor["w"].sum()
    assert uses.sum() == 5000
    assert (uses >= np.floor(expected)).all() and (uses <= np.ceil(expected)).all()
    assert abs(uses[::2].sum() / uses[1::2].sum() - 10) < 0.3
    # Capacity forces some recipients off their nearest donor, but not far: a random donor
    # would be at Gower distance ~0.42 (age gap 1/3 of the range, sex differing half the time).
    assert result.diagnostics.extra["mean_match_distance"] < 0.03


def test_constrained_slack_trades_proportionality_for_closeness() -> None:
    donor = heavy_and_light_donors(500)
    recipient = heavy_and_light_donors(5000, seed=1).drop(columns=["z", "w"])
    common = dict(on=["age", "sex"], impute=["z"], donor_weight="w", method="nnd_constrained")
    exact = fuse(recipient, donor, **common)
    loose = fuse(recipient, donor, slack=0.25, **common)
    uses = np.bincount(loose.donor_index, minlength=len(donor))
    assert (uses <= np.ceil(1.25 * 5000 * donor["w"].to_numpy() / donor["w"].sum())).all()
    assert loose.diagnostics.extra["mean_match_distance"] < exact.diagnostics.extra["mean_match_distance"]


def test_constrained_matches_the_donor_marginal_closely() -> None:
    recipient, donor, _ = survey_pair()
    result = fuse(recipient, donor, on=X, impute=Z, donor_weight="weight", method="nnd_constrained")
    assert weighted_tvd(result.data["status"], donor["status"], None, donor["weight"]) < 0.01
    assert (result.data["annual_hours"] == 52 * result.data["hours"]).all()


def test_rank_hotdeck_matches_ranks_not_levels() -> None:
    rng = np.random.default_rng(3)
    donor = pd.DataFrame({"income": rng.lognormal(10, 1, 1000), "g": rng.choice(["a", "b"], 1000)})
    donor["z"] = donor["income"]
    # The recipient measures income on another scale: same ranks, shifted and stretched levels.
    recipient = pd.DataFrame({"income": 3 * rng.lognormal(10, 1, 4000) + 1e5, "g": rng.choice(["a", "b"], 4000)})
    result = fuse(recipient, donor, on=["income"], impute=["z"], donation_classes=["g"], method="rank_hotdeck")
    assert recipient["income"].rank().corr(result.data["z"].rank()) > 0.99
    assert (donor["g"].to_numpy()[result.donor_index] == recipient["g"].to_numpy()).all()
    nnd = fuse(recipient, donor, on=["income"], impute=["z"], method="nnd_hotdeck")
    assert result.diagnostics.marginal["z"]["value"] < 0.05 < nnd.diagnostics.marginal["z"]["value"]


def test_rank_hotdeck_handles_missing_rank_variable() -> None:
    recipient, donor, _ = survey_pair(1000, 500)
    recipient.loc[recipient.index[:50], "age"] = np.nan
    result = fuse(recipient, donor, on=["age", "sex"], impute=Z, method="rank_hotdeck")
    assert result.data["status"].notna().all()
    assert result.diagnostics.extra["rank_variable"] == "age"
