"""A second catalog, unlike the demo's, through the whole pipeline: another country's regions and
codes, and a living-conditions file holding person and household variables (``level``) with a
universe per variable. Household variables must be identical within every household, matched
and released."""

from __future__ import annotations

import textwrap
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import load_catalog
from synth_assets.common.layout import DataLayout
from synth_assets.defs.definitions import build_definitions
from synth_assets.matching.sources import households_disagreeing
from synth_assets.operations.lineage import collect_lineage
from synth_assets.operations.runner import run_pipeline
from synth_assets.operations.settings import parse_assignments, release_options, release_run_config

pytestmark = pytest.mark.slow

REGIONS = {"PT11": "norte", "PT16": "centro", "PT17": "lisboa", "PT18": "alentejo", "PT15": "algarve"}
TENURE = {1: "proprietario", 2: "arrendatario", 3: "cedido"}
STATUS = {1: "empregado", 2: "desempregado", 3: "inactivo", -2: "menor"}

CATALOG = textwrap.dedent("""
    version: 1
    common_variables:
      regiao: {type: category, categories: [norte, centro, lisboa, alentejo, algarve]}
      idade: {type: integer, min: 0, max: 105, unit: anos}
      sexo: {type: category, categories: [mulher, homem]}
      dimensao: {type: integer, min: 1, max: 8}
      parentesco: {type: category, categories: [head, conjuge, filho, outro]}
      rendimento_trabalho: {type: number, min: 0, unit: EUR por ano}
    sources:
      registo:
        kind: register
        path: "registo/registo_{wave}.parquet"
        format: parquet
        variables:
          id_pessoa: {column: NIP, role: id, type: integer}
          id_agregado: {column: NIA, role: household_id, type: integer}
          regiao: {column: NUTS2, role: common, codes: %(regions)s}
          idade: {column: IDADE, role: common}
          sexo: {column: SEXO, role: common, codes: {F: mulher, M: homem}}
          dimensao: {column: DIM, role: common}
          parentesco: {column: PAR, role: common, codes: {1: head, 2: conjuge, 3: filho, 4: outro}}
          rendimento_trabalho: {column: RT, role: common}
      icor:
        kind: survey
        description: "living conditions, one row per person, household variables repeated on every member"
        path: "icor/icor_{wave}.csv"
        format: csv
        read_options: {sep: ";"}
        unit: person
        variables:
          id_pessoa: {column: PB030, role: id, type: integer}
          id_agregado: {column: HB030, role: household_id, type: integer}
          peso: {column: PB040, role: weight, type: number, min: 0}
          regiao: {column: DB040, role: common, codes: %(regions)s}
          idade: {column: RX010, role: common}
          sexo: {column: RB090, role: common, codes: {F: mulher, M: homem}}
          dimensao: {column: HX040, role: common}
          parentesco: {column: RB220, role: common, codes: {1: head, 2: conjuge, 3: filho, 4: outro}}
          rendimento_trabalho: {column: PY010, role: common}
          rendimento_agregado: {column: HY020, role: specific, type: number, min: 0, level: household,
                                description: "disposable household income", unit: EUR por ano}
          regime: {column: HH021, role: specific, type: category, level: household,
                   categories: [proprietario, arrendatario, cedido], codes: %(tenure)s}
          condicao: {column: PL031, role: specific, type: category,
                     categories: [empregado, desempregado, inactivo, menor], codes: %(status)s,
                     universe: "idade >= 16", not_applicable: menor}
          pensao: {column: PY100, role: specific, type: number, min: 0, special_values: [-2],
                   universe: "idade >= 16", not_applicable: -2}
    release:
      quasi_identifiers: [regiao, idade, sexo, dimensao]
      sensitive: [rendimento_agregado]
      disclosure: {k: 3, strata: [regiao, dimensao]}
      rules:
        - "not (parentesco == 'head' and idade < 18)"
        - "not (idade < 16 and rendimento_trabalho > 0)"
        - "not (regime == 'proprietario' and rendimento_agregado < 0)"
      matching:
        icor: {method: nnd_hotdeck}
      calibration:
        margins:
          - {unit: person, variables: [sexo, idade]}
          - {unit: household, variables: [regiao, dimensao]}
        bands: {idade: [0, 16, 35, 65]}
        min_cell: 10
""") % {"regions": REGIONS, "tenure": TENURE, "status": STATUS}


