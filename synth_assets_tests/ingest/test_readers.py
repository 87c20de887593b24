import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import load_catalog
from synth_assets.ingest import IngestError, delivered_rows, discover_waves, read_source_batches, read_source_file

RAW = pd.DataFrame(
    {
        "pid": [1, 2, 3],
        "hid": [10, 10, 11],
        "w": [1.5, 2.25, 3.0],
        "mun": ["north", "south", "north"],
        "age": [34, 8, 70],
        "sex": ["F", "M", "F"],
        "hsize": [2, 2, 1],
        "rel": ["head", "child", "head"],
        "inc": [1200.5, 0.0, 0.0],
        "health": ["good", "fair", "-9"],
        "rent": [550.25, -8, 300.0],
    }
)


@pytest.fixture
def survey(mini_catalog_path):
    return load_catalog(mini_catalog_path).sources["living"]


def test_csv_with_semicolons_and_decimal_commas(tmp_path, survey):
    path = tmp_path / "living_2023.csv"
    RAW.to_csv(path, sep=";", decimal=",", index=False)
    assert "550,25" in path.read_text()
    table = read_source_file(path, survey)
    assert table.data["w"].tolist() == [1.5, 2.25, 3.0]
    assert table.data["rent"].iloc[0] == pytest.approx(550.25)


@pytest.mark.parametrize("fmt,suffix", [("stata", ".dta"), ("spss", ".sav"), ("sas", ".xpt"), ("parquet", ".parquet")])
def test_binary_formats_keep_values_and_labels(tmp_path, survey, fmt, suffix):
    import pyreadstat

    data = RAW.assign(sex=np.where(RAW["sex"] == "F", 1, 2), health=[1, 2, -9])
    path = tmp_path / f"f{suffix}"
    labels = {"sex": {1: "female", 2: "male"}}
    if fmt == "stata":
        pyreadstat.write_dta(data, str(path), variable_value_labels=labels)
    elif fmt == "spss":
        pyreadstat.write_sav(data, str(path), variable_value_labels=labels)
    elif fmt == "sas":
        pyreadstat.write_xport(data, str(path))
    else:
        data.to_parquet(path)
    source = survey.model_copy(update={"format": fmt, "read_options": {}})
    table = read_source_file(path, source)
    assert table.data["sex"].tolist() == [1, 2, 1]  # codes, not labels
    assert table.data["rent"].tolist() == pytest.approx([550.25, -8, 300.0])
    if fmt in ("stata", "spss"):
        assert table.value_labels["sex"] == {1: "female", 2: "male"}


@pytest.mark.parametrize("fmt,suffix", [("csv", ".csv"), ("stata", ".dta"), ("spss", ".sav"), ("sas", ".xpt"),
                                        ("parquet", ".parquet")])
def test_delivered_rows_counts_the_records_without_reading_them(tmp_path, survey, fmt, suffix):
    """What ``synth-assets run`` sizes a run by: the records ``read_source_file`` would read."""
    import pyreadstat

    data = pd.concat([RAW.assign(sex=np.where(RAW["sex"] == "F", 1, 2), health=[1, 2, -9])] * 7, ignore_index=True)
    path = tmp_path / f"f{suffix}"
    {"csv": lambda: data.to_csv(path, index=False), "stata": lambda: pyreadstat.write_dta(data, str(path)),
     "spss": lambda: pyreadstat.write_sav(data, str(path)), "sas": lambda: pyreadstat.write_xport(data, str(path)),
     "parquet": lambda: data.to_parquet(path)}[fmt]()
    source = survey.model_copy(update={"format": fmt, "read_options": {}})
    rows = delivered_rows(path, source)
    assert len(read_source_file(path, source).data) == 21
    assert rows == (None if fmt == "sas" else 21)  # a SAS transport file's header does not say
    if fmt == "csv":  # a last line without its newline still counts
        path.write_bytes(path.read_bytes().rstrip(b"\n"))
        assert delivered_rows(path, source) == len(read_source_file(path, source).data) == 21
        path.write_text("pid,hid\n")
        assert delivered_rows(path, source) == 0
    corrupt = tmp_path / f"corrupt{suffix}"
    corrupt.write_bytes(b"not a file of that format")
    if fmt != "csv":  # any bytes are lines of text
        with pytest.raises(IngestError, match=f"corrupt{suffix}: cannot be read as {fmt}"):
            delivered_rows(corrupt, source)


