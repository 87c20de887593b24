"""A survey file with person and household variables (``level``), and a universe per variable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import CatalogError, parse_catalog
from synth_assets.matching.sources import fuse_sources, households_disagreeing

CATALOG = """
version: 1
common_variables:
  age: {type: integer, min: 0, max: 110}
  sex: {type: category, categories: [female, male]}
  household_size: {type: integer, min: 1, max: 12}
sources:
  register:
    kind: register
    path: "register/register_{wave}.parquet"
    format: parquet
    variables:
      person_id: {column: P, role: id, type: integer}
      household_id: {column: H, role: household_id, type: integer}
      age: {column: A, role: common}
      sex: {column: S, role: common}
      household_size: {column: N, role: common}
  living:
    kind: survey
    path: "living/living_{wave}.csv"
    format: csv
    unit: person
    variables:
      person_id: {column: P, role: id, type: integer}
      household_id: {column: H, role: household_id, type: integer}
      weight: {column: W, role: weight, type: number}
      age: {column: A, role: common}
      sex: {column: S, role: common}
      household_size: {column: N, role: common}
      hh_income: {column: HY, role: specific, type: number, min: 0, level: household}
      owner: {column: OWN, role: specific, type: category, categories: ["yes", "no"], level: household}
      status: {column: ST, role: specific, type: category, categories: [worker, other, child],
               universe: "age >= 16", not_applicable: child}
      pay: {column: PY, role: specific, type: number, min: 0, special_values: [-1], universe: "age >= 16",
            not_applicable: -1}
