"""The autoregressive neural family: learns dependences, conditions exactly, reproducible, proper draws."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from synth_assets.synthesis import make_synthesizer, plot_losses
from synth_assets.synthesis import neural as neural_module
from synth_assets.synthesis.base import Synthesizer
from synth_assets.synthesis.neural import NeuralSynthesizer

SMALL = {"hidden": (64, 64), "bins": 10, "epochs": 40, "patience": 40, "batch_size": 64, "torch_threads": 1}


@pytest.fixture(scope="module")
def fitted(persons: pd.DataFrame) -> NeuralSynthesizer:
    synth = make_synthesizer("neural", seed=3, **SMALL)
    assert isinstance(synth, NeuralSynthesizer)
    return synth.fit(persons)


@pytest.fixture(scope="module")
def synthetic(fitted: NeuralSynthesizer, persons: pd.DataFrame) -> pd.DataFrame:
    return fitted.sample(2 * len(persons), seed=4)


def test_schema_point_masses_and_codes_are_kept(synthetic: pd.DataFrame, persons: pd.DataFrame) -> None:
    assert list(synthetic.columns) == list(persons.columns)
    assert synthetic["region"].dtype == persons["region"].dtype
    assert set(synthetic["hours"].unique()) <= set(persons["hours"].unique())  # integers on the support
    assert abs((synthetic["hours"] == -8).mean() - (persons["hours"] == -8).mean()) < 0.06
    assert abs(synthetic["income"].isna().mean() - persons["income"].isna().mean()) < 0.04
    positive = synthetic["income"][synthetic["income"] > 0]
    assert positive.between(persons["income"].min(), persons["income"].max()).all()


def test_learns_a_dependence_between_columns(synthetic: pd.DataFrame) -> None:
    # Children (age < 16) have hours -8 ("not applicable") and adults never do: the state of
    # hours is drawn after age, so only a model that learnt the relation keeps it (without it,
    # children would be -8 at the marginal share, 0.16). This small model, fitted with six
    # seeds, drew children -8 at 0.80 to 0.85 of the time, from about 170 drawn children each.
    children, adults = synthetic[synthetic["age"] < 12], synthetic[synthetic["age"] > 30]
    assert (children["hours"] == -8).mean() > 0.7
    assert (adults["hours"] == -8).mean() < 0.1
    heads = synthetic.loc[synthetic["relation"] == "head", "age"].mean()
    kids = synthetic.loc[synthetic["relation"] == "child", "age"].mean()
    assert heads - kids > 20


def test_the_first_column_is_drawn_at_its_training_frequencies_from_the_first_epoch() -> None:
    # The first column drawn has no input: its draws follow its biases alone, which Adam moves
    # by about the learning rate per step; a rare level needs its bias far below the others'.
    rng = np.random.default_rng(0)
    cars = rng.choice(4, size=3000, p=[0.68, 0.185, 0.124, 0.011])
    table = pd.DataFrame({"cars": pd.Categorical(cars.astype(str)),
                          "km": rng.gamma(2.0, 5.0 + 10.0 * cars)})
    synth = make_synthesizer("neural", seed=0, **{**SMALL, "epochs": 1})
    synth.fit(table)
    assert [c.name for c in synth._columns][0] == "cars"
    drawn = synth.sample(20_000, seed=1)["cars"].astype(str).value_counts(normalize=True)
    trained = table["cars"].astype(str).value_counts(normalize=True)
    assert (drawn.reindex(trained.index, fill_value=0) - trained).abs().max() < 0.015
    assert drawn.get("3", 0.0) < 1.5 * trained["3"]


def test_a_replicate_draw_takes_the_first_column_s_frequencies_from_its_own_data() -> None:
    # A replicate's data (a survey bootstrap, fused again) can hold a first column far from the
    # fitted model's; the draw's few fine-tuning steps cannot move its biases that far.
    rng = np.random.default_rng(0)

    def table(p: list[float]) -> pd.DataFrame:
        cars = rng.choice(4, size=3000, p=p)
        return pd.DataFrame({"cars": pd.Categorical(cars.astype(str), categories=["0", "1", "2", "3"]),
                             "km": rng.gamma(2.0, 5.0 + 10.0 * cars)})

    fitted = make_synthesizer("neural", seed=0, **{**SMALL, "epochs": 3}).fit(table([0.68, 0.185, 0.124, 0.011]))
    replicate = table([0.4, 0.3, 0.2, 0.1])
    drawn = fitted.replicate_draw(replicate, seed=1).sample(20_000, seed=2)["cars"].astype(str)
    shares = drawn.value_counts(normalize=True).reindex(["0", "1", "2", "3"], fill_value=0.0)
    wanted = replicate["cars"].astype(str).value_counts(normalize=True).reindex(["0", "1", "2", "3"])
    # the Bayesian bootstrap's weights move the shares by about 0.01 on 3,000 rows
    assert (shares - wanted).abs().max() < 0.04, shares
    assert fitted.sample(20_000, seed=2)["cars"].astype(str).eq("0").mean() > 0.6  # the fitted model is left alone


def test_early_stopping_keeps_the_best_held_out_epoch(fitted: NeuralSynthesizer) -> None:
    log = fitted.training_log
    held_out = log["losses"]["holdout_nll"]
    assert len(held_out) == log["epochs"] == len(log["losses"]["train_nll"])
    assert log["best_holdout_nll"] == pytest.approx(min(held_out), abs=1e-3)
    assert held_out[log["best_epoch"] - 1] == pytest.approx(min(held_out))
    assert held_out[0] > min(held_out)  # it learnt something
    png = plot_losses(fitted)
    assert png is not None and png.startswith(b"\x89PNG")


def test_stops_after_patience_epochs_without_improvement(persons: pd.DataFrame) -> None:
    synth = make_synthesizer("neural", seed=0, **{**SMALL, "epochs": 200, "patience": 2, "learning_rate": 0.05})
    log = synth.fit(persons).training_log
    assert log["epochs"] < 200
    assert log["epochs"] - log["best_epoch"] == 2


def test_early_stopping_holds_out_whole_groups() -> None:
    # 150 groups of 4 identical records, columns independent and uniform: nothing generalises
    # beyond the marginals. Held out row by row, a held-out record's copies are in training and
    # its held-out NLL falls far below the marginals' entropy; held out by group, it cannot.
    rng = np.random.default_rng(0)
    groups = pd.DataFrame({f"c{j}": rng.choice(list("abcdefghij"), 150) for j in range(5)})
    data = groups.loc[groups.index.repeat(4)].reset_index(names="group")
    entropy = 5 * np.log(10)
    params = {**SMALL, "epochs": 60, "patience": 60, "learning_rate": 0.01, "avoid_copies": False}
    by_row = make_synthesizer("neural", seed=0, id_columns=["group"], **params).fit(data)
    by_group = make_synthesizer("neural", seed=0, id_columns=["group"], holdout_groups=["group"], **params).fit(data)
    assert by_row.training_log["best_holdout_nll"] < entropy - 2
    assert by_group.training_log["best_holdout_nll"] > entropy - 0.5
    with pytest.raises(ValueError, match="holdout_groups not in the data: \\['household'\\]"):
        make_synthesizer("neural", holdout_groups=["household"], **SMALL).fit(data)


def test_same_seed_same_model_and_rows(fitted: NeuralSynthesizer, persons: pd.DataFrame) -> None:
    again = make_synthesizer("neural", seed=3, **SMALL).fit(persons)
    pd.testing.assert_frame_equal(fitted.sample(200, seed=9), again.sample(200, seed=9))
    assert not fitted.sample(200, seed=9).equals(fitted.sample(200, seed=10))


def test_save_load_round_trip(fitted: NeuralSynthesizer, tmp_path) -> None:
    path = fitted.save(tmp_path / "neural.model")
    loaded = Synthesizer.load(path)
    assert isinstance(loaded, NeuralSynthesizer)
    pd.testing.assert_frame_equal(fitted.sample(300, seed=5), loaded.sample(300, seed=5))


def test_posterior_draws_differ_and_leave_the_model_alone(fitted: NeuralSynthesizer) -> None:
    before = fitted.sample(400, seed=6)
    one, two = fitted.posterior_draw(1), fitted.posterior_draw(2)
    assert fitted.has_posterior_draw
    a, b = one.sample(400, seed=6), two.sample(400, seed=6)
    assert not a.equals(b)
    assert not a.equals(before)
    pd.testing.assert_frame_equal(fitted.sample(400, seed=6), before)
    pd.testing.assert_frame_equal(fitted.posterior_draw(1).sample(400, seed=6), a)  # draws are seeded


def test_posterior_draws_step_at_a_share_of_the_fit_s_learning_rate(fitted: NeuralSynthesizer, monkeypatch) -> None:
    """A fresh Adam's first steps move every weight by about the learning rate: at the fit's own rate
    the draws strayed from their data, at a tenth they move by a fraction of it."""
    import torch

    def moved(draw: NeuralSynthesizer) -> float:
        return float(sum(torch.sum((a - b) ** 2) for a, b in zip(draw._net.parameters(), fitted._net.parameters(),
                                                                    strict=True)) ** 0.5)

    assert neural_module.POSTERIOR_LEARNING_RATE_SHARE == 0.1
    small = moved(fitted.posterior_draw(1))
    monkeypatch.setattr(neural_module, "POSTERIOR_LEARNING_RATE_SHARE", 1.0)
    whole = moved(fitted.posterior_draw(1))
    assert 0 < small < 0.3 * whole


def test_replicate_draw_fine_tunes_on_the_replicate_data(fitted: NeuralSynthesizer, persons: pd.DataFrame) -> None:
    # A replicate's data where everyone lives in the north: the warm-started draw follows
    # it (a draw that ignored its data would keep the training share), the model is untouched.
    replicate = persons.copy()
    replicate["region"] = pd.Categorical(["north"] * len(replicate), categories=persons["region"].cat.categories)
    before = fitted.sample(400, seed=6)
    # these 686 records make 11 steps an epoch where the demo's members make 160: more epochs here
    tuned = copy.copy(fitted)
    tuned.posterior_epochs = 30
    draw = tuned.replicate_draw(replicate, seed=1)
    share = (draw.sample(600, seed=2)["region"] == "north").mean()
    assert share > (persons["region"] == "north").mean() + 0.2
    assert draw.training_log["posterior_draw"]["rows"] == len(replicate)
    assert draw._net is not fitted._net
    pd.testing.assert_frame_equal(fitted.sample(400, seed=6), before)
    # copies are judged against the replicate's records
    assert not np.array_equal(draw._train_hashes, fitted._train_hashes)


def test_chain_replicates_of_neural_households_are_warm_started(people: pd.DataFrame) -> None:
    from synth_assets.synthesis import HouseholdSynthesizer
    from synth_assets.synthesis.replicates import chain_replicate_models

    synth = HouseholdSynthesizer("neural", "neural", household_id="household_id", household_params=dict(SMALL),
                                 person_params=dict(SMALL), seed=0).fit(people)
    draws = [model for model, _ in chain_replicate_models(synth, [people, people], seed=1)]
    for draw in draws:  # a fine-tune of the fitted networks, not a refit
        household_model, person_model = draw.fitted_models
        assert person_model.training_log["posterior_draw"]["rows"] == len(people)
        assert household_model.training_log["epochs"] == synth.fitted_models[0].training_log["epochs"]
        assert household_model._transformer is synth.fitted_models[0]._transformer
    out = draws[0].sample(200, seed=3)
    assert (out.groupby("household_id")["household_size"].first() == out.groupby("household_id").size()).all()
    assert not out.equals(draws[1].sample(200, seed=3))


def test_conditional_sampling_fixes_the_given_columns(persons: pd.DataFrame) -> None:
    synth = make_synthesizer("neural", seed=0, condition_columns=["household_size", "region"], **SMALL).fit(persons)
    known = persons[["household_size", "region"]].sample(400, random_state=0, replace=True).reset_index(drop=True)
    out = synth.sample_conditional(known, seed=1)
    assert len(out) == len(known)
    pd.testing.assert_frame_equal(out[["household_size", "region"]], known)
    # drawn given the household: a person living alone is its head
    alone = out.loc[out["household_size"] == 1, "relation"]
    assert len(alone) > 20 and (alone == "head").mean() > 0.8


def test_households_and_members_both_neural_stay_coherent(people: pd.DataFrame) -> None:
    from synth_assets.synthesis import HouseholdSynthesizer

    synth = HouseholdSynthesizer("neural", "neural", household_id="household_id", household_params=dict(SMALL),
                                 person_params=dict(SMALL), seed=0)
    out = synth.fit(people).sample(300, seed=1)
    sizes = out.groupby("household_id").size()
    assert (out.groupby("household_id")["household_size"].first() == sizes).all()
    assert np.isfinite(out["age"]).all()
    assert (out.groupby("household_id")["relation"].apply(lambda r: (r == "head").sum()) == 1).all()
    assert out.groupby("household_id")["region"].nunique().max() == 1  # household facts shared


def test_synthesize_command_trains_the_neural_family_with_its_epochs(persons: pd.DataFrame, tmp_path) -> None:
    from synth_assets.synthesis import load_synthesizer
    from synth_assets_tests.synthesis.test_cli import run

    source, target, model = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "m.model"
    persons.to_csv(source, index=False)
    assert run("--input", str(source), "--output", str(target), "--model", "neural", "--epochs", "2",
               "--rows", "120", "--save-model", str(model)) == 0
    assert len(pd.read_csv(target)) == 120
    fitted = load_synthesizer(model)
    assert fitted.family == "neural" and fitted.training_log["epochs"] == 2


@pytest.mark.parametrize("n_given", [0, 2])
def test_stepwise_sampling_gives_the_networks_own_logits(fitted: NeuralSynthesizer, n_given: int) -> None:
    """Sampling computes each hidden unit once per row (``MADE.stepwise``): at every column it
    must give the logits of a whole forward pass over the same drawn codes."""
    import torch

    codes = fitted._draw(np.zeros((300, len(fitted._columns)), dtype=np.int64), np.random.default_rng(0), {})
    starts = np.concatenate([[0], np.cumsum(fitted._sizes)])
    idx = torch.as_tensor(codes) + torch.as_tensor(starts[:-1])
    net = fitted._net.eval()
    with torch.inference_mode():
        whole = net(idx)
        logits_of = net.stepwise(np.repeat(np.arange(len(fitted._sizes)), fitted._sizes))(idx)
        for j in range(n_given, len(fitted._sizes)):
            step = logits_of(j, int(starts[j]), int(starts[j + 1]))
            torch.testing.assert_close(step, whole[:, starts[j] : starts[j + 1]], rtol=1e-4, atol=1e-4)
    # a column's codes never reach its own head or earlier ones: the drawn codes are the model's
    assert len(fitted._sizes) > 5 and codes.max() > 0


def test_draws_within_the_rules_by_construction(persons: pd.DataFrame) -> None:
    """A barely trained network breaks rules the data keep; given the rules, it draws none of
    the codes they forbid (a state, a label): no record breaks them, and the rest of the
    sample is still the model's (children still drawn, incomes still positive for adults)."""
    from synth_assets.catalog.rules import broken_rows

    rules = ["not (age < 16 and income > 0)", "not (employed == False and hours > 0)", "age >= 0 and age <= 110"]
    assert not broken_rows(persons, rules)[0].any()
    synth = make_synthesizer("neural", seed=0, **{**SMALL, "epochs": 1})
    assert isinstance(synth, NeuralSynthesizer)
    synth.fit(persons)
    free = synth.sample(1500, seed=5)
    assert broken_rows(free, rules)[0].sum() > 20
    synth.rules = rules
    ruled = synth.sample(1500, seed=5)
    assert broken_rows(ruled, rules)[0].sum() == 0
    assert (ruled["age"] < 16).mean() > 0.1 and (ruled.loc[ruled["age"] >= 16, "income"] > 0).mean() > 0.3
    # the masks are built once per model and rebuilt for new rules: one rule masked, not the others
    synth.rules = rules[:1]
    one = synth.sample(1500, seed=5)
    assert broken_rows(one, rules[:1])[0].sum() == 0 and broken_rows(one, rules[1:2])[0].sum() > 0
    # a rule naming a column the model does not have is left to the household redraws
    synth.rules = ["not (relation == 'child' and municipality == 'x')"]
    assert len(synth.sample(50, seed=5)) == 50


