"""Delivered files as observations of ``incoming_<source>``, whose data version is the file's sha256.

Each wave's file is an observable source asset partition. A file is hashed only when it is
new or its size or mtime changed: the latest observation of its partition carries the path,
size and ``mtime_ns`` it was hashed at, and its data version is reused otherwise. A wave
needs ingesting only when the data version ``raw_<source>`` was built from (its own data
version, the sha256 it read) differs from the observed one, or when ``harmonised_<source>``
was not built from that ``raw_<source>`` since. The incoming sensor and ``synth-assets run``
both decide with these functions, so neither re-hashes nor re-ingests an unchanged wave.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.common.hashing import file_sha256
from synth_assets.dagster_api import latest_materialization, latest_observation, observation
from synth_assets.defs import keys
from synth_assets.ingest import discover_waves


@dataclass(frozen=True)
class Delivery:
    """One wave's delivered file, as observed now."""

    source: str
    wave: str
    path: Path
    sha256: str
    size: int
    mtime_ns: int
    recorded: bool  # the instance's latest observation already says this (no event needed)

    def observation(self) -> dg.AssetObservation:
        return observation(keys.incoming(self.source), self.wave, self.sha256, {
            "path": str(self.path), "bytes": self.size, "mtime_ns": self.mtime_ns, "sha256": self.sha256})


def observe_deliveries(
    instance: dg.DagsterInstance, catalog: Catalog, incoming: Path, sources: Iterable[str] | None = None
) -> list[Delivery]:
    """Every delivered file of ``sources`` (default: all), hashed only if new or changed on disk."""
    found = []
    for name in sources or catalog.sources:
        for wave, path in discover_waves(incoming, catalog.sources[name]).items():
            stat = path.stat()
            last = latest_observation(instance, keys.incoming(name), wave)
            meta = last.metadata if last else {}
            same_file = (last is not None and last.data_version is not None and meta.get("path") == str(path)
                         and meta.get("bytes") == stat.st_size and meta.get("mtime_ns") == stat.st_mtime_ns)
            sha256 = last.data_version if same_file and last and last.data_version else file_sha256(path)
            found.append(Delivery(name, wave, path, sha256, stat.st_size, stat.st_mtime_ns, recorded=same_file))
    return found


def record_deliveries(instance: dg.DagsterInstance, deliveries: Iterable[Delivery]) -> None:
    """Store the observations the instance does not hold yet (outside a sensor, which returns them)."""
    for delivery in deliveries:
        if not delivery.recorded:
            instance.report_runless_asset_event(delivery.observation())


def ingested_version(instance: dg.DagsterInstance, source: str, wave: str) -> str | None:
    """The sha256 ``raw_<source>`` was last built from, if ``harmonised_<source>`` was built since; else None."""
    raw = latest_materialization(instance, keys.raw(source), wave)
    if raw is None:
        return None
    harmonised = latest_materialization(instance, keys.harmonised(source), wave)
    if harmonised is None or harmonised.timestamp < raw.timestamp:
        return None  # refused by a blocking check, or failed: not ingested
    return raw.data_version or raw.metadata.get("sha256")


def needs_ingest(instance: dg.DagsterInstance, delivery: Delivery) -> bool:
    return ingested_version(instance, delivery.source, delivery.wave) != delivery.sha256
