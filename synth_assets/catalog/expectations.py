"""What each stage's data must satisfy, derived from the catalog as suite specifications.

The specs are plain dicts that ``synth_assets.validation.expectations`` turns into Great
Expectations suites; deriving them from the catalog keeps one source of truth for the schema.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from synth_assets.catalog.model import Catalog


def raw_suite_spec(catalog: Catalog, source_name: str) -> dict[str, Any]:
    """The delivered file: catalog columns present, ids unique and set, weights positive."""
    source = catalog.sources[source_name]
    column = {name: var.column for name, var in source.variables.items()}
    spec: dict[str, Any] = {"required_columns": list(column.values()), "min_rows": 1, "not_null": [], "unique": []}
    if source.id_column:
        spec["not_null"].append(column[source.id_column])
        spec["unique"].append([column[source.id_column]])
    if source.household_id_column:
        spec["not_null"].append(column[source.household_id_column])
    if source.weight_column:
        spec["not_null"].append(column[source.weight_column])
        spec["positive"] = [column[source.weight_column]]
    return spec


def _value_spec(catalog: Catalog, source_name: str, names: list[str]) -> dict[str, Any]:
    source = catalog.sources[source_name]
    types: dict[str, str] = {}
    categories: dict[str, list[str]] = {}
    ranges: dict[str, dict[str, Any]] = {}
    for name in names:
        kind = catalog.variable_type(source_name, name)
        types[name] = kind
        if kind == "category":
            categories[name] = list(catalog.categories(source_name, name) or [])
        low, high = catalog.bounds(source_name, name)
        if low is not None or high is not None:
            ranges[name] = {"min": low, "max": high, "except": list(source.variables[name].special_values)}
    return {"types": types, "categories": categories, "ranges": ranges}


def harmonised_suite_spec(catalog: Catalog, source_name: str) -> dict[str, Any]:
    """Harmonised table: every variable present, on the common schema's sets and ranges."""
    source = catalog.sources[source_name]
    names = list(source.variables)
    spec = {"required_columns": names, "min_rows": 1, "not_null": [], "unique": []}
    if source.id_column:
        spec["not_null"].append(source.id_column)
        spec["unique"].append([source.id_column])
    if source.weight_column:
        spec["positive"] = [source.weight_column]
    spec.update(_value_spec(catalog, source_name, [n for n in names if source.variables[n].role in ("common", "specific")]))
    return spec


def fictitious_suite_spec(catalog: Catalog, data: pd.DataFrame) -> dict[str, Any]:
    """Fictitious records: category sets and ranges of every source variable, and the rules."""
    merged: dict[str, Any] = {"types": {}, "categories": {}, "ranges": {}}
    for source_name, source in catalog.sources.items():
        names = [n for n, v in source.variables.items() if v.role in ("common", "specific") and n in data.columns]
        part = _value_spec(catalog, source_name, names)
        for key in merged:
            for name, value in part[key].items():
                merged[key].setdefault(name, value)
    return {"required_columns": [], "min_rows": 1, "not_null": [], "unique": [], **merged,
            "rules": list(catalog.release.rules)}
