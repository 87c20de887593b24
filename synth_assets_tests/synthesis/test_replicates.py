"""Replicates and the combining rules for fully (and partially) synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synth_assets.inference import combine_estimates
from synth_assets.synthesis import CARTSynthesizer, HouseholdSynthesizer, make_synthesizer, sample_replicates


def test_fully_synthetic_rule_by_hand() -> None:
    combined = combine_estimates([1.0, 2.0, 3.0, 4.0], [0.1, 0.1, 0.1, 0.1])
    b, ubar, m = 5 / 3, 0.1, 4
    assert combined.estimate == 2.5
    assert combined.variance == pytest.approx((1 + 1 / m) * b - ubar)
    assert (m - 1) * (1 - m * ubar / ((m + 1) * b)) ** 2 < m - 1  # RRR's ν_f ...
    assert combined.df == m - 1  # ... bounded below by m − 1 (synth_assets.inference.combining)
    assert not combined.fallback


def test_negative_fully_synthetic_variance_falls_back() -> None:
    combined = combine_estimates([1.0, 1.01, 0.99], [0.5, 0.5, 0.5], n_real=100, n_syn=200)
    assert combined.fallback
    assert combined.variance == pytest.approx(2 * 0.5) and combined.df == 2


def test_partially_synthetic_rule() -> None:
    combined = combine_estimates([1.0, 2.0, 3.0], [0.3, 0.3, 0.3], method="partially")
    assert combined.variance == pytest.approx(0.3 + 1.0 / 3)
    assert combined.df == pytest.approx(2 * (1 + 3 * 0.3 / 1.0) ** 2)
    with pytest.raises(ValueError, match="at least two replicates"):
        combine_estimates([1.0], [0.1], method="partially")
    with pytest.raises(ValueError, match="method"):
        combine_estimates([1.0, 2.0], [0.1, 0.1], method="multiple")


def test_combined_intervals_cover_and_a_single_replicate_does_not() -> None:
    """Real samples from N(10, 2²); CART fitted on each; m=5 proper replicates per sample."""
    rng = np.random.default_rng(0)
    mu, n, m, repetitions = 10.0, 200, 5, 200
    covered = naive_covered = 0
    for r in range(repetitions):
        x = rng.normal(mu, 2.0, n)
        data = pd.DataFrame({"x": x, "group": np.where(x + rng.normal(0, 2, n) > mu, "hi", "lo")})
        synth = CARTSynthesizer(seed=r, avoid_copies=False).fit(data)
        replicates = sample_replicates(synth, n, m=m, seed=r)
        q = [d["x"].mean() for d in replicates]
        u = [d["x"].var(ddof=1) / n for d in replicates]
        low, high = combine_estimates(q, u, n_real=n, n_syn=n).interval(0.95)
        covered += low <= mu <= high
        naive_covered += abs(q[0] - mu) <= 1.96 * math.sqrt(u[0])
    assert 0.85 <= covered / repetitions <= 1.0
    assert naive_covered / repetitions < 0.85  # treating one replicate as real data under-covers


def test_replicates_differ_and_report_progress(people: pd.DataFrame) -> None:
    calls: list[tuple[int, int]] = []
    synth = HouseholdSynthesizer(seed=0).fit(people)
    assert synth.has_posterior_draw
    replicates = sample_replicates(synth, 200, m=3, seed=1, progress=lambda done, total: calls.append((done, total)))
    assert len(replicates) == 3 and not replicates[0].equals(replicates[1])
    assert [total for _, total in calls] == [600] * 3 and calls[-1][0] >= 600


@pytest.mark.slow
def test_families_without_posterior_draw_refit_on_bootstraps(persons: pd.DataFrame, caplog) -> None:
    synth = make_synthesizer("copula", seed=0).fit(persons)
    assert not synth.has_posterior_draw
    refitted = sample_replicates(synth, 100, m=2, seed=0, data=persons)
    assert len(refitted) == 2 and refitted[0].dtypes.equals(persons.dtypes)
    sample_replicates(synth, 50, m=2, seed=0)
    assert "understate variances" in caplog.text


def test_chain_replicates_refit_on_each_matched_replicate() -> None:
    """Replicate r's model is fitted on replicate r's data: its draws follow that data."""
    from synth_assets.synthesis.replicates import chain_replicate_models

    rng = np.random.default_rng(0)
    data = [pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(loc=10.0 * r, size=300)}) for r in range(3)]
    synth = CARTSynthesizer(seed=0)
    means = [model.sample(300, seed=s)["y"].mean() for model, s in chain_replicate_models(synth, data, seed=1)]
    assert means == pytest.approx([0.0, 10.0, 20.0], abs=1.0)


def test_replicate_training_sets_from_disk_are_those_of_the_table(tmp_path) -> None:
    """Read one replicate at a time from the stored matched replicates: the same training sets."""
    from synth_assets.common.frames import ParquetTable, write_rows
    from synth_assets.matching.replicates import split_replicates
    from synth_assets.synthesis.replicates import ReplicateTrainingSets

    rng = np.random.default_rng(0)
    stacked = pd.DataFrame({"household_id": np.tile(np.arange(50) // 2, 3), "x": rng.normal(size=150),
                            "sex": pd.Categorical(rng.choice(["f", "m"], 150)), "replicate": np.repeat([1, 2, 3], 50)})
    write_rows(stacked, tmp_path / "matched_replicates.parquet", row_group_rows=20)
    training = pd.DataFrame({"household_id": [0, 3, 7, 7]})
    # what the model of replicate r was fitted on before: the stacked table split, the training households kept
    expected = [f.loc[f["household_id"].isin([0, 3, 7])].reset_index(drop=True) for f in split_replicates(stacked)[:2]]
    in_memory = ReplicateTrainingSets(stacked, training, "household_id", 2)
    on_disk = ReplicateTrainingSets(ParquetTable(tmp_path / "matched_replicates.parquet"), training, "household_id", 2)
    assert len(in_memory) == len(on_disk) == 2 and len(on_disk[0]) == 6  # households 0, 3 and 7, two persons each
    for sets in (in_memory, on_disk):
        got = list(sets)  # read one at a time, as chain_replicate_models iterates them
        assert len(got) == 2
        for mine, theirs in zip(got, expected, strict=True):
            pd.testing.assert_frame_equal(mine, theirs)
    assert list(ReplicateTrainingSets(stacked, training, "household_id", 2, drop=["x"])[1].columns) == ["household_id",
                                                                                                        "sex"]
    with pytest.raises(ValueError, match="4 replicates asked for, but only 3"):
        ReplicateTrainingSets(ParquetTable(tmp_path / "matched_replicates.parquet"), training, "household_id", 4)


def test_a_cart_chain_draws_each_replicate_s_records_through_the_fitted_trees() -> None:
    """CART's replicates are not refitted: each keeps the fitted trees of both models and fills
    their leaves with its own replicate's records, so each follows its own data. The chain holds
    the trees only: a caller that drops the fitted model (its leaves hold the training data) does
    not hold it while the replicates are drawn."""
    import gc
    import weakref

    from synth_assets.synthesis.households import HouseholdSynthesizer
    from synth_assets.synthesis.replicates import chain_replicate_models

    rng = np.random.default_rng(0)
    people = pd.DataFrame({"household_id": np.repeat(np.arange(150), 2), "age": rng.integers(0, 90, 300),
                           "income": rng.normal(size=300)})
    fitted = HouseholdSynthesizer(household_family="cart", person_family="cart", household_id="household_id",
                                  seed=0).fit(people)
    trees = [[s.tree for s in model._steps] for model in fitted.fitted_models]  # type: ignore[attr-defined]
    alive = weakref.ref(fitted)
    # the second replicate's incomes all positive: within the fitted range, which the coding keeps
    chain = chain_replicate_models(fitted, [people, people.assign(income=people["income"].abs())], seed=1)
    del fitted
    models = [next(chain)[0]]
    gc.collect()
    assert alive() is None
    models.append(next(chain)[0])
    for model in models:
        assert [[s.tree for s in m._steps] for m in model.fitted_models] == trees  # type: ignore[attr-defined]
    means = [model.sample(600, seed=3)["income"].mean() for model in models]
    assert means == pytest.approx([0.0, 0.8], abs=0.15)  # each from its own replicate's records


def test_a_cart_replicate_template_draws_nothing_itself() -> None:
    from synth_assets.synthesis.base import NotFittedError

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    template = CARTSynthesizer(seed=0).fit(data).replicate_template()
    assert all(len(s.donors.values) == 0 for s in template._steps if s.donors is not None)
    with pytest.raises(NotFittedError, match="replicate template"):
        template.sample(10, seed=1)
    assert len(template.replicate_draw(data, seed=2).sample(10, seed=1)) == 10


def test_a_chain_from_scratch_fits_each_replicate_s_model_afresh() -> None:
    """``refit_replicates`` for CART: each replicate's trees are its own fit's, not the fitted model's."""
    from synth_assets.synthesis.replicates import chain_replicate_models

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    fitted = CARTSynthesizer(seed=0, avoid_copies=False).fit(data)
    shifted = data.assign(y=data["y"].abs())
    kept, scratch = (next(chain_replicate_models(fitted, [shifted], seed=1, from_scratch=flag))[0]
                     for flag in (False, True))
    assert [s.tree for s in kept._steps] == [s.tree for s in fitted._steps]  # type: ignore[attr-defined]
    assert all(a.tree is not b.tree for a, b in zip(scratch._steps, fitted._steps) if b.tree is not None)  # type: ignore[attr-defined]
    assert "replicate_draw" not in scratch.training_log and scratch.sample(500, seed=2)["y"].min() >= 0
