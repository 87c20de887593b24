"""The surplus of candidate households, spilled to local disk while the selection runs.

The selection chooses among two or three times the population's persons (``surplus``), but
its design reads only the margin and total variables and the household id: a dozen of the
release's 40-odd columns. So each piece of candidates (a chunk of the draw) is written to a
Parquet file of its own when it arrives, only those columns stay in memory, and the
chosen households' rows are read back piece by piece at the end. Measured at 100,000 persons
(``bench/scale``): the candidates held whole took about 300 bytes a person, three times the
population, plus as much again when the chunks were joined. pyarrow, a
dependency already (the IO manager's format); Parquet keeps the pandas dtypes (categories,
nullable integers) so the rows read back equal those written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_assets.common.frames import FrameStack


class Candidates:
    """Frames appended one after another (rows), every column on disk, ``keep`` columns in memory.

    ``frame()`` gives the kept columns of every row appended (positions as index);
    ``take(positions)`` reads the whole rows at those positions back from disk, in order.
    A context manager: the file is removed on exit. ``directory``: where the file goes
    (default: the system's temporary folder, ``TMPDIR``).
    """

    def __init__(self, keep: Sequence[str], directory: str | os.PathLike[str] | None = None) -> None:
        self.keep = list(dict.fromkeys(keep))
        self._folder = tempfile.TemporaryDirectory(prefix="synth-assets-candidates-", dir=directory)
        self._schema: pa.Schema | None = None
        self._kept: list[pd.DataFrame] = []
        self._ends: list[int] = []  # rows appended up to the end of each piece (one file each)
        self._on_disk_only = 0  # pieces whose kept columns left memory (release_kept), read back from disk

    def __enter__(self) -> Candidates:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._folder.cleanup()

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def append(self, frame: pd.DataFrame) -> None:
        missing = [c for c in self.keep if c not in frame.columns]
        if missing:
            raise KeyError(f"candidates lack the column(s) {missing} the selection reads")
        if not len(frame):
            return
        if self._schema is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._schema = table.schema
        else:  # the first piece's types: a piece with a column all missing keeps them
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        pq.write_table(table, self._piece(len(self._ends)))
        del table
        self._kept.append(frame[self.keep])
        self._ends.append(len(self) + len(frame))

    def _piece(self, index: int) -> Path:
        return Path(self._folder.name) / f"piece-{index}.parquet"

    def frame(self) -> pd.DataFrame:
        """The kept columns of every row, index 0..n-1 (the pieces joined once, then kept joined)."""
        if self._on_disk_only:
            read = [pq.read_table(self._piece(i), columns=self.keep).to_pandas() for i in range(self._on_disk_only)]
            self._kept, self._on_disk_only = read + self._kept, 0
        if not self._kept:
            return pd.DataFrame({c: [] for c in self.keep})
        if len(self._kept) > 1:
            self._kept = [pd.concat(self._kept, ignore_index=True)]
        return self._kept[0].reset_index(drop=True) if not isinstance(self._kept[0].index, pd.RangeIndex) \
            else self._kept[0]

    def release_kept(self) -> None:
        """The kept columns leave memory (the next :meth:`frame` reads them back from disk): once the
        selection has searched, it reads the chosen rows only, and at 2 million persons the kept
        columns of 6 million candidates were still resident while those rows were read and weighted."""
        self._on_disk_only = len(self._ends)
        self._kept = []

    def take(self, positions: np.ndarray) -> pd.DataFrame:
        """Every column of the rows at ``positions`` (ascending), read back one piece at a time."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) and (np.any(np.diff(positions) < 0) or positions[0] < 0 or positions[-1] >= len(self)):
            raise ValueError("positions must be ascending and within the candidates")
        if self._schema is None:
            return self.frame().iloc[:0]
        chosen = FrameStack()
        start, offset = 0, 0
        for index, stop in enumerate(np.searchsorted(positions, self._ends)):
            if stop > start:
                piece = pq.read_table(self._piece(index)).take(pa.array(positions[start:stop] - offset))
                chosen.append_table(piece)
            start, offset = int(stop), self._ends[index]
        if not len(chosen):
            return self._schema.empty_table().to_pandas()
        return chosen.to_pandas()

    def pieces(self) -> Iterator[pd.DataFrame]:
        """Every row with every column, a piece (an appended frame) at a time, in order: for a step
        that hands its candidates to another (a region's, chosen from with every region's)."""
        for index in range(len(self._ends)):
            table = pq.read_table(self._piece(index))
            yield table.to_pandas(split_blocks=True, self_destruct=True)
