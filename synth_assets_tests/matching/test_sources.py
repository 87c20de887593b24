"""fuse_sources: universes filled with the catalog's not-applicable values, item non-response imputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import parse_catalog
from synth_assets.matching import missing_shares
from synth_assets.matching.nonresponse import impute_item_nonresponse
from synth_assets.matching.sources import fuse_sources

REPO = Path(__file__).resolve().parents[2]

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
  work:
    kind: survey
    path: "work/work_{wave}.csv"
    format: csv
    universe: "age >= 15 and age <= 74"
    variables:
      person_id: {column: P, role: id, type: integer}
      household_id: {column: H, role: household_id, type: integer}
      weight: {column: W, role: weight, type: number}
      age: {column: A, role: common}
      sex: {column: S, role: common}
      household_size: {column: N, role: common}
      hours: {column: HRS, role: specific, type: integer, special_values: [-8], min: 0, max: 80, not_applicable: -8}
      job: {column: J, role: specific, type: category, categories: [a, b, none], not_applicable: none}
  budget:
    kind: survey
    path: "budget/budget_{wave}.csv"
    format: csv
    unit: household
    variables:
      person_id: {column: P, role: id, type: integer}
      household_id: {column: H, role: household_id, type: integer}
      weight: {column: W, role: weight, type: number}
      age: {column: A, role: common}
      sex: {column: S, role: common}
      household_size: {column: N, role: common}
      food: {column: F, role: specific, type: number, min: 0}
"""
JOBS = pd.CategoricalDtype(["a", "b", "none"])
# Hours follow the job closely, so an imputation that ignores the observed job shows.
HOURS = {"a": (20, 30), "b": (40, 50), "none": (-8, -8)}


def _households(rng: np.random.Generator, n: int, first_id: int = 1) -> pd.DataFrame:
    sizes = rng.integers(1, 5, n)
    hh = np.repeat(np.arange(first_id, first_id + n), sizes)
    return pd.DataFrame({
        "household_id": pd.array(hh, "Int64"),
        "age": pd.array(rng.integers(0, 95, len(hh)), "Int64"),
        "sex": pd.Categorical(rng.choice(["female", "male"], len(hh)), categories=["female", "male"]),
        "household_size": pd.array(np.repeat(sizes, sizes), "Int64"),
    })


def _register(seed: int = 0) -> pd.DataFrame:
    frame = _households(np.random.default_rng(seed), 300)
    return frame.assign(person_id=pd.array(np.arange(1, len(frame) + 1), "Int64"))


def _work(seed: int = 1, n: int = 400) -> pd.DataFrame:
    """Labour survey of persons 15-74 with item non-response on hours and job, plus 5 records aged 80-90."""
    rng = np.random.default_rng(seed)
    frame = _households(rng, n)[["household_id", "age", "sex", "household_size"]].iloc[:n].reset_index(drop=True)
    frame["age"] = pd.array(rng.integers(15, 75, n), "Int64")
    frame.loc[: 4, "age"] = [80, 82, 85, 88, 90]
    job = rng.choice(["a", "b", "none"], n)
    hours = np.array([rng.integers(HOURS[j][0], HOURS[j][1] + 1) for j in job])
    hours[:5] = 1  # only outside the universe: must never be donated
    frame["hours"] = pd.array(hours, "Int64")
    frame["job"] = pd.Series(job, dtype=JOBS)
    frame.loc[rng.random(n) < 0.12, "hours"] = pd.NA
    frame.loc[rng.random(n) < 0.10, "job"] = np.nan
    frame.loc[5:9, ["hours", "job"]] = np.nan  # some records miss both
    return frame.assign(person_id=pd.array(np.arange(1, n + 1), "Int64"), weight=rng.uniform(1, 3, n))


