"""The sensors, both running as soon as the daemon starts (``make ui``), nothing to switch on.

``incoming_waves_sensor`` observes the delivered files (``incoming_<source>``, data version
the sha256, hashed only when size or mtime changed: ``defs/deliveries.py``), adds new wave
partitions and requests an ingest run for a wave whose file differs from the one its
``raw_<source>`` was built from. ``release_automation_sensor`` evaluates the automation
conditions of every asset (``conditions.py``), so ingested waves go on to a release.
"""

import json
import os
from typing import Any

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.defs.automation.jobs import ingest_job_name
from synth_assets.defs.deliveries import needs_ingest, observe_deliveries
from synth_assets.defs.partitions import partitions_name
from synth_assets.defs.resources import ProjectResource
from synth_assets.ingest import misnamed_files

#: Run tag of an ingest run: the sha256 of the file it was requested for.
FILE_SHA256_TAG = "synth_assets/file_sha256"
AUTOMATION_SENSOR = "release_automation_sensor"


def build_incoming_sensor(catalog: Catalog, jobs: list[Any], interval_s: int) -> dg.SensorDefinition:
    ingest_jobs = {ingest_job_name(n) for n in catalog.sources}

    @dg.sensor(
        name="incoming_waves_sensor",
        jobs=[j for j in jobs if j.name in ingest_jobs],
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Observes the delivered files (data version: sha256), adds a wave partition and requests its "
            "ingest run when a file arrives or its content changes."
        ),
    )
    def incoming_waves_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
        warned: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        new_waves: dict[str, list[str]] = {}
        run_requests = []
        deliveries = observe_deliveries(context.instance, project.catalog, project.layout.incoming)
        for delivery in deliveries:
            name, wave = delivery.source, delivery.wave
            if not context.instance.has_dynamic_partition(partitions_name(name), wave):
                new_waves.setdefault(name, []).append(wave)
            elif not needs_ingest(context.instance, delivery):
                continue
            run_requests.append(dg.RunRequest(
                job_name=ingest_job_name(name), partition_key=wave,
                run_key=f"{name}/{wave}@{delivery.sha256[:16]}", tags={FILE_SHA256_TAG: delivery.sha256},
            ))
        report_misnamed(context, project, warned)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(partitions_name(n), w)
                                         for n, w in new_waves.items()],
            asset_events=[d.observation() for d in deliveries if not d.recorded],
            cursor=json.dumps(warned),
        )

    return incoming_waves_sensor


def report_misnamed(context: dg.SensorEvaluationContext, project: ProjectResource, warned: dict[str, str]) -> None:
    """Warn once per file (and again when it changes: size or mtime) about files no source takes."""
    for path, why in misnamed_files(project.layout.incoming, project.catalog.sources):
        key = f"misnamed/{path.relative_to(project.layout.incoming).as_posix()}"
        stat = os.stat(path)
        state = f"{stat.st_size}:{stat.st_mtime_ns}"
        if warned.get(key) != state:
            warned[key] = state
            context.log.warning(f"ignored incoming file {path}: {why}")


def build_automation_sensor(interval_s: int) -> dg.AutomationConditionSensorDefinition:
    """Declarative automation over every asset, RUNNING by default (Dagster's own default sensor is STOPPED)."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_s,
        description=(
            "Requests the release assets of a register wave once its sources are ingested and their "
            "blocking checks passed (conditions in defs/automation/conditions.py)."
        ),
    )