def test_conditioning_columns_are_one_block_every_hidden_unit_sees() -> None:
    from synth_assets.synthesis.neural import _made_masks

    sizes, hidden = [3, 2, 4, 2, 5], [16, 16]
    first, second, head, direct = _made_masks(sizes, hidden, np.random.default_rng(0), n_given=3)
    given = sum(sizes[:3])
    assert first[:, :given].all()  # every unit sees the whole household
    assert head.shape == direct.shape[:1] + (16,) and direct.shape == (sum(sizes[3:]), sum(sizes))
    assert direct[: sizes[3], :given].all() and not direct[: sizes[3], given:].any()  # first drawn column
    assert direct[sizes[3] :, : given + sizes[3]].all() and not direct[sizes[3] :, given + sizes[3] :].any()


def test_members_drawn_within_the_households_guarantees(people: pd.DataFrame, caplog) -> None:
    """Given the household's guarantees as rules (``HouseholdSynthesizer._member_rules``), a
    barely trained member model draws the head at slot 0 only and children young enough: far
    fewer members need fixing afterwards than without them (the rest: heads the barely trained
    household model drew too young to have children)."""
    import logging
    import re

    from synth_assets.synthesis import HouseholdSynthesizer

    params = {**SMALL, "epochs": 2}
    synth = HouseholdSynthesizer("neural", "neural", household_id="household_id", household_params=params,
                                 person_params=params, seed=0).fit(people)
    person_model = synth.fitted_models[1]
    assert isinstance(person_model, NeuralSynthesizer) and any("_member" in r for r in person_model.rules)

    def fixed(rules: list[str]) -> dict[str, int]:
        person_model.rules = rules
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="synth_assets"):
            synth.sample(600, seed=2)
        counts = {"heads": 0, "children": 0}
        for message in caplog.messages:
            if found := re.search(r"(\d+) non-head members drew the head code", message):
                counts["heads"] += int(found.group(1))
            if found := re.search(r"(\d+) children not \d+ years younger", message):
                counts["children"] += int(found.group(1))
        return counts

    ruled, free = fixed(person_model.rules), fixed([])
    assert ruled["heads"] == 0 and free["heads"] > 0
    assert ruled["children"] * 3 < free["children"]


