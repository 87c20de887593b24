"""data/catalog.yaml against the generated files (plain YAML + pandas, no project loader)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from .conftest import WAVES
from .plain_catalog import CATALOG, harmonise, load_catalog, read_raw, source_path

ROLES = {"id", "household_id", "weight", "common", "specific"}
TYPES = {"category", "integer", "number", "boolean"}
FORMATS = {"csv", "parquet", "stata", "spss", "sas"}
SOURCES = ["register", "silc", "hbs", "lfs", "hfcs", "tus", "mobility"]
PERSON_SOURCES = SOURCES[:5]  # one row per person; tus and mobility deliver episodes and trips
RECORD_SOURCES = SOURCES[5:]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _delivered(demo_dir, source: dict) -> list[tuple[int, object]]:
    out = []
    for wave in WAVES:
        path = source_path(demo_dir / "incoming", source, wave)
        if path.exists():
            out.append((wave, path))
    return out


def test_catalog_is_valid_yaml_with_the_agreed_structure(catalog):
    assert CATALOG.is_file()
    assert catalog["version"] == 1
    assert set(catalog) == {"version", "common_variables", "sources", "release"}
    assert list(catalog["sources"]) == SOURCES
    assert [n for n, s in catalog["sources"].items() if s["kind"] == "register"] == ["register"]
    common = catalog["common_variables"]
    for name, spec in common.items():
        assert spec["type"] in TYPES, name
        if spec["type"] == "category":
            assert spec["categories"] and len(set(spec["categories"])) == len(spec["categories"])
    assert len(common["municipality"]["categories"]) == 19
    for name, src in catalog["sources"].items():
        assert src["kind"] in ("register", "survey")
        assert src["format"] in FORMATS and "{wave}" in src["path"]
        assert src["unit"] in ("person", "household")
        assert isinstance(src["read_options"], dict) and src["description"]
        roles = [v["role"] for v in src["variables"].values()]
        assert set(roles) <= ROLES
        assert roles.count("id") == 1 and roles.count("household_id") == 1
        assert roles.count("weight") == (0 if src["kind"] == "register" else 1)
        for var, spec in src["variables"].items():
            assert isinstance(spec.get("column"), str) or (spec["role"] == "specific" and "aggregate" in spec), (name, var)
            if spec["role"] == "common":
                assert var in common and "type" not in spec and "categories" not in spec, (name, var)
                for value in (spec.get("codes") or {}).values():
                    assert value in common[var]["categories"], (name, var, value)
            if spec["role"] == "specific":
                assert spec["type"] in TYPES, (name, var)
                if spec["type"] == "category":
                    assert set(spec.get("codes", {}).values()) <= set(spec["categories"])
        # every source delivers the whole common schema
        assert {v for v, s in src["variables"].items() if s["role"] == "common"} == set(common), name


@pytest.mark.parametrize("name", SOURCES)
def test_every_named_column_exists_in_every_delivered_wave(demo_dir, catalog, name):
    src = catalog["sources"][name]
    delivered = _delivered(demo_dir, src)
    expected = {"register": 3, "silc": 3, "lfs": 3, "hbs": 2, "hfcs": 1, "tus": 1, "mobility": 2}[name]
    assert len(delivered) == expected
    columns = [spec["column"] for spec in src["variables"].values() if "column" in spec]
    if "records" in src:
        records = src["records"]
        columns += [records["day_id"], records["record_id"], *(v["column"] for v in records["variables"].values())]
    for wave, path in delivered:
        raw = read_raw(path, src)
        missing = [c for c in columns if c not in raw.columns]
        assert not missing, (name, wave, missing)


@pytest.mark.parametrize("name", PERSON_SOURCES)
@pytest.mark.parametrize("labels", [True, False], ids=["labels", "codes"])
def test_harmonised_sources_have_the_common_schema(demo_dir, catalog, name, labels):
    src, common = catalog["sources"][name], catalog["common_variables"]
    for wave, path in _delivered(demo_dir, src):
        frame = harmonise(read_raw(path, src, labels=labels), src, common)  # KeyError on an unmapped code
        for var, spec in src["variables"].items():
            col = frame[var]
            kind = common[var] if spec["role"] == "common" else spec
            if kind.get("type") == "category":
                assert set(col.dropna()) <= set(kind["categories"]), (name, wave, var)
            if kind.get("type") in ("integer", "number"):
                assert pd.api.types.is_numeric_dtype(col), (name, var)
                values = col[~col.isin(spec.get("special_values") or [])].dropna()
                if "min" in kind:
                    assert values.min() >= kind["min"], (name, wave, var)
                if "max" in kind:
                    assert values.max() <= kind["max"], (name, wave, var)
                if kind["type"] == "integer":
                    assert (values == values.round()).all(), (name, var)
        for var in ("municipality", "age", "sex", "citizenship", "household_size", "household_type", "relation"):
            assert frame[var].notna().all(), (name, var)
        assert frame["person_id"].is_unique


@pytest.mark.parametrize("name", ["silc", "hbs", "lfs", "hfcs"])
def test_harmonised_survey_records_match_the_truth(demo_dir, catalog, name):
    """Harmonising a survey with the catalog recovers the truth of its sampled persons."""
    src, common = catalog["sources"][name], catalog["common_variables"]
    for wave, path in _delivered(demo_dir, src):
        frame = harmonise(read_raw(path, src), src, common)
        links = pd.read_parquet(demo_dir / "truth" / "samples" / f"{name}_{wave}.parquet")
        truth = pd.read_parquet(demo_dir / "truth" / f"population_{wave}.parquet").set_index("person_id")
        ids = links.set_index("survey_person_id").loc[frame["person_id"], "person_id"].to_numpy()
        true = truth.loc[ids].reset_index(drop=True)
        weight = links.set_index("survey_person_id").loc[frame["person_id"], "weight"].to_numpy()
        assert np.allclose(frame["weight"].to_numpy(), weight, rtol=1e-4)
        for var, spec in src["variables"].items():
            if spec["role"] in ("id", "household_id", "weight"):
                continue
            got, want = frame[var], true[var]
            ok = got.notna()
            assert ok.mean() > 0.85, (name, var)
            if var == "labour_income":  # survey-measured: noisy, zero when the register says zero
                assert ((got[ok] == 0) == (want[ok] == 0)).all(), (name, wave)
                pos = ok & (want > 0)
                assert np.corrcoef(np.log(got[pos] + 1), np.log(want[pos]))[0, 1] > 0.85, (name, wave)
            elif pd.api.types.is_numeric_dtype(got):
                tol = 10.0 if spec.get("scale") == 1000 else 0.01
                assert np.allclose(got[ok], want[ok].astype(float), atol=tol), (name, wave, var)
            else:
                assert (got[ok].astype(str).to_numpy() == want[ok].astype(str).to_numpy()).all(), (name, wave, var)


def test_register_harmonises_to_the_truth(demo_dir, catalog):
    src, common = catalog["sources"]["register"], catalog["common_variables"]
    for wave, path in _delivered(demo_dir, src):
        frame = harmonise(read_raw(path, src), src, common)
        truth = pd.read_parquet(demo_dir / "truth" / f"population_{wave}.parquet")
        for var in frame.columns:
            assert (frame[var].astype(str).to_numpy() == truth[var].astype(str).to_numpy()).all(), (wave, var)


def test_not_applicable_values_are_the_truth_outside_the_universe(demo_dir, catalog):
    """Persons outside a survey's universe hold the declared value in the population."""
    checked = 0
    for name, src in catalog["sources"].items():
        if not src.get("universe"):
            continue
        for wave in WAVES:
            truth = pd.read_parquet(demo_dir / "truth" / f"population_{wave}.parquet")
            outside = truth.loc[~truth.eval(src["universe"])]
            assert len(outside) > 0, (name, wave)
            for var, spec in src["variables"].items():
                if spec["role"] != "specific":
                    continue
                held = outside[var].astype(str) == str(spec["not_applicable"])
                # The truth lets a few people past the upper age bound work; the rest must agree.
                assert held.mean() > 0.98, (name, wave, var, held.mean())
                checked += 1
    assert checked >= 3


