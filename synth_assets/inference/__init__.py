"""Inference from a release's replicates: the combining rules, for the report and for analysts.

``load_release`` reads a published release; ``ols_on_replicates``, ``logit_on_replicates`` and
``fit_replicates`` (any estimator) fit a model on every replicate and combine with the fully
synthetic rule (``combining``: what a replicate is, the rule, the floor for negative variances).
``compare_fits`` sets one model (a formula or columns) on the original data, one replicate and
all replicates combined side by side, as Goldstein's tables do (``synth-assets analyse``).
"""

from synth_assets.inference.analysis import (
    CombinedFit,
    Release,
    fit_replicates,
    load_release,
    logit_on_replicates,
    ols_on_replicates,
)
from synth_assets.inference.combining import METHODS, CombinedEstimate, combine_estimates
from synth_assets.inference.compare import KINDS, ModelError, compare_fits, comparison_markdown, parse_formula
from synth_assets.inference.models import ModelFit, fit_logit, fit_ols, logit, ols

__all__ = [
    "KINDS", "METHODS", "CombinedEstimate", "CombinedFit", "ModelError", "ModelFit", "Release", "combine_estimates",
    "compare_fits", "comparison_markdown", "fit_logit", "fit_ols", "fit_replicates", "load_release", "logit",
    "logit_on_replicates", "ols", "ols_on_replicates", "parse_formula",
]
