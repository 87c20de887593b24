"""Our conditional GAN: recovers known distributions, conditions, stops early, reproducible, proper draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.synthesis import FAMILIES, make_synthesizer, plot_losses
from synth_assets.synthesis.base import Synthesizer
from synth_assets.synthesis.factory import model_options
from synth_assets.synthesis.gan import GANSynthesizer

#: Small networks and a learning rate higher than CTGAN's 2e-4, so a thousand rows are learnt in seconds.
SMALL = {"embedding_dim": 32, "generator_dims": (64, 64), "critic_dims": (64, 64), "batch_size": 100, "pac": 10,
         "generator_lr": 1e-3, "critic_lr": 1e-3, "epochs": 60, "check_every": 5, "patience": 100,
         "torch_threads": 1}


@pytest.fixture(scope="module")
def known() -> pd.DataFrame:
    """``g`` a (30%) / b (70%); ``x`` bimodal, near 20 for a and 60 for b; ``c`` mostly u for a, v for b."""
    rng = np.random.default_rng(0)
    n = 1000
    g = rng.choice(["a", "b"], n, p=[0.3, 0.7])
    x = np.where(g == "a", rng.normal(20, 2, n), rng.normal(60, 4, n))
    c = np.where(g == "a", rng.choice(["u", "v"], n, p=[0.9, 0.1]), rng.choice(["u", "v"], n, p=[0.2, 0.8]))
    return pd.DataFrame({"g": g, "x": x, "c": c})


@pytest.fixture(scope="module")
def fitted_known(known: pd.DataFrame) -> GANSynthesizer:
    # no marginal calibration: the marginals tested are the network's own
    synth = make_synthesizer("gan", seed=1, condition_columns=["g"], calibrate_marginals=False, **SMALL)
    assert isinstance(synth, GANSynthesizer)
    return synth.fit(known)


@pytest.fixture(scope="module")
def fitted(persons: pd.DataFrame) -> GANSynthesizer:
    synth = make_synthesizer("gan", seed=3, **{**SMALL, "epochs": 20})
    assert isinstance(synth, GANSynthesizer)
    return synth.fit(persons)


def test_gan_is_a_family_with_its_options() -> None:
    assert "gan" in FAMILIES
    assert {"pac", "critic_steps", "gradient_penalty", "max_modes", "check_every"} <= set(model_options("gan"))


def test_marginals_of_a_known_distribution_are_recovered(fitted_known: GANSynthesizer) -> None:
    out = fitted_known.sample(2000, seed=2)
    assert (out["g"] == "a").mean() == pytest.approx(0.3, abs=0.06)
    x = out["x"].to_numpy()
    assert (x < 40).mean() == pytest.approx(0.3, abs=0.08)  # both modes, in their proportions
    assert ((x > 30) & (x < 48)).mean() < 0.15  # little mass between them (none in training)
    # the dependence: the mode follows the group
    assert ((x > 40) == (out["g"] == "b")).mean() > 0.8
    assert (out.loc[out["g"] == "a", "c"] == "u").mean() > 0.7
    assert (out.loc[out["g"] == "b", "c"] == "v").mean() > 0.6


def test_conditional_sample_respects_its_condition(fitted_known: GANSynthesizer) -> None:
    known = pd.DataFrame({"g": ["a"] * 300 + ["b"] * 300})
    out = fitted_known.sample_conditional(known, seed=4)
    pd.testing.assert_frame_equal(out[["g"]], known)
    # drawn through the condition vector: the rest of the row follows the given group
    assert (out["x"][:300] < 40).mean() > 0.8
    assert (out["x"][300:] > 40).mean() > 0.8


def test_conditional_sample_on_several_columns_falls_back_to_matching(persons: pd.DataFrame) -> None:
    synth = make_synthesizer("gan", seed=0, condition_columns=["household_size", "region"], **{**SMALL, "epochs": 5})
    synth.fit(persons)
    known = persons[["household_size", "region"]].sample(200, random_state=0, replace=True).reset_index(drop=True)
    out = synth.sample_conditional(known, seed=1)
    pd.testing.assert_frame_equal(out[["household_size", "region"]], known)


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_check(known: pd.DataFrame) -> None:
    synth = make_synthesizer("gan", seed=2, **{**SMALL, "epochs": 300, "check_every": 2, "patience": 3})
    log = synth.fit(known).training_log
    scores, epochs = log["fidelity"]["holdout_tvd"], log["fidelity"]["epoch"]
    assert log["epochs"] < 300 and not log["stopped_by_budget"]
    assert log["best_epoch"] == epochs[int(np.argmin(scores))]
    assert log["best_holdout_tvd"] == pytest.approx(min(scores), abs=1e-5)
    assert log["epochs"] - log["best_epoch"] == 3 * 2  # patience checks without a better score
    assert len(log["losses"]["critic"]) == len(log["losses"]["generator"]) == log["epochs"]


def test_schema_point_masses_and_codes_are_kept(fitted: GANSynthesizer, persons: pd.DataFrame) -> None:
    out = fitted.sample(500, seed=4)
    assert list(out.columns) == list(persons.columns)
    assert out["region"].dtype == persons["region"].dtype
    assert set(out["hours"].unique()) <= set(persons["hours"].unique()) | set(range(0, 60))
    assert (out["hours"] == -8).any() and out["income"].isna().any() and (out["income"] == 0).any()
    positive = out["income"][out["income"] > 0]
    assert positive.between(persons["income"].min(), persons["income"].max()).all()


def test_losses_and_fidelity_curves_are_recorded_and_plotted(fitted: GANSynthesizer) -> None:
    log = fitted.training_log
    assert len(log["losses"]["critic"]) == log["epochs"] == 20
    assert log["fidelity"]["epoch"] == [5, 10, 15, 20]
    assert all(0 <= s <= 1 for s in log["fidelity"]["holdout_tvd"])
    png = plot_losses(fitted)
    assert png is not None and png.startswith(b"\x89PNG")


def test_same_seed_same_model_and_rows(fitted: GANSynthesizer, persons: pd.DataFrame) -> None:
    again = make_synthesizer("gan", seed=3, **{**SMALL, "epochs": 20}).fit(persons)
    pd.testing.assert_frame_equal(fitted.sample(200, seed=9), again.sample(200, seed=9))
    assert not fitted.sample(200, seed=9).equals(fitted.sample(200, seed=10))


def test_save_load_round_trip(fitted: GANSynthesizer, tmp_path) -> None:
    path = fitted.save(tmp_path / "gan.model")
    loaded = Synthesizer.load(path)
    assert isinstance(loaded, GANSynthesizer)
    pd.testing.assert_frame_equal(fitted.sample(300, seed=5), loaded.sample(300, seed=5))
    # the critic travels too: a loaded model's replicate draws are the fitted one's
    pd.testing.assert_frame_equal(fitted.posterior_draw(1).sample(100, seed=5), loaded.posterior_draw(1).sample(100, seed=5))


def test_posterior_draws_differ_and_leave_the_model_alone(fitted: GANSynthesizer) -> None:
    before = fitted.sample(400, seed=6)
    one, two = fitted.posterior_draw(1), fitted.posterior_draw(2)
    assert fitted.has_posterior_draw
    a, b = one.sample(400, seed=6), two.sample(400, seed=6)
    assert not a.equals(b)
    assert not a.equals(before)
    assert one.training_log["posterior_draw"] == {"seed": 1, "epochs": fitted.posterior_epochs}
    pd.testing.assert_frame_equal(fitted.sample(400, seed=6), before)
    pd.testing.assert_frame_equal(fitted.posterior_draw(1).sample(400, seed=6), a)  # draws are seeded


def test_replicate_draw_fine_tunes_on_the_replicate_data(fitted_known: GANSynthesizer, known: pd.DataFrame) -> None:
    # A replicate's data where everyone is in group a: the warm-started draw follows it (a
    # draw that ignored its data would keep the training share of 30%), the model is untouched.
    replicate = known[known["g"] == "a"].reset_index(drop=True)
    before = fitted_known.sample(300, seed=6)
    draw = fitted_known.replicate_draw(replicate, seed=1)
    assert (draw.sample(600, seed=2)["g"] == "a").mean() > 0.6
    assert draw.training_log["posterior_draw"]["rows"] == len(replicate)
    assert draw._generator is not fitted_known._generator
    pd.testing.assert_frame_equal(fitted_known.sample(300, seed=6), before)
    assert not np.array_equal(draw._train_hashes, fitted_known._train_hashes)  # copies judged against it


def test_households_and_members_both_gan_stay_coherent(people: pd.DataFrame) -> None:
    from synth_assets.synthesis import HouseholdSynthesizer

    params = {**SMALL, "epochs": 5}
    synth = HouseholdSynthesizer("gan", "gan", household_id="household_id", household_params=dict(params),
                                 person_params=dict(params), seed=0)
    out = synth.fit(people).sample(200, seed=1)
    sizes = out.groupby("household_id").size()
    assert (out.groupby("household_id")["household_size"].first() == sizes).all()
    assert out.groupby("household_id")["region"].nunique().max() == 1  # household facts shared
    assert synth.fitted_models[1].get_params()["holdout_groups"]  # members held out by household


def test_synthesize_command_trains_the_gan_with_its_epochs(persons: pd.DataFrame, tmp_path) -> None:
    from synth_assets.synthesis import load_synthesizer
    from synth_assets_tests.synthesis.test_cli import run

    source, target, model = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "m.model"
    persons.to_csv(source, index=False)
    assert run("--input", str(source), "--output", str(target), "--model", "gan", "--epochs", "2",
               "--rows", "120", "--save-model", str(model)) == 0
    assert len(pd.read_csv(target)) == 120
    fitted = load_synthesizer(model)
    assert fitted.family == "gan" and fitted.training_log["epochs"] == 2
