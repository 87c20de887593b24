"""Register coherence, incomes, drift and the truth tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from .conftest import PERSONS, WAVES
from .plain_catalog import load_catalog


@pytest.fixture(scope="module")
def registers(demo_dir):
    return {w: pd.read_parquet(demo_dir / "incoming" / "register" / f"register_{w}.parquet") for w in WAVES}


@pytest.fixture(scope="module")
def truths(demo_dir):
    return {w: pd.read_parquet(demo_dir / "truth" / f"population_{w}.parquet") for w in WAVES}


def test_register_has_the_whole_population_with_stable_ids(registers):
    ids = registers[2022]["PERS_ID"]
    assert len(ids) == PERSONS and ids.is_unique
    for w in WAVES:
        reg = registers[w]
        assert reg["PERS_ID"].equals(ids)
        assert reg["HH_ID"].equals(registers[2022]["HH_ID"])
        assert (reg["AGE"] - registers[2022]["AGE"] == w - 2022).all()  # aged, not resampled
        assert set(reg["MUNIC_CODE"]) == set(range(1, 20))
        assert set(reg["SEX"]) == {1, 2}
        assert set(reg["CITIZEN"]) == {1, 2, 3}


@pytest.mark.parametrize("wave", WAVES)
def test_register_households_are_coherent(registers, wave):
    reg = registers[wave]
    by_hh = reg.groupby("HH_ID")
    assert (by_hh["HH_SIZE"].first() == by_hh.size()).all()
    assert (by_hh["HH_SIZE"].nunique() == 1).all() and (by_hh["HH_TYPE"].nunique() == 1).all()
    assert (by_hh["MUNIC_CODE"].nunique() == 1).all()
    assert ((reg["REL_HEAD"] == 1).groupby(reg["HH_ID"]).sum() == 1).all()  # exactly one head
    head_age = reg.loc[reg["REL_HEAD"] == 1].set_index("HH_ID")["AGE"]
    assert (head_age >= 18).all()
    members_head_age = reg["HH_ID"].map(head_age)
    children = reg["REL_HEAD"] == 3
    assert children.any()
    assert (reg.loc[children, "AGE"] <= members_head_age[children] - 15).all()
    partners = reg["REL_HEAD"] == 2
    assert reg.loc[partners, "HH_TYPE"].isin([2, 3]).all()  # partners only in couples
    assert ((partners.groupby(reg["HH_ID"]).sum()) <= 1).all()
    assert (reg.loc[reg["HH_TYPE"] == 1, "HH_SIZE"] == 1).all()
    assert (abs(reg.loc[partners, "AGE"].to_numpy() - members_head_age[partners].to_numpy()) <= 25).all()
    sizes = by_hh.size()
    assert sizes.min() >= 1 and sizes.max() <= 8
    share = sizes.value_counts(normalize=True)
    assert 0.25 < share[1] < 0.5 and share.get(2, 0) > 0.15 and share[share.index >= 5].sum() > 0.02


def test_incomes_are_skewed_with_exact_zeros(registers):
    reg = registers[2022]
    for col in ("INC_LABOUR", "INC_PENSION", "INC_UNEMP", "INC_PROPERTY", "INC_SELF"):
        x = reg[col]
        assert 0.03 < (x != 0).mean() < 0.8, col
        pos = x[x > 0]
        assert pos.mean() > pos.median(), col  # right-skewed
    assert (reg["INC_SELF"] < 0).any()  # self-employment losses
    for col in ("INC_LABOUR", "INC_PENSION", "INC_UNEMP", "INC_PROPERTY"):
        assert (reg[col] >= 0).all()
    assert (reg.loc[reg["AGE"] >= 65, "INC_PENSION"] > 0).mean() > 0.7
    assert (reg.loc[reg["AGE"] < 50, "INC_PENSION"] > 0).mean() < 0.1


@pytest.mark.parametrize("wave", WAVES)
def test_children_have_no_labour_income(registers, truths, wave):
    reg = registers[wave]
    assert (reg.loc[reg["AGE"] < 16, "INC_LABOUR"] == 0).all()
    assert (reg["AGE"] < 16).sum() > 100
    truth = truths[wave]
    assert (truth.loc[truth["age"] < 16, "labour_income"] == 0).all()


def test_drift_between_waves(registers, truths):
    assert registers[2024]["INC_LABOUR"].mean() > registers[2022]["INC_LABOUR"].mean() * 1.03
    assert registers[2023]["INC_LABOUR"].mean() > registers[2022]["INC_LABOUR"].mean()
    working_age = [t.loc[t["age"].between(20, 64)] for t in (truths[2022], truths[2024])]
    employed = [t["employment_status"].isin(["employed", "self_employed"]).mean() for t in working_age]
    assert employed[1] > employed[0]
    assert truths[2024]["spend_food"].mean() > truths[2022]["spend_food"].mean() * 1.05  # prices +4 %/year


def test_truth_holds_every_survey_variable_for_everyone(truths, registers):
    catalog = load_catalog()
    names = {n for src in catalog["sources"].values() for n in src["variables"] if n not in ("weight",)}
    names -= {"person_id", "household_id"}
    for wave, truth in truths.items():
        assert len(truth) == PERSONS
        assert set(names) <= set(truth.columns), set(names) - set(truth.columns)
        assert {"trait_frailty", "trait_thrift", "trait_work_attachment"} <= set(truth.columns)
        assert not truth.isna().any().any()
        assert truth["person_id"].equals(registers[wave]["PERS_ID"])
        assert (truth["labour_income"].to_numpy() == registers[wave]["INC_LABOUR"].to_numpy()).all()


def test_truth_categories_match_the_catalog(truths):
    catalog = load_catalog()
    truth = truths[2023]
    for name, spec in catalog["common_variables"].items():
        if spec["type"] == "category":
            assert list(truth[name].cat.categories) == spec["categories"], name
    for source in catalog["sources"].values():
        for name, spec in source["variables"].items():
            if spec.get("type") == "category":
                assert list(truth[name].cat.categories) == spec["categories"], name
            if spec["role"] == "specific" and spec.get("type") in ("integer", "number"):
                values = truth[name][~truth[name].isin(spec.get("special_values") or [])]
                if "min" in spec:
                    assert values.min() >= spec["min"], name
                if "max" in spec:
                    assert values.max() <= spec["max"], name


def test_special_values_in_the_truth(truths):
    truth = truths[2022]
    tenant = truth["tenure"].isin(["tenant_market", "tenant_social"])
    assert (truth.loc[~tenant, "rent"] == -8).all() and (truth.loc[tenant, "rent"] > 0).all()
    inactive = truth["employment_status"].isin(["child", "student", "retired", "inactive"]) & (truth["labour_income"] == 0)
    assert (truth.loc[inactive, "hours_worked"] == -8).all()
    assert (truth.loc[truth["employment_status"] == "unemployed", "hours_worked"] == 0).all()
    assert (truth.loc[truth["employment_status"] == "employed", "hours_worked"] > 0).all()
    assert ((truth["tenure"] != "owner") & (truth["real_estate"] > 0)).mean() < 0.1  # zero for most tenants


def test_household_variables_are_constant_within_households(truths):
    truth = truths[2024]
    household_vars = ["tenure", "rent", "deprivation", "spend_food", "spend_transport", "deposits", "debt"]
    assert (truth.groupby("household_id")[household_vars].nunique() == 1).all().all()


def test_release_rules_hold_in_every_record_of_the_truth(truths):
    catalog = load_catalog()
    for wave, truth in truths.items():
        for rule in catalog["release"]["rules"]:
            assert len(truth.query(rule)) == len(truth), (wave, rule)


def test_release_regressions_and_lists_name_truth_variables(truths):
    catalog = load_catalog()
    release, truth = catalog["release"], truths[2022]
    assert set(release["quasi_identifiers"]) <= set(truth.columns)
    assert set(release["sensitive"]) <= set(truth.columns)
    for reg in release["regressions"]:
        assert reg["kind"] in ("ols", "logit")
        assert set(reg["predictors"]) <= set(truth.columns)
        outcome = truth.eval(reg["outcome"]) if reg["kind"] == "logit" else truth[reg["outcome"]]
        if reg["kind"] == "logit":
            assert outcome.dtype == bool and 0.02 < outcome.mean() < 0.98


def _common_design(truth: pd.DataFrame) -> np.ndarray:
    """Design matrix of the common variables X (dummies, age, age squared, size, log income)."""
    x = pd.get_dummies(
        truth[["municipality", "sex", "citizenship", "household_type", "relation"]], drop_first=True, dtype=float
    )
    x["age"], x["age2"] = truth["age"], truth["age"].astype(float) ** 2
    x["household_size"] = truth["household_size"]
    x["log_labour_income"] = np.log1p(truth["labour_income"])
    return np.column_stack([np.ones(len(truth)), x.to_numpy(float)])


def _partial_corr(x: np.ndarray, a: np.ndarray, b: np.ndarray, mask=None) -> float:
    """Correlation of a and b after regressing both on the common variables ``x``."""
    if mask is not None:
        x, a, b = x[mask], a[mask], b[mask]
    q, _ = np.linalg.qr(x)
    ra, rb = a - q @ (q.T @ a), b - q @ (q.T @ b)
    return float(np.corrcoef(ra, rb)[0, 1])


def test_conditional_independence_does_not_hold(truths):
    """Survey variables share hidden traits beyond X: the CIA fails by construction."""
    truth = truths[2022]
    x = _common_design(truth)
    health = truth["health"].cat.codes.to_numpy(float)  # 0 very good .. 4 very bad
    # a survey variable and its hidden driver, given X
    assert _partial_corr(x, health, truth["trait_frailty"].to_numpy()) > 0.5
    # variables from *different* surveys, given X (what matching under CIA would miss)
    hours = np.clip(truth["hours_worked"].to_numpy(float), 0, None)
    working_age = truth["age"].between(16, 64).to_numpy()
    assert _partial_corr(x, health, hours, working_age) < -0.1  # silc x lfs via frailty
    deprivation = truth["deprivation"].to_numpy(float)
    deposits = np.log1p(truth["deposits"].to_numpy())
    assert _partial_corr(x, deprivation, deposits) < -0.25  # silc x hfcs via thrift
    food = np.log(truth["spend_food"].to_numpy())
    assert abs(_partial_corr(x, food, deposits)) > 0.1  # hbs x hfcs via thrift


def test_survey_variables_depend_on_register_variables(truths):
    truth = truths[2022]
    adults = truth[truth["age"] >= 16]
    bad_health = adults["health"].isin(["bad", "very_bad"])
    assert bad_health[adults["age"] >= 65].mean() > 2 * bad_health[adults["age"] < 40].mean()
    hh = truth[truth["relation"] == "head"]  # one row per household
    assert hh[hh["household_size"] <= 5].groupby("household_size")["spend_food"].mean().is_monotonic_increasing
    rich = hh["labour_income"] > hh["labour_income"].quantile(0.8)
    assert hh.loc[rich, "deposits"].median() > hh.loc[~rich, "deposits"].median()
    owners = hh["tenure"] == "owner"
    assert hh.loc[owners, "age"].mean() > hh.loc[~owners, "age"].mean() + 5
