"""Loading ``catalog.yaml`` with errors that name the file and the offending key."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from synth_assets.catalog.model import Catalog


class CatalogError(ValueError):
    """The catalog file is missing, not YAML, or does not describe valid sources."""


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: the catalog is invalid ({error.error_count()} problem(s)):"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  - {location}: {message}")
    return "\n".join(lines)


def parse_catalog(text: str, path: Path | str = "<string>") -> Catalog:
    path = Path(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(_format_validation_error(path, exc)) from None


def load_catalog(path: Path | str) -> Catalog:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    return parse_catalog(path.read_text(encoding="utf-8"), path)
