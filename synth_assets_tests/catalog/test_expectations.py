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


def test_a_large_table_is_validated_in_batches_with_the_verdict_of_the_whole_table(catalog, tmp_path):
    """Past ``batch_rows`` rows a table's suite runs a batch at a time, its unique keys judged on the
    whole columns beside it: the same failures, counts and examples as GE on the table whole, a
    duplicate id in two batches caught, missing ids ignored by the unique check as GE ignores them."""
    import pandas as pd

    from synth_assets.common.expectations import DataDocs

    table = pd.concat([RAW] * 10, ignore_index=True).assign(pid=range(1, 31))
    spec = raw_suite_spec(catalog, "living")
    assert validate_table(table, spec, batch_rows=7).success
    bad = table.astype({"pid": "Int64"})
    bad.loc[[3, 25], "pid"] = 2  # three rows hold id 2: rows 1, 3 and 25, in three batches of 7
    bad.loc[12, "pid"] = pd.NA  # set: the not-null expectation fails, the unique one ignores it
    bad.loc[20, "w"] = -1.0
    whole = validate_table(bad, spec)  # 30 rows: below the default batch, GE on the whole table
    batched = validate_table(bad, spec, batch_rows=7, docs=DataDocs(tmp_path / "docs", run_name="r"))
    assert not whole.success and not batched.success
    assert sorted(batched.describe().splitlines()) == sorted(whole.describe().splitlines())
    assert batched.n_expectations == whole.n_expectations
    assert "expect_column_values_to_be_unique failed on column 'pid': 3 unexpected values (e.g. 2, 2, 2)" \
        in batched.describe()
    assert batched.docs_index is not None and batched.docs_index.is_file()
    # a compound key: unique as a pair, every value of it missing ignored
    pairs = pd.DataFrame({"a": [1, 1, 2, None, None, 2], "b": ["x", "y", "x", None, None, "x"]})
    pair_spec = {"name": "pairs", "required_columns": ["a", "b"], "unique": [["a", "b"]]}
    assert sorted(validate_table(pairs, pair_spec, batch_rows=2).describe().splitlines()) == \
        sorted(validate_table(pairs, pair_spec).describe().splitlines())
    missing = validate_table(bad.drop(columns="pid"), spec, batch_rows=7)
    assert not missing.success and "column 'pid'" in missing.describe()


def test_a_stored_table_is_validated_a_row_group_at_a_time_with_the_verdict_of_the_table_read_whole(
        catalog, tmp_path, monkeypatch):
    """The ingest checks take the stored wave (a Parquet file): past ``batch_rows`` rows its row groups
    are validated in batches and its unique keys judged on their hashes a row group at a time; never
    the table whole, and the same report as the table read whole and validated."""
    import pandas as pd

    from synth_assets.catalog.expectations import validate_stored
    from synth_assets.common.frames import ParquetTable, write_rows

    table = pd.concat([RAW] * 10, ignore_index=True).assign(pid=range(1, 31)).astype({"pid": "Int64"})
    table.loc[[3, 25], "pid"] = 2  # id 2 in three row groups
    table.loc[20, "w"] = -1.0
    path = tmp_path / "wave.parquet"
    write_rows(table, path, row_group_rows=6)
    spec = raw_suite_spec(catalog, "living")
    read_columns: list[list[str] | None] = []
    read = ParquetTable.read

    def recorded(self, columns=None):
        read_columns.append(None if columns is None else list(columns))
        return read(self, columns)

    monkeypatch.setattr(ParquetTable, "read", recorded)
    stored = validate_stored(ParquetTable(path), spec, batch_rows=7)
    assert read_columns == []  # neither the table nor its key's column read whole
    whole = validate_table(pd.read_parquet(path), spec)
    assert not stored.success
    assert sorted(stored.describe().splitlines()) == sorted(whole.describe().splitlines())
    assert "3 unexpected values (e.g. 2, 2, 2)" in stored.describe()
    read_columns.clear()
    small = validate_stored(ParquetTable(path), spec)  # 30 rows: read and validated whole
    assert read_columns == [None] and small.describe() == whole.describe()


