"""Tables built a piece at a time (replicates, chunks) and joined once, without holding them twice.

``pd.concat`` needs every piece and the joined copy at once: twice the table at the peak
(3.5 GB for five replicates of 1.2 million persons at about 290 bytes a person). Pieces kept
as Arrow tables join without a copy (``pa.concat_tables`` chains their buffers), and the
conversion to pandas releases each column's Arrow buffers as it goes (``self_destruct``), so
the peak is the table once plus one column. pyarrow is already a dependency (Parquet).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa


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

