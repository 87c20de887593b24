"""Survey files: formats, designs, calibration, mess."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from synth_assets.demo.city import MUNICIPALITY_NAMES
from synth_assets.demo.incomes import generate_incomes
from synth_assets.demo.population import generate_population
from synth_assets.demo.surveys import SURVEYS, calibrate, draw_sample, rake

from .conftest import WAVES
from .plain_catalog import harmonise, load_catalog, read_raw, source_path

SURVEY_FILES = [("silc", w) for w in WAVES] + [("lfs", w) for w in WAVES] + [("hbs", 2022), ("hbs", 2024), ("hfcs", 2023)]


def _incoming(demo_dir):
    return demo_dir / "incoming"


def test_silc_is_a_semicolon_csv_with_decimal_commas(demo_dir):
    path = _incoming(demo_dir) / "silc" / "silc_2022.csv"
    text = path.read_bytes().decode("latin-1")
    header, first = text.splitlines()[:2]
    assert header.startswith("pid;hid;year;pweight;")
    assert "," in first.split(";")[3]  # weight written with a decimal comma
    frame = pd.read_csv(path, sep=";", decimal=",", encoding="latin-1")
    for col in ("pweight", "inc_work", "rent_month"):
        assert frame[col].dtype == np.float64, col
    assert set(frame["sexe"]) == {"F", "M"}
    assert set(frame["commune"]) == {n.upper() for n in MUNICIPALITY_NAMES}  # accents survive Latin-1
    assert set(frame["health"].dropna()) == {"Very good", "Good", "Fair", "Bad", "Very bad"}
    assert (frame.loc[frame["tenure"] == "Owner", "rent_month"] == -8).all()


def test_hbs_is_stata_with_value_labels(demo_dir):
    path = _incoming(demo_dir) / "hbs" / "hbs_2022.dta"
    labelled = pd.read_stata(path)
    assert set(labelled["sex"].astype(str)) == {"Female", "Male"}
    frame, meta = pyreadstat.read_dta(str(path))
    assert set(frame["sex"]) == {1, 2}
    assert meta.variable_value_labels["sex"] == {1: "Female", 2: "Male"}
    assert meta.column_names_to_labels["food_m"] == "Food spending, EUR per month"
    assert set(frame["commune"]) == set(range(101, 120))


def test_lfs_is_spss_with_labels_and_declared_missing(demo_dir):
    path = _incoming(demo_dir) / "lfs" / "lfs_2023.sav"
    frame, meta = pyreadstat.read_sav(str(path))
    assert meta.variable_value_labels["SEX"] == {1: "female", 2: "male"}
    assert frame["AGE"].between(15, 74).all()  # LFS scope
    assert (frame["HOURS"] == -8).any() and (frame["HOURS"] == 0).any() and (frame["HOURS"] > 30).any()
    raw, raw_meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert raw_meta.missing_ranges["HOURS"] == [{"lo": -9.0, "hi": -9.0}]
    assert (raw["HOURS"] == -9).sum() == frame["HOURS"].isna().sum() > 0
    assert set(pd.read_spss(path)["SEX"].astype(str)) == {"female", "male"}


def test_hfcs_is_parquet_in_thousands(demo_dir, demo):
    frame = pd.read_parquet(_incoming(demo_dir) / "hfcs" / "hfcs_2023.parquet")
    assert set(frame["RA0200"]) == {1, 2}
    assert frame["HD1110"].isna().any()  # nulls for item non-response
    truth = pd.read_parquet(demo_dir / "truth" / "population_2023.parquet")
    assert frame["DA1110"].median() * 1000 < truth["real_estate"].max()
    assert 100 < frame.loc[frame["DA1110"] > 0, "DA1110"].median() < 2000  # thousands of euros


@pytest.mark.parametrize("source, wave", SURVEY_FILES)
def test_calibrated_weights_reproduce_register_totals(demo_dir, source, wave):
    catalog = load_catalog()
    src, common = catalog["sources"][source], catalog["common_variables"]
    survey = harmonise(read_raw(source_path(_incoming(demo_dir), src, wave), src), src, common)
    reg_src = catalog["sources"]["register"]
    register = harmonise(read_raw(source_path(_incoming(demo_dir), reg_src, wave), reg_src), reg_src, common)
    if source == "lfs":
        register = register[register["age"].between(15, 74)]
    estimated = survey.groupby("municipality")["weight"].sum()
    actual = register.groupby("municipality").size()
    assert set(estimated.index) == set(MUNICIPALITY_NAMES)
    rel = (estimated.reindex(actual.index) / actual - 1).abs()
    assert rel.max() < 0.01, rel.sort_values().tail()
    assert abs(survey["weight"].sum() / len(register) - 1) < 0.01
    # the weights are household weights: equal within a household
    assert (survey.groupby("household_id")["weight"].nunique() == 1).all()


@pytest.mark.parametrize("source, wave", SURVEY_FILES)
def test_whole_households_are_sampled(demo_dir, source, wave):
    links = pd.read_parquet(demo_dir / "truth" / "samples" / f"{source}_{wave}.parquet")
    truth = pd.read_parquet(demo_dir / "truth" / f"population_{wave}.parquet")
    in_scope = truth["age"].between(15, 74) if source == "lfs" else pd.Series(True, index=truth.index)
    members = truth[in_scope].groupby("household_id").size()
    sampled = links.groupby("household_id").size()
    assert (sampled == members.reindex(sampled.index)).all()
    assert links["person_id"].is_unique and links["survey_person_id"].is_unique
    # one survey household per register household, renumbered (anonymous ids)
    assert (links.groupby("survey_household_id")["household_id"].nunique() == 1).all()
    assert not links["household_id"].is_monotonic_increasing or len(sampled) < 3


def test_transport_spending_has_exact_zeros(demo_dir):
    for wave in (2022, 2024):
        hbs = pd.read_stata(_incoming(demo_dir) / "hbs" / f"hbs_{wave}.dta", convert_categoricals=False)
        households = hbs.drop_duplicates("numhh")
        transport = households.loc[households["transp_m"] != -9, "transp_m"]
        assert 0.05 < (transport == 0).mean() < 0.6
        for col in ("food_m", "housing_m", "energy_m"):
            assert (households.loc[households[col] != -9, col] > 0).all()
    truth = pd.read_parquet(demo_dir / "truth" / "population_2022.parquet")
    assert (truth["spend_transport"] == 0).mean() > 0.05


def test_item_nonresponse_and_not_applicable_codes(demo_dir):
    inc = _incoming(demo_dir)
    silc = pd.concat(pd.read_csv(inc / "silc" / f"silc_{w}.csv", sep=";", decimal=",", encoding="latin-1") for w in WAVES)
    for col, (lo, hi) in {"inc_work": (0.01, 0.1), "health": (0.003, 0.06), "deprivation": (0.005, 0.08)}.items():
        assert lo < silc[col].isna().mean() < hi, col
    assert (silc["rent_month"] == -8).any()
    hbs = pd.read_stata(inc / "hbs" / "hbs_2022.dta", convert_categoricals=False)
    assert ((hbs[["food_m", "housing_m", "energy_m", "transp_m", "inc_lab"]] == -9).sum() > 0).sum() >= 2
    lfs = pd.concat(pyreadstat.read_sav(str(inc / "lfs" / f"lfs_{w}.sav"), user_missing=True)[0] for w in WAVES)
    assert ((lfs[["PAYMONTH", "HOURS", "ISCO", "CONTRACT"]] == -9).mean() < 0.1).all()
    assert (lfs["PAYMONTH"] == -9).any() and (lfs["HOURS"] == -8).any()
    hfcs = pd.read_parquet(inc / "hfcs" / "hfcs_2023.parquet")
    assert hfcs[["PG0110", "HD1110"]].isna().any().all()


def test_survey_income_is_a_noisy_measure_of_the_register(demo_dir):
    wave = 2023
    silc = pd.read_csv(_incoming(demo_dir) / "silc" / f"silc_{wave}.csv", sep=";", decimal=",", encoding="latin-1")
    links = pd.read_parquet(demo_dir / "truth" / "samples" / f"silc_{wave}.parquet")
    truth = pd.read_parquet(demo_dir / "truth" / f"population_{wave}.parquet").set_index("person_id")
    true = truth.loc[links.set_index("survey_person_id").loc[silc["pid"], "person_id"], "labour_income"].to_numpy()
    reported = silc["inc_work"].to_numpy()
    ok = ~np.isnan(reported)
    assert ((reported[ok] == 0) == (true[ok] == 0)).all()
    pos = ok & (true > 0)
    assert np.corrcoef(np.log(reported[pos]), np.log(true[pos]))[0, 1] > 0.9
    assert not np.allclose(reported[pos], true[pos], rtol=0.01)


# --- design and calibration on a population in memory ---------------------------------


@pytest.fixture(scope="module")
def population():
    pop = generate_population(11, 40_000)
    return pop, generate_incomes(pop, 11, 2022, 0)


def test_full_raking_margins_at_realistic_size(population):
    pop, inc = population
    design = SURVEYS[0]  # silc
    sample = draw_sample(design, pop, inc, 11, 2022)
    munic = pop.hh_munic[pop.hh]
    group = np.searchsorted([0, 15, 30, 45, 65], inc.age, side="right") - 1
    cell = pop.sex * 5 + group
    est = np.bincount(cell[sample.persons], weights=sample.weight, minlength=10)
    assert np.allclose(est, np.bincount(cell, minlength=10), rtol=1e-6)
    est = np.bincount(munic[sample.persons], weights=sample.weight, minlength=19)
    assert np.allclose(est, np.bincount(munic, minlength=19), rtol=1e-6)
    # calibration moves the design weights, but not wildly
    g = sample.weight / sample.design_weight
    assert g.std() > 1e-3 and g.min() >= 0.1 and g.max() <= 10


def test_design_oversamples_small_municipalities_and_wealthy_households(population):
    pop, inc = population
    silc = draw_sample(SURVEYS[0], pop, inc, 11, 2022)
    munic = pop.hh_munic[pop.hh][silc.persons]
    largest, smallest = 0, 18  # Aubeval has the most households, Saulnoy the fewest
    assert silc.design_weight[munic == smallest].mean() < 0.6 * silc.design_weight[munic == largest].mean()
    hfcs = draw_sample(SURVEYS[3], pop, inc, 11, 2023)
    prop = pop.hh_sum(inc.property_income)[pop.hh][hfcs.persons]
    assert hfcs.inclusion_prob[prop > 0].mean() > 1.5 * hfcs.inclusion_prob[prop == 0].mean()


def test_rake_hits_overlapping_margins():
    rng = np.random.default_rng(0)
    x = np.zeros((200, 5))
    x[np.arange(200), rng.integers(0, 2, 200)] = 1  # margin 1: two cells
    x[np.arange(200), 2 + rng.integers(0, 3, 200)] = 1  # margin 2: three cells
    d = rng.uniform(5, 15, 200)
    totals = np.array([1200.0, 800.0, 500.0, 700.0, 800.0])
    w, ok = rake(d, x, totals)
    assert ok and np.allclose(x.T @ w, totals) and (w > 0).all()


def test_calibrate_falls_back_to_coarser_margins():
    # three persons, all female aged 20-40: sex x age totals with males cannot be met
    d = np.array([10.0, 10.0, 10.0])
    row_hh = np.array([0, 1, 2])
    munic = np.zeros(3, dtype=np.int64)
    sex = np.zeros(3, dtype=np.int64)
    age = np.array([20, 30, 40])
    population = (np.zeros(50, dtype=np.int64), np.r_[np.zeros(25), np.ones(25)].astype(np.int64), np.full(50, 30))
    w, level = calibrate(d, row_hh, munic, sex, age, population)
    assert level == 3 and np.isclose(w.sum(), 50)
