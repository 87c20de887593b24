"""Ingest: one ``raw_<source>`` asset per catalog source, partitioned by wave.

The file is read as delivered (codes, not labels); its sha256, size, row count and schema
go into the metadata so the audit can prove which bytes a release came from.
"""


import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.catalog.expectations import raw_suite_spec
from synth_assets.common.hashing import file_sha256
from synth_assets.defs.gating import latest_materialization
from synth_assets.defs.metadata import suite_check_result
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.ingest import check_schema_drift, describe_schema, read_source_file, source_path

INGEST_CODE_VERSION = "1"


def build_raw_asset(catalog: Catalog, source_name: str) -> dg.AssetsDefinition:
    source = catalog.sources[source_name]

    @dg.asset(
        name=f"raw_{source_name}",
        group_name="ingest",
        partitions_def=wave_partitions(source_name),
        code_version=INGEST_CODE_VERSION,
        kinds={source.format, "pandas"},
        description=(
            f"{source.description or source_name}: the file delivered for one wave, read as is "
            f"({source.format}, `{source.path}` under data/incoming). Metadata: sha256, rows, schema."
        ),
        metadata={"source": source_name, "file_pattern": source.path, "format": source.format},
    )
    def raw_asset(context: dg.AssetExecutionContext, project: ProjectResource) -> dg.Output[pd.DataFrame]:
        wave = context.partition_key
        path = source_path(project.layout.incoming, source, wave)
        table = read_source_file(path, source)
        # Compared with the latest delivery of this source (any wave) this instance ingested.
        previous = latest_materialization(context.instance, context.asset_key, None).get("metadata", {})
        check_schema_drift(table, source, source_name, previous.get("raw_schema"), previous.get("source_file"))
        data = table.data
        # Value labels travel with the table: pandas keeps ``attrs`` in the Parquet metadata.
        data.attrs["value_labels"] = {
            col: {str(k): str(v) for k, v in labels.items()} for col, labels in table.value_labels.items()
        }
        context.log.info(f"read {len(data):,} rows x {data.shape[1]} columns from {path}")
        return dg.Output(
            data,
            metadata={
                "source_file": dg.MetadataValue.path(str(path)),
                "sha256": file_sha256(path),
                "bytes": path.stat().st_size,
                "wave": wave,
                "rows": len(data),
                "raw_schema": dg.MetadataValue.json(describe_schema(data)),
            },
        )

    return raw_asset


def build_raw_check(catalog: Catalog, source_name: str) -> dg.AssetChecksDefinition:
    source = catalog.sources[source_name]

    @dg.asset_check(
        asset=f"raw_{source_name}",
        name="delivered_file_is_valid",
        blocking=True,
        partitions_def=wave_partitions(source_name),
        description=(
            "Great Expectations suite on the delivered file: every catalog column present, "
            "ids unique and not null, weights positive, at least one row."
        ),
    )
    def raw_check(context: dg.AssetCheckExecutionContext, data: pd.DataFrame) -> dg.AssetCheckResult:
        from synth_assets.catalog.expectations import validate_table

        result = validate_table(data, raw_suite_spec(catalog, source_name))
        return suite_check_result(result)

    return raw_check
