import pytest

from synth_assets.catalog import load_catalog
from synth_assets.catalog.expectations import (
    fictitious_suite_spec,
    harmonised_suite_spec,
    raw_suite_spec,
    validate_table,
)
from synth_assets.harmonise import harmonise_table
from synth_assets_tests.ingest.test_readers import RAW


@pytest.fixture
def catalog(mini_catalog_path):
    return load_catalog(mini_catalog_path)


def test_raw_suite_names_duplicated_id_and_negative_weight(catalog):
    assert validate_table(RAW, raw_suite_spec(catalog, "living")).success
    bad = RAW.assign(pid=[1, 1, 3], w=[1.0, -2.0, 3.0])
    report = validate_table(bad, raw_suite_spec(catalog, "living"))
    text = report.describe()
    assert not report.success
    assert "expect_column_values_to_be_unique failed on column 'pid'" in text
    assert "column 'w'" in text


def test_harmonised_suite_exempts_special_codes_but_not_out_of_range(catalog):
    table = harmonise_table(RAW, catalog, "living")
    assert table["rent"].eq(-8).any()
    assert validate_table(table, harmonised_suite_spec(catalog, "living")).success
    table.loc[0, "age"] = 140
    report = validate_table(table, harmonised_suite_spec(catalog, "living"))
    assert not report.success and "column 'age'" in report.describe()


def test_fictitious_suite_reports_broken_rules_with_counts(catalog):
    table = harmonise_table(RAW, catalog, "living").drop(columns=["person_id", "household_id", "weight"])
    spec = fictitious_suite_spec(catalog, table)
    assert validate_table(table, spec).success
    spec["rules"] = ["age >= 18"]
    report = validate_table(table, spec)
    assert not report.success
    assert "rule `age >= 18` broken by 1 records" in report.describe()
