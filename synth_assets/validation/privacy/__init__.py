"""Privacy metrics: copies, distances to training records, and anonymeter-style attacks."""

from synth_assets.validation.privacy.copies import exact_copy_rate, replicated_uniques
from synth_assets.validation.privacy.distance import DCRResult, dcr, membership_inference_auc
from synth_assets.validation.privacy.inference import attribute_inference
from synth_assets.validation.privacy.linkability import linkability_risk
from synth_assets.validation.privacy.risk import AttackRisk, SuccessRate
from synth_assets.validation.privacy.singling_out import singling_out_risk

__all__ = [
    "AttackRisk",
    "DCRResult",
    "SuccessRate",
    "attribute_inference",
    "dcr",
    "exact_copy_rate",
    "linkability_risk",
    "membership_inference_auc",
    "replicated_uniques",
    "singling_out_risk",
]