def test_missing_column_error_names_file_and_column(tmp_path, survey):
    path = tmp_path / "living_2023.csv"
    RAW.drop(columns=["hsize"]).to_csv(path, sep=";", decimal=",", index=False)
    with pytest.raises(IngestError) as err:
        read_source_file(path, survey)
    assert str(path) in str(err.value)
    assert "'hsize' (for household_size)" in str(err.value)


def test_empty_and_corrupt_files(tmp_path, survey):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(IngestError, match="file is empty"):
        read_source_file(empty, survey)
    corrupt = tmp_path / "corrupt.dta"
    corrupt.write_bytes(b"not a stata file at all")
    with pytest.raises(IngestError, match="cannot be read as stata"):
        read_source_file(corrupt, survey.model_copy(update={"format": "stata", "read_options": {}}))
    header_only = tmp_path / "header.csv"
    header_only.write_text(";".join(RAW.columns) + "\n")
    with pytest.raises(IngestError, match="no rows"):
        read_source_file(header_only, survey)


def test_discover_waves(tmp_path, survey):
    folder = tmp_path / "living"
    folder.mkdir()
    for wave in ("2024", "2022"):
        (folder / f"living_{wave}.csv").write_text("x")
    (folder / "notes.txt").write_text("x")
    assert list(discover_waves(tmp_path, survey)) == ["2022", "2024"]
    assert discover_waves(tmp_path / "nowhere", survey) == {}


@pytest.fixture
def register(mini_catalog_path):
    return load_catalog(mini_catalog_path).sources["register"]


def _register_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"PERS_ID": [1, 2, 3, 4], "HH_ID": [1, 1, 2, 3], "MUNIC": [1, 2, 1, 2], "AGE": [30, 40, 50, 60],
         "SEX": [1, 2, 1, 2], "HH_SIZE": [2, 2, 1, 1], "REL": [1, 2, 1, 1], "INC": [1000.0, 2000.0, 3000.0, 0.0]}
    )


def test_register_income_inf_is_refused_at_ingest(tmp_path, register):
    path = tmp_path / "register_2023.parquet"
    _register_frame().assign(INC=[1000.0, float("inf"), 3000.0, float("-inf")]).to_parquet(path)
    with pytest.raises(IngestError) as err:
        read_source_file(path, register)
    message = str(err.value)
    assert str(path) in message and "column 'INC'" in message
    assert "-inf, inf" in message and "2 row(s), first rows 2, 4" in message


def test_register_nan_as_text_is_refused_at_ingest(tmp_path, register):
    path = tmp_path / "register_2023.parquet"
    _register_frame().assign(INC=["1000", "NaN", "3000", "0"]).to_parquet(path)
    with pytest.raises(IngestError, match=r"column 'INC': non-finite value\(s\) NaN in 1 row\(s\), first rows 2"):
        read_source_file(path, register)


def test_survey_inf_in_csv_is_refused_at_ingest(tmp_path, survey):
    path = tmp_path / "living_2023.csv"
    RAW.assign(inc=["1200,5", "inf", "0"]).to_csv(path, sep=";", decimal=",", index=False)
    with pytest.raises(IngestError) as err:
        read_source_file(path, survey)
    message = str(err.value)
    assert str(path) in message and "column 'inc'" in message and "inf in 1 row(s), first rows 2" in message


def test_survey_nan_written_as_text_in_csv_is_refused(tmp_path, survey):
    path = tmp_path / "living_2023.csv"
    RAW.assign(inc=["1200,5", "NaN", ""]).to_csv(path, sep=";", decimal=",", index=False)
    with pytest.raises(IngestError, match=r"column 'inc': non-finite value\(s\) NaN in 1 row"):
        read_source_file(path, survey)