def test_a_stored_key_is_judged_a_share_of_its_hashes_at_a_time_with_the_failure_of_the_columns_read_whole(
        tmp_path, monkeypatch):
    """The stored uniqueness test holds the hashes of a share of the rows at a time: whatever the
    shares, the failure, count and examples (in row order) of the key's columns read whole, for a
    column and a compound key; an integer key with a missing value in some row groups (pandas reads
    those as floats) still meets its duplicates in the others; and rows whose hashes collide are
    compared by value, so a collision alone fails nothing. Fails with duplicates split across shares,
    or hashes compared as pandas reads each row group, or collisions taken for duplicates."""
    import numpy as np
    import pandas as pd

    from synth_assets.catalog import expectations
    from synth_assets.common.frames import ParquetTable, write_rows

    rng = np.random.default_rng(3)
    ids = pd.array(rng.permutation(np.arange(10**9, 10**9 + 60)), dtype="Int64")
    frame = pd.DataFrame({"pid": ids, "hid": np.repeat(np.arange(20), 3), "line": np.tile([1, 2, 3], 20)})
    frame.loc[[7, 41, 58], "pid"] = frame.loc[2, "pid"]  # in three row groups, one with a missing id
    frame.loc[44, "pid"] = pd.NA
    frame.loc[[5, 50], ["hid", "line"]] = [3, 1]  # the pair (3, 1) thrice: rows 5, 9 and 50
    frame.loc[[30, 31], ["hid", "line"]] = [None, None]  # both missing: ignored
    frame = frame.astype({"hid": "Int64", "line": "Int64"})
    path = tmp_path / "keys.parquet"
    write_rows(frame, path, row_group_rows=8)
    table = ParquetTable(path)
    assert {str(group.pid.dtype) for group in table.frames(["pid"])} >= {"Int64"}
    for key in ("pid", ["hid", "line"]):
        whole = expectations._uniqueness(pd.read_parquet(path), key)
        assert whole is not None and whole.unexpected_count in (4, 3)
        for key_rows in (None, 7, 25):  # one share, nine, three
            assert expectations._stored_uniqueness(table, key, key_rows) == whole
    assert expectations._stored_uniqueness(table.select(["hid"]), "line") is not None  # absent: named
    unique = ParquetTable(tmp_path / "unique.parquet")
    write_rows(frame.drop_duplicates("pid").dropna(subset=["pid"]), unique.path, row_group_rows=8)
    assert expectations._stored_uniqueness(unique, "pid", 7) is None
    # every hash alike: each share's rows are all compared by value, and the unique ids pass
    monkeypatch.setattr(expectations, "key_hashes", lambda group, columns: (
        np.zeros(group.num_rows, dtype=np.uint64), np.ones(group.num_rows, dtype=bool)))
    assert expectations._stored_uniqueness(unique, "pid", 7) is None
    assert expectations._stored_uniqueness(table, "pid", 7) == expectations._uniqueness(pd.read_parquet(path), "pid")


def test_key_hashes_are_exact_and_the_same_in_every_row_group():
    """Key hashes take each value as the column's Arrow type: ids that round alike hash apart, a
    value hashes alike in a row group with missing values and in one without, missing values alike,
    text and dictionary-coded text alike, -0.0 as 0.0."""
    import pyarrow as pa

    from synth_assets.common.hashing import key_hashes

    with_missing = pa.table({"id": pa.array([1234567, None, 1234568], pa.int64())})
    without = pa.table({"id": pa.array([1234568, 1234567, 7], pa.int64())})
    (a, present_a), (b, _) = key_hashes(with_missing, ["id"]), key_hashes(without, ["id"])
    assert a[0] == b[1] and a[2] == b[0] and a[0] != a[2] and list(present_a) == [True, False, True]
    text = key_hashes(pa.table({"k": pa.array(["x", None, "y"])}), ["k"])
    coded = key_hashes(pa.table({"k": pa.array(["y", "x", None]).dictionary_encode()}), ["k"])
    assert list(text[0]) == [coded[0][1], coded[0][2], coded[0][0]]
    zeros = key_hashes(pa.table({"v": pa.array([0.0, -0.0, float("nan")])}), ["v"])
    assert zeros[0][0] == zeros[0][1] and list(zeros[1]) == [True, True, False]
    pair = key_hashes(pa.table({"a": [1, 1], "b": ["x", "y"]}), ["a", "b"])
    assert pair[0][0] != pair[0][1]


def test_batches_validated_in_child_processes_give_the_report_and_data_docs_of_one_process(
        catalog, tmp_path, monkeypatch):
    """Each batch in a forked child (``processes``): the same verdict, counts and rows as one process
    gives, and the Data Docs hold each batch's result under its rows' run name, as one process leaves them."""
    import os

    import pandas as pd

    from synth_assets.catalog import expectations
    from synth_assets.catalog.expectations import validate_chunks
    from synth_assets.common.expectations import DataDocs

    validated = expectations._validated_batch

    def validated_where(*args):  # each batch's process, written down (a child's memory is its own)
        with open(tmp_path / "pids", "a") as out:
            out.write(f"{os.getpid()}\n")
        return validated(*args)

    monkeypatch.setattr(expectations, "_validated_batch", validated_where)

    one = harmonise_table(RAW, catalog, "living").drop(columns=["person_id", "household_id", "weight"])
    table = pd.concat([one] * 12, ignore_index=True)
    table["age"] = table["age"].astype("float64")
    table.loc[[2, 17, 33], "age"] = 140.0
    spec = {**fictitious_suite_spec(catalog, table), "rules": ["age < 100"]}
    chunks = [table.iloc[i:i + 4] for i in range(0, len(table), 4)]

    def pages(root):
        site = DataDocs(root).index.parent
        return sorted(p.relative_to(site / "validations").parts[1] for p in (site / "validations").rglob("*.html"))

    alone = validate_chunks(chunks, spec, docs=DataDocs(tmp_path / "one", run_name="r"), batch_rows=10)
    assert (tmp_path / "pids").read_text().split() == [str(os.getpid())] * 3  # one process: here
    (tmp_path / "pids").unlink()
    forked = validate_chunks(chunks, spec, docs=DataDocs(tmp_path / "two", run_name="r"), batch_rows=10, processes=2)
    assert not forked.success and forked.describe() == alone.describe()
    assert "rule `age < 100` broken by 3 records (e.g. rows [2, 17, 33])" in forked.describe()
    assert forked.docs_index == DataDocs(tmp_path / "two").index and forked.docs_index.exists()
    assert pages(tmp_path / "two") == pages(tmp_path / "one") == ["r rows 0-11", "r rows 12-23", "r rows 24-35"]
    pids = (tmp_path / "pids").read_text().split()
    assert len(pids) == 3 and str(os.getpid()) not in pids  # three batches, none validated here
