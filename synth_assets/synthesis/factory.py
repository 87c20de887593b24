"""Building synthesisers by family name, and reading them back from files."""

from __future__ import annotations

import os
from typing import Any

from synth_assets.synthesis.base import Synthesizer
from synth_assets.synthesis.cart import CARTSynthesizer
from synth_assets.synthesis.households import HouseholdSynthesizer
from synth_assets.synthesis.sdv_models import SDV_FAMILIES, SDVSynthesizer

FAMILIES = ("cart",) + SDV_FAMILIES

#: Training-budget parameters of the SDV families; the pipeline's builder drops them for CART
#: so one configuration (e.g. ``epochs``/``max_seconds``) serves every family.
GAN_ONLY = ("epochs", "max_seconds", "enable_gpu", "batch_size", "torch_threads")

#: Share of ``max_seconds`` given to the household model when both models are neural.
HOUSEHOLD_BUDGET_SHARE = 0.3


def make_synthesizer(family: str, *, seed: int = 0, **params: Any) -> Synthesizer:
    """A new, unfitted synthesiser: ``"cart"`` (default of the CLI), ``"ctgan"``, ``"tvae"``, ``"copula"``."""
    if family == "cart":
        return CARTSynthesizer(seed=seed, **params)
    if family in SDV_FAMILIES:
        return SDVSynthesizer(family, seed=seed, **params)
    raise ValueError(f"unknown synthesiser family {family!r}; choose one of {', '.join(FAMILIES)}")


def _family_params(family: str, params: dict[str, Any]) -> dict[str, Any]:
    if family in SDV_FAMILIES:
        return dict(params)
    return {k: v for k, v in params.items() if k not in GAN_ONLY}


def build_population_synthesizer(
    family: str,
    *,
    household_id: str | None = None,
    person_id: str | None = None,
    seed: int = 0,
    **params: Any,
) -> Synthesizer:
    """The synthesiser the pipeline trains: households kept coherent when ``household_id`` is set.

    With households, both the household and the person model are of ``family``; a time
    budget (``max_seconds``) is split between them. ``person_id`` names an identifier
    column, replaced by fresh identifiers when present in the data.
    """
    params = _family_params(family, params)
    if household_id is None:
        id_columns = [person_id] if person_id else []
        return make_synthesizer(family, seed=seed, id_columns=id_columns, **params)
    household_params = dict(params)
    person_params = dict(params)
    if params.get("max_seconds") is not None:
        household_params["max_seconds"] = params["max_seconds"] * HOUSEHOLD_BUDGET_SHARE
        person_params["max_seconds"] = params["max_seconds"] * (1 - HOUSEHOLD_BUDGET_SHARE)
    return HouseholdSynthesizer(
        family,
        family,
        household_id=household_id,
        person_id=person_id,
        seed=seed,
        household_params=household_params,
        person_params=person_params,
    )


def load_synthesizer(path: str | os.PathLike[str]) -> Synthesizer:
    """Read any synthesiser written by :meth:`Synthesizer.save`."""
    return Synthesizer.load(path)
