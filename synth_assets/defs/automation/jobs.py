"""Jobs: one ingest job per source (raw + harmonised) and one release job (matching to public).

Sources have their own wave partitions, so a run covers one source's wave or one release.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.common.cpu_time import CpuLaps
from synth_assets.common.memory import peak_resident_bytes, release_free_memory, reset_peak
from synth_assets.defs import keys
from synth_assets.defs.metadata import CPU_FLAG, PEAK_FLAG
from synth_assets.defs.partitions import wave_partitions

RELEASE_JOB = "release"


#: This process's CPU time step by step: a step's process (the multiprocess executor) reports its
#: own from its start, imports included; one process running every step reports each step's.
_STEP_CPU = CpuLaps()


def _step_ended(context: dg.HookContext) -> None:
    peak = peak_resident_bytes()
    cpu = _STEP_CPU.lap()
    release_free_memory()
    if cpu is not None:
        context.log.info(f"CPU time {cpu:.1f} s (this step: its threads and its children's processes)",
                         extra={CPU_FLAG: cpu})
    if peak is not None and reset_peak():  # else the mark is the process's, not this step's
        context.log.info(f"peak resident memory {peak / 1e9:.2f} GB (this step, the kernel's high-water mark)",
                         extra={PEAK_FLAG: peak})


@dg.success_hook(name="memory_back_after_step")
def memory_back_after_success(context: dg.HookContext) -> None:
    _step_ended(context)


@dg.failure_hook(name="memory_back_after_failed_step")
def memory_back_after_failure(context: dg.HookContext) -> None:
    _step_ended(context)


#: After every step, its peak resident memory logged (what its pod or process needs: the UI shows it
#: in the step's log, ``synth-assets run`` on the step's line) and its freed memory back to the
#: system: a run executed in one process (``synth-assets run``) then starts each step from what the
#: previous ones still hold, not from their peaks' leftovers.
STEP_HOOKS = {memory_back_after_success, memory_back_after_failure}


def ingest_job_name(source_name: str) -> str:
    return f"ingest_{source_name}"


def build_jobs(catalog: Catalog) -> list[Any]:
    jobs = [
        dg.define_asset_job(
            ingest_job_name(name),
            selection=dg.AssetSelection.assets(keys.raw(name), keys.harmonised(name)),
            partitions_def=wave_partitions(name),
            description=f"Read and harmonise one wave of {name}, with their blocking checks.",
            hooks=STEP_HOOKS,
        )
        for name in catalog.sources
    ]
    jobs.append(
        dg.define_asset_job(
            RELEASE_JOB,
            selection=dg.AssetSelection.assets(*keys.release_assets(
                catalog.surveys, [n for n, s in catalog.surveys.items() if s.records is not None])),
            partitions_def=wave_partitions(catalog.register_name),
            hooks=STEP_HOOKS,
            description=(
                "Match, train, generate, validate and (if every check passes) publish the "
                "release for one register wave."
            ),
        )
    )
    return jobs
