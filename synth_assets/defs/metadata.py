"""Metadata helpers shared by the assets: images in markdown, check results from suites."""

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from synth_assets.common.expectations import DataDocs


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI's markdown metadata."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


#: Metadata key under which every blocking check of ``fictitious_dataset`` and
#: ``validation_report`` records the content hash of the fictitious data it judged; the
#: gate publishes only data whose hash every one of them recorded.
JUDGED_HASH = "fictitious_sha256"


def judged(fictitious) -> dict[str, str]:
    """The metadata naming the fictitious data a check judged (its content hash), of the table
    loaded or left on disk (``ParquetTable``: the same hash, a row group at a time)."""
    from synth_assets.common.frames import ParquetTable
    from synth_assets.common.hashing import dataframe_sha256

    return {JUDGED_HASH: fictitious.sha256() if isinstance(fictitious, ParquetTable) else dataframe_sha256(fictitious)}


def evaluation_problem(where: str, evaluation: Any, judged: Mapping[str, tuple[str, str]]) -> str | None:
    """Why a gate check's latest ``evaluation`` does not vouch for the data received, or None.

    ``judged``: metadata key -> (asset named in the message, hash received); the check must have
    passed and recorded each of those hashes, so a verdict on other bytes counts for nothing.
    """
    if evaluation is None:
        return f"{where}: never evaluated"
    if not evaluation.passed:
        return f"{where}: {evaluation.status}"
    for key, (asset, received) in judged.items():
        if evaluation.metadata.get(key) != received:
            return f"{where} judged {asset} sha256 {evaluation.metadata.get(key)}, not the one received ({received})"
    return None


def suite_check_result(report, metadata: dict | None = None) -> dg.AssetCheckResult:
    """A Great Expectations suite's outcome as a check result that names what failed.

    With the suite kept in the data root's GE project, the metadata links its GE JSON and
    the Data Docs (``data_docs``: the site's index.html, this run's results among them).
    """
    links = {}
    if getattr(report, "suite_file", None) is not None:
        links["expectation_suite"] = dg.MetadataValue.path(str(report.suite_file))
    if getattr(report, "docs_index", None) is not None:
        links["data_docs"] = dg.MetadataValue.path(str(report.docs_index))
    return dg.AssetCheckResult(
        passed=report.success,
        description=None if report.success else report.describe(),
        metadata={"failed_expectations": dg.MetadataValue.md(report.describe() or "none"), **links,
                  **(metadata or {})},
    )


def data_docs(project, context) -> "DataDocs":
    """The data root's Great Expectations project (``reports/data_docs/``), results named by run."""
    from synth_assets.common.expectations import DataDocs

    op = context.op_execution_context  # an asset's context or a check's
    partition = op.partition_key if op.has_partition_key else ""
    return DataDocs(project.layout.reports / "data_docs", run_name=f"{partition} {op.run_id}".strip())


#: Attribute set on the log records a step marks as progress, for ``synth-assets run``'s one-line-per-stage output.
PROGRESS_FLAG = "synth_assets_progress"


#: On the log line of a step's peak resident memory (bytes): ``synth-assets run`` adds it to the step's line.
PEAK_FLAG = "synth_assets_peak_bytes"

#: On the log line of a step's CPU time (seconds, its children's included): added to the step's line too.
CPU_FLAG = "synth_assets_cpu_seconds"


def log_child_peak(context, label: str, peak: int | None) -> None:
    """A child process's peak resident memory (``forked_imap``'s ``on_peak``) in the step's log: what
    it needed beside the step, whose own peak (the step hook's line) leaves its children out."""
    if peak is not None:
        context.log.info(f"{label}: its process's peak resident memory {peak / 1e9:.2f} GB")


def log_progress(context, message: str) -> None:
    """Log ``message`` at info level, marked as a progress line (shown by ``synth-assets run``)."""
    context.log.info(message, extra={PROGRESS_FLAG: True})
