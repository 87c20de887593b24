"""What each stage's data must satisfy, derived from the catalog as suite specifications.

The specs are the table specs of ``synth_assets.common.expectations`` (turned into Great
Expectations suites there), special codes (e.g. -8 'not applicable') among them, left out of
ranges and sets by GE's ``row_condition``; plus one catalog notion checked beside the suite,
plausibility rules (pandas queries over several columns).
Deriving everything from the catalog keeps one source of truth for the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from synth_assets.catalog.model import Catalog
from synth_assets.catalog.rules import RuleError, broken_rows
from synth_assets.common.expectations import DataDocs, ExpectationReport, run_suite, table_suite

# Catalog types -> the table spec's type names. Categories are checked by their sets.
_SPEC_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean"}


def raw_suite_spec(catalog: Catalog, source_name: str) -> dict[str, Any]:
    """The delivered file: catalog columns present, ids unique and set, weights positive.

    A record source repeats its person's id on each of the person's records: set, not unique."""
    source = catalog.sources[source_name]
    column = {name: var.column for name, var in source.variables.items() if var.column is not None}
    spec: dict[str, Any] = {
        "name": f"raw_{source_name}", "required_columns": list(source.raw_columns()),
        "row_count": {"min": 1}, "not_null": [], "unique": [],
    }
    if source.id_column:
        spec["not_null"].append(column[source.id_column])
        if source.records is None:
            spec["unique"].append(column[source.id_column])
    if source.records is not None:
        spec["not_null"].append(source.records.day_id)
    if source.household_id_column:
        spec["not_null"].append(column[source.household_id_column])
    if source.weight_column:
        spec["positive"] = [column[source.weight_column]]
    return spec


def _value_spec(catalog: Catalog, source_name: str, names: list[str]) -> dict[str, Any]:
    source = catalog.sources[source_name]
    spec: dict[str, Any] = {"types": {}, "categories": {}, "ranges": {}, "special_values": {}}
    for name in names:
        kind = catalog.variable_type(source_name, name)
        if kind in _SPEC_TYPES:
            spec["types"][name] = _SPEC_TYPES[kind]
        if kind == "category":
            spec["categories"][name] = list(catalog.categories(source_name, name) or [])
        low, high = catalog.bounds(source_name, name)
        if low is not None or high is not None:
            spec["ranges"][name] = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        if source.variables[name].special_values:
            spec["special_values"][name] = list(source.variables[name].special_values)
    return spec


def harmonised_suite_spec(catalog: Catalog, source_name: str) -> dict[str, Any]:
    """Harmonised table: every variable present, on the common schema's sets and ranges."""
    source = catalog.sources[source_name]
    names = list(source.variables)
    spec: dict[str, Any] = {
        "name": f"harmonised_{source_name}", "required_columns": names,
        "row_count": {"min": 1}, "not_null": [], "unique": [],
    }
    if source.id_column:
        spec["not_null"].append(source.id_column)
        spec["unique"].append(source.id_column)
    if source.weight_column:
        spec["positive"] = [source.weight_column]
    spec.update(_value_spec(catalog, source_name, [n for n in names if source.variables[n].role in ("common", "specific")]))
    return spec


def fictitious_suite_spec(catalog: Catalog, data: pd.DataFrame) -> dict[str, Any]:
    """Fictitious records: every variable present with its category set and range, and the rules."""
    merged: dict[str, Any] = {"types": {}, "categories": {}, "ranges": {}, "special_values": {}}
    required: list[str] = []
    for source_name, source in catalog.sources.items():
        names = [n for n, v in source.variables.items() if v.role in ("common", "specific")]
        required += [n for n in names if n not in required]
        part = _value_spec(catalog, source_name, names)
        for key in merged:
            for name, value in part[key].items():
                merged[key].setdefault(name, value)
    return {"name": "fictitious_dataset", "required_columns": required, "row_count": {"min": 1},
            **merged, "rules": catalog.plausibility_rules()}


@dataclass(frozen=True)
class RuleFailure:
    """A plausibility rule broken by some records (reported like a failed expectation)."""

    rule: str
    broken: int = 0
    examples: list[Any] = field(default_factory=list)
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"rule `{self.rule}` could not be evaluated: {self.error}"
        return f"rule `{self.rule}` broken by {self.broken} records (e.g. rows {self.examples})"


def validate_table(frame: pd.DataFrame, spec: dict[str, Any], docs: DataDocs | None = None) -> ExpectationReport:
    """Run the spec's Great Expectations suite, with special codes exempt and rules checked.

    With ``docs``, the suite, its result and the Data Docs are kept there (``run_suite``).

    Returns the :class:`~synth_assets.common.expectations.ExpectationReport`, with one
    :class:`RuleFailure` per broken rule (how many records break it, and examples).
    """
    spec = dict(spec)
    rules = spec.pop("rules", [])
    report = run_suite(frame, table_suite(spec), docs=docs)
    broken = []
    for rule in rules:
        try:
            bad, _ = broken_rows(frame, [rule])
        except RuleError as exc:
            broken.append(RuleFailure(rule, error=str(exc.__cause__ or exc)))
            continue
        if bad.any():
            broken.append(RuleFailure(rule, int(bad.sum()), frame.index[bad].tolist()[:5]))
    if not broken:
        return report
    return replace(report, success=False, n_expectations=report.n_expectations + len(rules),
                   failures=[*report.failures, *broken])