def _budget(seed: int = 2) -> pd.DataFrame:
    """Household survey: food repeated on every member, missing for a tenth of the households."""
    rng = np.random.default_rng(seed)
    frame = _households(rng, 150, first_id=1001)
    households = frame["household_id"].unique()
    food = pd.Series(rng.uniform(90, 110, len(households)) * 1.0, index=households)
    food[rng.random(len(households)) < 0.1] = np.nan
    frame["food"] = frame["household_id"].map(food).astype("float64")
    weight = pd.Series(rng.uniform(1, 2, len(households)), index=households)
    frame["weight"] = frame["household_id"].map(weight).astype("float64")
    return frame.assign(person_id=pd.array(np.arange(1, len(frame) + 1), "Int64"))


@pytest.fixture(scope="module")
def fused():
    catalog = parse_catalog(CATALOG)
    work, budget = _work(), _budget()
    matched, fusions = fuse_sources(
        catalog, _register(), {"work": ("2024", work), "budget": ("2024", budget)},
        methods={"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}, seed=0,
    )
    return catalog, work, budget, matched, {f.survey: f for f in fusions}


def test_the_register_is_left_as_it_was_and_the_base_keeps_its_rows():
    # the base is a shallow copy of the register (its columns shared, not copied): fusing must
    # add columns to the base only, and keep the register's row order whatever its index
    catalog = parse_catalog(CATALOG)
    register = _register().sample(frac=1.0, random_state=3)
    register.index = register.index * 7 + 5
    before = register.copy(deep=True)
    matched, _ = fuse_sources(catalog, register, {"work": ("2024", _work()), "budget": ("2024", _budget())},
                              methods={"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}, seed=0)
    pd.testing.assert_frame_equal(register, before)
    assert list(matched.index) == list(range(len(register)))
    pd.testing.assert_frame_equal(matched[list(register.columns)], before.reset_index(drop=True))
    # every member holds the value its household was donated
    assert matched.groupby("household_id")["food"].nunique().max() == 1
    assert not matched[["hours", "job", "food"]].isna().any().any()


def test_recipients_outside_the_universe_get_the_declared_value(fused):
    _, work, _, matched, _ = fused
    outside = ~matched.eval("age >= 15 and age <= 74")
    assert outside.sum() > 30
    assert (matched.loc[outside, "hours"] == -8).all()
    assert (matched.loc[outside, "job"] == "none").all()
    assert matched["hours"].dtype == work["hours"].dtype
    assert matched["job"].dtype == work["job"].dtype  # same categories, same order


def test_no_missing_specific_value_after_fusion(fused):
    _, work, budget, matched, _ = fused
    assert work[["hours", "job"]].isna().any().all() and budget["food"].isna().any()
    assert not matched[["hours", "job", "food"]].isna().any().any()


def test_values_come_from_respondents_in_the_universe(fused):
    _, work, budget, matched, _ = fused
    inside = matched.eval("age >= 15 and age <= 74")
    respondents = work.iloc[5:]  # the first five records are outside the universe
    assert set(matched.loc[inside, "hours"]) <= set(respondents["hours"].dropna())
    assert 1 not in set(matched["hours"])
    assert set(matched["food"]) <= set(budget["food"].dropna())
    # One value per household.
    assert matched.groupby("household_id")["food"].nunique().max() == 1


def test_item_nonresponse_counts_are_reported(fused):
    _, work, budget, _, fusions = fused
    in_universe = work.iloc[5:]
    assert fusions["work"].item_nonresponse == {
        "hours": int(in_universe["hours"].isna().sum()), "job": int(in_universe["job"].isna().sum())
    }
    households = budget.drop_duplicates("household_id")
    assert fusions["budget"].item_nonresponse == {"food": int(households["food"].isna().sum())}
    assert fusions["work"].diagnostics["item_nonresponse"] == fusions["work"].item_nonresponse


def test_imputation_draws_respondents_and_conditions_on_the_observed_items():
    work = _work().iloc[5:].reset_index(drop=True)
    # Unrelated categorical common variables: a mismatch on one outweighs any gap in hours.
    rng = np.random.default_rng(4)
    work = work.assign(town=rng.choice(list("pqrstu"), len(work)), origin=rng.choice(list("xyz"), len(work)))
    done, counts = impute_item_nonresponse(
        work, on=["age", "sex", "household_size", "town", "origin"], impute=["hours", "job"], weight="weight", seed=3
    )
    assert counts == {"hours": int(work["hours"].isna().sum()), "job": int(work["job"].isna().sum())}
    assert not done[["hours", "job"]].isna().any().any()
    assert done.dtypes.equals(work.dtypes)
    observed = work.dropna(subset=["hours", "job"])
    pairs = set(zip(observed["hours"], observed["job"], strict=True))
    # A record missing both takes both from one respondent: a pair some respondent gave.
    both = work["hours"].isna() & work["job"].isna()
    assert both.sum() >= 5
    assert set(zip(done.loc[both, "hours"], done.loc[both, "job"], strict=True)) <= pairs
    # One missing: the other, observed, decides (hours within the job's range; no job iff no hours).
    only_hours = work["hours"].isna() & work["job"].notna()
    for job, (low, high) in HOURS.items():
        rows = only_hours & (work["job"] == job)
        assert rows.any() and done.loc[rows, "hours"].between(low, high).all(), job
    only_job = work["job"].isna() & work["hours"].notna()
    assert only_job.sum() > 10
    assert ((done.loc[only_job, "job"] == "none") == (work.loc[only_job, "hours"] < 0)).all()
    # Untouched where answered.
    answered = work["hours"].notna()
    assert done.loc[answered, "hours"].equals(work.loc[answered, "hours"])


def test_imputation_without_joint_respondents_and_without_any():
    frame = pd.DataFrame({
        "age": pd.array([20, 30, 40, 50, 60], "Int64"),
        "x": [1.0, np.nan, 3.0, np.nan, np.nan],
        "y": [np.nan, 2.0, np.nan, 4.0, np.nan],
    })
    done, counts = impute_item_nonresponse(frame, on=["age"], impute=["x", "y"], seed=0)
    assert counts == {"x": 3, "y": 3}
    assert set(done["x"]) <= {1.0, 3.0} and set(done["y"]) <= {2.0, 4.0}
    with pytest.raises(ValueError, match="lfs: no record answered 'x'"):
        impute_item_nonresponse(frame.assign(x=np.nan), on=["age"], impute=["x"], what="lfs")


def test_imputation_for_non_respondents_whose_town_no_respondent_shares():
    """A survey bootstrap can leave a municipality's only records unanswered: one table's rows
    share its coding, so that is a class without donors, not a coding mismatch to refuse."""
    frame = pd.DataFrame({
        "town": ["Aubeval", "Aubeval", "Brenneck", "Brenneck", "Quellmont"],
        "age": pd.array([20, 30, 40, 50, 60], "Int64"),
        "x": [1.0, 2.0, 3.0, 4.0, np.nan],
    })
    done, counts = impute_item_nonresponse(frame, on=["town", "age"], impute=["x"], seed=0)
    assert counts == {"x": 1}
    assert done.loc[4, "x"] in {1.0, 2.0, 3.0, 4.0}


def test_missing_shares():
    source = pd.DataFrame({"age": [1, 2, 3, 4], "x": [1.0, np.nan, np.nan, 4.0]})
    matched = pd.DataFrame({"age": [1, 2], "x": [1.0, np.nan], "z": ["a", None]})
    release = pd.DataFrame({"age": [5, 6, 7, 8], "z": ["a", "b", None, "c"]})
    table = missing_shares({"survey": source}, matched, release)
    assert list(table.index) == ["age", "x", "z"]
    assert list(table.columns) == ["survey", "matched", "release"]
    assert table.loc["x", "survey"] == 0.5 and table.loc["x", "matched"] == 0.5
    assert table.loc["z", "matched"] == 0.5 and table.loc["z", "release"] == 0.25
    assert np.isnan(table.loc["z", "survey"]) and np.isnan(table.loc["x", "release"])
    assert (table.loc["age"].fillna(0) == 0).all()
    assert list(missing_shares({}, matched).columns) == ["matched"]
    with pytest.raises(ValueError, match="'matched' clashes"):
        missing_shares({"matched": source}, matched)


def test_surveys_fused_side_by_side_in_children_make_the_same_base(fused):
    """With ``processes``, surveys that read nothing another imputes are fused in forked children,
    each with its own seeds: the same base and fusions as one after another; a survey whose
    matching variables include an earlier survey's imputed one makes the chain run in order here."""
    import dataclasses

    catalog, work, budget, matched, fusions = fused
    peaks: list[int] = []
    parallel, parallel_fusions = fuse_sources(
        catalog, _register(), {"work": ("2024", work), "budget": ("2024", budget)},
        methods={"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}, seed=0, processes=2,
        on_peak=lambda position, _: peaks.append(position))
    pd.testing.assert_frame_equal(parallel, matched)
    def timeless(value):  # the diagnostics' timings differ from run to run
        if isinstance(value, dict):
            return {k: timeless(v) for k, v in value.items() if k != "seconds"}
        return value

    assert ([timeless(dataclasses.asdict(f)) for f in parallel_fusions]
            == [timeless(dataclasses.asdict(fusions[n])) for n in ("work", "budget")])
    assert sorted(peaks) == [0, 1]  # each survey's fusion in a child of its own

    # the budget survey speaks for households whose member works (the work survey's job): it must wait for it
    dependent = parse_catalog(CATALOG.replace("    unit: household\n", "    unit: household\n    universe: \"job != 'none'\"\n")
                              .replace("food: {column: F, role: specific, type: number, min: 0}",
                                       "food: {column: F, role: specific, type: number, min: -1, not_applicable: -1}"))
    assert dependent.sources["budget"].universe == "job != 'none'"
    peaks.clear()
    one_by_one, _ = fuse_sources(dependent, _register(), {"work": ("2024", work), "budget": ("2024", budget)},
                                 methods={"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}, seed=0)
    side_by_side, _ = fuse_sources(dependent, _register(), {"work": ("2024", work), "budget": ("2024", budget)},
                                   methods={"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}, seed=0, processes=2,
                                   on_peak=lambda position, _: peaks.append(position))
    assert not peaks  # not forked
    pd.testing.assert_frame_equal(side_by_side, one_by_one)


@pytest.mark.parametrize("method", ["neural_draw", "nnd_hotdeck"])
def test_a_parent_forking_fusions_that_train_imports_torch_s_training_modules_once_for_its_children(method):
    """Each forked child would otherwise import torch and the module torch imports on an optimiser's
    first construction (``torch._dynamo``) itself: about 3.5 s of a core per survey. A fresh
    interpreter: this one's modules are whatever earlier tests imported. Methods that train
    nothing leave torch alone."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from synth_assets.catalog import parse_catalog\n"
        "from synth_assets.matching.sources import fuse_sources\n"
        "from synth_assets_tests.matching.test_sources import CATALOG, _budget, _register, _work\n"
        f"methods = {{'work': {method!r}, 'budget': {method!r}}}\n"
        "peaks = []\n"
        "matched, _ = fuse_sources(parse_catalog(CATALOG), _register(), {'work': ('2024', _work()),\n"
        "                          'budget': ('2024', _budget())}, methods=methods, seed=0, processes=2,\n"
        "                          on_peak=lambda position, _: peaks.append(position))\n"
        "assert sorted(peaks) == [0, 1], peaks  # each survey fused in a child of its own\n"
        "assert matched['hours'].notna().all()\n"
        "print(sorted(name for name in ('torch', 'torch._dynamo') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    imported = done.stdout.strip().splitlines()[-1]
    assert imported == ("['torch', 'torch._dynamo']" if method == "neural_draw" else "[]"), imported
