"""Validation of synthetic microdata: utility, privacy, release thresholds, reports.

Plain Python (no Dagster). matplotlib and the scikit-learn estimators of the propensity
and distance metrics are imported inside the functions that need them, so importing this
package stays cheap for the Dagster code location. The Great Expectations runner is in :mod:`synth_assets.common.expectations`.
"""

from synth_assets.validation.comparison import ModelComparison, check_families, compare_models
from synth_assets.validation.evaluate import ValidationResult, evaluate
from synth_assets.validation.report import headline_markdown, write_report
from synth_assets.validation.thresholds import CheckOutcome, Threshold, Thresholds
from synth_assets.validation.utility.regression import RegressionSpec

__all__ = [
    "CheckOutcome",
    "ModelComparison",
    "RegressionSpec",
    "Threshold",
    "Thresholds",
    "ValidationResult",
    "check_families",
    "compare_models",
    "evaluate",
    "headline_markdown",
    "write_report",
]
