"""Settings of a headless run (``synth-assets run --set KEY=VALUE``, ``--config run.yaml``).

Each key is ``section.option``; a section is the typed config (``dg.Config``) of one step of
the release job, so every value is checked by the same model Dagster checks it with, before
any run starts. A YAML file holds the same keys nested (``model: {family: cart}``) or dotted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic
import yaml

from synth_assets.defs import keys
from synth_assets.defs.matching.assets import MatchingConfig
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


class SettingsError(ValueError):
    """A setting that names no option, or whose value its typed config refuses (one line)."""


def valid_keys() -> list[str]:
    return [f"{section}.{field}" for section, (_, config) in SECTIONS.items() for field in config.model_fields]


def _flatten(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping) and key in SECTIONS:
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[str(key)] = value
    return flat


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
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}; valid settings: {', '.join(known)}")
        section, field = key.split(".", 1)
        by_section.setdefault(section, {})[field] = value
    ops: dict[str, Any] = {}
    for section, values in by_section.items():
        op, config = SECTIONS[section]
        try:
            config(**values)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"] if isinstance(p, str)) or next(iter(values))
            top = field.split(".")[0]
            raise SettingsError(f"setting {section}.{top}={values.get(top)!r}: {error['msg'].removeprefix('Value error, ')}") from None
        ops[op] = {"config": values}
    if "replicates" in by_section.get("fictitious", {}):
        # replicate r is drawn from matched replicate r: the two counts go together
        ops[keys.name(keys.MATCHED_REPLICATES)] = {"config": {"replicates": by_section["fictitious"]["replicates"]}}
    return {"ops": ops}
