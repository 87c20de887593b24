"""Utility metrics: how well synthetic data reproduce the real data's statistics."""

from synth_assets.validation.utility.association import (
    AssociationComparison,
    association_differences,
    pca_alignment,
)
from synth_assets.validation.utility.kmarginal import kmarginal_score, kmarginal_scores
from synth_assets.validation.utility.propensity import pmse, propensity_auc
from synth_assets.validation.utility.regression import (
    RegressionComparison,
    RegressionSpec,
    ci_overlap,
    compare_regression,
    compare_regressions,
)
from synth_assets.validation.utility.univariate import compare_columns, ks, plausibility, tvd

__all__ = [
    "AssociationComparison",
    "RegressionComparison",
    "RegressionSpec",
    "association_differences",
    "ci_overlap",
    "compare_columns",
    "compare_regression",
    "compare_regressions",
    "kmarginal_score",
    "kmarginal_scores",
    "ks",
    "pca_alignment",
    "plausibility",
    "pmse",
    "propensity_auc",
    "tvd",
]
