"""Harmonise: one ``harmonised_<source>`` asset per source, on the common schema."""


import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.catalog.expectations import harmonised_suite_spec
from synth_assets.defs.automation import RELEASE_AUTOMATION
from synth_assets.defs.metadata import suite_check_result
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.harmonise import harmonise_table
from synth_assets.ingest import source_path

HARMONISE_CODE_VERSION = "1"


def build_harmonised_asset(catalog: Catalog, source_name: str) -> dg.AssetsDefinition:
    source = catalog.sources[source_name]

    @dg.asset(
        name=f"harmonised_{source_name}",
        automation_condition=RELEASE_AUTOMATION,
        group_name="harmonise",
        partitions_def=wave_partitions(source_name),
        code_version=HARMONISE_CODE_VERSION,
        kinds={"pandas"},
        ins={"raw": dg.AssetIn(f"raw_{source_name}")},
        description=(
            f"{source.description or source_name} on the common schema: harmonised names, the "
            "common category sets, missing codes as nulls, units converted (catalog mappings)."
        ),
        metadata={"source": source_name, "unit": source.unit},
    )
    def harmonised_asset(
        context: dg.AssetExecutionContext, project: ProjectResource, raw: pd.DataFrame
    ) -> dg.Output[pd.DataFrame]:
        wave = context.partition_key
        path = source_path(project.layout.incoming, source, wave)
        table = harmonise_table(
            raw, project.catalog, source_name, file=path, value_labels=raw.attrs.get("value_labels")
        )
        roles = {name: var.role for name, var in source.variables.items()}
        return dg.Output(
            table,
            metadata={
                "wave": wave,
                "rows": len(table),
                "common_variables": ", ".join(n for n, r in roles.items() if r == "common"),
                "specific_variables": ", ".join(n for n, r in roles.items() if r == "specific"),
                "missing_share": dg.MetadataValue.json(
                    {c: round(float(table[c].isna().mean()), 4) for c in table.columns}
                ),
            },
        )

    return harmonised_asset


def build_harmonised_check(catalog: Catalog, source_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=f"harmonised_{source_name}",
        name="conforms_to_common_schema",
        blocking=True,
        partitions_def=wave_partitions(source_name),
        description=(
            "Great Expectations suite: harmonised variables present with their types, categories "
            "within the common schema's sets, values within the declared ranges, ids unique."
        ),
    )
    def harmonised_check(context: dg.AssetCheckExecutionContext, data: pd.DataFrame) -> dg.AssetCheckResult:
        from synth_assets.catalog.expectations import validate_table

        result = validate_table(data, harmonised_suite_spec(catalog, source_name))
        return suite_check_result(result)

    return harmonised_check
