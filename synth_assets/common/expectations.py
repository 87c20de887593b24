"""Great Expectations (1.x) suites for tables, declared as plain data and run in memory.

Suites are plain dicts in GE's own JSON layout (``{"name", "expectations": [{"type",
"kwargs"}]}``) until the moment they run, so the catalog can declare them and the repo
can keep them as JSON files without importing Great Expectations, which costs ~3 s and
is imported lazily here (the Dagster code location imports this package).

``table_suite`` turns a short table spec into such a suite::

    {"name": "persons",
     "required_columns": ["person_id", "age", "weight"],
     "exact_columns": false,                       # true: no other column allowed
     "types": {"age": "integer", "weight": "float", "sex": "string"},
     "not_null": ["person_id"],
     "unique": ["person_id", ["household_id", "member"]],   # a list = compound key
     "ranges": {"age": {"min": 0, "max": 120}},
     "categories": {"sex": ["female", "male"]},
     "positive": ["weight"],                       # strictly > 0 and not null
     "row_count": {"min": 1}}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

Suite = dict[str, Any]

#: Spec type names → what GE's pandas type check reports: numpy dtype names for
#: numpy columns, Python type names of the values for object columns.
TYPE_LISTS: dict[str, list[str]] = {
    "integer": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "int"],
    "float": ["float16", "float32", "float64", "float"],
    "string": ["str"],
    "boolean": ["bool"],
    "datetime": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]", "Timestamp"],
}
TYPE_LISTS["number"] = TYPE_LISTS["integer"] + TYPE_LISTS["float"]

_SPEC_KEYS = {
    "name", "required_columns", "exact_columns", "types", "not_null", "unique",
    "ranges", "categories", "positive", "row_count",
}


def _expectation(type_: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs}


def table_suite(spec: Mapping[str, Any]) -> Suite:
    """A GE suite (as a dict) from a table spec; see the module docstring for the keys."""
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"unknown table spec key(s): {', '.join(sorted(unknown))}")
    expectations = []
    required = list(spec.get("required_columns", []))
    if spec.get("exact_columns"):
        expectations.append(_expectation("expect_table_columns_to_match_set", column_set=required, exact_match=True))
    expectations += [_expectation("expect_column_to_exist", column=c) for c in required]
    if "row_count" in spec:
        bounds = spec["row_count"]
        expectations.append(
            _expectation("expect_table_row_count_to_be_between", min_value=bounds.get("min"), max_value=bounds.get("max"))
        )
    for column, kind in spec.get("types", {}).items():
        if kind not in TYPE_LISTS:
            raise ValueError(f"type {kind!r} of column {column!r} is not one of {', '.join(TYPE_LISTS)}")
        expectations.append(_expectation("expect_column_values_to_be_in_type_list", column=column, type_list=TYPE_LISTS[kind]))
    expectations += [_expectation("expect_column_values_to_not_be_null", column=c) for c in spec.get("not_null", [])]
    for key in spec.get("unique", []):
        if isinstance(key, str):
            expectations.append(_expectation("expect_column_values_to_be_unique", column=key))
        else:
            expectations.append(_expectation("expect_compound_columns_to_be_unique", column_list=list(key)))
    for column, bounds in spec.get("ranges", {}).items():
        expectations.append(
            _expectation("expect_column_values_to_be_between", column=column, min_value=bounds.get("min"), max_value=bounds.get("max"))
        )
    for column, values in spec.get("categories", {}).items():
        expectations.append(_expectation("expect_column_values_to_be_in_set", column=column, value_set=list(values)))
    for column in spec.get("positive", []):
        expectations.append(_expectation("expect_column_values_to_not_be_null", column=column))
        expectations.append(_expectation("expect_column_values_to_be_between", column=column, min_value=0, strict_min=True))
    return {"name": spec.get("name", "table"), "expectations": expectations}


def as_suite(definition: Mapping[str, Any]) -> Suite:
    """A suite dict from either GE's suite layout or a table spec."""
    if "expectations" in definition:
        return {
            "name": definition.get("name", "suite"),
            "expectations": [{"type": e["type"], "kwargs": dict(e.get("kwargs", {}))} for e in definition["expectations"]],
        }
    return table_suite(definition)