def _population(rng: np.random.Generator, households: int) -> pd.DataFrame:
    """Persons in households: region, size, a head with partner and children, labour income."""
    sizes = rng.choice([1, 2, 3, 4, 5], households, p=[0.25, 0.3, 0.2, 0.18, 0.07])
    hh = np.repeat(np.arange(1, households + 1), sizes)
    member = np.concatenate([np.arange(s) for s in sizes])
    size = np.repeat(sizes, sizes)
    relation = np.where(member == 0, 1, np.where((member == 1) & (size >= 2) & (rng.random(len(hh)) < 0.8), 2,
                                                  np.where(member >= 1, 3, 4)))
    head_age = np.repeat(rng.integers(20, 90, households), sizes)
    age = np.where(relation == 1, head_age, np.where(relation == 2, np.clip(head_age + rng.integers(-5, 6, len(hh)), 18, 105),
                                                       np.clip(head_age - rng.integers(20, 40, len(hh)), 0, 105)))
    relation = np.where((relation == 3) & (age >= head_age - 15), 4, relation)
    working = (age >= 18) & (age < 66) & (rng.random(len(hh)) < 0.7)
    income = np.where(working, rng.lognormal(9.8, 0.5, len(hh)).round(0), 0.0)
    region = np.repeat(rng.choice(list(REGIONS), households, p=[0.35, 0.22, 0.28, 0.07, 0.08]), sizes)
    return pd.DataFrame({"NIA": hh, "NIP": np.arange(1, len(hh) + 1), "NUTS2": region, "IDADE": age,
                         "SEXO": rng.choice(["F", "M"], len(hh)), "DIM": size, "PAR": relation, "RT": income})


def _survey(rng: np.random.Generator, population: pd.DataFrame, households: int) -> pd.DataFrame:
    """A household sample: household income and tenure repeated on every member, status and pension per person."""
    chosen = rng.choice(population["NIA"].unique(), households, replace=False)
    frame = population[population["NIA"].isin(chosen)].copy()
    earned = frame.groupby("NIA")["RT"].transform("sum")
    old = frame["IDADE"] >= 66
    pension = np.where(old, rng.lognormal(9.3, 0.4, len(frame)).round(0), 0.0)
    frame["PY100"] = np.where(frame["IDADE"] >= 16, pension, -2.0)
    household_pension = pd.Series(np.where(old, pension, 0.0), index=frame.index).groupby(frame["NIA"]).transform("sum")
    frame["HY020"] = (0.8 * (earned + household_pension) + frame["NIA"].map(
        pd.Series(rng.uniform(0, 3000, len(chosen)).round(0), index=chosen))).round(0)
    owner_p = np.clip(0.3 + frame.groupby("NIA")["IDADE"].transform("max") / 150, 0, 0.9)
    tenure = pd.Series(np.where(rng.random(len(frame)) < owner_p, 1, rng.choice([2, 3], len(frame), p=[0.85, 0.15])),
                       index=frame.index)
    frame["HH021"] = frame.groupby("NIA")[[]].ngroup().map(tenure.groupby(frame["NIA"]).first().reset_index(drop=True))
    frame["PL031"] = np.where(frame["IDADE"] < 16, -2, np.where(frame["RT"] > 0, 1, np.where(old, 3,
                              rng.choice([2, 3], len(frame)))))
    frame["PB040"] = len(population["NIA"].unique()) / households
    return frame.rename(columns={"NIA": "HB030", "NIP": "PB030", "NUTS2": "DB040", "IDADE": "RX010",
                                 "SEXO": "RB090", "DIM": "HX040", "PAR": "RB220", "RT": "PY010"})


