import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synth_assets.common.frames import FrameStack, ParquetTable, parts_side_by_side, rows_at_most, write_rows
from synth_assets.common.hashing import dataframe_sha256

REPO = Path(__file__).resolve().parents[2]


def _replicate(i: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(i)
    return pd.DataFrame({
        "household_id": pd.array(np.arange(rows) // 2, dtype="Int64"),
        "sex": pd.Categorical(rng.choice(["f", "m"], rows), categories=["f", "m"]),
        "income": np.where(rng.random(rows) < 0.3, np.nan, rng.normal(size=rows)),
        "note": rng.choice(["a", None], rows),
        "replicate": i,
    }, index=np.arange(rows) + 7)  # an index of its own, dropped as with ignore_index


def test_the_stack_joins_replicates_as_pd_concat_does():
    pieces = [_replicate(i, rows) for i, rows in ((1, 50), (2, 0), (3, 31))]
    stack = FrameStack()
    for piece in pieces:
        stack.append(piece)
    assert len(stack) == 81
    joined = stack.to_pandas()
    expected = pd.concat(pieces, ignore_index=True)
    pd.testing.assert_frame_equal(joined, expected)
    assert dataframe_sha256(joined) == dataframe_sha256(expected)
    with pytest.raises(ValueError, match="no frame"):
        stack.to_pandas()  # emptied: its buffers went to the frame


def test_rows_written_by_row_groups_read_back_as_the_selected_replicate(tmp_path):
    stacked = pd.concat([_replicate(i, rows) for i, rows in ((1, 50), (2, 37))], ignore_index=True)
    rows = np.flatnonzero(stacked["replicate"].to_numpy() == 2)
    columns = [c for c in stacked.columns if c != "replicate"]
    assert write_rows(stacked, tmp_path / "r2.parquet", rows, columns, row_group_rows=10) == 37
    expected = stacked[stacked["replicate"] == 2].drop(columns=["replicate"]).reset_index(drop=True)
    read = pd.read_parquet(tmp_path / "r2.parquet")
    pd.testing.assert_frame_equal(read, expected)
    assert pq.ParquetFile(tmp_path / "r2.parquet").num_row_groups == 4
    # the same content as the whole replicate written at once
    expected.to_parquet(tmp_path / "whole.parquet", index=False)
    assert dataframe_sha256(read) == dataframe_sha256(pd.read_parquet(tmp_path / "whole.parquet"))


def test_a_parquet_table_reads_hashes_and_splits_the_table_a_row_group_at_a_time(tmp_path):
    stacked = pd.concat([_replicate(i, rows) for i, rows in ((1, 50), (2, 37), (3, 20))], ignore_index=True)
    stacked["note"] = [None] * 60 + list(stacked["note"].iloc[60:].fillna("b"))  # null in the first groups only
    stacked["sex"] = stacked["sex"].cat.add_categories("x")
    stacked.loc[stacked.index[-3:], "sex"] = "x"
    write_rows(stacked, tmp_path / "all.parquet", row_group_rows=25)
    table = ParquetTable(tmp_path / "all.parquet")
    assert table.num_rows == 107 and table.columns == list(stacked.columns)
    assert len(list(table.frames())) == 5  # one frame per row group
    assert table.sha256() == dataframe_sha256(stacked)
    pd.testing.assert_frame_equal(table.read(["sex", "income"]), stacked[["sex", "income"]])
    assert len(table.empty()) == 0 and list(table.empty().dtypes.map(str)) == list(stacked.dtypes.map(str))
    files = {r: tmp_path / f"r{r}.parquet" for r in (1, 3)}
    assert table.write_split("replicate", files) == {1: 50, 3: 20}
    for r, file in files.items():
        expected = stacked[stacked["replicate"] == r].drop(columns=["replicate"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.read_parquet(file), expected)
    whole = pd.read_parquet(tmp_path / "all.parquet")
    parts = list(table.parts("replicate", ["income", "sex"]))  # replicate 2 spans row groups 2 to 4
    assert len(parts) == 3
    for r, part in zip((1, 2, 3), parts):
        # the frame the whole table gives for those rows, categories included (x is only in replicate 3)
        expected = whole.loc[whole["replicate"] == r, ["income", "sex"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, expected)
    assert list(parts[0]["sex"].cat.categories) == ["f", "m", "x"]
    with pytest.raises(KeyError, match="all.parquet: columns not in the table"):
        next(table.frames(["age"]))


def test_a_view_of_a_parquet_table_is_the_filtered_frame_read_a_row_group_at_a_time(tmp_path):
    """``where``/``select`` then ``read``, ``take``, ``frames``, ``num_rows``: what filtering the frame
    read whole gives (rows in the file's order, the whole file's categories), with row groups
    that hold no row of the view skipped."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "replicate": np.repeat([1, 2, 3], [1000, 800, 700]),
        "household": rng.integers(0, 300, 2500),
        "income": rng.normal(size=2500),
        "sex": pd.Categorical(rng.choice(["f", "m", "x"], 2500)),
    })
    frame.loc[frame["replicate"] == 1, "sex"] = "f"  # replicate 1's row groups know only "f"
    write_rows(frame, tmp_path / "t.parquet", row_group_rows=300)
    table = ParquetTable(tmp_path / "t.parquet")
    households = frame["household"].unique()[:100]
    view = table.where("replicate", [1]).where("household", households).select(["income", "sex", "household"])
    expected = frame.loc[(frame["replicate"] == 1) & frame["household"].isin(households),
                         ["income", "sex", "household"]].reset_index(drop=True)
    assert view.num_rows == len(expected) and view.columns == ["income", "sex", "household"]
    pd.testing.assert_frame_equal(view.read(), expected)
    assert list(view.read()["sex"].cat.categories) == ["f", "m", "x"]  # the file's, not the row groups'
    positions = expected.sample(n=60, random_state=3).index.to_numpy()  # any order
    pd.testing.assert_frame_equal(view.take(positions), expected.iloc[positions].reset_index(drop=True))
    # positions in order: whole row groups taken as read, a repeated or skipped row still honoured
    whole = frame.iloc[:, :4].reset_index(drop=True)
    for ordered in (np.arange(len(frame)), np.r_[0, 0, 2:300, 300:900], np.r_[0:300, 299, 301:600]):
        pd.testing.assert_frame_equal(table.take(ordered), whole.iloc[ordered].reset_index(drop=True))
    blocks = list(view.frames())
    assert len(blocks) == 4  # replicate 1's four row groups of 300 rows, not the file's nine
    assert sum(len(b) for b in blocks) == len(expected)
    with pytest.raises(IndexError, match="positions outside"):
        view.take([len(expected)])
    with pytest.raises(KeyError, match="no column 'region'"):
        table.where("region", [1])


def _release_replicate(i: int, rows: int, categories: list[str]) -> pd.DataFrame:
    """A replicate as ``fictitious_dataset`` makes them: categories of its own, a column all missing in one."""
    rng = np.random.default_rng(i)
    return pd.DataFrame({
        "person_id": pd.array(np.arange(1, rows + 1), dtype="Int64"),
        "sex": pd.Categorical(rng.choice(categories, rows), categories=categories),
        "age": pd.array([None] * rows if i == 1 else rng.integers(0, 90, rows), dtype="Int64"),
        # an integer column whose first replicate holds no value: a null column in that one alone
        "children": pd.Series([None] * rows if i == 1 else rng.integers(0, 4, rows).tolist(), dtype=object),
        "income": np.where(rng.random(rows) < 0.3, np.nan, rng.normal(size=rows)),
        "replicate": i,
    })


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 2, 1)])  # the column all missing in the first replicate or the last
def test_a_parquet_stack_reads_back_as_the_frame_stack_joined_and_stored_it(tmp_path, order):
    from synth_assets.common.frames import ParquetStack, StagedTable

    made = {1: _release_replicate(1, 25, ["f", "m"]), 2: _release_replicate(2, 0, ["m"]),
            3: _release_replicate(3, 31, ["x", "f"])}
    pieces = [made[i] for i in order]
    frames = FrameStack()
    stack = ParquetStack(tmp_path, row_group_rows=10)
    for piece in pieces:
        frames.append(piece)
        stack.append(piece)
    assert len(stack) == 56
    staged = stack.finish()
    assert isinstance(staged, StagedTable) and staged.num_rows == 56
    # today's route: the replicates joined in memory, written by row groups, read back as the IO manager does
    joined = frames.to_pandas()
    write_rows(joined, tmp_path / "joined.parquet")
    expected = ParquetTable(tmp_path / "joined.parquet").read()
    pd.testing.assert_frame_equal(expected, joined)
    read = staged.read()
    pd.testing.assert_frame_equal(read, expected)  # dtypes included
    # one categorical: the union, in the order the categories came
    assert list(read["sex"].cat.categories) == (["f", "m", "x"] if order[0] == 1 else ["x", "f", "m"])
    assert str(read["children"].dtype) == "float64" and read.loc[read["replicate"] == 1, "children"].isna().all()
    assert staged.sha256() == dataframe_sha256(expected)  # row group by row group, as the checks hash it
    assert list(staged.empty().dtypes.map(str)) == list(expected.dtypes.map(str))
    # each replicate in row groups of its own (3 and 4), a replicate read from its groups alone
    file = pq.ParquetFile(staged.path)
    sizes = {1: [10, 10, 5], 2: [], 3: [10, 10, 10, 1]}
    assert [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)] == [
        n for i in order for n in sizes[i]]
    pd.testing.assert_frame_equal(staged.part("replicate", 3), expected[expected["replicate"] == 3].reset_index(drop=True))


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 2, 1)])
def test_stacks_made_apart_and_extended_into_one_equal_the_frames_appended_to_it(tmp_path, order):
    from synth_assets.common.frames import ParquetStack

    made = {1: _release_replicate(1, 25, ["f", "m"]), 2: _release_replicate(2, 0, ["m"]),
            3: _release_replicate(3, 31, ["x", "f"])}
    direct = ParquetStack(tmp_path, row_group_rows=10)
    joined = ParquetStack(tmp_path, row_group_rows=10)
    parts = []
    for i in order:
        direct.append(made[i])
        apart = ParquetStack(tmp_path, row_group_rows=10)  # as a child process makes its replicate
        apart.append(made[i].iloc[:12])
        apart.append(made[i].iloc[12:])
        parts.append(apart.finish())
    for part in parts:
        joined.extend(part.path)
    assert len(joined) == 56
    expected, read = direct.finish(), joined.finish()
    pd.testing.assert_frame_equal(read.read(), expected.read())  # values, dtypes, the categories' union
    assert read.sha256() == expected.sha256()


def test_a_parquet_stack_widens_codes_refuses_other_types_and_leaves_no_file(tmp_path):
    import gc

    from synth_assets.common.frames import ParquetStack

    # 150 categories in the second replicate: 16-bit codes there, 8-bit in the first
    wide = [f"c{k}" for k in range(150)]
    stack = ParquetStack(tmp_path)
    stack.append(_release_replicate(1, 20, ["a", "b"]))
    stack.append(_release_replicate(2, 300, wide))
    staged = stack.finish()
    read = staged.read()
    assert list(read["sex"].cat.categories) == ["a", "b", *wide]
    assert read["sex"].astype(str).tolist() == [*_release_replicate(1, 20, ["a", "b"])["sex"].astype(str),
                                                 *_release_replicate(2, 300, wide)["sex"].astype(str)]
    broken = ParquetStack(tmp_path)
    broken.append(_release_replicate(1, 5, ["a"]))
    with pytest.raises(TypeError, match="column 'income' is string"):
        broken.append(_release_replicate(2, 5, ["a"]).assign(income="high"))
    with pytest.raises(ValueError, match="no frame appended"):
        ParquetStack(tmp_path).finish()
    # the staged folders go with their stack (a failed step) or their table (handed over or dropped)
    del stack, staged, broken
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_a_parquet_stack_joins_integers_and_floats_as_floats_and_keeps_its_metadata(tmp_path):
    """A delivered file's batches: a column of integers in one batch may be float in another (pandas'
    own read of some formats); joined as ``pd.concat`` joins them, and the stack's metadata (a wave's
    facts) in the file."""
    from synth_assets.common.frames import ParquetStack

    first = pd.DataFrame({"id": [1, 2], "x": [1, 2]})
    second = pd.DataFrame({"id": [3, 4], "x": [2.5, np.nan]})
    stack = ParquetStack(tmp_path, metadata={b"facts": b"{}"})
    for frame in (first, second, first.assign(id=[5, 6])):
        stack.append(frame)
    staged = stack.finish()
    expected = pd.concat([first, second, first.assign(id=[5, 6])], ignore_index=True)
    pd.testing.assert_frame_equal(staged.read(), expected)
    assert staged.schema_metadata[b"facts"] == b"{}"


def test_a_sorted_table_is_read_in_parts_of_whole_keys_a_row_group_at_a_time(tmp_path, monkeypatch):
    """Keys (days, households) straddle row groups: each part still holds whole keys, together every
    row once, never the whole table; a table whose rows are not in key order is read a replicate at a
    time instead, the same rows."""
    rng = np.random.default_rng(0)
    days = pd.DataFrame({"replicate": np.repeat([1, 2], 30), "person_id": np.tile(np.repeat(np.arange(15), 2), 2),
                         "day_id": np.tile([1, 2], 30)})
    table = days.loc[days.index.repeat(rng.integers(1, 9, len(days)))].reset_index(drop=True)
    table["record_id"] = table.groupby(["replicate", "person_id", "day_id"]).cumcount() + 1
    write_rows(table, tmp_path / "sorted.parquet", row_group_rows=7)
    on_disk = ParquetTable(tmp_path / "sorted.parquet")
    day = ["replicate", "person_id", "day_id"]
    assert on_disk.rows_in_order(day)
    with monkeypatch.context() as patch:
        patch.setattr(ParquetTable, "part", lambda *a, **k: pytest.fail("a replicate read whole"))
        patch.setattr(ParquetTable, "read", lambda *a, **k: pytest.fail("the table read whole"))
        parts = list(on_disk.whole_parts(day, ["record_id"]))
    assert len(parts) > 10
    assert max(len(p) for p in parts) < 7 + 9  # a row group and the key held back from the one before
    keys = [set(map(tuple, part[day].to_numpy())) for part in parts]
    assert sum(len(k) for k in keys) == len(days)  # no day in two parts
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), table[["record_id", *day]])
    # households within replicates: coarser keys, the same file
    households = list(on_disk.whole_parts(["replicate", "person_id"]))
    assert sum(p[["replicate", "person_id"]].drop_duplicates().shape[0] for p in households) == 30
    write_rows(table.iloc[::-1], tmp_path / "reversed.parquet", row_group_rows=7)
    reversed_table = ParquetTable(tmp_path / "reversed.parquet")
    assert not reversed_table.rows_in_order(day)
    by_replicate = list(reversed_table.whole_parts(day))
    assert [p["replicate"].unique().tolist() for p in by_replicate] == [[1], [2]]
    assert sum(map(len, by_replicate)) == len(table)



def test_parts_of_about_so_many_rows_join_row_groups_on_the_whole_tables_categories(tmp_path, monkeypatch):
    """Households straddle row groups whose dictionaries differ (a municipality in some only): parts of
    about n rows are as few as hold that, of about equal size, whole households, with the categories a
    whole read gives, so they join to the table read whole; a table of at most n rows comes whole."""
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 6, 120)
    households = pd.DataFrame({"household_id": np.repeat(np.arange(1, 121), sizes)})
    place = np.where(households["household_id"] < 60, "north", np.where(households["household_id"] < 100,
                                                                         "centre", "south"))
    households["municipality"] = pd.Categorical(place, categories=["centre", "north", "south"])
    households["age"] = rng.integers(0, 90, len(households))
    write_rows(households, tmp_path / "register.parquet", row_group_rows=23)
    on_disk = ParquetTable(tmp_path / "register.parquet")
    whole = on_disk.read()
    read = ParquetTable.read

    def one_column(table, columns=None):  # the categories: a categorical column's codes read alone
        if columns is None or len(columns) != 1:
            pytest.fail("the table read whole")
        return read(table, columns)

    with monkeypatch.context() as patch:
        patch.setattr(ParquetTable, "read", one_column)
        parts = list(on_disk.whole_parts(["household_id"], part_rows=100))
    share = len(households) / len(parts)
    assert len(parts) == -(-len(households) // 100)  # as few as hold about 100 rows each
    assert all(abs(len(p) - share) <= 23 + 5 for p in parts)  # of about equal size: a row group and a household
    assert all(list(p["municipality"].cat.categories) == list(whole["municipality"].cat.categories) for p in parts)
    ids = [set(p["household_id"]) for p in parts]
    assert sum(map(len, ids)) == 120  # no household in two parts
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    (only,) = on_disk.whole_parts(["household_id"], part_rows=len(households))
    pd.testing.assert_frame_equal(only, whole)


def test_parts_side_by_side_pair_each_left_part_with_the_right_rows_up_to_its_last_key():
    keys = ["replicate", "person_id"]
    left = pd.DataFrame({"replicate": [1, 1, 1, 2, 2, 2], "person_id": [1, 3, 5, 1, 2, 4]})
    right = pd.DataFrame({"replicate": [1, 1, 1, 1, 2, 2, 2, 2], "person_id": [1, 2, 3, 5, 1, 2, 4, 9],
                          "minutes": np.arange(8)})
    # parts cut elsewhere on each side: the join must not depend on where the row groups end
    left_parts = [left.iloc[:2], left.iloc[2:2], left.iloc[2:5], left.iloc[5:]]
    right_parts = [right.iloc[:1], right.iloc[1:6], right.iloc[6:]]
    pairs = list(parts_side_by_side(left_parts, right_parts, keys))
    assert [len(a) for a, _ in pairs] == [2, 3, 1]  # the empty part skipped
    for part, rows in pairs:
        last = tuple(part[keys].iloc[-1])
        assert rows_at_most(rows, keys, last).all()
    # every right row up to the left's last key comes once, in order; person 9 of replicate 2 never
    joined = pd.concat([rows for _, rows in pairs], ignore_index=True)
    assert joined["minutes"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert pairs[0][1]["person_id"].tolist() == [1, 2, 3]  # person 2 has no left row but sorts before 3


def test_rows_at_most_orders_by_every_key_in_turn():
    frame = pd.DataFrame({"replicate": [1, 1, 2, 2, 3], "person_id": [9, 1, 1, 5, 0]})
    assert rows_at_most(frame, ["replicate", "person_id"], (2, 1)).tolist() == [True, True, True, False, False]


_READ_RISE = """
import sys
import pyarrow.parquet as pq
from synth_assets.common.frames import ParquetTable

def resident_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

path, how = sys.argv[1], sys.argv[2]
before = resident_mib()
if how == "arrow":
    table = pq.read_table(path)
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
else:
    frame = ParquetTable(path).read()
print(resident_mib() - before, frame.memory_usage(deep=True).sum() // 2**20)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="resident memory read from /proc (Linux)")
def test_a_table_read_whole_leaves_the_frame_resident_not_arrow_s_freed_buffers(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 1_500_000
    path = tmp_path / "wide.parquet"
    pd.DataFrame({**{f"x{i}": rng.random(n) for i in range(5)},
                  "level": pd.Categorical(rng.choice(list("abcdef"), n)),
                  "count": pd.array(rng.integers(0, 100, n), dtype="Int64")}).to_parquet(path, row_group_size=250_000)

    def rise(how: str) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", _READ_RISE, str(path), how], capture_output=True, text=True,
                             check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        resident, frame = map(int, out.stdout.split())
        return resident, frame

    arrow_rise, frame = rise("arrow")
    if arrow_rise < 2 * frame:
        pytest.skip(f"Arrow's pool kept nothing to give back here ({arrow_rise} MiB for a {frame} MiB frame)")
    ours, _ = rise("ours")
    # Arrow's read alone keeps about 3 times the frame resident (its pool's freed buffers); the frame
    # and the allocators' own slack are all a whole read may leave
    assert ours < 2 * frame, (ours, frame, arrow_rise)


def test_a_local_table_leaves_no_file_open_for_the_garbage_collector(tmp_path):
    """Reading a local table's schema, row count, rows and samples closes every file it opened: a
    forked step's ResourceWarnings ("unclosed file") had reached the CLI's output."""
    import gc
    import warnings

    path = tmp_path / "table.parquet"
    pd.DataFrame({"a": np.arange(1000), "b": np.arange(1000) % 7}).to_parquet(path, row_group_size=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = ParquetTable(path)
        assert table.num_rows == 1000 and table.columns == ["a", "b"]
        assert table.take([5, 900])["a"].tolist() == [5, 900]
        assert sum(len(f) for f in table.where("b", [0]).frames()) == 143
        del table
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
