"""Ingest's blocking check: the delivered file holds what the catalog declares."""

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.catalog.expectations import raw_suite_spec, validate_stored
from synth_assets.defs import keys
from synth_assets.defs.metadata import data_docs, suite_check_result
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.values import WaveFile


def build_raw_check(catalog: Catalog, source_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=keys.raw(source_name),
        name=keys.DELIVERED_FILE_IS_VALID,
        blocking=True,
        partitions_def=wave_partitions(source_name),
        description=(
            "Great Expectations suite on the delivered file: every catalog column present, "
            "ids unique and not null, weights positive, at least one row."
        ),
    )
    def raw_check(context: dg.AssetCheckExecutionContext, project: ProjectResource, raw: WaveFile) -> dg.AssetCheckResult:
        return suite_check_result(validate_stored(raw.table, raw_suite_spec(catalog, source_name),
                                                 docs=data_docs(project, context)))

    return raw_check
