"""Cross-run gating: blocking checks stop downstream steps of their own run only.

Ingest and harmonisation run per survey wave, in runs of their own; the release run must
therefore refuse inputs whose latest check evaluation failed (or never ran), or it would
fuse a wave that was refused, or a stale earlier version of it.
"""

from __future__ import annotations

import dagster as dg


def failed_checks(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, check_names: list[str], partition: str
) -> list[str]:
    """Names of the checks whose latest evaluation for this partition did not pass."""
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    problems = []
    for name in check_names:
        key = dg.AssetCheckKey(asset_key, name)
        history = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=1, partition_filter=PartitionKeyFilter(key=partition)
        )
        if not history:
            problems.append(f"{asset_key.to_user_string()}[{partition}] check {name}: never evaluated")
        elif history[0].status != AssetCheckExecutionRecordStatus.SUCCEEDED:
            problems.append(f"{asset_key.to_user_string()}[{partition}] check {name}: {history[0].status.value}")
    return problems


def latest_materialization(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None) -> dict:
    """Run id, time and plain metadata of the latest materialisation of one asset partition."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not records:
        return {}
    record = records[0]
    materialization = record.asset_materialization
    metadata = {k: getattr(v, "value", v) for k, v in (materialization.metadata or {}).items()} if materialization else {}
    return {
        "run_id": record.run_id,
        "timestamp": record.timestamp,
        "metadata": {k: v for k, v in metadata.items() if isinstance(v, (str, int, float, bool, dict, list))},
    }
