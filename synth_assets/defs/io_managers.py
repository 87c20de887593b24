"""IO managers: tables as Parquet, verdicts as JSON, reports as HTML and fitted models as files, on any fsspec path.

Every stored value lives at ``stored_path(base, asset key, partition, extension)``, the one
path function the IO managers and the audit (``synth_assets.operations.lineage``) share.

A failed step never leaves half a file that a later step could read: on a local disk the
file is written under a temporary name and renamed; on object storage (``s3://``,
``gs://``, ``memory://``...) it is written locally and uploaded in one put, since an
object store shows an object whole or not at all, and a "rename" there is a copy.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
from upath import UPath

from synth_assets.common.files import atomic_path
from synth_assets.common.frames import ROW_GROUP_ROWS, ParquetTable, StagedTable, arrow_to_frame, write_rows
from synth_assets.defs.values import FACTS_KEY, MatchingReport, ModelFile, RegionDraw, WaveFile, WaveTable


def stored_path(base_path: str | os.PathLike[str] | UPath, asset_key: dg.AssetKey, partition: str, extension: str) -> UPath:
    """Where an IO manager of this module stores one partition of one asset: ``base/<key...>/<partition><ext>``."""
    return UPath(base_path).joinpath(*asset_key.path, f"{partition}{extension}")


class _StoredAssetIOManager(dg.UPathIOManager):
    """Paths from ``stored_path``, so whoever reads the files (the audit) finds them the same way."""

    def get_path_for_partition(self, context, path: UPath, partition: str) -> UPath:
        # the extension is added by UPathIOManager
        return stored_path(self._base_path, context.asset_key, partition, "")


def is_local(path: UPath) -> bool:
    """Whether ``path`` is on this machine's file system (plain pathlib semantics apply)."""
    return isinstance(path, Path)


