"""Building the pipeline's synthesiser (households kept coherent), and reading any synthesiser back from a file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from synth_assets.synthesis.base import Synthesizer
from synth_assets.synthesis.families import make_synthesizer
from synth_assets.synthesis.households import HouseholdSynthesizer
from synth_assets.synthesis.sdv_models import SDV_FAMILIES

#: Families that take the training-budget parameters: SDV's and our autoregressive network.
BUDGETED_FAMILIES = (*SDV_FAMILIES, "neural")

#: Training-budget parameters of the budgeted families; the pipeline's builder drops them for CART
#: so one configuration (e.g. ``epochs``/``max_seconds``) serves every family.
GAN_ONLY = ("epochs", "max_seconds", "enable_gpu", "batch_size", "torch_threads")

#: Share of ``max_seconds`` given to the household model when both models are neural.
HOUSEHOLD_BUDGET_SHARE = 0.3


def _family_params(family: str, params: dict[str, Any]) -> dict[str, Any]:
    if family in BUDGETED_FAMILIES:
        return dict(params)
    return {k: v for k, v in params.items() if k not in GAN_ONLY}


def build_population_synthesizer(
    family: str,
    *,
    household_id: str | None = None,
    person_id: str | None = None,
    person_family: str | None = None,
    seed: int = 0,
    blocks: Sequence[Sequence[str]] = (),
    household_level: Sequence[str] = (),
    household_totals: Sequence[str] = (),
    **params: Any,
) -> Synthesizer:
    """The synthesiser the pipeline trains: households kept coherent when ``household_id`` is set.

    With households, ``family`` models the household table and ``person_family`` (default:
    the same) the members given their household. A time budget (``max_seconds``) is split
    between two neural models, or goes whole to the only neural one. ``person_id`` names an
    identifier column, replaced by fresh identifiers when present in the data. ``blocks`` are
    groups of columns that come together from one real record (a survey's variables fused
    from one donor): CART draws each block whole from one training record, so the relations
    within a survey stay those of its respondents. ``household_level`` names household facts
    (a survey's household variables): modelled in the household table, identical for every member.
    ``household_totals`` names person amounts (incomes) whose household total is drawn in the
    household table, the members' amounts then given it.
    """
    person_family = person_family or family
    if household_id is None:
        id_columns = [person_id] if person_id else []
        flat = _family_params(family, params)
        if family == "cart" and blocks:
            flat["blocks"] = [list(b) for b in blocks]
        return make_synthesizer(family, seed=seed, id_columns=id_columns, **flat)
    household_params = _family_params(family, params)
    person_params = _family_params(person_family, params)
    budget = params.get("max_seconds")
    if budget is not None and family in BUDGETED_FAMILIES and person_family in BUDGETED_FAMILIES:
        household_params["max_seconds"] = budget * HOUSEHOLD_BUDGET_SHARE
        person_params["max_seconds"] = budget * (1 - HOUSEHOLD_BUDGET_SHARE)
    return HouseholdSynthesizer(
        family,
        person_family,
        household_id=household_id,
        person_id=person_id,
        seed=seed,
        household_params=household_params,
        person_params=person_params,
        blocks=blocks,
        household_level=household_level,
        household_totals=household_totals,
    )


def load_synthesizer(path: str | os.PathLike[str]) -> Synthesizer:
    """Read any synthesiser written by :meth:`Synthesizer.save`."""
    return Synthesizer.load(path)
