"""The one adapter to Dagster's instance history: the only module that imports ``dagster._core``.

The gate needs facts that Dagster's public API does not expose: the latest evaluation of an
asset check on one partition (check history), and whether a step failed because a blocking
check failed. Those private calls live here, behind plain values, and
``synth_assets_tests/test_dagster_api.py`` pins their behaviour against a real instance, so
a Dagster upgrade that changes them fails that one test, not the gate.

Used by the definitions (cross-run gating, the gate, schema drift), the headless runner and
the audit (``synth_assets.operations``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.errors import DagsterAssetCheckFailedError
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

#: The module of the instance's SQLite storage (Dagster's default, ``dagster.yaml``'s): every process
#: that opens the instance imports it (0.8 s of a core with its migrations' alembic), so the fork
#: server that the steps' processes are forked from imports it once for them (``defs/deployment.py``).
SQLITE_STORAGE_MODULE = "dagster._core.storage.sqlite_storage"

#: Class name Dagster gives the error of a step stopped by a failed blocking check.
CHECK_FAILED_ERROR = f"{DagsterAssetCheckFailedError.__module__}.{DagsterAssetCheckFailedError.__name__}"


@dataclass(frozen=True)
class CheckEvaluation:
    """One evaluation of one check on one partition: its status and plain metadata."""

    status: str
    passed: bool
    metadata: dict[str, Any]
    run_id: str | None
    timestamp: float
    description: str | None


@dataclass(frozen=True)
class Materialization:
    """One materialisation of one asset partition: run, time, code version and plain metadata."""

    run_id: str
    timestamp: float
    code_version: str | None
    metadata: dict[str, Any]
    data_version: str | None = None


@dataclass(frozen=True)
class Observation:
    """The latest observation of one source asset partition: its data version and plain metadata."""

    data_version: str | None
    timestamp: float
    metadata: dict[str, Any]


def observation(asset_key: dg.AssetKey, partition: str | None, data_version: str,
                metadata: Mapping[str, Any] | None = None) -> dg.AssetObservation:
    """An observation carrying a data version, as an observable source asset's own observation does."""
    return dg.AssetObservation(asset_key=asset_key, partition=partition, metadata=dict(metadata or {}),
                               tags={DATA_VERSION_TAG: data_version})


def latest_observation(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None) -> Observation | None:
    """The latest observation of one source asset partition (None: never observed)."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not records:
        return None
    event = records[0].asset_observation
    tags = (event.tags or {}) if event else {}
    return Observation(tags.get(DATA_VERSION_TAG), records[0].timestamp,
                       plain_metadata(event.metadata if event else None))


def plain_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Dagster metadata values as plain JSON-able Python values (others left out)."""
    values = {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}
    return {k: v for k, v in values.items() if isinstance(v, (str, int, float, bool, dict, list))}


def check_history(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, partition: str | None, limit: int = 1
) -> list[CheckEvaluation]:
    """The latest ``limit`` evaluations of one check on one partition, newest first."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=limit, partition_filter=PartitionKeyFilter(key=partition)
    )
    found = []
    for record in history:
        event = record.event.dagster_event if record.event else None
        evaluation = event.event_specific_data if event is not None else None
        found.append(CheckEvaluation(
            status=record.status.value,
            passed=record.status == AssetCheckExecutionRecordStatus.SUCCEEDED,
            metadata=plain_metadata(getattr(evaluation, "metadata", None)),
            run_id=record.run_id,
            timestamp=record.create_timestamp,
            description=getattr(evaluation, "description", None),
        ))
    return found


def latest_check_evaluations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, check_names: list[str] | tuple[str, ...], partition: str
) -> dict[str, CheckEvaluation | None]:
    """Per check name, its latest evaluation for this partition (None: never evaluated)."""
    found: dict[str, CheckEvaluation | None] = {}
    for name in check_names:
        history = check_history(instance, dg.AssetCheckKey(asset_key, name), partition)
        found[name] = history[0] if history else None
    return found


def latest_materialization(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None, before: float | None = None
) -> Materialization | None:
    """The latest materialisation of one asset partition (any partition: None), at or before ``before``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None,
                              before_timestamp=before + 1e-3 if before is not None else None),
        limit=1,
    ).records
    return _materialization(records[0]) if records else None


def materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None, limit: int = 100
) -> list[Materialization]:
    """The latest ``limit`` materialisations of one asset partition, newest first."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None), limit=limit
    ).records
    return [_materialization(r) for r in records]


def _materialization(record: dg.EventLogRecord) -> Materialization:
    materialization = record.asset_materialization
    return Materialization(
        run_id=record.run_id,
        timestamp=record.timestamp,
        code_version=((materialization.tags or {}) if materialization else {}).get("dagster/code_version"),
        metadata=plain_metadata(materialization.metadata if materialization else None),
        data_version=((materialization.tags or {}) if materialization else {}).get(DATA_VERSION_TAG),
    )


def is_check_failure(error: Any) -> bool:
    """Whether a step's error (a ``SerializableErrorInfo``) is a failed blocking check stopping it."""
    return getattr(error, "cls_name", None) == DagsterAssetCheckFailedError.__name__ or str(
        getattr(error, "message", "")).startswith(CHECK_FAILED_ERROR)


@dataclass(frozen=True)
class LogLine:
    """What a Dagster logger receives, as plain values: the step, the event (if any), the message."""

    step_key: str | None
    event: dg.DagsterEvent | None
    message: str
    level: int


def log_line(record: Any) -> LogLine | None:
    """A logger's ``logging.LogRecord`` as a ``LogLine``; None for a record Dagster did not make.

    Dagster's log manager puts its context on each record under ``dagster_meta``
    (``dagster._core.log_manager.LOG_RECORD_METADATA_ATTR``): the step, the event, the
    message as logged.
    """
    from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR

    meta = getattr(record, LOG_RECORD_METADATA_ATTR, None)
    if not isinstance(meta, Mapping):
        return None
    return LogLine(meta.get("step_key"), meta.get("dagster_event"), str(meta.get("orig_message") or ""),
                   record.levelno)


def forget_closed_instance() -> None:
    """Clear the definitions-state storage a closed ``with DagsterInstance...`` block leaves behind.

    Dagster 1.13's ``DagsterInstance.__enter__`` sets a context variable to the instance's
    state storage and ``__exit__`` does not reset it; once the instance is collected, loading
    any ``Definitions`` in the same thread fails with "Attempted to resolve undefined
    DagsterInstance weakref". Call after an instance is closed (the tests do, after each test).
    """
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
