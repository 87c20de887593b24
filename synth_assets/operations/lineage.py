"""Collecting a release's lineage from the Dagster instance (the audit's Dagster side).

Each asset's materialisation is the latest one at or before the release was published, so
a later re-run does not rewrite the history of an earlier release. Instance history is read
through ``synth_assets.dagster_api``; stored tables are found through the IO manager's path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from synth_assets.audit import AssetStep, CheckResult, Lineage, copy_test, verify_release_files
from synth_assets.catalog import Catalog
from synth_assets.common.hashing import file_sha256
from synth_assets.common.layout import DataLayout
from synth_assets.dagster_api import check_history, latest_materialization, materializations
from synth_assets.defs import keys
from synth_assets.defs.io_managers import ParquetIOManager
from synth_assets.harmonise import harmonise_table
from synth_assets.ingest import read_source_file, source_path


class AuditError(LookupError):
    """The release, or the history that made it, cannot be found."""


def _step(instance: dg.DagsterInstance, asset: str, partition: str | None, before: float) -> AssetStep | None:
    record = latest_materialization(instance, dg.AssetKey(asset), partition, before=before)
    if record is None:
        return None
    return AssetStep(
        asset=asset, partition=partition, run_id=record.run_id, timestamp=record.timestamp,
        code_version=record.code_version,
        metadata={k: v for k, v in record.metadata.items() if k not in ("data_card", "headline")},
    )


def _checks(
    instance: dg.DagsterInstance, repository_checks: list[dg.AssetCheckKey], partitions: dict[str, str | None],
    before: float,
) -> list[CheckResult]:
    results = []
    for key in repository_checks:
        asset = key.asset_key.to_user_string()
        if asset not in partitions:
            continue
        partition = partitions[asset]
        history = check_history(instance, key, partition, limit=20)
        record = next((r for r in history if r.timestamp <= before + 1e-3), None)
        results.append(CheckResult(asset, key.name, partition, record.passed if record else None,
                                   record.run_id if record else None, record.description if record else None))
    return results


def collect_lineage(
    instance: dg.DagsterInstance, defs: dg.Definitions, catalog: Catalog, layout: DataLayout, release: str
) -> Lineage:
    release_path = layout.public / release
    card_path = release_path / "data_card.json"
    if not card_path.exists():
        known = sorted(p.name for p in layout.public.iterdir() if p.is_dir()) if layout.public.exists() else []
        raise AuditError(f"no release {release!r} under {layout.public} (releases: {', '.join(known) or 'none'})")
    card = json.loads(card_path.read_text())
    wave = card["wave"]
    published = next(
        (r for r in materializations(instance, keys.PUBLIC_DATASET, wave) if r.metadata.get("release") == release),
        None,
    )
    if published is None:
        raise AuditError(f"release {release!r} exists on disk but this Dagster instance has no record of publishing it")
    when = published.timestamp
    record_surveys = [n for n, s in catalog.surveys.items() if s.records is not None]
    partitions: dict[str, str | None] = {key.to_user_string(): wave
                                         for key in keys.release_assets(catalog.surveys, record_surveys)}
    sources: dict[str, dict[str, Any]] = {}
    strict: dict[str, pd.DataFrame] = {}
    uniques: dict[str, pd.DataFrame] = {}
    for name, source in catalog.sources.items():
        source_wave = card["provenance"].get(name, {}).get("wave")
        partitions[keys.raw(name).to_user_string()] = partitions[keys.harmonised(name).to_user_string()] = source_wave
        raw_step = _step(instance, keys.raw(name).to_user_string(), source_wave, when)
        path = source_path(layout.incoming, source, source_wave) if source_wave else None
        recorded = (raw_step.metadata.get("sha256") if raw_step else None)
        current = file_sha256(path) if path and path.exists() else None
        sources[name] = {"wave": source_wave, "file": str(path) if path else None, "sha256_at_ingest": recorded,
                         "unchanged_since": current == recorded, "ingest_run": raw_step.run_id if raw_step else None}
        if path and path.exists():
            raw = read_source_file(path, source)
            target = uniques if source.kind == "register" else strict
            target[f"raw {name} ({path.name})"] = harmonise_table(
                raw.data, catalog, name, file=path, value_labels=raw.value_labels
            )
    warehouse = (defs.resources or {}).get("io_manager")
    if not isinstance(warehouse, ParquetIOManager):
        raise AuditError(f"the definitions' io_manager is {type(warehouse).__name__}, not the ParquetIOManager")
    matched_file = warehouse.path(keys.MATCHED_DATASET, wave)
    if matched_file.exists():
        with matched_file.open("rb") as handle:  # local or object storage alike
            strict["matched dataset"] = pd.read_parquet(handle)
    steps = [s for asset, p in partitions.items() if (s := _step(instance, asset, p, when))]
    steps.sort(key=lambda s: s.timestamp)
    check_keys = [spec.key for checks_def in defs.asset_checks or [] for spec in checks_def.check_specs]
    ids = {catalog.register.id_column, catalog.register.household_id_column}
    for source in catalog.surveys.values():
        ids |= {source.id_column, source.household_id_column, source.weight_column}
    # the filters' settings the release was drawn with (a run may overlay the catalog's)
    settings = next((s.metadata.get("disclosure") for s in steps if s.asset == keys.name(keys.FICTITIOUS_DATASET)), None)
    if not isinstance(settings, dict):  # a release older than the record: the catalog's
        settings = {"k": catalog.release.disclosure.k, "quasi_identifiers": list(catalog.release.quasi_identifiers)}
    return Lineage(
        release=release,
        release_path=str(release_path),
        wave=wave,
        created_utc=card.get("created_utc") or datetime.fromtimestamp(when, UTC).isoformat(),
        sources=sources,
        steps=steps,
        checks=_checks(instance, check_keys, partitions, when),
        model=card.get("model", {}),
        copy_test=copy_test(release_path, strict, uniques, {c for c in ids if c},
                            quasi_identifiers=list(settings["quasi_identifiers"]), k=int(settings["k"])),
        files=verify_release_files(release_path, card),
    )
