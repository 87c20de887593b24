"""Metadata helpers shared by the assets: images in markdown, check results from suites."""

import base64

import dagster as dg


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI's markdown metadata."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


#: Metadata key under which every blocking check of ``fictitious_dataset`` and
#: ``validation_report`` records the content hash of the fictitious data it judged; the
#: gate publishes only data whose hash every one of them recorded.
JUDGED_HASH = "fictitious_sha256"


def judged(fictitious) -> dict[str, str]:
    """The metadata naming the fictitious data a check judged (its content hash)."""
    from synth_assets.common.hashing import dataframe_sha256

    return {JUDGED_HASH: dataframe_sha256(fictitious)}


def suite_check_result(report, metadata: dict | None = None) -> dg.AssetCheckResult:
    """A Great Expectations suite's outcome as a check result that names what failed."""
    return dg.AssetCheckResult(
        passed=report.success,
        description=None if report.success else report.describe(),
        metadata={"failed_expectations": dg.MetadataValue.md(report.describe() or "none"), **(metadata or {})},
    )
