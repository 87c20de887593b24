"""Headless runs of the whole pipeline against a Dagster instance (``make run``, tests).

The same jobs the UI launches: per source and wave an ingest run, then a release run per
register wave. Partitions are registered from the files found in ``data/incoming``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.defs.jobs import ingest_job_name
from synth_assets.defs.validation import latest_report
from synth_assets.ingest import discover_waves, misnamed_files
from synth_assets.publication import latest_release
from synth_assets.storage import DataLayout


@dataclass
class RunSummary:
    job: str
    partition: str
    success: bool
    run_id: str
    failures: list[str] = field(default_factory=list)


@dataclass
class PipelineOutcome:
    runs: list[RunSummary]
    release: Path | None
    report: Path | None

    @property
    def success(self) -> bool:
        return all(r.success for r in self.runs) and self.release is not None


def register_waves(instance: dg.DagsterInstance, catalog: Catalog, layout: DataLayout) -> dict[str, list[str]]:
    """Add a dynamic partition for every delivered file; return the waves per source."""
    found: dict[str, list[str]] = {}
    for name, source in catalog.sources.items():
        waves = list(discover_waves(layout.incoming, source))
        partitions = f"{name}_waves"
        new = [w for w in waves if not instance.has_dynamic_partition(partitions, w)]
        if new:
            instance.add_dynamic_partitions(partitions, new)
        found[name] = waves
    return found


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    messages = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                messages.append(
                    f"check {evaluation.asset_key.to_user_string()}.{evaluation.check_name} failed: "
                    f"{evaluation.description or ''}".rstrip(": ")
                )
        elif event.is_step_failure:
            message = step_failure_message(event.step_failure_data.error)
            if message.startswith("dagster._core.errors.DagsterAssetCheckFailedError"):
                continue  # already reported by the check evaluation above
            messages.append(f"step {event.step_key} failed: {message}")
    return messages


def step_failure_message(error) -> str:
    """The project's own error first (it names file, column and value), then the root cause.

    Dagster wraps the asset's exception, and the asset's exception often wraps a library's
    (``IngestError ... from`` a parser error): the innermost alone loses the file name, the
    outermost is Dagster's "error occurred while executing op".
    """
    chain = []
    while error is not None:
        chain.append(error.message.strip())
        error = error.cause or getattr(error, "context", None)
    if not chain:
        return ""
    own = next((m for m in chain if m.startswith("synth_assets.")), None)
    innermost = chain[-1]
    if own is None:
        return innermost
    return own if own == innermost else f"{own}\n      caused by: {innermost}"


def execute(defs: dg.Definitions, job: str, partition: str, instance: dg.DagsterInstance,
            run_config: dict[str, Any] | None = None) -> RunSummary:
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, run_config=run_config or {}, raise_on_error=False
    )
    return RunSummary(job, partition, result.success, result.run_id, _failures(result))


def run_pipeline(
    defs: dg.Definitions,
    catalog: Catalog,
    layout: DataLayout,
    instance: dg.DagsterInstance,
    *,
    release_waves: list[str] | None = None,
    release_config: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
) -> PipelineOutcome:
    """Ingest every delivered wave of every source, then build the release(s)."""
    waves = register_waves(instance, catalog, layout)
    for path, why in misnamed_files(layout.incoming, catalog.sources):
        echo(f"[IGNORED] {path} {why}")
    if not waves[catalog.register_name]:
        raise FileNotFoundError(f"no register file under {layout.incoming}: run `synth-assets demo-data` first")
    runs: list[RunSummary] = []
    for name in catalog.sources:
        for wave in waves[name]:
            summary = execute(defs, ingest_job_name(name), wave, instance)
            runs.append(summary)
            echo(f"[{'ok' if summary.success else 'FAILED'}] ingest {name} wave {wave}"
                 + "".join(f"\n    {f}" for f in summary.failures))
    targets = release_waves or waves[catalog.register_name][-1:]
    report = None
    for wave in targets:
        echo(f"release for wave {wave}: matching, training, generating, validating ...")
        summary = execute(defs, "release", wave, instance, release_config)
        runs.append(summary)
        echo(f"[{'ok' if summary.success else 'REFUSED'}] release wave {wave}"
             + "".join(f"\n    {f}" for f in summary.failures))
        report = latest_report(instance, wave, summary.run_id)  # each run writes its own report folder
    release = latest_release(layout.public) if all(r.success for r in runs if r.job == "release") else None
    return PipelineOutcome(runs, release, report if report and report.exists() else None)
