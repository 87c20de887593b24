"""Reading delivered files as they come, with their hashes and schemas."""

from synth_assets.ingest.readers import (
    IngestError,
    RawTable,
    check_schema_drift,
    delivered_rows,
    describe_schema,
    discover_waves,
    misnamed_files,
    read_source_batches,
    read_source_file,
    source_path,
)

__all__ = ["IngestError", "RawTable", "check_schema_drift", "delivered_rows", "describe_schema", "discover_waves", "misnamed_files", "read_source_batches", "read_source_file", "source_path"]
