"""Harmonise: one ``harmonised_<source>`` asset per source, on the common schema.

The delivered wave is harmonised a row group at a time and written out as it goes (a
``WaveFile``), so the step holds a part of a register's wave, never the wave; a record source
(episodes, trips: a person's records aggregated) is a survey's size and is harmonised whole.
"""

import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.defs import keys
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.values import WaveFile
from synth_assets.defs.versions import code_version
from synth_assets.harmonise import HarmonisationError, harmonise_table

#: A hash of the source this module runs (see ``defs/versions.py``).
HARMONISE_CODE_VERSION = code_version(__name__)


def build_harmonised_asset(catalog: Catalog, source_name: str) -> dg.AssetsDefinition:
    source = catalog.sources[source_name]

    # No automation condition: the ingest job makes a wave's raw and harmonised tables in one run, as the
    # incoming sensor and `synth-assets run` launch it. An eager condition here also requested the wave
    # harmonised again, in a run of its own, when an automation tick fell on the ingest run's harmonise
    # step (its materialization not yet read, its planned run no longer in progress): two writers of
    # one wave's table, seen in the daemon test on a loaded machine.
    @dg.asset(
        key=keys.harmonised(source_name),
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
        context: dg.AssetExecutionContext, project: ProjectResource, raw: WaveFile
    ) -> dg.Output[WaveFile]:
        rows = raw.table.num_rows
        parts = iter([raw.table.read()]) if source.records is not None else raw.table.frames()
        stack = WaveFile.stack(raw.origin)  # the file it came from travels on, to the release's data card
        missing: pd.Series | None = None
        records: dict = {}
        first = 0
        for part in parts:
            try:
                table = harmonise_table(part, project.catalog, source_name, file=raw.origin.file,
                                        value_labels=raw.value_labels, first_row=first)
            except HarmonisationError as exc:
                if len(part) == rows:
                    raise
                raise HarmonisationError(f"{exc} (in the file's rows {first + 1}-{first + len(part)} of "
                                         f"{rows}; the rows after them were not read)") from exc
            first += len(part)
            # A record source (episodes, trips): how many days failed which check (their persons'
            # aggregates are item non-response, imputed before fusion).
            records = table.attrs.get("records", records)
            counts = table.isna().sum()
            missing = counts if missing is None else missing + counts
            stack.append(table)
            if len(part) < rows:
                context.log.info(f"harmonised {first:,} of {rows:,} rows")
        harmonised = WaveFile(stack.finish(), raw.origin)
        written = harmonised.table.num_rows
        roles = {name: var.role for name, var in source.variables.items()}
        assert missing is not None  # a wave has rows: the ingest refuses a file of none
        return dg.Output(
            harmonised,
            metadata={
                "wave": raw.wave,
                "rows": written,
                "common_variables": ", ".join(n for n, r in roles.items() if r == "common"),
                "specific_variables": ", ".join(n for n, r in roles.items() if r == "specific"),
                "missing_share": dg.MetadataValue.json(
                    {str(c): round(float(n) / max(written, 1), 4) for c, n in missing.items()}
                ),
                **({"records": dg.MetadataValue.json(records)} if records else {}),
            },
        )

    return harmonised_asset
