"""Collecting a release's lineage from the Dagster instance (the audit's Dagster side).

Each asset's materialisation is the latest one at or before the release was published, so
a later re-run does not rewrite the history of an earlier release.
"""

import json
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from synth_assets.audit import AssetStep, CheckResult, Lineage, copy_test, verify_release_files
from synth_assets.catalog import Catalog
from synth_assets.harmonise import harmonise_table
from synth_assets.ingest import read_source_file, source_path
from synth_assets.storage import DataLayout, file_sha256

RELEASE_CHAIN = ["matched_dataset", "matched_replicates", "training_sample", "holdout_sample", "gan_model", "calibration_targets", "fictitious_dataset",
                 "validation_report", "public_dataset"]


class AuditError(LookupError):
    """The release, or the history that made it, cannot be found."""


def _plain(metadata) -> dict:
    values = {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}
    return {k: v for k, v in values.items() if isinstance(v, (str, int, float, bool, dict, list))}


def _materialization(instance: dg.DagsterInstance, asset: str, partition: str | None, before: float):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None,
                              before_timestamp=before + 1e-3),
        limit=1,
    ).records
    return records[0] if records else None


def _step(instance, asset, partition, before) -> AssetStep | None:
    record = _materialization(instance, asset, partition, before)
    if record is None:
        return None
    materialization = record.asset_materialization
    return AssetStep(
        asset=asset, partition=partition, run_id=record.run_id, timestamp=record.timestamp,
        code_version=(materialization.tags or {}).get("dagster/code_version"),
        metadata={k: v for k, v in _plain(materialization.metadata).items() if k not in ("data_card", "headline")},
    )


def _checks(instance, repository_checks: list[dg.AssetCheckKey], partitions: dict[str, str | None], before: float):
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    results = []
    for key in repository_checks:
        asset = key.asset_key.to_user_string()
        if asset not in partitions:
            continue
        partition = partitions[asset]
        history = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=20, partition_filter=PartitionKeyFilter(key=partition)
        )
        record = next((r for r in history if r.create_timestamp <= before + 1e-3), None)
        passed = description = None
        if record is not None:
            passed = record.status == AssetCheckExecutionRecordStatus.SUCCEEDED
            evaluation = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
            description = getattr(evaluation, "description", None)
        results.append(CheckResult(asset, key.name, partition, passed, record.run_id if record else None, description))
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
        (r for r in instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("public_dataset"), asset_partitions=[wave]), limit=100
        ).records if _plain(r.asset_materialization.metadata).get("release") == release),
        None,
    )
    if published is None:
        raise AuditError(f"release {release!r} exists on disk but this Dagster instance has no record of publishing it")
    when = published.timestamp
    partitions: dict[str, str | None] = {asset: wave for asset in RELEASE_CHAIN}
    partitions.update({f"donor_{s}": wave for s in catalog.surveys})
    sources: dict[str, dict] = {}
    strict: dict[str, pd.DataFrame] = {}
    uniques: dict[str, pd.DataFrame] = {}
    for name, source in catalog.sources.items():
        source_wave = card["provenance"].get(name, {}).get("wave")
        partitions[f"raw_{name}"] = partitions[f"harmonised_{name}"] = source_wave
        raw_step = _step(instance, f"raw_{name}", source_wave, when)
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
    matched_file = layout.warehouse / "matched_dataset" / f"{wave}.parquet"
    if matched_file.exists():
        with matched_file.open("rb") as handle:  # local or object storage alike
            strict["matched dataset"] = pd.read_parquet(handle)
    steps = [s for asset, p in partitions.items() if (s := _step(instance, asset, p, when))]
    steps.sort(key=lambda s: s.timestamp)
    check_keys = [spec.key for checks_def in defs.asset_checks for spec in checks_def.check_specs]
    ids = {catalog.register.id_column, catalog.register.household_id_column}
    for source in catalog.surveys.values():
        ids |= {source.id_column, source.household_id_column, source.weight_column}
    return Lineage(
        release=release,
        release_path=str(release_path),
        wave=wave,
        created_utc=card.get("created_utc") or datetime.fromtimestamp(when, UTC).isoformat(),
        sources=sources,
        steps=steps,
        checks=_checks(instance, check_keys, partitions, when),
        model=card.get("model", {}),
        copy_test=copy_test(release_path, strict, uniques, {c for c in ids if c}),
        files=verify_release_files(release_path, card),
    )
