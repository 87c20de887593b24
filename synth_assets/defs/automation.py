"""Automation: new wave files start ingest runs; releases follow; a schedule refreshes.

- ``incoming_waves_sensor`` watches ``data/incoming``: a new file (or a changed one, by
  sha256) adds its wave partition and requests the source's ingest run.
- Release assets carry an eager automation condition that also waits for every blocking
  check upstream, so a refused wave goes no further (see STACK_NOTES: automation ignores
  ``blocking=True`` unless told). Donor assets start when a new register wave appears.
- ``monthly_release_refresh`` re-runs the release of the latest register wave.
"""

import json

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.common.hashing import file_sha256
from synth_assets.defs.jobs import ingest_job_name
from synth_assets.defs.resources import ProjectResource
from synth_assets.ingest import discover_waves, misnamed_files

RELEASE_AUTOMATION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
)
# Donors read every wave of their survey: under eager(), each new survey wave would rebuild
# every past release. A donor partition is requested once, when its release wave appears;
# a survey wave arriving after that is taken up by the monthly refresh or by hand.
DONOR_AUTOMATION = (
    dg.AutomationCondition.on_missing() & dg.AutomationCondition.all_deps_blocking_checks_passed()
)


def build_incoming_sensor(catalog: Catalog, jobs: list) -> dg.SensorDefinition:
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
                if not context.instance.has_dynamic_partition(f"{name}_waves", wave):
                    new_waves.append(wave)
                run_requests.append(
                    dg.RunRequest(job_name=ingest_job_name(name), partition_key=wave, run_key=f"{key}@{digest[:16]}",
                                  tags={"synth_assets/file_sha256": digest})
                )
            if new_waves:
                partitions_requests.append(dg.AddDynamicPartitionsRequest(f"{name}_waves", new_waves))
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


def build_refresh_schedule(catalog: Catalog) -> dg.ScheduleDefinition:
    partitions_name = f"{catalog.register_name}_waves"

    @dg.schedule(
        name="monthly_release_refresh",
        job_name="release",
        cron_schedule="0 3 1 * *",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="On the 1st of each month, rebuild the release of the latest register wave.",
    )
    def monthly_release_refresh(context: dg.ScheduleEvaluationContext):
        waves = context.instance.get_dynamic_partitions(partitions_name)
        if not waves:
            return dg.SkipReason("no register wave yet")
        latest = max(waves, key=lambda w: (0, int(w)) if w.isdigit() else (1, w))
        return dg.RunRequest(partition_key=latest, run_key=f"refresh-{latest}-{context.scheduled_execution_time:%Y%m}")

    return monthly_release_refresh