def test_finite_files_and_text_categories_still_read(tmp_path, survey):
    path = tmp_path / "living_2023.csv"
    RAW.assign(health=["good", "nan", "-9"], inc=["1200,5", "", "0"]).to_csv(path, sep=";", decimal=",", index=False)
    table = read_source_file(path, survey)  # 'nan' in a category column is harmonisation's business
    assert table.data["inc"].isna().tolist() == [False, True, False]


def test_misnamed_incoming_files_are_reported(tmp_path, mini_catalog_path):
    from synth_assets.ingest import misnamed_files

    catalog = load_catalog(mini_catalog_path)
    tmp_path = tmp_path / "incoming"
    (tmp_path / "register").mkdir(parents=True)
    (tmp_path / "living").mkdir()
    for name in ("register/register_2024.parquet", "register/register_-2025.parquet", "register/Register_2025.parquet",
                 "living/living_2024.csv", "stray.csv", "register/.register_2026.parquet.part"):
        (tmp_path / name).write_text("x")
    reported = {path.relative_to(tmp_path).as_posix(): why for path, why in misnamed_files(tmp_path, catalog.sources)}
    assert sorted(reported) == ["register/Register_2025.parquet", "register/register_-2025.parquet", "stray.csv"]
    assert "does not match register/register_{wave}.parquet" in reported["register/register_-2025.parquet"]
    assert "in no source's folder" in reported["stray.csv"]
    # ... and the bad name is not a wave.
    assert list(discover_waves(tmp_path, catalog.sources["register"])) == ["2024"]


def test_a_column_new_since_the_previous_delivery_is_refused_unless_declared(tmp_path, survey):
    from synth_assets.ingest import check_schema_drift, describe_schema

    path = tmp_path / "living_2024.csv"
    previous = describe_schema(RAW.assign(year=2023))  # an undeclared column delivered before stays accepted
    RAW.assign(year=2024, bonus=1.0).to_csv(path, sep=";", decimal=",", index=False)
    table = read_source_file(path, survey)

    check_schema_drift(table, survey, "living", None)  # first delivery: nothing to compare with
    with pytest.raises(IngestError) as err:
        check_schema_drift(table, survey, "living", previous, "living_2023.csv")
    assert str(err.value).startswith(f"{path}: new column(s) 'bonus' not in the previous delivery (living_2023.csv)")
    assert "sources.living.ignored_columns" in str(err.value)
    declared = survey.model_copy(update={"ignored_columns": ["bonus"]})
    check_schema_drift(table, declared, "living", previous)


def _stored(batches) -> pd.DataFrame:
    """Batches written out one after another as the raw asset writes them, read back whole."""
    from synth_assets.common.frames import ParquetStack

    stack = ParquetStack()
    for batch in batches:
        stack.append(batch.data)
    return stack.finish().read()


@pytest.mark.parametrize("fmt,suffix", [("csv", ".csv"), ("stata", ".dta"), ("spss", ".sav"), ("sas", ".xpt"),
                                        ("parquet", ".parquet")])
def test_a_file_read_in_batches_is_the_file_read_whole(tmp_path, survey, fmt, suffix):
    """The raw asset reads a wave a batch at a time: joined, the batches are the whole read (values,
    dtypes, value labels), and no batch is larger than asked."""
    import pyreadstat

    data = pd.concat([RAW.assign(sex=np.where(RAW["sex"] == "F", 1, 2), health=[1, 2, -9])] * 9, ignore_index=True)
    data["pid"] = np.arange(len(data))
    path = tmp_path / f"f{suffix}"
    labels = {"sex": {1: "female", 2: "male"}}
    {"csv": lambda: data.to_csv(path, index=False),
     "stata": lambda: pyreadstat.write_dta(data, str(path), variable_value_labels=labels),
     "spss": lambda: pyreadstat.write_sav(data, str(path), variable_value_labels=labels),
     "sas": lambda: pyreadstat.write_xport(data, str(path)), "parquet": lambda: data.to_parquet(path)}[fmt]()
    source = survey.model_copy(update={"format": fmt, "read_options": {}})
    whole = read_source_file(path, source)
    batches = list(read_source_batches(path, source, rows=4))
    assert [len(b.data) for b in batches] == [4] * 6 + [3]
    assert all(b.value_labels == whole.value_labels for b in batches)
    pd.testing.assert_frame_equal(_stored(batches), _stored([whole]))


