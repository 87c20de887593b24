"""IO managers: tables as Parquet and fitted models as files, on any fsspec path.

A failed step never leaves half a file that a later step could read: on a local disk the
file is written under a temporary name and renamed; on object storage (``s3://``,
``gs://``, ``memory://``...) it is written locally and uploaded in one put, since an
object store shows an object whole or not at all, and a "rename" there is a copy.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath

from synth_assets.common.files import atomic_path


def is_local(path: UPath) -> bool:
    """Whether ``path`` is on this machine's file system (plain pathlib semantics apply)."""
    return isinstance(path, Path)


def _atomic_write(path: UPath, write: Callable[[str], Any]) -> None:
    """Run ``write(local_file)`` and make its result appear at ``path`` all at once."""
    if is_local(path):
        with atomic_path(Path(path)) as tmp:
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


class _ParquetIOManager(dg.UPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a DataFrame, got {type(obj).__name__}")
        _atomic_write(path, lambda tmp: obj.to_parquet(tmp, index=False))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        with path.open("rb") as handle:  # any fsspec file system, with no temporary copy
            return pd.read_parquet(handle)

    def load_input(self, context: dg.InputContext) -> Any:
        loaded = super().load_input(context)
        # Inputs spanning many upstream partitions (a survey's waves feeding one release)
        # ask for a dict even when only one partition exists yet.
        if (context.definition_metadata or {}).get("partitions_as_dict") and not isinstance(loaded, dict):
            return {context.asset_partition_keys[0]: loaded}
        return loaded

    def get_metadata(self, context: dg.OutputContext, obj: pd.DataFrame) -> dict[str, Any]:
        return {
            "dagster/row_count": len(obj),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(str(c), str(t)) for c, t in obj.dtypes.items()]
            ),
        }


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Tables as Parquet under ``base_path/<asset>/<partition>.parquet`` (local or object storage)."""

    base_path: str

    def create_io_manager(self, context) -> _ParquetIOManager:
        return _ParquetIOManager(base_path=UPath(self.base_path))


class _JsonIOManager(dg.UPathIOManager):
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


class _ModelIOManager(dg.UPathIOManager):
    extension = ".model"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        _atomic_write(path, obj.save)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        from synth_assets.synthesis import load_synthesizer  # lazy: torch and SDV are heavy

        return _read_local(path, load_synthesizer)


class ModelIOManager(dg.ConfigurableIOManagerFactory):
    """Fitted synthesisers through their own ``save``/``load`` (under ``data/models``)."""

    base_path: str

    def create_io_manager(self, context) -> _ModelIOManager:
        return _ModelIOManager(base_path=UPath(self.base_path))