@pytest.mark.parametrize("name", ["silc", "hbs", "hfcs"])
def test_household_variables_are_one_value_per_household_in_the_files(demo_dir, catalog, name):
    """Variables at household level (declared, or of a household source) repeat on every member."""
    src = catalog["sources"][name]
    household = [v for v, s in src["variables"].items()
                 if s["role"] == "specific" and s.get("level", src["unit"]) == "household"]
    assert household, name
    hid = next(v for v, s in src["variables"].items() if s["role"] == "household_id")
    for wave, path in _delivered(demo_dir, src):
        table = harmonise(read_raw(path, src), src, catalog["common_variables"])
        distinct = table.groupby(hid)[household].nunique(dropna=False).max()
        assert (distinct <= 1).all(), (name, wave, distinct[distinct > 1].to_dict())


@pytest.mark.parametrize("name", RECORD_SOURCES)
def test_diaries_and_trips_aggregate_to_the_truth(demo_dir, name):
    """The catalog's aggregates of a record file recover its persons' truth, messy days aside."""
    from synth_assets.catalog import load_catalog as load_project_catalog
    from synth_assets.harmonise import harmonise_table
    from synth_assets.ingest import read_source_file

    from .plain_catalog import CATALOG as PATH

    project = load_project_catalog(PATH)
    source = project.sources[name]
    for wave, path in _delivered(demo_dir, load_catalog()["sources"][name]):
        frame = harmonise_table(read_source_file(path, source).data, project, name, file=path)
        links = pd.read_parquet(demo_dir / "truth" / "samples" / f"{name}_{wave}.parquet")
        truth = pd.read_parquet(demo_dir / "truth" / f"population_{wave}.parquet").set_index("person_id")
        ids = links.set_index("survey_person_id").loc[frame["person_id"], "person_id"].to_numpy()
        true = truth.loc[ids].reset_index(drop=True)
        report = frame.attrs["records"]
        assert 0 < report["persons_unknown"] < 0.15 * len(frame), report  # the mess is there, and rare
        for var in source.specific:
            known = frame[var].notna()
            assert known.mean() > 0.85, (name, var)
            # diaries are kept in 10-minute slots: an episode boundary moves by at most one
            tolerance = 20.0 if var.startswith("minutes_") else 1e-3
            assert np.allclose(frame.loc[known, var], true.loc[known, var].astype(float), atol=tolerance), (name, var)
