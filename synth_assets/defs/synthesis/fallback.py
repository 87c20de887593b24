"""The release's fallback family: when the gate refuses the primary family's release, the wave is
released again from a model of the fallback family (``model.fallback_family``).

The fallback is a second run of the release job on the same partition, limited to the
population model and what follows it (fictitious dataset, linked tables, validation report,
public dataset): it learns from the very training sample the refused run used. So lineage
shows both attempts, the refused run with its failed checks and the fallback run whose tags
name the refused run, its family and the gate checks that refused it. Nothing refused is
promoted: the fallback's release meets the same gate, which alone writes ``data/public``.

Refused means: a gate check failed (the persons' or a linked table's, with its figures), or
the model's draws broke the catalog's rules so often that ``fictitious_dataset`` stopped
(``RuleViolationError``: more than ``release.enforcement.max_rejection_rate`` of the
households rejected, naming the rule), the model's failure on the rules the gate checks. Any
other failure is a fault, not the model's refusal, and gets no fallback that would hide it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from synth_assets.defs import keys

#: Run tags of a fallback run: the refused run, its model families and why the gate refused it.
FALLBACK_OF_TAG = "synth_assets/fallback_of"
REFUSED_FAMILY_TAG = "synth_assets/refused_family"
REFUSED_BY_TAG = "synth_assets/refused_by"

#: The release job's steps a fallback run builds again (the model and everything after it).
FALLBACK_ASSETS_ROOT = keys.POPULATION_MODEL


def is_gate_check(asset_key: dg.AssetKey, check_name: str) -> bool:
    """A blocking check whose failure refuses the release (the persons' gate and the linked tables')."""
    if check_name in keys.GATE_CHECKS.get(asset_key, ()):
        return True
    return asset_key.path[-1].startswith("linked_") and check_name in keys.LINKED_GATE_CHECKS


def refusal_line(asset_key: dg.AssetKey, check_name: str, description: str | None) -> str:
    """``asset.check: what failed, with its figures`` (the check's own description)."""
    return f"{asset_key.to_user_string()}.{check_name}: {description or 'failed'}"


#: The error of ``fictitious_dataset`` when the model's draws break the catalog's rules beyond
#: the enforcement's limit (``synthesis.constraints.RuleViolationError``).
RULES_REFUSAL = "RuleViolationError"


def gate_refusals(evaluations: Iterable[Any], step_errors: Iterable[tuple[str | None, Any]] = ()) -> list[str]:
    """Why the gate refused a run, one line per failed gate check or rules refusal (empty: not refused).

    ``evaluations`` are the run's check evaluations (``asset_key``, ``check_name``, ``passed``,
    ``description``); ``step_errors`` its failed steps' (step key, ``SerializableErrorInfo``),
    failed blocking checks left out. One error that is not the rules' refusal makes the run a
    fault, not a refusal: no lines.
    """
    refusals = []
    for step, error in step_errors:
        chain = [error]
        while chain[-1] is not None and len(chain) < 10:
            chain.append(chain[-1].cause or getattr(chain[-1], "context", None))
        rules = next((e for e in chain if e is not None and getattr(e, "cls_name", None) == RULES_REFUSAL), None)
        # the asset's own steps (a region's draw: fictitious_dataset.fictitious_region[north])
        asset = (step or "").split(".")[0]
        if rules is None or asset != keys.name(keys.FICTITIOUS_DATASET):
            return []
        message = rules.message.strip().split(": ", 1)[-1]  # without the exception's module path
        refusals.append(f"{asset}: the model's draws broke the catalog's rules: {message}")
    return refusals + [refusal_line(e.asset_key, e.check_name, e.description) for e in evaluations
                       if not e.passed and is_gate_check(e.asset_key, e.check_name)]


def fallback_selection(assets: Any, release_assets: Iterable[dg.AssetKey]) -> list[dg.AssetKey]:
    """The release job's assets a fallback run builds again: the model and everything after it.

    ``assets``: what ``AssetSelection.resolve`` takes (the asset definitions or their graph).
    """
    downstream = dg.AssetSelection.assets(FALLBACK_ASSETS_ROOT).downstream().resolve(assets)
    return sorted(set(downstream) & set(release_assets), key=lambda k: k.to_user_string())


@dataclass(frozen=True)
class FallbackRun:
    """The fallback's run: its run config (release job subset) and the tags that name the refused run."""

    family: str
    refused_family: str
    refused_by: list[str]
    run_config: dict[str, Any]
    tags: dict[str, str]


def _families(model: Mapping[str, Any]) -> str:
    """``household family/member family`` (the family alone without households)."""
    family = model.get("family", "neural")
    return f"{family}/{model.get('person_family') or family}" if model.get("households", True) else family


def fallback_run(release_config: Mapping[str, Any] | None, model: Any, refused_run_id: str, refused_by: list[str],
                 subset_ops: Iterable[str]) -> FallbackRun | None:
    """The run that releases the wave from ``model.fallback_family`` after the gate refused
    ``refused_run_id`` (None: no fallback is set, or the gate did not refuse it).

    ``model`` is the refused run's ``ModelConfig`` (its settings and the defaults). Both models
    (households and members) take the fallback family; the primary's options pass on where the
    fallback family has them (``epochs``, ``max_seconds``, ``seed``, its own ``params``). Only
    the ops of ``subset_ops`` keep their config.
    """
    from synth_assets.synthesis.factory import model_options

    ops = dict((release_config or {}).get("ops", {}))
    model_name = keys.name(keys.POPULATION_MODEL)
    given = dict(ops.get(model_name, {}).get("config", {}))
    if not refused_by or model.fallback_family is None:
        return None
    fallback = model.fallback_family
    taken = model_options(fallback)
    config = {**given, "family": fallback, "person_family": fallback if model.households else None,
              "fallback_family": None, "params": {k: v for k, v in model.params.items() if k in taken}}
    subset = set(subset_ops)
    run_config: dict[str, Any] = {"ops": {op: value for op, value in ops.items() if op in subset}}
    run_config["ops"][model_name] = {"config": config}
    resources = (release_config or {}).get("resources")
    if resources:  # the machine's use (compute) as the refused run's
        run_config["resources"] = dict(resources)
    refused_family = _families(model.model_dump())
    tags = {FALLBACK_OF_TAG: refused_run_id, REFUSED_FAMILY_TAG: refused_family,
            REFUSED_BY_TAG: json.dumps(refused_by)}
    return FallbackRun(fallback, refused_family, refused_by, run_config, tags)


def fallback_of(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """What a fallback run's tags say: ``{"refused_run", "instead_of", "refused_by"}``; None for a first attempt."""
    if FALLBACK_OF_TAG not in tags:
        return None
    return {"refused_run": tags[FALLBACK_OF_TAG], "instead_of": tags.get(REFUSED_FAMILY_TAG, ""),
            "refused_by": json.loads(tags.get(REFUSED_BY_TAG, "[]"))}
