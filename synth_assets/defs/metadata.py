"""Metadata helpers shared by the assets: images in markdown, check results from suites."""

import base64

import dagster as dg


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI's markdown metadata."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def suite_check_result(report) -> dg.AssetCheckResult:
    """A Great Expectations suite's outcome as a check result that names what failed."""
    return dg.AssetCheckResult(
        passed=report.success,
        description=None if report.success else report.describe(),
        metadata={"failed_expectations": dg.MetadataValue.md(report.describe() or "none")},
    )
