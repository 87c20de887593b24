"""The lineage of public releases, for privacy officers."""

from synth_assets.audit.lineage import AssetStep, CheckResult, Lineage, copy_test, verify_release_files, write_lineage

__all__ = ["AssetStep", "CheckResult", "Lineage", "copy_test", "verify_release_files", "write_lineage"]
