"""Where the pipeline keeps its files, and how it writes them without leaving halves behind.

Data flows one way: incoming -> warehouse (raw, harmonised, matched) -> models ->
fictitious -> reports -> public. Only the publication gate writes under ``public/``.

Two roots: the *data root* (a local folder or a volume shared by every pod) holds the
catalog, the drop zone, the reports and the public releases; the *storage root* holds what
the IO managers pass between steps (warehouse tables and fitted models) and may be any
fsspec URL (``s3://``, ``gs://``, ``abfs://``...), so steps on different machines share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
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
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def public(self) -> Path:
        return self.root / "public"


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place only on success.

    Works for files and folders. A reader never sees a half-written result, and a failure
    leaves any previous ``target`` untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {target}")
        if tmp.is_dir() and target.exists():
            # os.replace cannot swap a folder onto an existing one: move the old one aside first.
            old = tmp_dir / (target.name + ".old")
            os.replace(target, old)
            os.replace(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_parquet(df: pd.DataFrame, path: Path | str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path


def file_sha256(path: Path | str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataframe_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table that does not depend on how it was serialised."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update("|".join(map(str, df.columns)).encode())
    return digest.hexdigest()
