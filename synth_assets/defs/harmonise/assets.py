"""Harmonise: one ``harmonised_<source>`` asset per source, on the common schema."""

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.defs import keys
from synth_assets.defs.automation.conditions import RELEASE_AUTOMATION
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.values import WaveTable
from synth_assets.defs.versions import code_version
from synth_assets.harmonise import harmonise_table

#: A hash of the source this module runs (see ``defs/versions.py``).
HARMONISE_CODE_VERSION = code_version(__name__)


def build_harmonised_asset(catalog: Catalog, source_name: str) -> dg.AssetsDefinition:
    source = catalog.sources[source_name]

    @dg.asset(
        key=keys.harmonised(source_name),
        automation_condition=RELEASE_AUTOMATION,
        group_name="harmonise",
        partitions_def=wave_partitions(source_name),
        code_version=HARMONISE_CODE_VERSION,
        kinds={"pandas"},
        ins={"raw": dg.AssetIn(keys.raw(source_name))},
        description=(
            f"{source.description or source_name} on the common schema: harmonised names, the "
            "common category sets, missing codes as nulls, units converted (catalog mappings)."
        ),
        metadata={"source": source_name, "unit": source.unit},
    )
    def harmonised_asset(
        context: dg.AssetExecutionContext, project: ProjectResource, raw: WaveTable
    ) -> dg.Output[WaveTable]:
        table = harmonise_table(
            raw.data, project.catalog, source_name, file=raw.origin.file, value_labels=raw.value_labels
        )
        roles = {name: var.role for name, var in source.variables.items()}
        # A record source (episodes, trips): how many days failed which check (their persons'
        # aggregates are item non-response, imputed before fusion).
        records = {"records": dg.MetadataValue.json(table.attrs["records"])} if "records" in table.attrs else {}
        return dg.Output(
            WaveTable(table, raw.origin),  # the file it came from travels on, to the release's data card
            metadata={
                "wave": raw.wave,
                "rows": len(table),
                "common_variables": ", ".join(n for n, r in roles.items() if r == "common"),
                "specific_variables": ", ".join(n for n, r in roles.items() if r == "specific"),
                "missing_share": dg.MetadataValue.json(
                    {c: round(float(table[c].isna().mean()), 4) for c in table.columns}
                ),
                **records,
            },
        )

    return harmonised_asset
