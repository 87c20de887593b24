"""Jobs: one ingest job per source (raw + harmonised) and one release job (matching to public).

Sources have their own wave partitions, so a run covers one source's wave or one release.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.defs import keys
from synth_assets.defs.partitions import wave_partitions

RELEASE_JOB = "release"


def ingest_job_name(source_name: str) -> str:
    return f"ingest_{source_name}"


def build_jobs(catalog: Catalog) -> list[Any]:
    jobs = [
        dg.define_asset_job(
            ingest_job_name(name),
            selection=dg.AssetSelection.assets(keys.raw(name), keys.harmonised(name)),
            partitions_def=wave_partitions(name),
            description=f"Read and harmonise one wave of {name}, with their blocking checks.",
        )
        for name in catalog.sources
    ]
    jobs.append(
        dg.define_asset_job(
            RELEASE_JOB,
            selection=dg.AssetSelection.assets(*keys.release_assets(
                catalog.surveys, [n for n, s in catalog.surveys.items() if s.records is not None])),
            partitions_def=wave_partitions(catalog.register_name),
            description=(
                "Match, train, generate, validate and (if every check passes) publish the "
                "release for one register wave."
            ),
        )
    )
    return jobs
