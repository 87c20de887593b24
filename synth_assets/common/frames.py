"""Tables built a piece at a time (replicates, chunks) and joined once, without holding them twice.

``pd.concat`` needs every piece and the joined copy at once: twice the table at the peak
(3.5 GB for five replicates of 1.2 million persons at about 290 bytes a person). Pieces kept
as Arrow tables join without a copy (``pa.concat_tables`` chains their buffers), and the
conversion to pandas releases each column's Arrow buffers as it goes (``self_destruct``), so
the peak is the table once plus one column. pyarrow is already a dependency (Parquet).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_assets.common.hashing import TableSha256
from synth_assets.common.memory import release_free_memory

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
        frame = arrow_to_frame(table)
        del table
        return frame


def _schema_of(frame: pd.DataFrame) -> pa.Schema:
    """The Arrow schema of ``frame`` (its pandas metadata included), without converting the frame:
    an object column takes its type from its values (an empty slice would make it a null column)."""
    schema = pa.Schema.from_pandas(frame.iloc[:0], preserve_index=False)
    for i, field in enumerate(schema):
        if pa.types.is_null(field.type) and len(frame):
            schema = schema.set(i, pa.Schema.from_pandas(frame.iloc[:, [i]], preserve_index=False).field(0))
    return schema


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


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """A whole table read from Parquet as one frame; ``table`` is spent (empty) afterwards.

    Arrow's buffers are released column by column as pandas takes them, so the peak is the frame
    plus one column, not the frame twice. Arrow's pool then keeps what it freed for its own reuse,
    which pandas and NumPy never make: measured, 0.8 GB after the 2-million-person matched dataset
    (a 0.5 GB frame), carried under everything the step builds next. It goes back to the system here.
    """
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    release_free_memory()
    return frame


class ParquetTable:
    """A table left in its Parquet file, read a row group at a time or a few columns at a time.

    What a step receives instead of a whole DataFrame when it only scans the table (hashes it,
    copies it out replicate by replicate) or needs some of its columns: the file's row groups
    (``ROW_GROUP_ROWS`` rows each, as ``write_rows`` writes them) are converted one at a time, so
    the step holds one row group, not the table. ``path``: a local path or any object with
    ``open("rb")`` (a ``UPath`` on object storage). Frames read back have the dtypes the table
    was written with (pandas metadata); a categorical column's categories are those of its row group.
    """

    def __init__(self, path: Any) -> None:
        self.path = path
        self._known_categories: dict[str, pd.Index] = {}
        # a view (:meth:`where`, :meth:`select`): rows whose column is in a set of values, some columns
        self._filters: tuple[tuple[str, np.ndarray], ...] = ()
        self._selected: list[str] | None = None
        self._group_rows: list[int] | None = None  # rows each row group keeps under the filters

    def _file(self) -> pq.ParquetFile:
        # A local file is opened by Arrow, which closes it with the reader; a Python file object
        # (``Path.open``) stayed open until the garbage collector found it, with a ResourceWarning
        # that forked steps printed into the CLI's output. Object storage still goes through fsspec.
        if getattr(self.path, "protocol", "") in ("", "file", "local"):
            return pq.ParquetFile(os.fspath(self.path))
        return pq.ParquetFile(self.path.open("rb"))

    def _view(self, filters: tuple[tuple[str, np.ndarray], ...], selected: list[str] | None) -> ParquetTable:
        view = ParquetTable(self.path)
        view._known_categories = self._known_categories  # the whole file's categories, shared
        view._filters, view._selected = filters, selected
        return view

    def where(self, column: str, values: Any) -> ParquetTable:
        """A view of the rows whose ``column`` is one of ``values`` (in the file's order): read, sampled,
        hashed a row group at a time like the table itself. Views combine (``where(...).where(...)``)."""
        if column not in self._file().schema_arrow.names:
            raise KeyError(f"{self.path}: no column {column!r}")
        return self._view((*self._filters, (column, np.unique(np.asarray(list(values))))), self._selected)

    def select(self, columns: Sequence[str]) -> ParquetTable:
        """A view with only ``columns`` (in that order); the filters of :meth:`where` still apply."""
        self._check_columns(columns)
        return self._view(self._filters, list(columns))

    def _check_columns(self, columns: Sequence[str]) -> None:
        names = self._file().schema_arrow.names
        missing = [c for c in columns if c not in names]
        if missing:
            raise KeyError(f"{self.path}: columns not in the table: {missing}")

    @property
    def num_rows(self) -> int:
        if not self._filters:
            return int(self._file().metadata.num_rows)
        return sum(self._kept_rows())

    @property
    def columns(self) -> list[str]:
        return list(self._selected) if self._selected is not None else list(self._file().schema_arrow.names)

    @property
    def schema_metadata(self) -> dict[bytes, bytes]:
        """The key-value metadata of the file's schema (what a writer kept beside the records)."""
        return dict(self._file().schema_arrow.metadata or {})

    def _may_hold(self, file: pq.ParquetFile, group: int) -> bool:
        """Whether row group ``group`` may hold rows of the view (its min/max statistics)."""
        for column, values in self._filters:
            stats = file.metadata.row_group(group).column(file.schema_arrow.get_field_index(column)).statistics
            if stats is not None and stats.has_min_max and len(values) and (
                    values[-1] < stats.min or values[0] > stats.max):
                return False
        return True

    def _mask(self, file: pq.ParquetFile, group: int) -> np.ndarray | None:
        """Rows of row group ``group`` in the view (None: every row); reads the filters' columns only."""
        if not self._filters:
            return None
        if not self._may_hold(file, group):
            return np.zeros(file.metadata.row_group(group).num_rows, dtype=bool)
        names = list(dict.fromkeys(column for column, _ in self._filters))
        table = file.read_row_group(group, columns=names)
        mask = np.ones(table.num_rows, dtype=bool)
        for column, values in self._filters:
            mask &= np.isin(table.column(column).to_numpy(zero_copy_only=False), values)
        return mask

    def _kept_rows(self) -> list[int]:
        if self._group_rows is None:
            file = self._file()
            self._group_rows = [int(mask.sum()) if (mask := self._mask(file, g)) is not None
                                else file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
        return self._group_rows

    def _group_table(self, file: pq.ParquetFile, group: int, columns: list[str],
                     mask: np.ndarray | None) -> pa.Table:
        table = file.read_row_group(group, columns=columns)
        return table if mask is None else table.filter(pa.array(mask))

    def _group_frame(self, file: pq.ParquetFile, group: int, columns: list[str],
                     mask: np.ndarray | None) -> pd.DataFrame:
        return self._group_table(file, group, columns, mask).to_pandas()

    def frames(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """The rows, one row group at a time, in order (``columns``: only those; default the view's)."""
        for file, group, wanted, mask in self._groups(columns):
            yield self._group_frame(file, group, wanted, mask)

    def arrow_groups(self, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        """:meth:`frames` as Arrow tables: each column of the file's one Arrow type in every row group,
        where pandas makes an integer column with a missing value a float column in that group alone."""
        for file, group, wanted, mask in self._groups(columns):
            yield self._group_table(file, group, wanted, mask)

    def _groups(self, columns: Sequence[str] | None) -> Iterator[tuple[pq.ParquetFile, int, list[str],
                                                                       np.ndarray | None]]:
        """The row groups holding rows of the view, with the columns to read and the rows kept."""
        file = self._file()
        wanted = list(columns or self.columns)
        if columns is not None or self._selected is not None:
            self._check_columns(wanted)
        for group in range(file.num_row_groups):
            mask = self._mask(file, group)
            if mask is not None and not mask.any():
                continue
            yield file, group, wanted, mask

    def take(self, positions: Sequence[int] | np.ndarray, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows at ``positions`` (of the view's rows, in that order, as ``frame.iloc[positions]``
        would give them; index 0..n-1), ``columns`` only (default the view's).

        One row group in memory at a time besides the rows taken; categorical columns get the
        categories the whole file gives them, so the rows are those of the table read whole.
        """
        positions = np.asarray(positions, dtype=np.int64)
        wanted = list(columns) if columns is not None else self.columns
        self._check_columns(wanted)
        file = self._file()
        counts = self._kept_rows() if self._filters else [
            file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
        total = sum(counts)
        if len(positions) and (positions.min() < 0 or positions.max() >= total):
            raise IndexError(f"{self.path}: positions outside the {total} rows of the table")
        order = np.argsort(positions, kind="stable")
        ordered = positions[order]
        pieces: list[pd.DataFrame] = []
        start = 0
        for group, count in enumerate(counts):
            low, high = np.searchsorted(ordered, [start, start + count])
            if high > low:
                frame = self._group_frame(file, group, wanted, self._mask(file, group))
                pieces.append(frame.iloc[ordered[low:high] - start])
            start += count
        if pieces:
            joined = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0].reset_index(drop=True)
        else:
            joined = file.schema_arrow.empty_table().to_pandas()[wanted]
        # back to the order asked for: joined's row i is the i-th smallest position
        frame = joined.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
        for column, categories in self._categories(list(frame.columns)).items():
            frame[column] = frame[column].astype(pd.CategoricalDtype(categories, ordered=frame[column].cat.ordered))
        return frame

    def values(self, by: str) -> list[Any]:
        """The distinct values of column ``by`` (the replicates), sorted."""
        return np.unique(self.read([by])[by].to_numpy()).tolist()

    def parts(self, by: str, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """:meth:`part` of each value of column ``by`` (a replicate), one value at a time in sorted order."""
        for value in self.values(by):
            yield self.part(by, value, columns)

    def rows_in_order(self, keys: Sequence[str]) -> bool:
        """Whether the rows come sorted by ``keys`` (numeric columns, lexicographic order, ties
        allowed): read a row group of those columns at a time. Then the rows of one key are together."""
        previous: pd.DataFrame | None = None
        for block in self.frames(list(keys)):
            if previous is not None:
                block = pd.concat([previous, block], ignore_index=True)
            if len(block) < 2:
                previous = block
                continue
            if not all(pd.api.types.is_numeric_dtype(block[k]) for k in keys):
                return False
            decided = np.zeros(len(block) - 1, dtype=bool)
            for key in keys:
                values = block[key].to_numpy(dtype=float)
                step = np.sign(values[1:] - values[:-1])
                if (~decided & (step < 0)).any():
                    return False
                decided |= step != 0
            previous = block.iloc[[-1]]
        return True

    def whole_parts(self, keys: Sequence[str], columns: Sequence[str] | None = None,
                    replicate: str = "replicate", part_rows: int = 0) -> Iterator[pd.DataFrame]:
        """The rows in parts that never split a ``keys`` value (a household, a person, a day), in order:
        a row group at a time when the rows come sorted by ``keys`` (:meth:`rows_in_order`; as the
        release, the matched data and the linked tables are written), so the step holds a row group
        whatever the table's size; else one ``replicate`` at a time (a key within one), else whole.
        ``columns``: those and the keys (default all).

        ``part_rows``: sorted rows come in as few parts as hold about that many rows each, of about
        equal size (row groups joined: a part ends at the first key boundary past its share, so it
        may hold up to a row group more), each with the categories the whole table gives (so the
        parts join as the whole table would read); a table of no more rows comes whole (:meth:`read`)."""
        wanted = list(dict.fromkeys([*(self.columns if columns is None else columns), *keys]))
        if part_rows and self.num_rows <= part_rows:
            yield self.read(wanted)
        elif self.rows_in_order(keys):
            parts = self._sorted_whole_parts(wanted, keys)
            yield from self._joined_parts(parts, part_rows) if part_rows else parts
        elif replicate in keys and replicate in self.columns:
            yield from self.parts(replicate, wanted)
        else:
            yield self.read(wanted)

    def _joined_parts(self, parts: Iterator[pd.DataFrame], part_rows: int) -> Iterator[pd.DataFrame]:
        """Consecutive ``parts`` joined into as few of about equal size as hold about ``part_rows`` rows,
        on the whole table's categories: part k ends where the rows so far first reach k shares."""
        share = self.num_rows / -(-self.num_rows // part_rows)  # the rows over the fewest parts
        pending: list[pd.DataFrame] = []
        held = done = 0
        for part in parts:
            # a row group's held-back key joined to the next one's rows may have left a column object
            # (their dictionaries differed): the categories are set by value either way
            pending.append(part.assign(**{
                column: part[column].astype(pd.CategoricalDtype(
                    categories, ordered=bool(getattr(part[column].dtype, "ordered", False))))
                for column, categories in self._categories(list(part.columns)).items()}))
            held += len(part)
            if held >= (done + 1) * share - 0.5:
                yield _joined(pending)
                pending, done = [], done + 1
        if pending:
            yield _joined(pending)

    def _sorted_whole_parts(self, columns: list[str], keys: Sequence[str]) -> Iterator[pd.DataFrame]:
        """The rows of a table sorted by ``keys``, a row group at a time, each part holding whole keys:
        a row group's last key is held back and joined to the next row group's rows."""
        carry: pd.DataFrame | None = None
        for block in self.frames(columns):
            if carry is not None and len(carry):
                block = pd.concat([carry, block], ignore_index=True)
            if not len(block):
                continue
            last = block[list(keys)].iloc[-1]
            is_last = (block[list(keys)] == last).all(axis=1).to_numpy()
            carry = block.loc[is_last]
            if (~is_last).any():
                yield block.loc[~is_last]
        if carry is not None and len(carry):
            yield carry

    def part(self, by: str, value: Any, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows whose column ``by`` equals ``value`` (``columns`` only, in the table's order), of the
        whole file (a view's filters do not apply: :meth:`where` is the view's way).

        Read from the row groups whose statistics may hold ``value`` (all of them when the file
        has none), so for a table written replicate after replicate a replicate's rows cost
        that replicate's memory, not the table's.
        """
        file = self._file()
        index = file.schema_arrow.get_field_index(by)
        if index < 0:
            raise KeyError(f"{self.path}: no column {by!r}")
        groups = []
        for group in range(file.num_row_groups):
            stats = file.metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_min_max or stats.min <= value <= stats.max:
                groups.append(group)
        wanted = None if columns is None else list(dict.fromkeys([*columns, by]))
        table = file.read_row_groups(groups, columns=wanted)
        table = table.filter(pa.array(table.column(by).to_numpy(zero_copy_only=False) == value))
        frame = arrow_to_frame(table)
        del table
        for column, categories in self._categories(list(frame.columns)).items():
            frame[column] = frame[column].cat.set_categories(categories)
        return frame if columns is None or by in columns else frame.drop(columns=[by])

    def _categories(self, columns: Sequence[str]) -> dict[str, pd.Index]:
        """The categories each categorical column has when the whole table is read (the union of
        its row groups' dictionaries, in that order): a part read from some row groups gets them
        too, so it is the very frame the whole table would give for its rows."""
        arrow = self._file().schema_arrow
        wanted = [c for c in columns if pa.types.is_dictionary(arrow.field(c).type)
                  and c not in self._known_categories]
        for column in wanted:  # one column's codes at a time (a byte or two a row), once per table
            self._known_categories[column] = ParquetTable(self.path).read([column])[column].cat.categories
        return {c: self._known_categories[c] for c in columns if c in self._known_categories}

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The whole table, or only ``columns`` of it, as one frame (as the Parquet IO manager reads it).

        A view (:meth:`where`) is read as :meth:`take` of all its rows (the whole file's categories)."""
        if self._filters:
            return self.take(np.arange(self.num_rows), columns)
        if columns is None:
            columns = self._selected
        opener = getattr(self.path, "open", None)
        source = opener("rb") if callable(opener) else os.fspath(self.path)
        table = pq.read_table(source, columns=None if columns is None else list(columns))
        frame = arrow_to_frame(table)
        del table
        return frame

    def sha256(self) -> str:
        """``dataframe_sha256`` of the table, one row group in memory at a time."""
        hasher = TableSha256()
        for frame in self.frames():
            hasher.update(frame)
        if hasher.blocks == 0:  # no row group: the columns still count
            hasher.update(self._file().schema_arrow.empty_table().to_pandas())
        return hasher.hexdigest()

    def __repr__(self) -> str:
        view = "".join(f".where({c!r}, {len(v)} values)" for c, v in self._filters)
        view += f".select({self._selected})" if self._selected is not None else ""
        return f"ParquetTable({str(self.path)!r}){view}"

    def empty(self) -> pd.DataFrame:
        """No rows, every column (the view's) with the dtype it is read back with (to describe the columns)."""
        frame = self._file().schema_arrow.empty_table().to_pandas()
        return frame if self._selected is None else frame[self._selected]

    def write_split(self, by: str, files: Mapping[Any, str | os.PathLike[str]],
                    columns: Sequence[str] | None = None) -> dict[Any, int]:
        """The rows of each value ``v`` of column ``by`` to ``files[v]`` (``columns`` only, default all
        but ``by``), in the table's order, in one pass over its row groups; returns the rows per file.

        Rows are filtered and written in Arrow, one row group in memory at a time: the parts are the
        frames ``frame[frame[by] == v][columns]`` would give (same values and dtypes), each written by
        row groups. Values of ``by`` not in ``files`` are skipped.
        """
        file = self._file()
        arrow = file.schema_arrow
        kept = [c for c in arrow.names if c != by] if columns is None else list(columns)
        # the pandas metadata of the columns kept (dtypes to restore), types as stored
        pandas = pa.Schema.from_pandas(self.empty()[kept], preserve_index=False).metadata
        schema = pa.schema([arrow.field(c) for c in kept], metadata=pandas)
        counts = dict.fromkeys(files, 0)
        writers = {value: pq.ParquetWriter(path, schema) for value, path in files.items()}
        try:
            for group in range(file.num_row_groups):
                table = file.read_row_group(group, columns=[*kept, by])
                values = table.column(by).to_numpy()
                for value, writer in writers.items():
                    rows = np.flatnonzero(values == value)
                    if len(rows):
                        writer.write_table(table.take(rows).select(kept).replace_schema_metadata(pandas))
                        counts[value] += len(rows)
        finally:
            for writer in writers.values():
                writer.close()
        return counts


class StagedTable(ParquetTable):
    """A table a step wrote to a staged file of its own (:meth:`ParquetStack.finish`), which the
    Parquet IO manager moves into the warehouse instead of writing a DataFrame.

    Only such a table is moved: a plain ``ParquetTable`` is a file someone else stores (an
    input), which must stay where it is. The staged folder is removed once the table is dropped.
    """

    def __init__(self, path: str, folder: str) -> None:
        super().__init__(path)
        # the staged folder goes with the table (a step that failed after staging it), or once moved
        self._remove = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)

    def detach(self) -> str:
        """The staged file's path, left on disk when this object goes: for a table handed to another
        process (``ParquetStack.extend``), staged under a folder its receiver removes."""
        self._remove.detach()
        return str(self.path)

    def moved_to(self, path: Any) -> None:
        """The staged file is now at ``path`` (the stored file): the table reads it from there."""
        self.path = path
        self._remove()


class ParquetStack:
    """Frames appended one after another (rows), written to a staged Parquet file as they come:
    :meth:`finish` gives the file as a :class:`StagedTable`, so no step holds the whole table.

    The file reads back as :meth:`FrameStack.to_pandas` joins the same frames, whole or a row
    group at a time (``ParquetTable``: same values, dtypes and hash). One Arrow schema for every
    row group: a column missing in every row of one frame (a null column) takes the others' type,
    and an integer column missing in some rows is stored as float, as pandas joins it (stored as
    integers, a row group without a missing value would read back as integers, the others as
    floats); a categorical column is stored with each frame's own categories, which a read of the
    whole file joins as one categorical of their union (in the order they came). Each frame is
    converted ``row_group_rows`` at a time (one Parquet row group each, never two frames'), never
    whole: the Arrow copy is one row group's. An integer column that is float in another frame is
    float throughout, as ``pd.concat`` joins them. ``directory``: where the staged folder goes
    (default the system's temporary folder, ``TMPDIR``: local disk, whatever the warehouse);
    ``metadata``: added to the file's schema (what a stored ``WaveTable`` keeps beside its records).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 row_group_rows: int = ROW_GROUP_ROWS, metadata: dict[bytes, bytes] | None = None) -> None:
        self.row_group_rows = row_group_rows
        self._metadata = dict(metadata or {})
        self._folder = tempfile.mkdtemp(prefix="synth-assets-staged-", dir=directory)
        # removed if the stack is dropped unfinished (a failed step); handed to the table by finish
        self._remove = weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        self._file = os.path.join(self._folder, "table.parquet")
        self._schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0
        self._missing: set[str] = set()  # columns of a null type in some frame with rows

    def __len__(self) -> int:
        return self._rows

    @property
    def started(self) -> bool:
        """Whether a frame (perhaps of no rows) was appended: :meth:`finish` has a file to give."""
        return self._writer is not None

    def append(self, frame: pd.DataFrame) -> None:
        """``frame``'s rows after those appended before (its index is not kept)."""
        schema = self._joined_schema(_schema_of(frame), len(frame))
        if self._schema is None or not schema.equals(self._schema, check_metadata=True):
            self._restart(schema)
        assert self._writer is not None
        for start in range(0, len(frame), self.row_group_rows):
            piece = frame.iloc[start:start + self.row_group_rows]
            self._writer.write_table(pa.Table.from_pandas(piece, schema=schema, preserve_index=False))
        self._rows += len(frame)

    def extend(self, path: str | os.PathLike[str]) -> None:
        """The rows of another stack's finished file (``StagedTable.path``) after those appended
        before, a row group at a time and as Arrow, as if its frames had been appended here: a
        table made in a child process (``common.parallel.forked_imap``) joins its parent's."""
        source = pq.ParquetFile(path)
        # joined once, as a frame is: its row groups share one schema (an integer column widened by
        # another file's missing values stays widened for every group of this one)
        schema = self._joined_schema(source.schema_arrow, source.metadata.num_rows)
        if self._schema is None or not schema.equals(self._schema, check_metadata=True):
            self._restart(schema)
        assert self._writer is not None
        for group in range(source.num_row_groups):
            piece = source.read_row_group(group)
            self._writer.write_table(piece.cast(schema))
            self._rows += piece.num_rows

    def finish(self) -> StagedTable:
        """The staged file, complete; nothing can be appended afterwards."""
        if self._writer is None:
            raise ValueError("no frame appended")
        self._writer.close()
        self._writer = None
        self._remove.detach()
        return StagedTable(self._file, self._folder)

    def _joined_schema(self, new: pa.Schema, rows: int) -> pa.Schema:
        """The stack's schema with ``new``'s frame (of ``rows`` rows) in it."""
        # one dictionary type per categorical column: 32-bit codes, as a frame may bring more categories
        new = pa.schema([f.with_type(pa.dictionary(pa.int32(), f.type.value_type, f.type.ordered))
                         if pa.types.is_dictionary(f.type) else f for f in new], metadata=new.metadata)
        if rows:
            self._missing |= {f.name for f in new if _untyped(f.type)}
        if self._metadata:
            new = new.with_metadata({**(new.metadata or {}), **self._metadata})
        if self._schema is None:
            schema = new
        elif new.names != self._schema.names:
            raise ValueError(f"a frame with the columns {new.names} appended to a table of {self._schema.names}")
        else:
            schema = self._schema
            for i, (mine, theirs) in enumerate(zip(self._schema, new, strict=True)):
                if _untyped(mine.type) and not _untyped(theirs.type):
                    schema = _with_column(schema, i, theirs, _pandas_column(new, theirs.name))
                elif _integer_and_float(mine.type, theirs.type):
                    float_field = mine if pa.types.is_floating(mine.type) else theirs
                    schema = _with_column(schema, i, mine.with_type(float_field.type),
                                          _pandas_column(new if float_field is theirs else schema, mine.name))
                elif not (mine.type.equals(theirs.type) or _untyped(theirs.type)):
                    raise TypeError(f"column {mine.name!r} is {theirs.type} in the frame appended, "
                                    f"{mine.type} in the frames before")
        for i, field in enumerate(schema):  # missing values in an integer column: floats, as in pandas
            column = _pandas_column(schema, field.name)
            if (field.name in self._missing and pa.types.is_integer(field.type)  # not pandas' nullable Int64
                    and not str((column or {}).get("numpy_type", "")).startswith(("Int", "UInt"))):
                schema = _with_column(schema, i, field.with_type(pa.float64()),
                                      {**(column or {}), "pandas_type": "float64", "numpy_type": "float64"})
        return schema

    def _restart(self, schema: pa.Schema) -> None:
        """Write with ``schema`` from now on: what was written (a null column that now has a type)
        is copied into a file of that schema, a row group at a time."""
        if self._writer is not None:
            self._writer.close()
            written = self._file + ".before"
            os.replace(self._file, written)
            self._writer = pq.ParquetWriter(self._file, schema)
            before = pq.ParquetFile(written)
            for group in range(before.num_row_groups):
                self._writer.write_table(before.read_row_group(group).cast(schema))
            del before
            os.remove(written)
        else:
            self._writer = pq.ParquetWriter(self._file, schema)
        self._schema = schema


def _integer_and_float(one: pa.DataType, other: pa.DataType) -> bool:
    """One an integer type, the other a float one: joined as floats, as pandas joins them."""
    return ((pa.types.is_integer(one) and pa.types.is_floating(other))
            or (pa.types.is_floating(one) and pa.types.is_integer(other)))


def _untyped(kind: pa.DataType) -> bool:
    """A column whose type its values do not tell: all missing, or a categorical without categories."""
    return pa.types.is_null(kind) or (pa.types.is_dictionary(kind) and pa.types.is_null(kind.value_type))


def _pandas_column(schema: pa.Schema, name: str) -> dict[str, Any] | None:
    """The pandas metadata of column ``name`` (its dtype when read back)."""
    return next((c for c in (schema.pandas_metadata or {}).get("columns", []) if c["name"] == name), None)


def _with_column(schema: pa.Schema, i: int, field: pa.Field, pandas: dict[str, Any] | None) -> pa.Schema:
    """``schema`` with column ``i`` of ``field``'s type and the pandas metadata ``pandas``."""
    schema = schema.set(i, field)
    metadata = schema.pandas_metadata
    if metadata is None or pandas is None:
        return schema
    metadata["columns"] = [pandas if c["name"] == field.name else c for c in metadata["columns"]]
    return schema.with_metadata({**(schema.metadata or {}), b"pandas": json.dumps(metadata).encode()})


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``frames`` as one, index 0..n-1 (the one frame itself, reindexed, when there is one)."""
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


def parts_side_by_side(left: Iterable[pd.DataFrame], right: Iterable[pd.DataFrame],
                       keys: list[str]) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Each part of ``left`` with the rows of ``right`` up to its last key, both sorted by ``keys``:
    a merge join of two tables read in parts (``ParquetTable.whole_parts``), one part of each in
    memory besides the rows carried over. A ``right`` row past the last part of ``left`` is never
    yielded."""
    others = iter(right)
    pending: pd.DataFrame | None = None
    exhausted = False
    for part in left:
        if not len(part):
            continue
        last = tuple(part[keys].iloc[-1])
        while not exhausted and (pending is None or not len(pending) or rows_at_most(pending.iloc[[-1]], keys, last).all()):
            more = next(others, None)
            if more is None:
                exhausted = True
            else:
                pending = more if pending is None or not len(pending) else pd.concat([pending, more], ignore_index=True)
        if pending is None:
            yield part, pd.DataFrame(columns=part.columns)
            continue
        upto = rows_at_most(pending, keys, last)
        yield part, pending.loc[upto]
        pending = pending.loc[~upto]


def rows_at_most(frame: pd.DataFrame, keys: list[str], last: tuple[Any, ...]) -> np.ndarray:
    """Rows of ``frame`` whose ``keys`` come at or before ``last`` in lexicographic order."""
    before = np.zeros(len(frame), dtype=bool)
    equal = np.ones(len(frame), dtype=bool)
    for key, value in zip(keys, last):
        column = frame[key].to_numpy()
        before |= equal & (column < value)
        equal &= column == value
    return before | equal
