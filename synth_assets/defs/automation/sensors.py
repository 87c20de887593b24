"""The sensor: a new wave file (or a changed one, by sha256) adds its wave partition and requests the source's ingest run."""

import json
from typing import Any

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.common.hashing import file_sha256
from synth_assets.defs.automation.jobs import ingest_job_name
from synth_assets.defs.partitions import partitions_name
from synth_assets.defs.resources import ProjectResource
from synth_assets.ingest import discover_waves, misnamed_files


def build_incoming_sensor(catalog: Catalog, jobs: list[Any]) -> dg.SensorDefinition:
    ingest_jobs = {ingest_job_name(n) for n in catalog.sources}

    @dg.sensor(
        name="incoming_waves_sensor",
        jobs=[j for j in jobs if j.name in ingest_jobs],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds a wave partition and requests its ingest run when a file arrives or changes.",
    )
    def incoming_waves_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        partitions_requests = []
        run_requests = []
        for name, source in project.catalog.sources.items():
            new_waves = []
            for wave, path in discover_waves(project.layout.incoming, source).items():
                key = f"{name}/{wave}"
                digest = file_sha256(path)
                if seen.get(key) == digest:
                    continue
                seen[key] = digest
                if not context.instance.has_dynamic_partition(partitions_name(name), wave):
                    new_waves.append(wave)
                run_requests.append(
                    dg.RunRequest(job_name=ingest_job_name(name), partition_key=wave, run_key=f"{key}@{digest[:16]}",
                                  tags={"synth_assets/file_sha256": digest})
                )
            if new_waves:
                partitions_requests.append(dg.AddDynamicPartitionsRequest(partitions_name(name), new_waves))
        report_misnamed(context, project, seen)
        return dg.SensorResult(
            run_requests=run_requests, dynamic_partitions_requests=partitions_requests, cursor=json.dumps(seen)
        )

    return incoming_waves_sensor


def report_misnamed(context: dg.SensorEvaluationContext, project: ProjectResource, seen: dict[str, str]) -> None:
    """Warn once per file (and again when it changes) about files no source takes."""
    for path, why in misnamed_files(project.layout.incoming, project.catalog.sources):
        key = f"misnamed/{path.relative_to(project.layout.incoming).as_posix()}"
        digest = file_sha256(path)
        if seen.get(key) != digest:
            seen[key] = digest
            context.log.warning(f"ignored incoming file {path}: {why}")
