"""Where the pipeline keeps its files.

Data flows one way: incoming -> warehouse (raw, harmonised, matched) -> models ->
fictitious -> reports -> public. Only the publication gate writes under ``public/``.

Two roots: the *data root* (a local folder or a volume shared by every pod) holds the
catalog, the drop zone, the reports and the public releases; the *storage root* holds what
the IO managers pass between steps (warehouse tables and fitted models) and may be any
fsspec URL (``s3://``, ``gs://``, ``abfs://``...), so steps on different machines share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from upath import UPath


@dataclass(frozen=True)
class DataLayout:
    """The folders under one data root (``data/`` by default), and where intermediates live.

    ``storage`` is the root of the warehouse and the models: the data root itself unless
    set (e.g. ``s3://bucket/synth-assets``).
    """

    root: Path
    storage: str | None = None

    @property
    def storage_root(self) -> UPath:
        return UPath(self.storage) if self.storage else UPath(self.root)

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.yaml"

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    @property
    def warehouse(self) -> UPath:
        return self.storage_root / "warehouse"

    @property
    def models(self) -> UPath:
        return self.storage_root / "models"

    @property
    def intermediates(self) -> UPath:
        """What one step of a run hands to another that is no asset (a region's draw), by run and step."""
        return self.storage_root / "intermediates"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def public(self) -> Path:
        return self.root / "public"
