"""Building the pipeline's synthesiser (households kept coherent), and reading any synthesiser back from a file."""

from __future__ import annotations

import functools
import inspect
import os
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from synth_assets.synthesis.base import Synthesizer
from synth_assets.synthesis.cart import CARTSynthesizer
from synth_assets.synthesis.families import BLOCK_FAMILIES, RULE_MASKING_FAMILIES, make_synthesizer
from synth_assets.synthesis.gan import GANSynthesizer
from synth_assets.synthesis.households import HouseholdSynthesizer
from synth_assets.synthesis.neural import NeuralSynthesizer
from synth_assets.synthesis.sdv_models import SDV_FAMILIES, SDVSynthesizer
from synth_assets.synthesis.tabular import TabularSynthesizer

#: Families that take the training-budget parameters: SDV's, our autoregressive network and our GAN.
BUDGETED_FAMILIES = (*SDV_FAMILIES, "neural", "gan")

#: Training-budget parameters of the budgeted families; the pipeline's builder drops them for CART
#: so one configuration (e.g. ``epochs``/``max_seconds``) serves every family.
GAN_ONLY = ("epochs", "max_seconds", "enable_gpu", "batch_size", "torch_threads")

#: Share of ``max_seconds`` given to the household model when both models are neural.
HOUSEHOLD_BUDGET_SHARE = 0.3


#: Constructor arguments the pipeline sets itself (from the catalog and the data), not options.
_INTERNAL = ("self", "family", "seed", "special_codes", "id_columns", "condition_columns", "blocks",
             "visit_sequence", "enable_gpu", "torch_threads", "rules")



@functools.cache
def model_options(family: str) -> dict[str, Any]:
    """A family's options a user may set (``population_model``'s ``params``), with their types.

    Read from the synthesiser's constructor, so a new argument is an option at once:
    CART ``min_leaf``, ``smoothing``, ``bootstrap``, ``max_depth``, ``stratum``, ...; the SDV
    families ``epochs``, ``max_seconds``, ``batch_size``, ``model_params`` (passed to SDV),
    ``calibrate_marginals``, ...
    """
    classes: dict[str, type[TabularSynthesizer]] = {
        "cart": CARTSynthesizer, "neural": NeuralSynthesizer, "gan": GANSynthesizer}
    init = classes.get(family, SDVSynthesizer).__init__
    hints = typing.get_type_hints(init, include_extras=True)  # bounds (Annotated) checked too
    return {name: hints.get(name, Any) for name in inspect.signature(init).parameters if name not in _INTERNAL}


def check_model_params(families: Sequence[str], params: Mapping[str, Any], *,
                       exclude: Sequence[str] = ()) -> dict[str, Any]:
    """``params`` checked against the options of ``families`` (each one taken by at least one of them).

    ``exclude``: options set elsewhere (the pipeline's ``epochs``, ``max_seconds``), not listed.

    ``ValueError`` names the first unknown option with the valid ones, or the first value its
    type refuses; values come back as the type asks (``min_leaf: 20.0`` as 20).
    """
    import pydantic

    options: dict[str, Any] = {}
    for family in dict.fromkeys(families):
        for name, hint in model_options(family).items():
            if name not in exclude:
                options.setdefault(name, hint)
    checked: dict[str, Any] = {}
    for name, value in params.items():
        if name not in options:
            raise ValueError(f"{name!r} is not an option of {'/'.join(dict.fromkeys(families))}; "
                             f"valid: {', '.join(sorted(options))}")
        try:
            checked[name] = pydantic.TypeAdapter(options[name]).validate_python(value)
        except pydantic.ValidationError as exc:
            raise ValueError(f"{name}={value!r}: {exc.errors()[0]['msg']}") from None
    return checked


def _family_params(family: str, params: dict[str, Any], rules: Sequence[str] = ()) -> dict[str, Any]:
    """The parameters ``family`` takes: one configuration (``epochs``, ``min_leaf``...) serves both models."""
    taken = model_options(family)
    own = {k: v for k, v in params.items() if k in taken or (family in BUDGETED_FAMILIES and k in GAN_ONLY)}
    if rules and family in RULE_MASKING_FAMILIES:
        own["rules"] = list(rules)
    return own


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
    rules: Sequence[str] = (),
    **params: Any,
) -> Synthesizer:
    """The synthesiser the pipeline trains: households kept coherent when ``household_id`` is set.

    With households, ``family`` models the household table and ``person_family`` (default:
    the same) the members given their household. A time budget (``max_seconds``) is split
    between two neural models, or goes whole to the only neural one. ``person_id`` names an
    identifier column, replaced by fresh identifiers when present in the data. ``blocks`` are
    groups of columns that come together from one real record (a survey's variables fused
    from one donor): the ``BLOCK_FAMILIES`` draw each block whole from one training record, so
    the relations within a survey stay those of its respondents. ``household_level`` names household facts
    (a survey's household variables): modelled in the household table, identical for every member.
    ``household_totals`` names person amounts (incomes) whose household total is drawn in the
    household table, the members' amounts then given it. ``rules`` are the catalog's
    plausibility rules (pandas queries), which the families of ``RULE_MASKING_FAMILIES`` respect
    while drawing where they can (the rest is redrawn by ``constraints.enforce_rules``).
    """
    person_family = person_family or family
    families = [family, person_family] if household_id is not None else [family]
    known = set(GAN_ONLY).union(*(model_options(f) for f in families))
    unknown = sorted(set(params) - known)
    if unknown:  # an option no model takes would otherwise be dropped without a word
        raise ValueError(f"{unknown[0]!r} is not an option of {'/'.join(dict.fromkeys(families))}; "
                         f"valid: {', '.join(sorted(known))}")
    if household_id is None:
        id_columns = [person_id] if person_id else []
        flat = _family_params(family, params, rules)
        if family in BLOCK_FAMILIES and blocks:
            flat["blocks"] = [list(b) for b in blocks]
        return make_synthesizer(family, seed=seed, id_columns=id_columns, **flat)
    household_params = _family_params(family, params, rules)
    person_params = _family_params(person_family, params, rules)
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