def load_suite(path: str | Path) -> Suite:
    """Read a suite kept in the repo: a JSON file in GE's layout or a table spec."""
    path = Path(path)
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read expectation suite {path}: {error}") from error
    if not isinstance(definition, Mapping):
        raise ValueError(f"{path}: an expectation suite must be a JSON object")
    suite = as_suite(definition)
    suite.setdefault("name", path.stem)
    return suite


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation, with enough detail to fix the data."""

    type: str
    kwargs: dict[str, Any]
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_examples: list[Any] = field(default_factory=list)
    error: str | None = None

    @property
    def column(self) -> str | None:
        if "column" in self.kwargs:
            return self.kwargs["column"]
        if "column_list" in self.kwargs:
            return ", ".join(map(str, self.kwargs["column_list"]))
        return None

    def describe(self) -> str:
        where = f" on column '{self.column}'" if self.column is not None else ""
        if self.error:
            detail = f"could not be evaluated ({self.error})"
        elif self.unexpected_count is not None:
            examples = ", ".join(map(str, self.unexpected_examples[:5]))
            detail = f"{self.unexpected_count} unexpected values" + (f" (e.g. {examples})" if examples else "")
        elif self.observed_value is not None:
            detail = f"observed {self.observed_value!r}"
        elif self.type == "expect_column_to_exist":
            detail = "column is missing"
        else:
            detail = "expectation not met"
        return f"{self.type} failed{where}: {detail}"


class Failure(Protocol):
    """Anything a report lists as failed: a failed expectation, a broken catalog rule..."""

    def describe(self) -> str: ...


@dataclass(frozen=True)
class ExpectationReport:
    """Outcome of one suite run; ``describe()`` is the text for logs and metadata."""

    suite_name: str
    success: bool
    n_expectations: int
    failures: Sequence[Failure]

    def describe(self) -> str:
        if self.success:
            return f"suite '{self.suite_name}': all {self.n_expectations} expectations met"
        lines = [f"suite '{self.suite_name}': {len(self.failures)} of {self.n_expectations} expectations failed"]
        lines += [f"- {failure.describe()}" for failure in self.failures]
        return "\n".join(lines)


def _ge_compatible(frame: pd.DataFrame) -> pd.DataFrame:
    """Pandas extension columns (Int64, string, category...) as object columns.

    GE 1.24's pandas type check fails on extension dtypes whatever the type list (its
    comparison never matches them); as object columns it checks each value's Python
    type, which is what "integer" or "string" mean (missing values are skipped).
    """
    converted = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_extension_array_dtype(frame[column].dtype):
            converted[column] = frame[column].astype(object)
    return converted


def _failure(result: Any) -> FailedExpectation:
    config = result.expectation_config
    details = dict(result.result or {})
    return FailedExpectation(
        type=config.type,
        kwargs={k: v for k, v in config.kwargs.items() if k != "batch_id"},
        observed_value=details.get("observed_value"),
        unexpected_count=details.get("unexpected_count"),
        unexpected_examples=list(details.get("partial_unexpected_list") or []),
        error=_exception_message(result.exception_info or {}),
    )


def _exception_message(info: Mapping[str, Any]) -> str | None:
    """GE reports errors flat, or nested per metric when a metric computation failed."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for nested in info.values():
        if isinstance(nested, Mapping) and "exception_message" in nested:
            return str(nested["exception_message"])
    return None


def run_suite(frame: pd.DataFrame, suite: Mapping[str, Any]) -> ExpectationReport:
    """Validate a dataframe in memory: ephemeral context, whole-dataframe batch, no progress bars."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    definition = as_suite(suite)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("validation")
        .add_dataframe_asset(name="table")
        .add_batch_definition_whole_dataframe("whole_table")
    )
    gx_suite = context.suites.add(gx.ExpectationSuite(name=definition["name"], expectations=definition["expectations"]))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{definition['name']}_validation", data=batch, suite=gx_suite)
    )
    outcome = validation.run(batch_parameters={"dataframe": _ge_compatible(frame)}, result_format="SUMMARY")
    failures = [_failure(r) for r in outcome.results if not r.success]
    return ExpectationReport(definition["name"], bool(outcome.success), len(outcome.results), failures)
