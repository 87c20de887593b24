"""The household structure table, counted a row group at a time, and its distance to the register's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.calibration.structure import household_cells, household_structure_tvd
from synth_assets.common.frames import ParquetTable, write_rows


def _households(seed: int, households: int, replicate: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 5, households)
    kind = rng.choice(["single", "couple", "other"], households)
    frame = pd.DataFrame({"household_id": np.repeat(np.arange(households), size),
                          "household_size": np.repeat(size, size), "household_type": np.repeat(kind, size)})
    return frame if replicate is None else frame.assign(replicate=replicate)


def test_households_are_counted_once_per_replicate_across_row_groups(tmp_path):
    release = pd.concat([_households(1, 300, replicate=1), _households(2, 250, replicate=2)], ignore_index=True)
    # row groups of 7 rows: most households straddle two of them
    write_rows(release, tmp_path / "release.parquet", row_group_rows=7)
    cells = household_cells(ParquetTable(tmp_path / "release.parquet"), "household_id",
                            ["household_size", "household_type"])
    assert sorted(cells) == [1, 2]
    for number, frame in release.groupby("replicate"):
        heads = frame.drop_duplicates("household_id")
        expected = heads.groupby([heads["household_size"].astype(str), heads["household_type"]]).size()
        assert cells[number].sort_index().astype(int).equals(expected.sort_index())
    assert cells[1].sum() == 300 and cells[2].sum() == 250


def test_a_table_without_replicates_is_replicate_one(tmp_path):
    write_rows(_households(3, 120), tmp_path / "register.parquet", row_group_rows=11)
    cells = household_cells(ParquetTable(tmp_path / "register.parquet"), "household_id", ["household_size"])
    assert list(cells) == [1] and cells[1].sum() == 120


def test_the_distance_is_the_tvd_of_shares_and_names_the_worst_cell():
    index = pd.MultiIndex.from_tuples([("1", "single"), ("2", "couple"), ("3", "other")],
                                      names=["household_size", "household_type"])
    register = pd.Series([40, 40, 20], index=index)
    released = pd.Series([50, 30], index=index[:2])  # no three-person household at all
    tvd, cell = household_structure_tvd(released, register, ["household_size", "household_type"])
    # shares 0.625/0.375/0 against 0.4/0.4/0.2: half the absolute gaps
    assert tvd == pytest.approx(0.5 * (0.225 + 0.025 + 0.2))
    assert cell.startswith("household_size=1, household_type=single: 62.50% released vs 40.00%")
    assert household_structure_tvd(register, register, ["household_size", "household_type"])[0] == 0.0
