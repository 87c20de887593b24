import pandas as pd
import pytest

from synth_assets.catalog import load_catalog
from synth_assets.harmonise import HarmonisationError, harmonise_table, out_of_range
from synth_assets_tests.ingest.test_readers import RAW


@pytest.fixture
def catalog(mini_catalog_path):
    return load_catalog(mini_catalog_path)


def test_renames_codes_and_missing_values(catalog):
    table = harmonise_table(RAW, catalog, "living", file="living_2023.csv")
    assert list(table.columns) == list(catalog.sources["living"].variables)
    assert table["sex"].tolist() == ["female", "male", "female"]
    assert list(table["sex"].cat.categories) == ["female", "male"]
    assert table["health"].isna().tolist() == [False, False, True]  # -9 is missing
    assert table["rent"].tolist()[1] == -8  # special value kept as is
    assert str(table["age"].dtype) == "Int64"


def test_unknown_code_names_file_column_and_value(catalog):
    raw = RAW.assign(sex=["F", "X", "F"])
    with pytest.raises(HarmonisationError) as err:
        harmonise_table(raw, catalog, "living", file="living_2024.csv")
    message = str(err.value)
    assert "living_2024.csv" in message and "column 'sex'" in message and "'X' (1 rows)" in message


def test_decimal_comma_strings_and_bad_numbers(catalog):
    ok = harmonise_table(RAW.assign(inc=["1200,5", "0", ""]), catalog, "living")
    assert ok["labour_income"].iloc[0] == pytest.approx(1200.5)
    assert pd.isna(ok["labour_income"].iloc[2])
    with pytest.raises(HarmonisationError, match=r"column 'inc' .*not a number: 'abc'"):
        harmonise_table(RAW.assign(inc=["1200,5", "abc", "0"]), catalog, "living")


def test_scale_converts_units_but_not_special_codes(catalog):
    source = catalog.sources["living"]
    rent = source.variables["rent"].model_copy(update={"scale": 1000.0})
    variables = {**source.variables, "rent": rent}
    scaled = catalog.model_copy(
        update={"sources": {**catalog.sources, "living": source.model_copy(update={"variables": variables})}}
    )
    table = harmonise_table(RAW, scaled, "living")
    assert table["rent"].tolist() == [550250.0, -8.0, 300000.0]


def test_value_labels_fallback(catalog):
    raw = RAW.assign(sex=[1, 2, 1])
    labels = {"sex": {1: "F", 2: "M"}}
    table = harmonise_table(raw, catalog, "living", value_labels=labels)
    assert table["sex"].tolist() == ["female", "male", "female"]


def test_out_of_range_counts_exempt_special_values(catalog):
    table = harmonise_table(RAW.assign(age=[34, 8, 140]), catalog, "living", check_ranges=False)
    assert out_of_range(catalog, "living", table) == {"age": 1}


def test_out_of_range_value_is_refused_naming_file_column_value_and_row(catalog):
    with pytest.raises(HarmonisationError) as err:
        harmonise_table(RAW.assign(age=[34, 8, 140]), catalog, "living", file="living_2023.csv")
    message = str(err.value)
    assert "living_2023.csv" in message and "column 'age'" in message
    assert "140 (row 3)" in message and "[0, 110]" in message
    # a part of the file (the harmonised asset's row group): its rows named in the file
    with pytest.raises(HarmonisationError, match=r"140 \(row 203\)"):
        harmonise_table(RAW.assign(age=[34, 8, 140]), catalog, "living", file="living_2023.csv", first_row=200)


def test_infinite_survey_value_is_refused_at_harmonisation(catalog):
    # Should a file reach harmonisation without the ingest check, inf is still refused.
    raw = RAW.assign(inc=[1200.5, float("inf"), 0.0])
    with pytest.raises(HarmonisationError) as err:
        harmonise_table(raw, catalog, "living", file="living_2023.csv")
    message = str(err.value)
    assert "living_2023.csv" in message and "column 'inc'" in message and "inf (row 2)" in message


def test_special_codes_are_not_out_of_range(catalog):
    table = harmonise_table(RAW, catalog, "living")  # rent -8 is a special code below min 0
    assert table["rent"].tolist()[1] == -8
