import gc
import json

import pandas as pd
import pytest

from synth_assets.common.expectations import DataDocs, load_suite, run_suite, table_suite

SPEC = {
    "name": "persons",
    "required_columns": ["person_id", "age", "weight", "sex"],
    "types": {"person_id": "integer", "age": "integer", "weight": "float", "sex": "string"},
    "not_null": ["person_id"],
    "unique": ["person_id", ["household_id", "member"]],
    "ranges": {"age": {"min": 0, "max": 120}},
    "categories": {"sex": ["female", "male"]},
    "positive": ["weight"],
    "row_count": {"min": 1},
}


@pytest.fixture()
def clean() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": [1040, 1041, 1042],
            "household_id": [1, 1, 2],
            "member": [1, 2, 1],
            "age": pd.array([34, None, 71], dtype="Int64"),  # extension dtype with a missing value
            "weight": [120.5, 120.5, 80.0],
            "sex": pd.array(["female", "male", "female"], dtype="string"),
        }
    )


def test_clean_data_pass(clean):
    report = run_suite(clean, table_suite(SPEC))
    assert report.success, report.describe()
    assert "all" in report.describe()


@pytest.mark.parametrize("with_docs", [False, True])
def test_no_copy_of_the_table_outlives_the_validation(clean, tmp_path, with_docs):
    # GE's context lives as long as the process and its engine kept the last batch: a register
    # wave's table (213 MB at 2 million persons) stayed resident into the next wave's run
    marked = clean.rename(columns={"sex": "sex_outlived_probe"})
    spec = {**SPEC, "name": "outlived", "required_columns": ["person_id"], "categories": {}, "types": {}}
    report = run_suite(marked, table_suite(spec), docs=DataDocs(tmp_path) if with_docs else None)
    assert report.success, report.describe()
    del marked
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, pd.DataFrame) and "sex_outlived_probe" in o.columns]
    assert alive == []


def test_integer_type_is_checked_on_extension_dtypes(clean):
    report = run_suite(clean.assign(age=pd.array([34.5, None, 71.0], dtype="Float64")), table_suite(SPEC))
    (failure,) = report.failures
    assert failure.type == "expect_column_values_to_be_in_type_list" and failure.column == "age"


@pytest.mark.parametrize("dtype", ["Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
                                   "Float32", "Float64", "boolean"])
def test_every_nullable_dtype_without_missing_values_is_its_numpy_dtype(dtype):
    from synth_assets.common.expectations import _ge_compatible

    values = pd.array([True, False] if dtype == "boolean" else [1, 2], dtype=dtype)
    assert _ge_compatible(pd.DataFrame({"v": values}))["v"].dtype == values.dtype.numpy_dtype
    assert _ge_compatible(pd.DataFrame({"v": pd.array([values[0], None], dtype=dtype)}))["v"].dtype == object


def test_nullable_columns_without_missing_values_are_checked_as_numpy_columns(clean):
    # GE checks a NumPy column's dtype once and an object column value by value: the same verdict
    from synth_assets.common.expectations import _ge_compatible

    full = clean.assign(age=pd.array([34, 12, 71], dtype="Int64"), flag=pd.array([True, False, True], dtype="boolean"))
    batch = _ge_compatible(full)
    assert batch["age"].dtype == "int64" and batch["flag"].dtype == "bool"
    assert batch["sex"].dtype == object and _ge_compatible(clean)["age"].dtype == object  # a missing value: objects
    spec = {**SPEC, "types": {**SPEC["types"], "flag": "boolean"}}
    assert run_suite(full, table_suite(spec)).success
    report = run_suite(full.assign(age=pd.array([34, 130, 71], dtype="Int64")), table_suite(spec))
    (failure,) = report.failures
    assert failure.describe() == (
        "expect_column_values_to_be_between failed on column 'age': 1 unexpected values (e.g. 130)")
    # a nullable float column without missing values still fails an integer type
    report = run_suite(full.assign(age=pd.array([34.5, 12.0, 71.0], dtype="Float64")), table_suite(spec))
    (failure,) = report.failures
    assert failure.type == "expect_column_values_to_be_in_type_list" and failure.column == "age"


