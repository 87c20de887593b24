"""Chained fusion: several donor surveys imputed one after another into one base file.

Later steps may match on variables imputed by earlier ones (e.g. impute
economic status from a labour survey, then income from an income survey
matching on economic status too), which is how a register plus several
surveys becomes one file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from synth_assets.matching.api import FusionResult, fuse

logger = logging.getLogger("synth_assets.matching")


@dataclass
class FusionStep:
    """One donor survey and how to match it (arguments of :func:`fuse`)."""

    donor: pd.DataFrame
    on: list[str]
    impute: list[str]
    donor_weight: str | None = None
    donation_classes: list[str] | None = None
    method: str = "nnd_hotdeck"
    options: dict[str, Any] = field(default_factory=dict)
    distance: str = "gower"
    auxiliary: pd.DataFrame | None = None


def fuse_chain(
    base: pd.DataFrame, steps: list[FusionStep], *, recipient_weight: str | None = None, seed: int = 0
) -> tuple[pd.DataFrame, list[FusionResult]]:
    """Run ``steps`` in order, each on the output of the previous one; step i uses seed ``seed + i``."""
    data, results = base, []
    for i, step in enumerate(steps):
        logger.info("fusion step %d of %d: impute %s on %s", i + 1, len(steps), step.impute, step.on)
        result = fuse(
            data,
            step.donor,
            on=step.on,
            impute=step.impute,
            recipient_weight=recipient_weight,
            donor_weight=step.donor_weight,
            donation_classes=step.donation_classes,
            method=step.method,
            distance=step.distance,
            seed=seed + i,
            auxiliary=step.auxiliary,
            **step.options,
        )
        data = result.data
        results.append(result)
    return data, results