def test_members_get_the_time_the_household_model_left(people: pd.DataFrame) -> None:
    from synth_assets.synthesis import build_population_synthesizer

    synth = build_population_synthesizer("neural", household_id="household_id", seed=0, max_seconds=1000,
                                         **{**SMALL, "epochs": 2})
    synth.fit(people)
    # 300 of the 1000 s for the households, which take a second or two: the members get the rest
    assert synth.fitted_models[1].max_seconds > 990


def test_households_like_are_drawn_given_the_structure_columns(people: pd.DataFrame) -> None:
    from synth_assets.synthesis import HouseholdSynthesizer

    synth = HouseholdSynthesizer("neural", "neural", household_id="household_id", household_params=dict(SMALL),
                                 person_params=dict(SMALL), seed=0).fit(people)
    out = synth.sample(400, seed=7)
    first = out["household_id"].iloc[0]
    wanted = out.copy()
    wanted["region"] = wanted["region"].where(wanted["household_id"] != first, "atlantis")  # never drawn
    household_model = synth.fitted_models[0]
    structure_columns = synth.structure_columns(["region"])
    # the structure columns are label columns of the network: drawn alone, the rest given them
    rows, found = household_model.sample_matching(
        synth._household_rows(wanted)[0][structure_columns], seed=1)
    assert 0 not in found and len(rows) == len(found) == out["household_id"].nunique() - 1
    # a region's model (restricted_to): rows of the region only, also when the structure does not name it
    sizes = synth._household_rows(out)[0][["household_size"]]
    inside, _ = household_model.sample_matching(sizes, seed=2, within=("region", {"north"}))
    assert len(inside) and (inside["region"].astype(str) == "north").all()
    fresh, unmatched = synth.sample_households_like(wanted, on=["region"], seed=8, max_rounds=3)
    assert unmatched.tolist() == [first]
    structure = lambda d: d.groupby("household_id").agg(  # noqa: E731
        n=("age", "size"), size=("household_size", "first"), region=("region", "first"))
    expected = structure(out[out["household_id"] != first])
    pd.testing.assert_frame_equal(structure(fresh), expected)
    assert (structure(fresh)["n"] == structure(fresh)["size"]).all()
    assert (fresh.groupby("household_id")["relation"].apply(lambda r: (r == "head").sum()) == 1).all()
    # fresh households, their other columns drawn again
    assert not fresh.groupby("household_id")["household_income"].first().equals(
        out[out["household_id"] != first].groupby("household_id")["household_income"].first())
    # seeded: the same call gives the same households
    again, _ = synth.sample_households_like(wanted, on=["region"], seed=8, max_rounds=3)
    pd.testing.assert_frame_equal(fresh, again)


