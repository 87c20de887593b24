"""Household coherence guarantees, whatever the families of the two models."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_assets.synthesis import HouseholdSynthesizer, build_population_synthesizer, load_synthesizer
from synth_assets.synthesis.households import household_level_columns


def assert_coherent(out: pd.DataFrame, real: pd.DataFrame, requested: int) -> None:
    groups = out.groupby("household_id")
    assert (groups.size() == groups["household_size"].first()).all(), "size != number of members"
    for col in ("region", "tenure", "household_income", "household_size"):
        assert (groups[col].nunique(dropna=False) == 1).all(), f"{col} differs within a household"
    assert (groups["relation"].apply(lambda r: (r == "head").sum()) == 1).all(), "not exactly one head"
    assert not set(out["household_id"]) & set(real["household_id"]), "a real household id was reused"
    head_age = groups["age"].transform(lambda a: a.iloc[0])
    children = out["relation"] == "child"
    assert (out.loc[children, "age"] <= head_age[children] - 15).all(), "a child is not 15 years younger"
    assert requested <= len(out) < requested + real["household_size"].max()
    assert list(out.columns) == list(real.columns) and out.dtypes.equals(real.dtypes)


def test_household_level_columns_are_detected(people: pd.DataFrame) -> None:
    found = household_level_columns(people, "household_id", exclude=["household_size", "age", "relation"])
    assert found == ["region", "tenure", "household_income"]


def test_cart_households_are_coherent(people: pd.DataFrame) -> None:
    synth = HouseholdSynthesizer(seed=1).fit(people)
    out = synth.sample(900, seed=2)
    assert_coherent(out, people, 900)
    assert out.groupby("household_id").ngroups > 200
    # persons follow their household: household size distribution and one-person heads
    real_sizes = people.groupby("household_id")["household_size"].first().value_counts(normalize=True)
    syn_sizes = out.groupby("household_id")["household_size"].first().value_counts(normalize=True)
    assert 0.5 * real_sizes.sub(syn_sizes, fill_value=0).abs().sum() < 0.1


def test_cart_household_model_fits_beside_the_members_and_draws_as_one_fitted_after_the_other(
        people: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """The households' CART fits in a thread of its own while the members' fits here (a core the
    members' fit left idle), and the fitted models draw exactly what they draw fitted in turn."""
    import threading

    from synth_assets.synthesis import cart, households

    threads: list[str] = []
    fit = cart.CARTSynthesizer.fit

    def recording(self, data, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return fit(self, data, *args, **kwargs)

    monkeypatch.setattr(cart.CARTSynthesizer, "fit", recording)
    beside = HouseholdSynthesizer(seed=1).fit(people)
    assert threads[0].startswith("household-fit") and threads[1] == threading.current_thread().name
    monkeypatch.setattr(households, "FIT_BESIDE_MEMBERS", frozenset())
    threads.clear()
    in_turn = HouseholdSynthesizer(seed=1).fit(people)
    assert threads == [threading.current_thread().name] * 2
    pd.testing.assert_frame_equal(beside.sample(900, seed=2), in_turn.sample(900, seed=2))


def test_ids_stay_unique_across_chunks_and_files_round_trip(people: pd.DataFrame, tmp_path: Path) -> None:
    synth = HouseholdSynthesizer(seed=1).fit(people)
    out = synth.sample(1000, seed=3, chunk_size=128)
    assert_coherent(out, people, 1000)
    loaded = load_synthesizer(synth.save(tmp_path / "hh.model"))
    pd.testing.assert_frame_equal(loaded.sample(300, seed=4), synth.sample(300, seed=4))


def test_a_chunk_is_begun_with_its_households_rows_and_its_members_drawn_in_any_order(
        people: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """``iter_chunk_draws`` draws each chunk's household rows alone (their sizes number the next chunk's
    persons) and leaves the members to the callable: called in any order (in other processes, several
    at a time), the chunks of ``iter_chunks``, identifiers included."""
    synth = HouseholdSynthesizer(seed=1).fit(people)
    expected = list(synth.iter_chunks(1000, seed=3, chunk_size=128))
    members: list[int] = []
    draw_members = HouseholdSynthesizer._draw_members

    def recorded(self, households, *args, **kwargs):
        members.append(len(households))
        return draw_members(self, households, *args, **kwargs)

    monkeypatch.setattr(HouseholdSynthesizer, "_draw_members", recorded)
    draws = list(synth.iter_chunk_draws(1000, seed=3, chunk_size=128))
    assert len(draws) == len(expected) > 5 and not members  # begun: no member drawn yet
    drawn = [draw() for draw in reversed(draws)][::-1]
    assert len(members) == len(draws)
    for chunk, same in zip(drawn, expected, strict=True):
        pd.testing.assert_frame_equal(chunk, same)
    assert_coherent(pd.concat(drawn, ignore_index=True), people, 1000)


def test_rules_repair_what_the_models_break(people: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    broken = people.copy()
    heads = broken["relation"] == "head"
    broken.loc[heads.shift(-1, fill_value=False), "relation"] = "head"  # two heads in many households
    broken.loc[broken["relation"] == "child", "age"] = 70  # children older than their parents
    with caplog.at_level(logging.INFO, logger="synth_assets.synthesis"):
        out = HouseholdSynthesizer(seed=1).fit(broken).sample(600, seed=1)
    assert_coherent(out, broken, 600)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "drew the head code" in messages and "children not 15 years younger" in messages


@pytest.mark.slow
def test_gan_family_households_are_coherent_through_matching(people: pd.DataFrame) -> None:
    synth = HouseholdSynthesizer("copula", "copula", seed=2).fit(people)
    out = synth.sample(500, seed=1)
    assert_coherent(out, people, 500)


def test_without_size_relation_and_age_columns(people: pd.DataFrame) -> None:
    bare = people.drop(columns=["household_size", "relation", "age"])
    out = HouseholdSynthesizer(seed=0).fit(bare).sample(400, seed=0)
    assert list(out.columns) == list(bare.columns)
    assert (out.groupby("household_id")["region"].nunique() == 1).all()
    assert 400 <= len(out) < 405


def test_pipeline_builder(people: pd.DataFrame) -> None:
    synth = build_population_synthesizer(
        "cart", household_id="household_id", person_id="person_id", seed=0, epochs=5, max_seconds=10
    )
    assert isinstance(synth, HouseholdSynthesizer)
    data = people.assign(person_id=np.arange(len(people)))
    out = synth.fit(data).sample(300)
    assert out["person_id"].is_unique and not set(out["person_id"]) & set(data["person_id"])
    flat = build_population_synthesizer("tvae", seed=0, epochs=3, max_seconds=60)
    assert flat.get_params()["max_seconds"] == 60


def test_hybrid_population_model_gives_the_whole_budget_to_the_gan() -> None:
    from synth_assets.synthesis import build_population_synthesizer

    hybrid = build_population_synthesizer("ctgan", household_id="household_id", person_family="cart",
                                          max_seconds=100, epochs=50)
    assert (hybrid.household_family, hybrid.person_family) == ("ctgan", "cart")
    assert hybrid.household_params["max_seconds"] == 100
    assert "max_seconds" not in hybrid.person_params and "epochs" not in hybrid.person_params
    both = build_population_synthesizer("ctgan", household_id="household_id", max_seconds=100)
    assert both.household_params["max_seconds"] + both.person_params["max_seconds"] == pytest.approx(100)


def test_redraw_members_keeps_each_household_row(people: pd.DataFrame) -> None:
    synth = HouseholdSynthesizer(seed=1, person_id="person_id").fit(people.assign(person_id=np.arange(len(people))))
    out = synth.sample(900, seed=5)
    redrawn = synth.redraw_members(out, seed=6)
    assert_coherent(redrawn.drop(columns="person_id"), people, 900)
    assert len(redrawn) == len(out)
    assert sorted(redrawn["person_id"]) == sorted(out["person_id"])  # person ids reused
    kept = ["household_id", "household_size", "region", "tenure", "household_income"]
    rows = lambda d: d.groupby("household_id", sort=False)[kept[1:]].first()  # noqa: E731
    pd.testing.assert_frame_equal(rows(redrawn), rows(out))
    head_age = lambda d: d[d["relation"] == "head"].set_index("household_id")["age"]  # noqa: E731
    pd.testing.assert_series_equal(head_age(redrawn), head_age(out))
    # ... while the members themselves are new draws.
    others = lambda d: d.loc[d["relation"] != "head", ["sex", "income"]].reset_index(drop=True)  # noqa: E731
    assert not others(redrawn).equals(others(out))


def test_households_like_share_the_structure_and_unmatched_are_reported(people: pd.DataFrame) -> None:
    synth = HouseholdSynthesizer(seed=1).fit(people)
    out = synth.sample(600, seed=7)
    first = out["household_id"].iloc[0]
    wanted = out.copy()
    wanted["region"] = wanted["region"].where(wanted["household_id"] != first, "atlantis")  # never drawn
    fresh, unmatched = synth.sample_households_like(wanted, on=["region", "no_such_column"], seed=8, max_rounds=3)
    assert unmatched.tolist() == [first]
    structure = lambda d: d.groupby("household_id").agg(  # noqa: E731
        n=("age", "size"), size=("household_size", "first"), region=("region", "first"))
    expected = structure(out[out["household_id"] != first])
    pd.testing.assert_frame_equal(structure(fresh), expected)
    assert (structure(fresh)["n"] == structure(fresh)["size"]).all()
    # New households, not the same ones again.
    assert not fresh.groupby("household_id")["household_income"].first().equals(
        out[out["household_id"] != first].groupby("household_id")["household_income"].first())


def test_households_of_given_structures_are_drawn_given_them(people: pd.DataFrame) -> None:
    """``sample_structures``: one fresh household per structure row the model draws (the
    calibration's top-up of a short stratum); a structure it never draws is left out."""
    synth = HouseholdSynthesizer(seed=1, person_id="person_id").fit(people.assign(person_id=np.arange(len(people))))
    heads = synth.sample(600, seed=7).drop_duplicates("household_id")
    structures = heads[["region", "household_size"]].iloc[:40].reset_index(drop=True)
    structures.loc[3, "region"] = "atlantis"  # never drawn
    fresh = synth.sample_structures(structures, seed=9, max_rounds=3)
    got = fresh.groupby("household_id", sort=False).agg(n=("age", "size"), size=("household_size", "first"),
                                                       region=("region", "first"))
    assert len(got) == 39 and fresh["person_id"].is_unique
    assert (got["n"] == got["size"]).all()
    wanted = structures.drop(index=3).astype({"region": str})
    assert sorted(zip(got["region"].astype(str), got["size"])) == sorted(zip(wanted["region"], wanted["household_size"]))
    assert_coherent(fresh.drop(columns="person_id"), people, len(fresh))
    pd.testing.assert_frame_equal(fresh, synth.sample_structures(structures, seed=9, max_rounds=3))  # seeded


def test_declared_household_variables_are_identical_within_generated_households():
    """A household fact (``household_level``) is drawn once per household, even where the training data disagree."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 5, 300)
    hh = np.repeat(np.arange(300), sizes)
    member = np.concatenate([np.arange(s) for s in sizes])
    data = pd.DataFrame({
        "household_id": hh,
        "relation": np.where(member == 0, "head", "child"),
        "age": np.where(member == 0, rng.integers(30, 70, len(hh)), rng.integers(0, 15, len(hh))),
        "household_size": np.repeat(sizes, sizes),
        # a household income, but one member in five reported another figure
        "hh_income": np.repeat(rng.uniform(1e4, 9e4, 300).round(), sizes)
        * np.where(rng.random(len(hh)) < 0.2, 1.1, 1.0),
    })
    detected = HouseholdSynthesizer("cart", "cart", seed=0).fit(data)
    assert "hh_income" not in detected.training_log["household_columns"]
    model = HouseholdSynthesizer("cart", "cart", seed=0, household_level=["hh_income"]).fit(data)
    assert "hh_income" in model.training_log["household_columns"]
    sample = model.sample(600, seed=1)
    assert (sample.groupby("household_id")["hh_income"].nunique() == 1).all()


def test_household_totals_are_drawn_in_the_household_table_and_the_members_given_them():
    """``household_totals``: the household's total income is a column of the household table
    (spending follows it there) and the members' incomes are drawn given it, so a household
    drawn rich has rich members. The total is internal: not in the output."""
    rng = np.random.default_rng(0)
    n_households = 1500
    sizes = rng.integers(1, 5, n_households)
    hh = np.repeat(np.arange(n_households), sizes)
    member = np.concatenate([np.arange(s) for s in sizes])
    income = np.where(member < 2, rng.lognormal(10, 0.6, len(hh)), 0.0).round()
    total = pd.Series(income).groupby(hh).transform("sum").to_numpy()
    data = pd.DataFrame({
        "household_id": hh,
        "relation": np.where(member == 0, "head", np.where(member == 1, "partner", "child")),
        "age": np.where(member < 2, rng.integers(30, 70, len(hh)), rng.integers(0, 15, len(hh))),
        "household_size": np.repeat(sizes, sizes),
        "labour_income": income,
        "spend": (100 + 0.004 * total + rng.normal(0, 80, n_households)[hh]).round(1),
    })
    model = HouseholdSynthesizer(
        "cart", "cart", seed=0, household_level=["spend"], household_totals=["labour_income"],
    ).fit(data)
    assert model.training_log["household_totals"] == ["labour_income"]
    household_model, _ = model.fitted_models
    households = household_model.sample(2000, seed=1)
    total_column = next(c for c in households.columns if "total" in c and "labour_income" in c)
    assert households[["spend", total_column]].corr().iloc[0, 1] > 0.5  # spending drawn with the total
    households = households[households["household_size"] == 2].reset_index(drop=True)
    members = {}
    for name, value in {"poor": 20_000.0, "rich": 150_000.0}.items():
        rows = households.assign(**{total_column: value})
        drawn = model._draw_members(rows, np.arange(len(rows)), np.random.default_rng(2))
        members[name] = drawn.groupby("household_id")["labour_income"].sum().median()
    assert members["rich"] > 3 * members["poor"]
    out = model.sample(500, seed=2)
    assert list(out.columns) == list(data.columns)  # the internal total is not output


def test_a_draw_restricted_to_a_region_holds_its_households_only(people: pd.DataFrame) -> None:
    """``restricted_to``: the model's households given their region, drawn by themselves (a
    region's step), with the region's share of the structure; redraws stay in the region."""
    synth = HouseholdSynthesizer(seed=1).fit(people)
    region = str(people["region"].iloc[0])
    restricted = synth.restricted_to("region", [region])
    out = restricted.sample(3_000, seed=4)
    assert 3_000 <= len(out) < 3_000 + people["household_size"].max()
    assert set(out["region"].astype(str)) == {region}
    assert_coherent(out, people, 3_000)
    # the region's households as the unrestricted model draws them: same size mix within noise
    whole = synth.sample(12_000, seed=5)
    sizes = lambda d: d.drop_duplicates("household_id")["household_size"].value_counts(normalize=True)  # noqa: E731
    in_region = whole[whole["region"].astype(str) == region]
    assert (sizes(out) - sizes(in_region)).abs().max() < 0.06
    fresh, _ = restricted.sample_households_like(out.iloc[:300], on=[], seed=6)  # the size only
    assert set(fresh["region"].astype(str)) == {region}
    assert set(synth.sample(2_000, seed=4)["region"].astype(str)) != {region}  # the model itself untouched
    with pytest.raises(ValueError, match="'age' is not a household-level column"):
        synth.restricted_to("age", [30])


def test_cart_draws_households_given_their_structure_as_its_whole_draws_do(people: pd.DataFrame) -> None:
    """CART's ``sample_matching``: the structure columns, early in its visiting order, drawn alone and
    matched, the rest drawn given them: the same distribution as whole draws that happen to have
    that structure (what the redraws did before, at the price of whole households)."""
    # large households own (the fixture's tenure is independent of the structure otherwise)
    people = people.assign(tenure=people["tenure"].where(people["household_size"] < 4, "own"))
    synth = HouseholdSynthesizer(seed=1).fit(people)
    household_model = synth.fitted_models[0]
    structure = synth.structure_columns(["region"])
    wanted = pd.DataFrame({"household_size": [4] * 3000, "region": ["north"] * 3000})
    wanted.loc[0, "region"] = "atlantis"  # never drawn
    found = household_model.sample_matching(wanted[structure], seed=3)
    assert found is not None, "CART drew whole households to match a structure"
    rows, positions = found
    assert 0 not in positions and len(rows) == len(positions) == 2999
    assert (rows["household_size"] == 4).all() and (rows["region"].astype(str) == "north").all()
    whole = household_model.sample(60_000, seed=4)
    like = whole[(whole["household_size"] == 4) & (whole["region"].astype(str) == "north")]
    assert len(like) > 1000
    for share in (lambda d: (d["tenure"] == "own").mean(), lambda d: np.log(d["household_income"]).mean()):
        assert abs(share(rows) - share(like)) < 0.05
    # given the structure: its households own, as those of the whole draw with that structure do
    assert (rows["tenure"] == "own").mean() > 0.95 > (whole["tenure"] == "own").mean() + 0.2
    # a region's model: rows of the region only, also when the structure does not name it
    rows, _ = household_model.sample_matching(wanted[["household_size"]], seed=5, within=("region", {"south"}))
    assert (rows["region"].astype(str) == "south").all() and (rows["household_size"] == 4).all()
    # a wanted column the model does not draw as a label: the caller matches whole draws instead
    assert household_model.sample_matching(pd.DataFrame({"household_income": [1.0]}), seed=1) is None