def _atomic_write(path: UPath, write: Callable[[str], Any]) -> None:
    """Run ``write(local_file)`` and make its result appear at ``path`` all at once."""
    if is_local(path):
        with atomic_path(Path(str(path))) as tmp:
            write(str(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="synth-assets-") as folder:
        local = os.path.join(folder, path.name)
        write(local)
        path.fs.put_file(local, path.path)


def _read_local(path: UPath, read: Callable[[str], Any]) -> Any:
    """``read(local_file)`` on ``path``, fetched to a temporary file first when remote."""
    if is_local(path):
        return read(str(path))
    with tempfile.TemporaryDirectory(prefix="synth-assets-") as folder:
        local = os.path.join(folder, path.name)
        path.fs.get_file(path.path, local)
        return read(local)


def _write_parquet(obj: pd.DataFrame | WaveTable, file: str, row_group_rows: int = ROW_GROUP_ROWS) -> None:
    """The table as Parquet, ``row_group_rows`` at a time: the Arrow copy is one row group's, not the
    whole table's (at 1.2 million persons and five replicates, 1.7 GB less at the peak)."""
    data = obj.data if isinstance(obj, WaveTable) else obj
    facts = {FACTS_KEY: json.dumps(obj.facts(), allow_nan=False).encode()} if isinstance(obj, WaveTable) else None
    write_rows(data, file, row_group_rows=row_group_rows, metadata=facts)


class _ParquetIOManager(_StoredAssetIOManager):
    """A DataFrame, a ``WaveTable`` (its records, and its facts in the file's metadata), or a
    ``StagedTable``: a file the step wrote a replicate at a time (``common.frames.ParquetStack``),
    moved into place as it is, so the step never holds the table whole; a ``WaveFile`` is a staged
    wave, its facts already in its file, moved likewise.

    An input annotated ``ParquetTable`` gets the stored file instead (``common.frames``), for a
    step that scans the table or reads some columns or one replicate at a time: it then never
    holds the table whole; one annotated ``WaveFile`` gets a stored wave's file and facts.
    """

    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame | WaveTable | WaveFile | StagedTable,
                     path: UPath) -> None:
        if isinstance(obj, WaveFile):
            if not isinstance(obj.table, StagedTable):
                raise TypeError(f"{context.asset_key.to_user_string()}: a WaveFile to store must hold a staged "
                                f"table (WaveFile.stack), not {type(obj.table).__name__}")
            obj = obj.table
        if isinstance(obj, StagedTable):
            # moved, not rewritten: a rename on the same disk, else one copy (or one upload)
            _atomic_write(path, lambda tmp: shutil.move(os.fspath(obj.path), tmp))
            obj.moved_to(path)
            return
        if not isinstance(obj, (pd.DataFrame, WaveTable)):
            hint = (" (a ParquetTable is another asset's stored file: stage a table with "
                    "common.frames.ParquetStack to hand over a file)" if isinstance(obj, ParquetTable) else "")
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a DataFrame, a WaveTable or a "
                            f"StagedTable, got {type(obj).__name__}{hint}")
        _atomic_write(path, lambda tmp: _write_parquet(obj, tmp))

    def load_from_path(self, context: dg.InputContext,
                       path: UPath) -> pd.DataFrame | WaveTable | WaveFile | ParquetTable:
        annotation = getattr(getattr(context, "dagster_type", None), "typing_type", None)
        if annotation is ParquetTable:
            # an input annotated ParquetTable: the step reads what it needs, a row group at a time
            return ParquetTable(path)
        if annotation is WaveFile:
            return WaveFile.of_file(ParquetTable(path))
        with path.open("rb") as handle:  # any fsspec file system, with no temporary copy
            table = pq.read_table(handle)
        facts = (table.schema.metadata or {}).get(FACTS_KEY)
        data = arrow_to_frame(table)
        del table
        return WaveTable.from_facts(data, json.loads(facts)) if facts else data

    def load_input(self, context: dg.InputContext) -> Any:
        loaded = super().load_input(context)
        # Inputs spanning many upstream partitions (a survey's waves feeding one release)
        # ask for a dict even when only one partition exists yet.
        if (context.definition_metadata or {}).get("partitions_as_dict") and not isinstance(loaded, dict):
            return {context.asset_partition_keys[0]: loaded}
        return loaded

    def get_metadata(self, context: dg.OutputContext,
                     obj: pd.DataFrame | WaveTable | WaveFile | StagedTable) -> dict[str, Any]:
        table = obj.data if isinstance(obj, WaveTable) else obj.table if isinstance(obj, WaveFile) else obj
        # a staged table: from the stored file's footer (rows, and the dtypes its schema reads back as)
        rows, dtypes = ((table.num_rows, table.empty().dtypes) if isinstance(table, ParquetTable)
                        else (len(table), table.dtypes))
        return {
            "dagster/row_count": rows,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(str(c), str(t)) for c, t in dtypes.items()]
            ),
        }


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Tables as Parquet under ``base_path/<asset>/<partition>.parquet`` (local or object storage)."""

    base_path: str

    def create_io_manager(self, context) -> _ParquetIOManager:
        return _ParquetIOManager(base_path=UPath(self.base_path))

    def path(self, asset_key: dg.AssetKey, partition: str) -> UPath:
        """Where one partition of ``asset_key`` is stored."""
        return stored_path(self.base_path, asset_key, partition, _ParquetIOManager.extension)


class _JsonIOManager(_StoredAssetIOManager):
    extension = ".json"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        text = json.dumps(obj, indent=2, allow_nan=False)  # fails here, not when read back
        _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)


class JsonIOManager(dg.ConfigurableIOManagerFactory):
    """JSON-able values (a validation verdict) under ``base_path/<asset>/<partition>.json``."""

    base_path: str

    def create_io_manager(self, context) -> _JsonIOManager:
        return _JsonIOManager(base_path=UPath(self.base_path))


class _ReportIOManager(_StoredAssetIOManager):
    """A ``MatchingReport``: the page as ``<partition>.html``, its facts as ``<partition>.json`` beside it."""

    extension = ".html"

    def dump_to_path(self, context: dg.OutputContext, obj: MatchingReport, path: UPath) -> None:
        facts = json.dumps(obj.facts(), indent=2, allow_nan=False)
        _atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(facts, encoding="utf-8"))
        _atomic_write(path, lambda tmp: Path(tmp).write_text(obj.html, encoding="utf-8"))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> MatchingReport:
        with path.with_suffix(".json").open("r", encoding="utf-8") as handle:
            facts = json.load(handle)
        with path.open("r", encoding="utf-8") as handle:
            return MatchingReport.from_facts(handle.read(), facts)


class ReportIOManager(dg.ConfigurableIOManagerFactory):
    """Reports for people (the matching diagnostics) under ``base_path/<asset>/<partition>.html``."""

    base_path: str

    def create_io_manager(self, context) -> _ReportIOManager:
        return _ReportIOManager(base_path=UPath(self.base_path))


class _ModelIOManager(_StoredAssetIOManager):
    extension = ".model"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        _atomic_write(path, obj.save)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        from synth_assets.synthesis import Synthesizer, load_synthesizer  # lazy: torch and SDV are heavy

        if getattr(getattr(context, "dagster_type", None), "typing_type", None) is ModelFile:
            # an input annotated ModelFile: the step loads the model when, and for as long as, it needs
            # it, and reads its training log from the file's header without it
            return ModelFile(path, functools.partial(_read_local, path, load_synthesizer),
                             functools.partial(_read_local, path, Synthesizer.read_training_log))
        return _read_local(path, load_synthesizer)


class ModelIOManager(dg.ConfigurableIOManagerFactory):
    """Fitted synthesisers through their own ``save``/``load`` (under ``data/models``)."""

    base_path: str

    def create_io_manager(self, context) -> _ModelIOManager:
        return _ModelIOManager(base_path=UPath(self.base_path))


class _IntermediateIOManager(dg.UPathIOManager):
    """A region's draw (``RegionDraw``): its table as ``<run>/<step>/<output>.parquet``, its
    summary and region as JSON beside it; anything else as JSON. Paths by run and step (Dagster's
    own for op outputs), on the storage root: step pods on other nodes read them there."""

    extension = ".json"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, RegionDraw):
            table = path.with_suffix(".parquet")
            if isinstance(obj.table, StagedTable):
                _atomic_write(table, lambda tmp: shutil.move(os.fspath(obj.table.path), tmp))
                obj.table.moved_to(table)
            else:
                raise TypeError(f"region {obj.region}: stage its table with common.frames.ParquetStack")
            facts = {"region": obj.region, "summary": obj.summary}
        else:
            facts = {"value": obj}
        text = json.dumps(facts, indent=2, allow_nan=False)
        _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        with path.open("r", encoding="utf-8") as handle:
            facts = json.load(handle)
        if "region" in facts:
            return RegionDraw(facts["region"], ParquetTable(path.with_suffix(".parquet")), facts["summary"])
        return facts["value"]


class IntermediateIOManager(dg.ConfigurableIOManagerFactory):
    """Values one step of a run hands to another that are no asset (``base_path/<run>/<step>/``)."""

    base_path: str

    def create_io_manager(self, context) -> _IntermediateIOManager:
        return _IntermediateIOManager(base_path=UPath(self.base_path))