def test_blocks_are_drawn_whole_and_chosen_given_the_row() -> None:
    """A survey block fused from 60 donors: each drawn block is one real record's (an exact
    relation within it holds: ``total`` = ``a`` + ``b``), and which record the network picks
    follows the rest of the row (the donors' ``a`` grows with age)."""
    rng = np.random.default_rng(0)
    n = 3000
    donors = pd.DataFrame({"a": rng.lognormal(5, 1, 60).round(2), "b": rng.lognormal(6, 1, 60).round(2),
                           "c": rng.choice(["x", "y", "z"], 60)})
    donors["total"] = donors["a"] + donors["b"]
    donors = donors.sort_values("a", ignore_index=True)
    age = rng.uniform(18, 80, n).round(3)  # (whole ages would make most rows copies, redrawn away)
    # older persons got donors with a larger `a`, as matching on age would give
    pick = np.clip(((age - 18) / 62 * 60 + rng.normal(0, 6, n)).astype(int), 0, 59)
    data = pd.concat([pd.DataFrame({"age": age}), donors.iloc[pick].reset_index(drop=True)], axis=1)
    tuples = set(map(tuple, data[["a", "b", "c", "total"]].to_numpy()))
    params = dict(seed=1, hidden=[32], epochs=15, patience=15)

    blocked = NeuralSynthesizer(blocks=[["a", "b", "c", "total"]], **params).fit(data)
    out = blocked.sample(2000, seed=2)
    assert set(map(tuple, out[["a", "b", "c", "total"]].to_numpy())) <= tuples
    # the donor follows the drawn row (a donor drawn at random would leave no correlation)
    assert np.corrcoef(out["age"], out["a"].rank())[0, 1] > 0.25
    free = NeuralSynthesizer(**params).fit(data).sample(2000, seed=2)
    assert len(set(map(tuple, free[["a", "b", "c", "total"]].to_numpy())) - tuples) > 100  # drawn column by column
    # replicates take blocks from their own records
    replicate = data.iloc[: n // 2]
    own = set(map(tuple, replicate[["a", "b", "c", "total"]].to_numpy()))
    drawn = blocked.replicate_draw(replicate, seed=3).sample(500, seed=4)
    assert set(map(tuple, drawn[["a", "b", "c", "total"]].to_numpy())) <= own
