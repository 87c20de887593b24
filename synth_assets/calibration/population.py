"""A calibrated fictitious population: surplus draws from a model, then household selection.

The model is reached through one callable, ``draw(persons, seed)``, that returns whole,
valid households (rules enforced, no real record copied), so this module knows nothing of
the model's family. Strata left short of candidates get more draws, round after round;
what is still short after ``max_rounds`` is an error naming the cells, not a release that
misses the register quietly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from synth_assets.calibration.margins import CalibrationError, Targets
from synth_assets.calibration.selection import CalibrationResult, InsufficientCandidates, select_households

Draw = Callable[[int, int], pd.DataFrame]


def _renumbered(batch: pd.DataFrame, household_id: str, after: pd.Series | None) -> pd.DataFrame:
    """``batch`` with household ids that follow those of ``after`` (new ids stay synthetic)."""
    if after is None or after.empty:
        return batch
    ids = batch[household_id]
    if pd.api.types.is_integer_dtype(ids.dtype) and pd.api.types.is_integer_dtype(after.dtype):
        # generated integer ids start above every real id: shifting upwards keeps them synthetic
        return batch.assign(**{household_id: ids - ids.min() + after.max() + 1})
    return batch.assign(**{household_id: ids.astype(str) + f"~{len(after)}"})


def calibrated_population(
    draw: Draw,
    targets: Targets,
    household_id: str,
    *,
    surplus: float = 3.0,
    seed: int = 0,
    max_rounds: int = 8,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Households chosen from ``surplus`` times the register's persons drawn by ``draw``.

    Strata short of candidates trigger another draw of the same size (new seed), up to
    ``max_rounds`` draws in all; so does, once, a first selection that leaves a control
    beyond its tolerance (the caller's check then judges the second).
    """
    size = int(math.ceil(surplus * targets.persons))
    seeds = np.random.SeedSequence(seed).generate_state(max_rounds + 1)
    candidates = draw(size, int(seeds[0]))
    widened = False
    for round_ in range(1, max_rounds + 1):
        try:
            result = select_households(candidates, targets, household_id, seed=int(seeds[-1]), progress=progress)
        except InsufficientCandidates as short:
            if round_ == max_rounds:
                raise CalibrationError(
                    f"after {max_rounds} draws of {size:,} persons the model still generates too few "
                    f"households in some register cells: {short}"
                ) from short
            if progress is not None:
                progress(f"calibration: {short}; drawing {size:,} more persons")
        else:
            # a selection left beyond a tolerance gets more candidates to choose from, once
            if result.within_tolerance or widened or round_ == max_rounds:
                return result
            widened = True
            if progress is not None:
                progress(f"calibration: controls beyond tolerance; drawing {size:,} more persons")
        extra = _renumbered(draw(size, int(seeds[round_])), household_id, candidates[household_id])
        candidates = pd.concat([candidates, extra], ignore_index=True)
    raise AssertionError("unreachable")
