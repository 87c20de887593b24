import numpy as np
import pandas as pd
import pytest

from synth_assets.synthesis.split import split_by_group, split_masks


def households(n: int, seed: int = 0) -> pd.DataFrame:
    sizes = np.random.default_rng(seed).integers(1, 6, n)
    return pd.DataFrame({"hh": np.repeat(np.arange(n), sizes), "x": np.arange(sizes.sum())})


def test_households_stay_whole_and_on_one_side():
    data = households(2_000)
    train, holdout = split_by_group(data, "hh", 0.2, seed=3)
    assert not set(train["hh"]) & set(holdout["hh"])
    assert len(train) + len(holdout) == len(data)
    sizes = data.groupby("hh").size()
    assert (train.groupby("hh").size() == sizes.loc[train["hh"].unique()]).all()
    assert 0.15 < holdout["hh"].nunique() / 2_000 < 0.25


def test_a_capped_training_sample_is_a_random_sample_of_whole_households():
    data = households(20_000)
    full, holdout = split_by_group(data, "hh", 0.2, seed=1)
    capped, capped_holdout = split_by_group(data, "hh", 0.2, seed=1, max_training_rows=10_000)
    # the holdout is the uncapped one; the training sample is a subset of the uncapped training
    pd.testing.assert_frame_equal(capped_holdout, holdout)
    assert 9_990 <= len(capped) <= 10_000
    assert set(capped["hh"]) <= set(full["hh"])
    sizes = data.groupby("hh").size()
    assert (capped.groupby("hh").size() == sizes.loc[capped["hh"].unique()]).all()
    # a simple random sample: household sizes as in the population, not the first households in order
    assert abs(capped.groupby("hh").size().mean() - sizes.mean()) < 0.1
    assert capped["hh"].max() > 15_000 and capped["hh"].min() < 1_000


def test_a_cap_above_the_training_sample_changes_nothing():
    data = households(1_000)
    masks = split_masks(data["hh"], 0.2, seed=5)
    capped = split_masks(data["hh"], 0.2, seed=5, max_training_rows=len(data))
    np.testing.assert_array_equal(masks[0], capped[0])
    np.testing.assert_array_equal(masks[1], capped[1])


@pytest.mark.parametrize("kwargs", [{"holdout_fraction": 0}, {"holdout_fraction": 0.2, "max_training_rows": 0}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        split_masks(np.arange(10), **kwargs)


def test_a_capped_sample_takes_the_rare_strata_whole_and_samples_the_rest():
    data = households(20_000, seed=2)
    # household strata: two common ones, and a rare one of 12 households the cap would mostly miss
    stratum_of = np.where(np.arange(20_000) % 2 == 0, "a", "b").astype(object)
    stratum_of[np.random.default_rng(4).choice(20_000, 12, replace=False)] = "rare"
    strata = stratum_of[data["hh"]]
    uncapped, holdout = split_masks(data["hh"], 0.2, seed=7)
    train, capped_holdout = split_masks(data["hh"], 0.2, seed=7, max_training_rows=2_000, strata=strata)
    np.testing.assert_array_equal(capped_holdout, holdout)
    assert not (train & ~uncapped).any()  # a subset of the uncapped training side
    rare = set(data.loc[uncapped & (strata == "rare"), "hh"])
    assert rare and rare <= set(data.loc[train, "hh"])  # every rare household not held out is in
    kept = set(data.loc[train, "hh"])
    assert 1_990 <= train.sum() <= 2_000
    # the common strata sampled at one rate: about as many of each as in the uncapped side
    a, b = (np.isin(np.array(sorted(kept)), np.flatnonzero(stratum_of == s)).sum() for s in ("a", "b"))
    assert abs(a - b) < 0.2 * (a + b) / 2
    # without strata the same cap misses most of the rare ones (chance of keeping each: about 1/8)
    plain, _ = split_masks(data["hh"], 0.2, seed=7, max_training_rows=2_000)
    assert len(set(data.loc[plain, "hh"]) & rare) < len(rare)


def test_strata_without_a_cap_change_nothing():
    data = households(1_000)
    strata = data["hh"].to_numpy() % 3
    masks, capped = split_masks(data["hh"], 0.2, seed=5), split_masks(data["hh"], 0.2, seed=5, strata=strata)
    np.testing.assert_array_equal(masks[0], capped[0])