"""


def _households(rng: np.random.Generator, n: int, first_id: int = 1) -> pd.DataFrame:
    sizes = rng.integers(1, 6, n)
    hh = np.repeat(np.arange(first_id, first_id + n), sizes)
    return pd.DataFrame({
        "household_id": pd.array(hh, "Int64"),
        "age": pd.array(rng.integers(0, 90, len(hh)), "Int64"),
        "sex": pd.Categorical(rng.choice(["female", "male"], len(hh)), categories=["female", "male"]),
        "household_size": pd.array(np.repeat(sizes, sizes), "Int64"),
    })


def _survey(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = _households(rng, 250, first_id=5001)
    households = frame["household_id"].unique()
    income = pd.Series(rng.uniform(10_000, 90_000, len(households)).round(), index=households)
    income[rng.random(len(households)) < 0.08] = np.nan  # household item non-response, on every member
    owner = pd.Series(rng.choice(["yes", "no"], len(households)), index=households)
    frame["hh_income"] = frame["household_id"].map(income).astype("float64")
    frame["owner"] = pd.Categorical(frame["household_id"].map(owner), categories=["yes", "no"])
    adult = frame["age"].to_numpy(dtype=int) >= 16
    status = np.where(adult, rng.choice(["worker", "other"], len(frame)), "child")
    frame["status"] = pd.Categorical(status, categories=["worker", "other", "child"])
    frame["pay"] = np.where(status == "worker", rng.uniform(5_000, 40_000, len(frame)).round(),
                            np.where(adult, 0.0, -1.0))
    # persons under 16 answer nothing personal; a few children carry a stray value that must not be donated
    frame.loc[np.flatnonzero(~adult)[:3], "pay"] = 77_777.0
    weight = pd.Series(rng.uniform(1, 3, len(households)), index=households)
    frame["weight"] = frame["household_id"].map(weight).astype("float64")
    return frame.assign(person_id=pd.array(np.arange(1, len(frame) + 1), "Int64"))


@pytest.fixture(scope="module")
def fused():
    catalog = parse_catalog(CATALOG)
    rng = np.random.default_rng(0)
    register = _households(rng, 400)
    register = register.assign(person_id=pd.array(np.arange(1, len(register) + 1), "Int64"))
    survey = _survey()
    matched, fusions = fuse_sources(catalog, register, {"living": ("2024", survey)},
                                    methods={"living": "nnd_hotdeck"}, seed=0)
    return catalog, survey, matched, fusions[0]


def test_household_variables_are_identical_within_every_household(fused):
    catalog, _, matched, fusion = fused
    assert catalog.sources["living"].household_variables == ["hh_income", "owner"]
    assert fusion.household_variables == ["hh_income", "owner"]
    assert households_disagreeing(matched, "household_id", ["hh_income", "owner"]) == {}
    assert matched[["hh_income", "owner"]].notna().all().all()  # household non-response imputed first
    # person variables still vary within households
    multi = matched[matched["household_size"] > 2]
    assert multi.groupby("household_id")["pay"].nunique().max() > 1


def test_household_values_come_from_one_donor_household(fused):
    _, survey, matched, _ = fused
    pairs = set(map(tuple, survey[["hh_income", "owner"]].dropna().astype(str).to_numpy()))
    donated = matched.drop_duplicates("household_id")[["hh_income", "owner"]].astype(str).to_numpy()
    assert all(tuple(row) in pairs for row in donated)


def test_a_variable_universe_gives_not_applicable_outside_and_donor_values_inside(fused):
    _, survey, matched, _ = fused
    child = matched["age"].to_numpy(dtype=int) < 16
    assert (matched.loc[child, "status"] == "child").all()
    assert (matched.loc[child, "pay"] == -1).all()
    adults = matched.loc[~child]
    assert adults["status"].isin(["worker", "other"]).all()
    assert (adults["pay"] >= 0).all() and not (adults["pay"] == 77_777).any()  # no child's value donated
    # household facts concern everyone, children included
    assert matched.loc[child, "hh_income"].notna().all()


def test_universe_rules_join_the_plausibility_rules(fused):
    catalog = fused[0]
    rules = catalog.plausibility_rules()
    assert "(age >= 16) or status == 'child'" in rules and "(age >= 16) or pay == -1" in rules
    from synth_assets.catalog.rules import broken_rows

    matched = fused[2]
    assert not broken_rows(matched, rules)[0].any()
    bad = matched.copy()
    bad.loc[bad["age"] < 16, "pay"] = 10.0
    assert broken_rows(bad, rules)[1]["(age >= 16) or pay == -1"] > 0
    # -1 is outside pay's range: it means "outside the universe", so an adult holding it is refused
    # too (a generated adult with a child's block); status 'child' is a category, left one-way
    assert "not (age >= 16) or pay != -1" in rules and "not (age >= 16) or status != 'child'" not in rules
    bad = matched.copy()
    bad.loc[bad["age"] >= 16, "pay"] = -1.0
    assert broken_rows(bad, rules)[1]["not (age >= 16) or pay != -1"] == (bad["age"] >= 16).sum()


def _mutated(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("level: household}", 'level: household, universe: "age >= 16"}',
     r"hh_income: a household variable concerns every member"),
    ("not_applicable: child}", "}", r"status: the variable has a universe .* declare 'not_applicable'"),
    ('universe: "age >= 16", not_applicable: child', 'universe: "agee >= 16", not_applicable: child',
     r"status: universe .*names no variable"),
    ("age: {column: A, role: common}\n      sex: {column: S, role: common}\n      household_size: {column: N, role: common}\n      hh_income",
     "age: {column: A, role: common, level: person}\n      sex: {column: S, role: common}\n      household_size: {column: N, role: common}\n      hh_income",
     r"living.variables.age: 'level' is only for specific variables"),
    ("format: csv\n    unit: person", 'format: csv\n    universe: "age >= 0"\n    unit: person',
     r"hh_income: a household variable concerns every member, but the source's universe"),
])
def test_levels_and_universes_are_validated(old, new, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(_mutated(CATALOG, old, new))


def test_two_surveys_of_both_levels_fused_side_by_side_make_the_same_base():
    """Forked fusions (``processes``) of surveys holding household and person variables: the same
    base as the chain, columns in the same order (household variables first, as each fusion adds them)."""
    start = CATALOG.index("  living:")
    again = (CATALOG[start:].replace("living", "again").replace("hh_income:", "hh_income2:")
             .replace("owner:", "owner2:").replace("status:", "status2:").replace("pay:", "pay2:"))
    # its household variables declared after its person ones: the fusion still adds them first
    lines = again.splitlines(keepends=True)
    household = [line for line in lines if "level: household" in line]
    again = "".join([line for line in lines if line not in household] + household)
    catalog = parse_catalog(CATALOG + again)
    rng = np.random.default_rng(0)
    register = _households(rng, 400)
    register = register.assign(person_id=pd.array(np.arange(1, len(register) + 1), "Int64"))
    second = _survey(seed=4).rename(columns={"hh_income": "hh_income2", "owner": "owner2", "status": "status2",
                                             "pay": "pay2"})
    surveys = {"living": ("2024", _survey()), "again": ("2024", second)}
    methods = {"living": "nnd_hotdeck", "again": "nnd_hotdeck"}
    chain, _ = fuse_sources(catalog, register, surveys, methods=methods, seed=0)
    peaks: list[int] = []
    forked, _ = fuse_sources(catalog, register, surveys, methods=methods, seed=0, processes=2,
                             on_peak=lambda position, _: peaks.append(position))
    assert sorted(peaks) == [0, 1]
    assert list(chain.columns)[-8:] == ["hh_income", "owner", "status", "pay", "hh_income2", "owner2", "status2", "pay2"]
    assert catalog.sources["again"].specific == ["status2", "pay2", "hh_income2", "owner2"]
    pd.testing.assert_frame_equal(forked, chain)