def test_a_csv_column_read_in_batches_takes_its_type_over_the_whole_file(tmp_path, survey):
    """pandas types a CSV's column over the file: integers with a blank or a decimal further down are
    floats, a word anywhere makes the column text. Batch by batch the first batches alone would say
    integers; the batched read types each column as the whole read does."""
    rows = pd.concat([RAW] * 4, ignore_index=True)
    rows["pid"] = np.arange(len(rows))
    rows["hsize"] = rows["hsize"].astype(object)
    rows.loc[10, "hsize"] = ""  # a blank in the fourth batch
    rows["age"] = rows["age"].astype(object)
    rows.loc[11, "age"] = "unknown"  # a word in the fourth batch
    path = tmp_path / "living_2023.csv"
    rows.to_csv(path, sep=";", decimal=",", index=False)
    whole = read_source_file(path, survey)
    batches = list(read_source_batches(path, survey, rows=3))
    assert whole.data["hsize"].dtype == np.float64 and whole.data["age"].dtype == object
    assert all(b.data["hsize"].dtype == np.float64 and b.data["age"].dtype == object for b in batches)
    pd.testing.assert_frame_equal(_stored(batches), _stored([whole]))


def test_a_csv_column_of_booleans_with_a_blank_read_in_batches_keeps_its_booleans(tmp_path, survey):
    """True/False with a blank: pandas reads the whole column as Python booleans and NaN (object). A
    batch without the blank alone says bool, one with it object, and a batch of blanks alone float:
    the batched read still gives the whole read's booleans, not the words "True" and "False"."""
    rows = pd.concat([RAW] * 4, ignore_index=True)
    rows["pid"] = np.arange(len(rows))
    rows["owner"] = pd.Series([True, False] * 6, dtype=object)
    rows.loc[[6, 7, 8], "owner"] = None  # the third batch blank throughout
    rows.loc[10, "owner"] = None  # and one blank in the fourth
    path = tmp_path / "living_2023.csv"
    rows.to_csv(path, sep=";", decimal=",", index=False)
    whole = read_source_file(path, survey)
    batches = list(read_source_batches(path, survey, rows=3))
    assert whole.data["owner"].dropna().map(type).eq(bool).all()
    assert all(b.data["owner"].dtype == object for b in batches)
    joined = pd.concat([b.data for b in batches], ignore_index=True)
    assert joined["owner"].map(type).tolist() == whole.data["owner"].map(type).tolist()
    pd.testing.assert_frame_equal(joined, whole.data)
    pd.testing.assert_frame_equal(_stored(batches), _stored([whole]))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_non_finite_value_in_a_later_batch_is_named_by_its_row_in_the_file(tmp_path, survey, fmt):
    rows = pd.concat([RAW] * 4, ignore_index=True)
    rows["pid"] = np.arange(len(rows))
    rows["inc"] = rows["inc"].astype(object)
    rows.loc[9, "inc"] = "inf" if fmt == "csv" else float("inf")
    path = tmp_path / f"living_2023.{fmt}"
    if fmt == "csv":
        rows.to_csv(path, sep=";", decimal=",", index=False)
    else:
        rows.astype({"inc": float}).to_parquet(path)
    source = survey.model_copy(update={"format": fmt, "read_options": {} if fmt == "parquet" else survey.read_options})
    batches = read_source_batches(path, source, rows=4)
    assert len(next(batches).data) == 4 and len(next(batches).data) == 4  # the first two batches are fine
    with pytest.raises(IngestError, match=r"column 'inc': non-finite value\(s\) inf in 1 row\(s\), first rows 10 "):
        next(batches)


def test_a_missing_column_stops_the_batched_read_at_its_first_batch(tmp_path, survey):
    path = tmp_path / "living_2023.csv"
    pd.concat([RAW.drop(columns=["hsize"])] * 4).to_csv(path, sep=";", decimal=",", index=False)
    with pytest.raises(IngestError, match=r"missing column\(s\) 'hsize' \(for household_size\)"):
        next(read_source_batches(path, survey, rows=2))
