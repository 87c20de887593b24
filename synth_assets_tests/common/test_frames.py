import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synth_assets.common.frames import FrameStack, write_rows
from synth_assets.common.hashing import dataframe_sha256


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