def test_a_categorical_column_judged_by_its_set_alone_reaches_ge_as_it_is(clean):
    # each of GE's filtered copies of a batch then copies the column's codes, not an object per row
    from synth_assets.common.expectations import _ge_compatible

    frame = clean.assign(sex=clean["sex"].astype("category"), status=pd.Categorical(["a", "b", "a"]),
                         region=pd.Categorical(["n", "s", "n"]), age=clean["age"].fillna(40))
    spec = {"name": "t", "categories": {"sex": ["female", "male"], "status": ["a", "b"]},
            "not_null": ["sex"], "types": {"status": "string"}, "ranges": {"age": {"min": 0}},
            "special_values": {"age": [-8]}}
    suite = table_suite(spec)
    batch = _ge_compatible(frame, suite)
    # judged by its set and presence alone, or by nothing: categorical; a type checked: objects
    assert isinstance(batch["sex"].dtype, pd.CategoricalDtype) and isinstance(batch["region"].dtype, pd.CategoricalDtype)
    assert batch["status"].dtype == object
    # a row condition naming the column: objects (its text may compare the values in any way)
    conditioned = {"name": "t", "expectations": [{"type": "expect_column_values_to_be_between",
                                                  "kwargs": {"column": "age", "min_value": 0,
                                                             "row_condition": "`region` == 'n'",
                                                             "condition_parser": "pandas"}}]}
    assert _ge_compatible(frame, conditioned)["region"].dtype == object
    assert _ge_compatible(frame)["sex"].dtype == object  # no suite: every extension column converted


def test_a_categorical_column_fails_its_set_and_presence_as_its_values_as_objects_do(clean):
    values = ["female", None, "other", "male", "other"]
    frame = pd.DataFrame({"person_id": range(5), "sex": pd.Categorical(values, categories=["female", "male", "other"])})
    spec = {"name": "t", "categories": {"sex": ["female", "male"]}, "not_null": ["sex"]}
    as_categories = run_suite(frame, table_suite(spec))
    as_objects = run_suite(frame.assign(sex=frame["sex"].astype(object)), table_suite(spec))  # as GE got it before
    assert not as_categories.success
    described = sorted(f.describe() for f in as_categories.failures)
    assert described == sorted(f.describe() for f in as_objects.failures)
    assert [(f.type, f.unexpected_count, f.unexpected_examples) for f in sorted(as_categories.failures, key=str)] == [
        (f.type, f.unexpected_count, f.unexpected_examples) for f in sorted(as_objects.failures, key=str)]
    assert any("2 unexpected values (e.g. other, other)" in d for d in described), described
    assert any("not_be_null" in d and "1 unexpected" in d for d in described), described


def test_duplicated_id_names_the_column(clean):
    dirty = pd.concat([clean, clean.iloc[[2]].assign(member=9)], ignore_index=True)
    report = run_suite(dirty, table_suite(SPEC))
    assert not report.success
    (failure,) = report.failures
    assert failure.column == "person_id"
    assert failure.describe() == (
        "expect_column_values_to_be_unique failed on column 'person_id': 2 unexpected values (e.g. 1042, 1042)"
    )


def test_negative_weight_and_missing_column_fail(clean):
    report = run_suite(clean.assign(weight=[1.0, -2.0, 3.0]).drop(columns=["sex"]), table_suite(SPEC))
    text = report.describe()
    assert not report.success
    assert "column 'weight': 1 unexpected values (e.g. -2.0)" in text
    assert "expect_column_to_exist failed on column 'sex': column is missing" in text


def test_suites_from_json_files(tmp_path, clean):
    spec_file = tmp_path / "persons.json"
    spec_file.write_text(json.dumps(SPEC))
    native = {
        "name": "native",
        "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "max_value": 60}}],
    }
    native_file = tmp_path / "native.json"
    native_file.write_text(json.dumps(native))
    assert run_suite(clean, load_suite(spec_file)).success
    report = run_suite(clean, load_suite(native_file))
    assert report.suite_name == "native" and report.failures[0].unexpected_examples == [71]
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        load_suite(tmp_path / "broken.json")


def test_spec_errors_are_named():
    with pytest.raises(ValueError, match="colums"):
        table_suite({"colums": ["a"]})
    with pytest.raises(ValueError, match="'decimal' of column 'x'"):
        table_suite({"types": {"x": "decimal"}})
