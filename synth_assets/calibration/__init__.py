"""Calibration to the register: a release whose margins are the population's.

Plain Python, no Dagster. The register is the whole population, so its margins are known
exactly; a fictitious population is chosen from a surplus of generated households so that
it meets them with unit weights, and carries calibrated weights for users who gross up.

    >>> targets = register_targets(register, spec, "household_id")        # doctest: +SKIP
    >>> result = select_households(candidates, targets, "household_id")   # doctest: +SKIP
    >>> result.residuals                                                   # doctest: +SKIP
"""

from synth_assets.calibration.margins import (
    CalibrationError,
    CalibrationSpec,
    Margin,
    Targets,
    band_labels,
    merge_small_cells,
    register_targets,
    spec_from_catalog,
)
from synth_assets.calibration.population import calibrated_population
from synth_assets.calibration.selection import (
    WEIGHT_COLUMN,
    CalibrationResult,
    InsufficientCandidates,
    select_households,
)
from synth_assets.calibration.weights import RakingResult, rake

__all__ = [
    "WEIGHT_COLUMN",
    "CalibrationError",
    "CalibrationResult",
    "CalibrationSpec",
    "InsufficientCandidates",
    "Margin",
    "RakingResult",
    "Targets",
    "band_labels",
    "calibrated_population",
    "merge_small_cells",
    "rake",
    "register_targets",
    "select_households",
    "spec_from_catalog",
]
