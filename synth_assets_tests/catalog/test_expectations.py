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


def test_a_table_validated_by_chunks_gets_the_verdict_of_the_whole_table(catalog, tmp_path):
    """The fictitious dataset's suite, a row group at a time in batches: same verdict, same failures
    (unexpected values added up over batches, a rule's broken rows named by their row in the table)."""
    import numpy as np
    import pandas as pd

    from synth_assets.catalog.expectations import validate_chunks
    from synth_assets.common.frames import ParquetTable, write_rows

    one = harmonise_table(RAW, catalog, "living").drop(columns=["person_id", "household_id", "weight"])
    table = pd.concat([one] * 12, ignore_index=True)  # 36 rows
    spec = fictitious_suite_spec(catalog, table)
    write_rows(table, tmp_path / "good.parquet", row_group_rows=4)
    assert validate_chunks(ParquetTable(tmp_path / "good.parquet").frames(), spec, batch_rows=10).success
    bad = table.copy()
    bad["age"] = bad["age"].astype("float64")
    bad.loc[[2, 17, 33], "age"] = 140.0  # out of range in three batches
    spec["rules"] = ["age < 100"]
    write_rows(bad, tmp_path / "bad.parquet", row_group_rows=4)
    whole = validate_table(bad, spec)
    chunked = validate_chunks(ParquetTable(tmp_path / "bad.parquet").frames(), spec, batch_rows=10)
    assert not whole.success and not chunked.success
    assert chunked.describe() == whole.describe()
    assert chunked.n_expectations == whole.n_expectations
    text = chunked.describe()
    assert "column 'age': 3 unexpected values (e.g. 140.0, 140.0, 140.0)" in text  # column and value
    assert "rule `age < 100` broken by 3 records (e.g. rows [2, 17, 33])" in text  # rows of the whole table
    empty = validate_chunks([bad.iloc[:0]], spec)
    assert not empty.success and "expect_table_row_count_to_be_between failed: observed 0" in empty.describe()
    with pytest.raises(ValueError, match="not judged row by row"):
        validate_chunks([bad], {**spec, "unique": ["age"]})
    second = bad.iloc[18:]
    assert validate_chunks([bad.iloc[:18], second], spec, batch_rows=1).describe() == whole.describe()
    assert np.array_equal(second.index, np.arange(18, 36))  # the caller's frames keep their index
