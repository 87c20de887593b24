"""Harmonisation's blocking check: the table conforms to the common schema."""

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.catalog.expectations import harmonised_suite_spec, validate_stored
from synth_assets.defs import keys
from synth_assets.defs.metadata import data_docs, suite_check_result
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.values import WaveFile


def build_harmonised_check(catalog: Catalog, source_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=keys.harmonised(source_name),
        name=keys.CONFORMS_TO_COMMON_SCHEMA,
        blocking=True,
        partitions_def=wave_partitions(source_name),
        description=(
            "Great Expectations suite: harmonised variables present with their types, categories "
            "within the common schema's sets, values within the declared ranges, ids unique."
        ),
    )
    def harmonised_check(
        context: dg.AssetCheckExecutionContext, project: ProjectResource, harmonised: WaveFile
    ) -> dg.AssetCheckResult:
        return suite_check_result(validate_stored(harmonised.table, harmonised_suite_spec(catalog, source_name),
                                                 docs=data_docs(project, context)))

    return harmonised_check
