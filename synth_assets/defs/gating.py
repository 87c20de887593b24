"""Cross-run gating: blocking checks stop downstream steps of their own run only.

Ingest and harmonisation run per survey wave, in runs of their own; the release run must
therefore refuse inputs whose latest check evaluation failed (or never ran), or it would
fuse a wave that was refused, or a stale earlier version of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg


@dataclass(frozen=True)
class CheckEvaluation:
    """The latest evaluation of one check on one partition: its status and plain metadata."""

    status: str
    passed: bool
    metadata: dict[str, Any]
    run_id: str | None


def latest_check_evaluations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, check_names: list[str], partition: str
) -> dict[str, CheckEvaluation | None]:
    """Per check name, its latest evaluation for this partition (None: never evaluated).

    The only reader of check history (a private Dagster API, so kept in one place).
    """
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    found: dict[str, CheckEvaluation | None] = {}
    for name in check_names:
        key = dg.AssetCheckKey(asset_key, name)
        history = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=1, partition_filter=PartitionKeyFilter(key=partition)
        )
        if not history:
            found[name] = None
            continue
        record = history[0]
        event = record.event.dagster_event if record.event else None
        evaluation = event.event_specific_data if event is not None else None
        raw = getattr(evaluation, "metadata", None) or {}
        found[name] = CheckEvaluation(
            status=record.status.value,
            passed=record.status == AssetCheckExecutionRecordStatus.SUCCEEDED,
            metadata={k: getattr(v, "value", v) for k, v in raw.items()},
            run_id=record.run_id,
        )
    return found


def failed_checks(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, check_names: list[str], partition: str
) -> list[str]:
    """Names of the checks whose latest evaluation for this partition did not pass."""
    problems = []
    for name, evaluation in latest_check_evaluations(instance, asset_key, check_names, partition).items():
        if evaluation is None:
            problems.append(f"{asset_key.to_user_string()}[{partition}] check {name}: never evaluated")
        elif not evaluation.passed:
            problems.append(f"{asset_key.to_user_string()}[{partition}] check {name}: {evaluation.status}")
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
