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


#: The catalogs this process parsed, by their text (the latest few): a step's process loads its
#: catalog for the definitions and again for the project resource, and each parse (YAML, then every
#: rule and variable checked) took about 0.4 s of a core. A catalog is frozen, so one object serves
#: every caller; a file whose text changed is parsed again.
_PARSED: dict[str, Catalog] = {}
_PARSED_KEPT = 8


def load_catalog(path: Path | str) -> Catalog:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    text = path.read_text(encoding="utf-8")
    catalog = _PARSED.get(text)
    if catalog is None:
        catalog = parse_catalog(text, path)  # an invalid file raises here, naming itself, every time
        while len(_PARSED) >= _PARSED_KEPT:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[text] = catalog
    return catalog
