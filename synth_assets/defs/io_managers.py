"""IO managers: tables as Parquet and fitted models as files, on any fsspec path.

Both write to a temporary name and rename, so a failed step never leaves half a file that
a later step could read.
"""

from __future__ import annotations

import uuid
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath


def _atomic_write(path: UPath, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        tmp.rename(path)  # os.replace semantics on local paths; object stores put whole objects
    finally:
        if tmp.exists():
            tmp.unlink()


class _ParquetIOManager(dg.UPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a DataFrame, got {type(obj).__name__}")
        _atomic_write(path, lambda tmp: obj.to_parquet(str(tmp), index=False))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        return pd.read_parquet(str(path))

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


class _ModelIOManager(dg.UPathIOManager):
    extension = ".model"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        _atomic_write(path, lambda tmp: obj.save(str(tmp)))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        from synth_assets.synthesis import load_synthesizer  # lazy: torch and SDV are heavy

        return load_synthesizer(str(path))


class ModelIOManager(dg.ConfigurableIOManagerFactory):
    """Fitted synthesisers through their own ``save``/``load`` (under ``data/models``)."""

    base_path: str

    def create_io_manager(self, context) -> _ModelIOManager:
        return _ModelIOManager(base_path=UPath(self.base_path))
