"""What each public column means, from the catalog, and the release as a Frictionless Data Package.

A data card a user reads (``data_card.md``) and one a machine loads (``datapackage.json``,
Frictionless Data Package v1: https://specs.frictionlessdata.io/data-package/) are made
from the same :class:`ColumnInfo`, so they cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from synth_assets.catalog import Catalog

# Identifier columns of the fictitious population: generated numbers, linked to nothing real.
_IDENTIFIERS = {
    "person": "identifier of the fictitious person, unique within a replicate; not linked to any real person",
    "household": "identifier of the fictitious household, unique within a replicate; not linked to any real household",
}


@dataclass(frozen=True)
class ColumnInfo:
    """One public column: its meaning, unit, categories and special codes."""

    name: str
    type: str  # Frictionless field type: integer, number, string, boolean
    description: str = ""
    unit: str | None = None
    categories: list[str] | None = None
    special_values: list[Any] = field(default_factory=list)
    not_applicable: Any = None
    source: str | None = None  # the survey a specific variable comes from (imputed by matching)

    def summary(self) -> str:
        """One line for the markdown card."""
        parts = [self.description or self.type]
        if self.unit:
            parts.append(f"unit: {self.unit}")
        if self.categories:
            parts.append("categories: " + ", ".join(map(str, self.categories)))
        if self.special_values:
            parts.append("special codes: " + ", ".join(map(str, self.special_values)))
        if self.not_applicable is not None:
            parts.append(f"outside the survey's universe: {self.not_applicable}")
        if self.source:
            parts.append(f"from survey `{self.source}`, imputed by statistical matching")
        return "; ".join(parts)


def _field_type(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_integer_dtype(values):
        return "integer"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    return "string"


def describe_columns(frame: pd.DataFrame, catalog: Catalog) -> dict[str, ColumnInfo]:
    """:class:`ColumnInfo` of every column of ``frame`` from the catalog's declarations."""
    specific: dict[str, tuple[str, Any]] = {}
    roles: dict[str, str] = {}
    for source_name, source in catalog.sources.items():
        for name, variable in source.variables.items():
            roles.setdefault(name, variable.role)
            if variable.role == "specific":
                specific.setdefault(name, (source_name, variable))
    columns: dict[str, ColumnInfo] = {}
    for name in frame.columns:
        kind = _field_type(frame[name])
        role = roles.get(name)
        if role in ("id", "household_id"):
            unit = "household" if role == "household_id" else "person"
            columns[name] = ColumnInfo(name, kind, _IDENTIFIERS[unit])
        elif name in catalog.common_variables:
            common = catalog.common_variables[name]
            columns[name] = ColumnInfo(name, kind, common.description or "", common.unit, common.categories)
        elif name in specific:
            source_name, variable = specific[name]
            categories = variable.categories or (sorted({str(v) for v in variable.codes.values()})
                                                 if variable.codes and variable.type == "category" else None)
            source_kind = catalog.sources[source_name].kind
            columns[name] = ColumnInfo(
                name, kind, variable.description or "", variable.unit, categories, list(variable.special_values),
                variable.not_applicable, source_name if source_kind == "survey" else None,
            )
        else:
            columns[name] = ColumnInfo(name, kind)
    return columns


def describe_records(frame: pd.DataFrame, catalog: Catalog, source_name: str) -> dict[str, ColumnInfo]:
    """:class:`ColumnInfo` of every column of a linked table (diary episodes, trips) of ``source_name``."""
    source = catalog.sources[source_name]
    records = source.records
    if records is None:
        raise ValueError(f"source {source_name!r} has no 'records' in the catalog")
    keys = {catalog.register.id_column: "person", catalog.register.household_id_column: "household"}
    columns: dict[str, ColumnInfo] = {}
    for name in frame.columns:
        kind = _field_type(frame[name])
        variable = records.variables.get(str(name))
        if name in keys:
            columns[name] = ColumnInfo(name, kind, _IDENTIFIERS[keys[name]] + "; links the row to the persons table")
        elif name == "day_id":
            columns[name] = ColumnInfo(name, kind, "the person's day: 1, 2, ... (generated, not a real day)")
        elif name == "record_id":
            columns[name] = ColumnInfo(name, kind, f"{records.unit} number within the day, from 1 in time order; "
                                                   f"0: a day without any {records.unit}")
        elif variable is not None:  # generated from the person's aggregates, coded as the survey codes it
            meaning = f"{variable.description or name}; generated, coded as in survey `{source_name}`"
            columns[name] = ColumnInfo(name, kind, meaning, variable.unit, variable.categories,
                                       list(variable.special_values))
        else:
            columns[name] = ColumnInfo(name, kind)
    return columns


def _schema(columns: dict[str, ColumnInfo]) -> dict[str, Any]:
    fields = []
    for info in columns.values():
        entry: dict[str, Any] = {"name": info.name, "type": info.type}
        if info.description:
            entry["description"] = info.description
        if info.unit:
            entry["unit"] = info.unit  # not in the v1 spec, allowed as a custom property
        if info.categories and info.type == "string":
            entry["constraints"] = {"enum": [str(c) for c in info.categories]}
        if info.special_values:
            entry["specialValues"] = info.special_values
        fields.append(entry)
    return {"fields": fields, "missingValues": [""]}


def _resource_name(file: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", file.removesuffix(".parquet").lower())


def _resource(file: str, meta: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": _resource_name(file),
        "path": file,
        "format": "parquet",
        "mediatype": "application/vnd.apache.parquet",
        "encoding": "binary",
        "hash": f"sha256:{meta['sha256']}",
        "bytes": int(meta["bytes"]),
        "rows": int(meta["rows"]),
        "schema": schema,
    }


def _package_name(release: str) -> str:
    # Data Package names: lower case letters, digits and ``-._/`` only.
    return re.sub(r"[^a-z0-9._-]+", "-", f"synth-assets-{release}".lower())


def data_package(
    release: str,
    *,
    title: str,
    description: str,
    licence: dict[str, str],
    resources: dict[str, dict[str, Any]],
    columns: dict[str, ColumnInfo],
    created_utc: str,
    linked: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The Data Package descriptor: one tabular resource per replicate, all with one schema.

    ``resources`` maps a parquet file name to ``{"sha256": ..., "bytes": ..., "rows": ...}``.
    ``linked`` maps a linked table's file name to the same plus ``columns`` (its
    :class:`ColumnInfo`), ``persons`` (the persons file of its replicate) and ``keys`` (the
    columns it refers to the persons by): its schema carries that foreign key.
    """
    schema = _schema(columns)
    tables = [_resource(file, meta, schema) for file, meta in resources.items()]
    for file, meta in (linked or {}).items():
        linked_schema = _schema(meta["columns"])
        linked_schema["foreignKeys"] = [{"fields": list(meta["keys"]),
                                         "reference": {"resource": _resource_name(meta["persons"]),
                                                       "fields": list(meta["keys"])}}]
        tables.append(_resource(file, meta, linked_schema))
    return {
        "name": _package_name(release),
        "title": f"{title}, release {release}",
        "description": description,
        "version": release,
        "created": created_utc,
        "licenses": [licence],
        "resources": tables,
    }


def column_dicts(columns: dict[str, ColumnInfo]) -> dict[str, dict[str, Any]]:
    return {name: asdict(info) for name, info in columns.items()}
