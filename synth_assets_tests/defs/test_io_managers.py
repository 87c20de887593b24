"""The Parquet IO manager writes row group by row group and reads back the very table."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from synth_assets.defs.io_managers import _ParquetIOManager, _write_parquet
from synth_assets.defs.values import SourceFile, WaveTable


def _table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "household_id": pd.array(np.arange(rows) // 3, dtype="Int64"),
        "age": pd.array(np.where(rng.random(rows) < 0.1, None, rng.integers(0, 90, rows)), dtype="Int64"),
        "sex": pd.Categorical(rng.choice(["f", "m"], rows), categories=["f", "m", "x"]),
        # missing in the first row groups only: their slices alone would make it a null column
        "note": [None] * (rows - min(rows, 5)) + ["late"] * min(rows, 5),
        "income": np.where(rng.random(rows) < 0.2, np.nan, rng.lognormal(10, 1, rows)),
    })


def test_row_groups_hold_the_same_table_as_one_write(tmp_path):
    data = _table(1003)
    _write_parquet(data, str(tmp_path / "chunked.parquet"), row_group_rows=100)
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), tmp_path / "whole.parquet")
    assert pq.ParquetFile(tmp_path / "chunked.parquet").metadata.num_row_groups == 11
    manager = _ParquetIOManager(base_path=UPath(tmp_path))
    loaded = manager.load_from_path(None, UPath(tmp_path / "chunked.parquet"))  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(loaded, pd.read_parquet(tmp_path / "whole.parquet"))
    pd.testing.assert_frame_equal(loaded, data)
    assert pq.read_table(tmp_path / "chunked.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))


def test_a_wave_table_keeps_its_facts_and_an_empty_table_its_columns(tmp_path):
    origin = SourceFile("silc", "2024", "silc_2024.csv", "ab" * 32, "run-1")
    table = WaveTable(_table(250), origin, {"sex": {"f": "female", "m": "male"}})
    _write_parquet(table, str(tmp_path / "wave.parquet"), row_group_rows=100)
    manager = _ParquetIOManager(base_path=UPath(tmp_path))
    loaded = manager.load_from_path(None, UPath(tmp_path / "wave.parquet"))  # type: ignore[arg-type]
    assert isinstance(loaded, WaveTable) and loaded.facts() == table.facts()
    pd.testing.assert_frame_equal(loaded.data, table.data)
    _write_parquet(_table(0), str(tmp_path / "empty.parquet"))
    assert list(pd.read_parquet(tmp_path / "empty.parquet").columns) == list(_table(0).columns)


def test_an_input_annotated_parquet_table_gets_the_file_not_the_frame(tmp_path):
    import functools

    import dagster as dg

    from synth_assets.common.frames import ParquetTable
    from synth_assets.common.hashing import dataframe_sha256
    from synth_assets.defs.io_managers import ParquetIOManager
    from synth_assets.defs.signatures import with_keyword_inputs

    data = _table(250)
    seen: dict[str, object] = {}

    @dg.asset
    def release() -> pd.DataFrame:
        return data

    @dg.asset
    def frame_user(release: pd.DataFrame) -> None:
        seen["frame"] = release

    @dg.asset
    def scanner(release: ParquetTable) -> None:
        seen["table"] = release
        seen["sha256"] = release.sha256()

    @dg.asset_check(asset=release)
    @functools.partial(with_keyword_inputs, names=["release"], annotations={"release": ParquetTable})
    def scanned(**inputs: ParquetTable) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=isinstance(inputs["release"], ParquetTable))

    result = dg.materialize([release, frame_user, scanner, scanned],
                            resources={"io_manager": ParquetIOManager(base_path=str(tmp_path))})
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert isinstance(seen["table"], ParquetTable) and isinstance(seen["frame"], pd.DataFrame)
    assert seen["sha256"] == dataframe_sha256(data)  # the hash the checks record of the loaded table
    pd.testing.assert_frame_equal(pd.concat(seen["table"].frames(), ignore_index=True), seen["frame"])  # type: ignore[attr-defined]
