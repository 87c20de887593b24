"""Statistical matching (data fusion) of a recipient file with donor surveys.

Recipient A observes X (common) and Y; donor B observes X and Z.  :func:`fuse`
imputes Z into A through X (D'Orazio, Di Zio & Scanu 2006, *Statistical
Matching: Theory and Practice*).  What matching can get right: the Z marginal
and the X-by-Z relation (checked by :class:`MatchingDiagnostics`); the Y-by-Z
relation only up to conditional independence given X, unless an auxiliary
file observing Y and Z together is supplied (``method="aux_hotdeck"``).

Methods (:data:`METHODS`): ``nnd_hotdeck`` (default), ``nnd_constrained``,
``random_hotdeck``, ``rank_hotdeck``, ``pmm``, ``model_draw``, ``neural_draw``
(torch network, donor drawn near the recipient in predicted space), ``aux_hotdeck``.
:func:`fusion_diagnostics` reports a whole fusion (distances to each donor, Fréchet
bounds of cross-source cells), :func:`truth_comparison` every cross-source joint
against a known truth (demo population), :func:`missing_shares` where missing values
enter or leave (sources, matched dataset, release).
A catalog's surveys are fused into a register by :func:`~synth_assets.matching.sources.fuse_sources`,
or a part of whole households at a time by :func:`~synth_assets.matching.parts.fuse_in_parts` (what
the release's steps do, so their memory is a part's, not the register's).
Plain Python: no Dagster here, the assets wrap these functions.
"""

from synth_assets.matching.api import FusionResult, fuse
from synth_assets.matching.chain import FusionStep, fuse_chain
from synth_assets.matching.diagnostics import MatchingDiagnostics, compare_to_truth, frechet_bounds, missing_shares
from synth_assets.matching.methods import METHODS
from synth_assets.matching.report import DonorSpec, FusionReport, fusion_diagnostics, truth_comparison

__all__ = [
    "METHODS",
    "DonorSpec",
    "FusionReport",
    "FusionResult",
    "FusionStep",
    "MatchingDiagnostics",
    "compare_to_truth",
    "frechet_bounds",
    "fuse",
    "fuse_chain",
    "fusion_diagnostics",
    "missing_shares",
    "truth_comparison",
]
