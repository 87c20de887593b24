"""Tables built a piece at a time (replicates, chunks) and joined once, without holding them twice.

``pd.concat`` needs every piece and the joined copy at once: twice the table at the peak
(3.5 GB for five replicates of 1.2 million persons at about 290 bytes a person). Pieces kept
as Arrow tables join without a copy (``pa.concat_tables`` chains their buffers), and the
conversion to pandas releases each column's Arrow buffers as it goes (``self_destruct``), so
the peak is the table once plus one column. pyarrow is already a dependency (Parquet).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: Rows converted to Arrow and written at a time (one Parquet row group each).
ROW_GROUP_ROWS = 100_000


class FrameStack:
    """Frames appended one after another (rows), joined by :meth:`to_pandas` as ``pd.concat`` would.

    Pieces have the same columns, as the replicates of one model do; a column missing in every
    row of one piece takes the others' type, and categoricals of different categories join as
    one categorical of their union (``pd.concat`` would make that column object). The index is
    not kept (``ignore_index``).
    """

    def __init__(self) -> None:
        self._tables: list[pa.Table] = []

    def append(self, frame: pd.DataFrame) -> None:
        self._tables.append(pa.Table.from_pandas(frame, preserve_index=False))

    def append_table(self, table: pa.Table) -> None:
        """A piece already in Arrow (rows read back from Parquet), with its pandas metadata."""
        self._tables.append(table)

    def __len__(self) -> int:
        return sum(table.num_rows for table in self._tables)

    def to_pandas(self) -> pd.DataFrame:
        """The pieces as one frame; the stack is empty afterwards (its buffers went to the frame)."""
        if not self._tables:
            raise ValueError("no frame appended")
        table = pa.concat_tables(self._tables, promote_options="default")
        self._tables = []
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
        return frame


def write_rows(frame: pd.DataFrame, file: str | os.PathLike[str], rows: np.ndarray | None = None,
               columns: Sequence[str] | None = None, *, row_group_rows: int = ROW_GROUP_ROWS,
               metadata: dict[bytes, bytes] | None = None) -> int:
    """``frame``'s rows at positions ``rows`` (default all) and ``columns`` (default all) as Parquet,
    ``row_group_rows`` at a time, ``metadata`` added to the file's schema; returns the rows written.

    Only one row group is converted to Arrow at a time: a replicate selected with a mask, its
    column dropped and written by ``to_parquet`` is three copies of it (1.1 GB more at the peak
    for a replicate of 1.2 million persons).
    """
    positions = np.arange(len(frame)) if rows is None else np.asarray(rows, dtype=np.int64)
    wanted = np.arange(frame.shape[1]) if columns is None else frame.columns.get_indexer(pd.Index(list(columns)))
    if (wanted < 0).any():
        raise KeyError(f"columns not in the table: {[c for c in columns or [] if c not in frame.columns]}")
    schema = pa.Schema.from_pandas(frame.iloc[np.arange(0), wanted], preserve_index=False)
    for i, field in enumerate(schema):
        if pa.types.is_null(field.type):  # an object column: its type from its values
            typed = pa.Schema.from_pandas(frame.iloc[positions, [wanted[i]]], preserve_index=False).field(0)
            schema = schema.set(i, typed)
    if metadata:
        schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    with pq.ParquetWriter(file, schema) as writer:
        for start in range(0, max(len(positions), 1), row_group_rows):
            piece = frame.iloc[positions[start:start + row_group_rows], wanted]
            writer.write_table(pa.Table.from_pandas(piece, schema=schema, preserve_index=False))
    return len(positions)
