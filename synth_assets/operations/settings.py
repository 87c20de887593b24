"""Settings of a headless run (``synth-assets run --set KEY=VALUE``, ``--config run.yaml``).

Each key is ``section.option``; a section is the typed config (``dg.Config``) of one step of
the release job, so every value is checked by the same model Dagster checks it with, before
any run starts; the ``compute`` section configures the run's compute resource (``compute.threads``,
``compute.processes``: how a step uses the machine's cores). ``model.params.OPTION`` sets one of the model families' own options (CART's
``min_leaf``, the GAN's ``batch_size``...). The ``release`` section overlays the catalog's
release options a run may set (``release.disclosure.k``: the copy filters and their
enforcement, ``catalog.model.RUN_RELEASE_OPTIONS``); the catalog holds their defaults, and every
asset and check of the run sees the overlaid catalog. A YAML file holds the same keys nested
(``model: {family: cart}``, ``release: {disclosure: {k: 5}}``) or dotted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic
import yaml

from synth_assets.catalog.model import RUN_RELEASE_OPTIONS, Release
from synth_assets.defs import keys
from synth_assets.defs.matching.assets import MatchingConfig
from synth_assets.defs.resources import ComputeResource
from synth_assets.defs.synthesis.assets import FictitiousConfig, ModelConfig, SplitConfig
from synth_assets.defs.validation.assets import ValidationConfig

#: section -> (the op of the release job it configures, its typed config)
SECTIONS: dict[str, tuple[str, type[dg.Config]]] = {
    "matching": (keys.name(keys.MATCHED_DATASET), MatchingConfig),
    "split": ("split_matched_dataset", SplitConfig),
    "model": (keys.name(keys.POPULATION_MODEL), ModelConfig),
    "fictitious": (keys.name(keys.FICTITIOUS_DATASET), FictitiousConfig),
    "validation": (keys.name(keys.VALIDATION_REPORT), ValidationConfig),
}

#: The matching settings the matched replicates take too (their seed is their own).
SHARED_MATCHING_FIELDS = ("methods", "part_persons")

#: section -> (the resource of the release job it configures, its type)
RESOURCE_SECTIONS: dict[str, tuple[str, type[dg.ConfigurableResource]]] = {
    "compute": ("compute", ComputeResource),
}


class SettingsError(ValueError):
    """A setting that names no option, or whose value its typed config refuses (one line)."""


#: The section of the catalog's release options (not a step's config).
RELEASE = "release"
#: ``model.params.OPTION``: one option of the model families (``synthesis.factory.model_options``).
MODEL_PARAMS = "model.params."


def valid_keys() -> list[str]:
    return [*(f"{section}.{field}" for section, (_, config) in {**SECTIONS, **RESOURCE_SECTIONS}.items()
              for field in config.model_fields),
            f"{MODEL_PARAMS}OPTION", *(f"{RELEASE}.{option}" for option in RUN_RELEASE_OPTIONS)]


def _dotted(raw: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Nested mappings as dotted keys (lists and scalars are values)."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping):
            flat.update(_dotted(value, f"{prefix}.{key}"))
        else:
            flat[f"{prefix}.{key}"] = value
    return flat


def _flatten(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping) and key == RELEASE:  # nested sections: disclosure: {k: 5}
            flat.update(_dotted(value, RELEASE))
        elif isinstance(value, Mapping) and (key in SECTIONS or key in RESOURCE_SECTIONS):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[str(key)] = value
    return flat


def release_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The run's overlay of the catalog's release options (``release.X`` settings, keys without
    ``release.``), each value checked by the catalog's own model; ``SettingsError`` on the first bad one.

    Whether a stratum or quasi-identifier is a variable is for the catalog to say
    (``Catalog.with_release_options``), once it is loaded.
    """
    options: dict[str, Any] = {}
    for key, value in settings.items():
        if not key.startswith(f"{RELEASE}."):
            continue
        option = key.removeprefix(f"{RELEASE}.")
        if option not in RUN_RELEASE_OPTIONS:
            raise SettingsError(f"unknown setting {key!r}; valid settings: {', '.join(valid_keys())}")
        *sections, name = option.split(".")
        nested: dict[str, Any] = {name: value}
        for section in reversed(sections):
            nested = {section: nested}
        try:
            Release.model_validate(nested)
        except pydantic.ValidationError as exc:
            raise SettingsError(f"setting {key}={value!r}: {exc.errors()[0]['msg']}") from None
        options[option] = value
    return options


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """The dotted settings of a YAML file (nested sections or dotted keys)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"--config {path}: cannot read it: {str(exc).splitlines()[0]}") from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"--config {path}: expected a mapping of settings, got {type(raw).__name__}")
    return _flatten(raw, str(path))


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, each VALUE read as YAML (``5``, ``0.5``, ``[cart, ctgan]``, ``null``)."""
    settings: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"--set {item!r}: expected KEY=VALUE, e.g. model.epochs=50")
        try:
            settings[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            settings[key.strip()] = text
    return settings


def release_run_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The release job's run config for dotted settings; ``SettingsError`` on the first bad one."""
    known = valid_keys()
    by_section: dict[str, dict[str, Any]] = {}
    for key, value in settings.items():
        if key.startswith(f"{RELEASE}."):
            continue  # the catalog's options: release_options
        if key.startswith(MODEL_PARAMS) and len(key) > len(MODEL_PARAMS):
            params = by_section.setdefault("model", {}).setdefault("params", {})
            if not isinstance(params, dict):
                raise SettingsError(f"setting {key}: model.params is also set whole; set one or the other")
            params[key.removeprefix(MODEL_PARAMS)] = value
            continue
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}; valid settings: {', '.join(known)}")
        section, field = key.split(".", 1)
        if section == "model" and field == "params" and isinstance(value, Mapping):
            value = {**value, **by_section.get("model", {}).get("params", {})}  # model.params.X wins
        by_section.setdefault(section, {})[field] = value
    ops: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    for section, values in by_section.items():
        op, config = SECTIONS[section] if section in SECTIONS else RESOURCE_SECTIONS[section]
        try:
            config(**values)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"] if isinstance(p, str)) or next(iter(values))
            top = field.split(".")[0]
            raise SettingsError(f"setting {section}.{top}={values.get(top)!r}: {error['msg'].removeprefix('Value error, ')}") from None
        (ops if section in SECTIONS else resources)[op] = {"config": values}
    # replicate r is drawn from matched replicate r: the two counts go together; and the matched
    # replicates are fused as the matched dataset is (its methods, its parts of the register)
    replicates = {field: value for field, value in by_section.get("matching", {}).items()
                  if field in SHARED_MATCHING_FIELDS}
    if "replicates" in by_section.get("fictitious", {}):
        replicates["replicates"] = by_section["fictitious"]["replicates"]
    if replicates:
        ops[keys.name(keys.MATCHED_REPLICATES)] = {"config": replicates}
    return {"ops": ops, **({"resources": resources} if resources else {})}
