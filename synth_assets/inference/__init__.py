"""Inference from a release's replicates: the combining rules, for the report and for analysts."""

from synth_assets.inference.combining import METHODS, CombinedEstimate, combine_estimates

__all__ = ["METHODS", "CombinedEstimate", "combine_estimates"]