def write_second_population(root: Path, *, households: int = 700, seed: int = 7) -> Path:
    """The second country's register and survey for wave 2024, and its catalog, under ``root``."""
    rng = np.random.default_rng(seed)
    population = _population(rng, households)
    (root / "incoming" / "registo").mkdir(parents=True)
    (root / "incoming" / "icor").mkdir(parents=True)
    population.to_parquet(root / "incoming" / "registo" / "registo_2024.parquet", index=False)
    _survey(rng, population, households // 3).to_csv(root / "incoming" / "icor" / "icor_2024.csv", sep=";",
                                                      index=False)
    (root / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    return root


def test_the_survey_file_is_mixed_level_as_delivered(tmp_path):
    root = write_second_population(tmp_path / "data")
    survey = pd.read_csv(root / "incoming" / "icor" / "icor_2024.csv", sep=";")
    multi = survey[survey["HX040"] > 1]
    assert (multi.groupby("HB030")[["HY020", "HH021"]].nunique() == 1).all().all()
    assert multi.groupby("HB030")["PL031"].nunique().max() > 1
    catalog = load_catalog(root / "catalog.yaml")
    assert catalog.household_variables() == ["rendimento_agregado", "regime"]


def test_second_catalog_runs_through_the_whole_pipeline(tmp_path):
    root = write_second_population(tmp_path / "data")
    layout = DataLayout(root)
    # the run's settings, as `synth-assets run --set` reads them: the model's and the filters' options
    settings = parse_assignments(["model.family=cart", "model.seed=0", "fictitious.replicates=2",
                                  "model.params.min_leaf=12", "release.disclosure.k=4",
                                  "release.enforcement.max_rounds=16"])
    options = release_options(settings)
    with dg.instance_for_test() as instance:
        outcome = run_pipeline(build_definitions(root, release_options=options),
                               load_catalog(layout.catalog).with_release_options(options), layout, instance,
                               release_config=release_run_config(settings), echo=lambda _: None)
        assert outcome.success, [r.failures for r in outcome.runs]
        evaluations = _check_evaluations(instance)
        checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in evaluations}
        event = instance.get_latest_materialization_event(dg.AssetKey("fictitious_dataset"))
        assert event is not None and event.asset_materialization is not None
        metadata = event.asset_materialization.metadata
        model_event = instance.get_latest_materialization_event(dg.AssetKey("population_model"))
        assert model_event is not None and model_event.asset_materialization is not None
        parameters = model_event.asset_materialization.metadata["parameters"].value
        # the audit re-runs the copy test with the settings the release was drawn with
        lineage = collect_lineage(instance, build_definitions(root), load_catalog(layout.catalog), layout,
                                  outcome.release.name)
    assert lineage.copy_test["passed"], lineage.copy_test
    assert {r["test"] for r in lineage.copy_test["references"].values()} == {"disclosure filters (k = 4)"}
    # the settings reached the filters, their enforcement, the gate's copy check and the model
    disclosure = metadata["disclosure"].value
    assert (disclosure["k"], disclosure["max_rounds"], disclosure["member_rounds"]) == (4, 16, 5), disclosure
    copy_check = next(e for e in evaluations if e.check_name == "no_real_record_copied")
    assert copy_check.metadata["k"].value == 4
    assert parameters["household_params"]["min_leaf"] == 12, parameters
    assert parameters["person_params"]["min_leaf"] == 12, parameters
    # what the filters and rules removed is reported per region and household size
    removed = metadata["removed_by_stratum"].value
    assert removed == "nothing removed" or ("regiao = " in removed and "dimensao = " in removed), removed
    assert checks[("matched_dataset", "household_variables_constant")]
    assert checks[("fictitious_dataset", "household_variables_constant")]
    household = ["rendimento_agregado", "regime"]
    matched = pd.read_parquet(root / "warehouse" / "matched_dataset" / "2024.parquet")
    assert households_disagreeing(matched, "id_agregado", household) == {}
    assert (matched.loc[matched["idade"] < 16, "condicao"] == "menor").all()
    assert (matched.loc[matched["idade"] < 16, "pensao"] == -2).all()
    assert matched.loc[matched["idade"] >= 16, "condicao"].isin(["empregado", "desempregado", "inactivo"]).all()
    for r in (1, 2):
        released = pd.read_parquet(outcome.release / f"fictitious_population_r{r}.parquet")
        assert households_disagreeing(released, "id_agregado", household) == {}
        assert set(released["regiao"].astype(str)) <= set(REGIONS.values())
        assert (released.loc[released["idade"] < 16, "condicao"] == "menor").all()
        assert (released.loc[released["idade"] < 16, "pensao"] == -2).all()


def _check_evaluations(instance: dg.DagsterInstance):
    records = instance.get_event_records(dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    return [r.event_log_entry.dagster_event.event_specific_data for r in records]
