"""Ingest: per catalog source, the delivered files (``incoming_<source>``, observed) and ``raw_<source>``.

``incoming_<source>`` is an observable source asset: its data version per wave is the
file's sha256 (see ``defs/deliveries.py``; the incoming sensor and ``synth-assets run``
record the observations, "Observe sources" in the UI does too). ``raw_<source>`` depends on
it, so the UI marks a wave stale when its file changed since it was read.

The file is read as delivered (codes, not labels), a batch of records at a time, each written
out as it is read: the value is a ``WaveFile`` (the records in their stored Parquet file, the
file's value labels, and where they came from: path, sha256, this run), so no step holds a
register's wave whole. Its sha256, size, row count and schema also go into the metadata, for
people and the audit.
"""

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.common.hashing import file_sha256
from synth_assets.dagster_api import latest_materialization
from synth_assets.defs import keys
from synth_assets.defs.deliveries import observe_deliveries
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.values import SourceFile, WaveFile
from synth_assets.defs.versions import code_version
from synth_assets.ingest import check_schema_drift, describe_schema, read_source_batches, source_path

#: A hash of the source this module runs (see ``defs/versions.py``).
INGEST_CODE_VERSION = code_version(__name__)


def build_incoming_asset(catalog: Catalog, source_name: str) -> dg.SourceAsset:
    source = catalog.sources[source_name]

    @dg.observable_source_asset(
        key=keys.incoming(source_name),
        group_name="ingest",
        partitions_def=wave_partitions(source_name),
        description=(
            f"The files delivered for {source_name} (`{source.path}` under data/incoming), one per wave; "
            "data version: the file's sha256 (hashed again only when its size or mtime changes)."
        ),
        metadata={"source": source_name, "file_pattern": source.path},
    )
    def incoming_asset(context: dg.AssetExecutionContext, project: ProjectResource) -> dg.DataVersionsByPartition:
        found = observe_deliveries(context.instance, project.catalog, project.layout.incoming, [source_name])
        return dg.DataVersionsByPartition({d.wave: d.sha256 for d in found})

    return incoming_asset


def build_raw_asset(catalog: Catalog, source_name: str) -> dg.AssetsDefinition:
    source = catalog.sources[source_name]

    @dg.asset(
        key=keys.raw(source_name),
        group_name="ingest",
        partitions_def=wave_partitions(source_name),
        code_version=INGEST_CODE_VERSION,
        deps=[keys.incoming(source_name)],
        kinds={source.format, "pandas"},
        description=(
            f"{source.description or source_name}: the file delivered for one wave, read as is "
            f"({source.format}, `{source.path}` under data/incoming). Metadata: sha256, rows, schema."
        ),
        metadata={"source": source_name, "file_pattern": source.path, "format": source.format},
    )
    def raw_asset(context: dg.AssetExecutionContext, project: ProjectResource) -> dg.Output[WaveFile]:
        wave = context.partition_key
        path = source_path(project.layout.incoming, source, wave)
        # Compared with the latest delivery of this source (any wave) this instance ingested:
        # the asset's own history, not another asset's output.
        previous = latest_materialization(context.instance, context.asset_key, None)
        previous_metadata = previous.metadata if previous else {}
        sha256 = file_sha256(path) if path.is_file() else ""  # a missing file: read_source_batches says so
        origin = SourceFile(source=source_name, wave=wave, file=str(path), sha256=sha256, ingest_run=context.run_id)
        stack, labels = None, {}
        for batch in read_source_batches(path, source):
            if stack is None:  # the first batch: a new column stops the read before the rest is read
                check_schema_drift(batch, source, source_name, previous_metadata.get("raw_schema"),
                                   previous_metadata.get("source_file"))
                labels = {col: {str(k): str(v) for k, v in found.items()} for col, found in batch.value_labels.items()}
                stack = WaveFile.stack(origin, labels)
            stack.append(batch.data)
            if len(stack) > len(batch.data):
                context.log.info(f"read {len(stack):,} rows of {path}")
        assert stack is not None  # read_source_batches refuses a file of no records
        value = WaveFile(stack.finish(), origin, labels)
        columns = value.table.empty()
        context.log.info(f"read {value.table.num_rows:,} rows x {columns.shape[1]} columns from {path}")
        return dg.Output(
            value,
            data_version=dg.DataVersion(sha256),  # what it was built from; compared with incoming_<source>
            metadata={
                "source_file": dg.MetadataValue.path(str(path)),
                "sha256": sha256,
                "bytes": path.stat().st_size,
                "wave": wave,
                "rows": value.table.num_rows,
                # the stored dtypes (a CSV's read whole); what the next delivery's columns are compared with
                "raw_schema": dg.MetadataValue.json(describe_schema(columns)),
            },
        )

    return raw_asset
