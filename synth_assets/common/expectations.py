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
     "special_values": {"age": [-8, -9]},          # codes exempt from ranges and sets
     "row_count": {"min": 1}}

Special codes (e.g. -8 'not applicable') are left out of the range and set expectations of
their column by GE's own condition, ``row_condition="`age` not in [-8, -9]"`` with the
pandas condition parser, so the data is validated as delivered, not pre-filtered.

``run_suite(..., docs=DataDocs(root, run_name))`` keeps the suite (GE JSON), its validation
result and the Data Docs HTML in a file-system GE project at ``root`` (``gx/``), as a GE
user expects to find them; without ``docs`` it runs in an ephemeral context.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
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
    "ranges", "categories", "positive", "row_count", "special_values",
}


def _expectation(type_: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs}


def special_codes_condition(column: str, codes: Sequence[Any]) -> dict[str, Any]:
    """GE's own condition leaving a column's special codes out: ``row_condition`` for pandas."""
    escaped = column.replace("`", "``")
    return {"row_condition": f"`{escaped}` not in {list(codes)!r}", "condition_parser": "pandas"}


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
    special = {c: list(codes) for c, codes in spec.get("special_values", {}).items() if codes}

    def condition(column: str) -> dict[str, Any]:
        return special_codes_condition(column, special[column]) if column in special else {}

    for column, bounds in spec.get("ranges", {}).items():
        expectations.append(
            _expectation("expect_column_values_to_be_between", column=column, min_value=bounds.get("min"),
                         max_value=bounds.get("max"), **condition(column))
        )
    for column, values in spec.get("categories", {}).items():
        expectations.append(_expectation("expect_column_values_to_be_in_set", column=column, value_set=list(values),
                                         **condition(column)))
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
    #: With ``DataDocs``: the suite as GE JSON, and the Data Docs site's index.html.
    suite_file: Path | None = None
    docs_index: Path | None = None

    def describe(self) -> str:
        if self.success:
            return f"suite '{self.suite_name}': all {self.n_expectations} expectations met"
        lines = [f"suite '{self.suite_name}': {len(self.failures)} of {self.n_expectations} expectations failed"]
        lines += [f"- {failure.describe()}" for failure in self.failures]
        return "\n".join(lines)


def _ge_compatible(frame: pd.DataFrame, definition: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Pandas extension columns (Int64, string, category...) as columns GE can check.

    GE 1.24's pandas type check fails on extension dtypes whatever the type list (its
    comparison never matches them); as object columns it checks each value's Python
    type, which is what "integer" or "string" mean (missing values are skipped). A nullable
    number or boolean column with no missing value becomes its NumPy dtype (Int64: int64),
    whose name the type lists hold: the same verdict, checked once for the column where an
    object column is checked value by value, and compared and copied by NumPy, not by
    Python objects (a release's batch: 3.1 s against 4.3, bench/README.md "Thirty-sixth pass").

    A categorical column stays categorical where every expectation of the suite ``definition``
    that names it only asks whether its values are in a set or missing (:data:`_CATEGORICAL_SAFE`)
    and no row condition names it: the same verdict and examples (pandas compares a categorical's
    values), and each of GE's filtered copies of the batch copies its small codes, not a Python
    object per row (three 200,000-row batches of a release: 18-21 s against 23-25 s, bench/README.md,
    "Forty-seventh pass"). Without ``definition``, every extension column is converted.
    """
    kept = _categoricals_kept(frame, definition) if definition is not None else set()
    # built at once, not column by column: a frame of one block per dtype, which GE's copies (one per
    # expectation with a row condition) copy as they are; assigned columns leave a block each, and
    # every copy merged them again (a third of the release's suite, bench/README.md "Twelfth pass")
    return pd.DataFrame({column: frame[column] if column in kept else _ge_column(frame[column])
                         for column in frame.columns}, index=frame.index)


#: Expectations whose verdict on a pandas categorical column is the one on its values as objects:
#: membership of a set and presence (pandas' ``isin`` and ``isna`` read a categorical's values)
_CATEGORICAL_SAFE = frozenset({"expect_column_to_exist", "expect_column_values_to_be_in_set",
                               "expect_column_values_to_not_be_in_set", "expect_column_values_to_not_be_null",
                               "expect_column_values_to_be_null"})


def _categoricals_kept(frame: pd.DataFrame, definition: Mapping[str, Any]) -> set[str]:
    """The categorical columns of ``frame`` GE may check as they are (:func:`_ge_compatible`)."""
    kept = {c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    for expectation in definition.get("expectations", []):
        kwargs = expectation.get("kwargs", {})
        if expectation.get("type") not in _CATEGORICAL_SAFE:
            kept -= {kwargs.get(key) for key in ("column", "column_A", "column_B")} | set(kwargs.get("column_list") or ())
        condition = kwargs.get("row_condition")
        if condition:  # a condition's text may compare a column in any way: its columns as objects
            kept -= {c for c in kept if str(c) in str(condition)}
    return kept


#: pandas' nullable number and boolean dtypes (their base class is not public API)
_MASKED_DTYPES = (pd.BooleanDtype, pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype, pd.UInt8Dtype,
                  pd.UInt16Dtype, pd.UInt32Dtype, pd.UInt64Dtype, pd.Float32Dtype, pd.Float64Dtype)


def _ge_column(column: pd.Series) -> Any:
    dtype = column.dtype
    if isinstance(dtype, _MASKED_DTYPES) and not column.hasnans:
        return column.to_numpy()  # with no missing value, the NumPy dtype (Int64: int64)
    return column.astype(object) if pd.api.types.is_extension_array_dtype(dtype) else column


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


@dataclass(frozen=True)
class DataDocs:
    """A file-system Great Expectations project at ``root``: suites, validation results, Data Docs.

    ``run_name`` names the validation results of one run (e.g. the Dagster run), as GE's
    Data Docs list them.
    """

    root: Path
    run_name: str | None = None

    @property
    def project(self) -> Path:
        return Path(self.root) / "gx"

    @property
    def index(self) -> Path:
        return self.project / "uncommitted" / "data_docs" / "local_site" / "index.html"

    def suite_file(self, name: str) -> Path:
        return self.project / "expectations" / f"{name}.json"


@contextmanager
def _locked(root: Path):
    """One writer at a time in a GE project (parallel checks of a multiprocess run share it)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.cache
def compiled_templates() -> Any:
    """This process's Jinja bytecode cache for the Data Docs, in memory: a template is compiled once.

    Great Expectations gives each view (page, section, index) a Jinja environment of its own, so
    every Data Docs build parsed and compiled its templates again: about half of a build's time, and
    a build follows every stored validation (bench/README.md, "Thirty-eighth pass"). Jinja takes a
    kept template only with its source's checksum, and the key adds the environment's extensions, so
    a changed template or another setup compiles afresh; the rendering itself is Jinja's, unchanged.
    """
    from jinja2 import BytecodeCache

    class InMemory(BytecodeCache):
        def __init__(self) -> None:
            self.codes: dict[tuple[str, tuple[str, ...]], bytes] = {}
            self.compiled = 0

        @staticmethod
        def _key(bucket: Any) -> tuple[str, tuple[str, ...]]:
            return bucket.key, tuple(sorted(bucket.environment.extensions))

        def load_bytecode(self, bucket: Any) -> None:
            kept = self.codes.get(self._key(bucket))
            if kept is not None:
                bucket.bytecode_from_string(kept)  # left empty if the source changed (checksum)

        def dump_bytecode(self, bucket: Any) -> None:
            self.compiled += 1
            self.codes[self._key(bucket)] = bucket.bytecode_to_string()

    return InMemory()


def share_compiled_templates() -> None:
    """Every Data Docs view Great Expectations makes in this process uses :func:`compiled_templates`
    (set on its Jinja environment once GE has made it; idempotent)."""
    from great_expectations.render.view.view import DefaultJinjaView

    if getattr(DefaultJinjaView.__init__, "shares_compiled_templates", False):
        return
    made = DefaultJinjaView.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.env.bytecode_cache = compiled_templates()

    init.shares_compiled_templates = True  # type: ignore[attr-defined]
    DefaultJinjaView.__init__ = init  # type: ignore[method-assign]


def _context(docs: DataDocs | None) -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    share_compiled_templates()

    context: Any = (gx.get_context(mode="ephemeral") if docs is None
                    else gx.get_context(mode="file", project_root_dir=str(docs.root)))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs is not None:
        _index_from_summaries(context)
    return context


#: The Data Docs index builder of a project here (:mod:`synth_assets.common.data_docs_index`)
INDEX_BUILDER = {"module_name": "synth_assets.common.data_docs_index", "class_name": "SummarisedSiteIndexBuilder"}


def _index_from_summaries(context: Any) -> None:
    """Every Data Docs site of the project builds its index with :data:`INDEX_BUILDER`: a project
    made by GE (or by an earlier version) is switched once, and saved."""
    for name, site in (context.variables.data_docs_sites or {}).items():
        if site.get("site_index_builder") != INDEX_BUILDER:
            context.update_data_docs_site(name, {**site, "site_index_builder": dict(INDEX_BUILDER)})


def _validate(context: Any, frame: pd.DataFrame, definition: Suite, run_name: str | None) -> Any:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    name = definition["name"]
    try:  # GE's add_or_update would write the project's configuration again at every validation
        source = context.data_sources.get("synth_assets")
    except KeyError:
        source = context.data_sources.add_pandas("synth_assets")
    asset = next((a for a in source.assets if a.name == name), None) or source.add_dataframe_asset(name=name)
    batch = next((b for b in asset.batch_definitions if b.name == "whole_table"), None) \
        or asset.add_batch_definition_whole_dataframe("whole_table")
    suite = _saved_suite(context, gx.ExpectationSuite(name=name, expectations=definition["expectations"]))
    validation = _saved_validation(context, f"{name}_validation", batch, suite)
    run_id = RunIdentifier(run_name=run_name) if run_name else None
    try:
        # BASIC: the counts and the first unexpected values, all a report and the Data Docs name. SUMMARY
        # adds their positions and value counts, each a further pass over the batch's rows (one filtered
        # copy of every column per pass where a row condition applies): 28% of the release's suite
        # (bench/README.md, "Twenty-third pass").
        # Copy-on-write (pandas 3's default) while GE runs: a row condition every row meets gave GE a deep
        # copy of the whole batch (pandas' boolean indexing with an all-true mask), now a lazy one; GE
        # reads its filtered frames and never writes to them. The same verdicts; three batches of a
        # release 15-17 s against 18-21 s (bench/README.md, "Forty-seventh pass")
        with pd.option_context("mode.copy_on_write", True):
            return validation.run(batch_parameters={"dataframe": _ge_compatible(frame, definition)},
                                  result_format="BASIC", run_id=run_id)
    finally:
        # GE's context is one per process and its execution engine keeps the last batch's frame: a
        # register wave's table (213 MB at 2 million persons) alive until the next validation
        batches = source.get_execution_engine().batch_manager
        batches.reset_batch_cache()
        batches.batch_data_cache.clear()


def _configurations(suite: Any) -> list[dict[str, Any]]:
    """The suite's expectations as GE serialises them, their ids left out."""
    return [{k: v for k, v in e.configuration.to_json_dict().items() if k != "id"} for e in suite.expectations]


def _saved_suite(context: Any, suite: Any) -> Any:
    """``suite`` as ``context`` keeps it: the one saved before where it holds the same expectations,
    otherwise saved now (``add_or_update``: each unchanged expectation keeps its id).

    GE's ``add_or_update`` finds each expectation in the saved suite by a list search whose every
    comparison builds two normalised dicts: quadratic in the suite's size, 0.17-0.33 s for a survey's
    34-47 expectations on every validation in a file-system project (bench/README.md, "Forty-seventh
    pass"), where comparing the two suites' serialised expectations once takes 0.01-0.02 s."""
    from great_expectations.exceptions import DataContextError

    try:
        saved = context.suites.get(name=suite.name)
    except DataContextError:
        return context.suites.add(suite)
    if _configurations(saved) == _configurations(suite):
        return saved
    return context.suites.add_or_update(suite)


def _saved_validation(context: Any, name: str, batch: Any, suite: Any) -> Any:
    """The validation definition ``name`` of ``batch`` and the saved ``suite``: the one saved before
    where it names both, otherwise (re)saved now. ``validation_definitions.add_or_update`` would save
    the suite again, GE's quadratic search included (:func:`_saved_suite`)."""
    import great_expectations as gx
    from great_expectations.exceptions import DataContextError

    try:
        saved = context.validation_definitions.get(name=name)
    except DataContextError:
        saved = None
    if saved is not None:
        if saved.suite.id == suite.id and saved.data.id == batch.id:
            return saved
        context.validation_definitions.delete(name=name)
    return context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))


def _result_key(name: str, result: Any) -> Any:
    """The key GE stores ``result`` of suite ``name`` under: its run, and its batch named by data
    source then asset."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    batch = result.meta.get("active_batch_definition") or {}
    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=name), run_id=result.meta["run_id"],
        batch_identifier=f"{batch.get('datasource_name', 'synth_assets')}-{batch.get('data_asset_name', name)}")


def _build_docs(context: Any, name: str, outcome: Any) -> None:
    """Render this suite and this validation result (not the whole history), and the index."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    context.build_data_docs(resource_identifiers=[ExpectationSuiteIdentifier(name=name), _result_key(name, outcome)])


def run_suite(frame: pd.DataFrame, suite: Mapping[str, Any], docs: DataDocs | None = None) -> ExpectationReport:
    """Validate a dataframe: whole-dataframe batch, no progress bars.

    Without ``docs``, in an ephemeral context. With ``docs``, in the file-system project
    there: the suite is saved as GE JSON, the validation result stored under
    ``docs.run_name`` and the Data Docs rebuilt (this suite's pages and the index).
    """
    definition = as_suite(suite)
    if docs is None:
        outcome = _validate(_context(None), frame, definition, None)
    else:
        with _locked(Path(docs.root)):
            context = _context(docs)
            outcome = _validate(context, frame, definition, docs.run_name)
            _build_docs(context, definition["name"], outcome)
    return _report(definition["name"], outcome, docs)


def _report(name: str, outcome: Any, docs: DataDocs | None) -> ExpectationReport:
    failures = [_failure(r) for r in outcome.results if not r.success]
    return ExpectationReport(
        name, bool(outcome.success), len(outcome.results), failures,
        suite_file=docs.suite_file(name) if docs else None,
        docs_index=docs.index if docs else None,
    )


@dataclass(frozen=True)
class Detached:
    """A suite run in an ephemeral context (no file written, no lock taken: so in any process, a
    forked child's too), its Great Expectations result kept for :func:`keep_in_docs`."""

    report: ExpectationReport
    #: GE's ``ExpectationSuiteValidationResult`` (it pickles: a child sends it back)
    result: Any


def validate_detached(frame: pd.DataFrame, suite: Mapping[str, Any], run_name: str | None = None) -> Detached:
    """:func:`run_suite` without ``docs``, the result named ``run_name`` as a Data Docs run."""
    definition = as_suite(suite)
    outcome = _validate(_context(None), frame, definition, run_name)
    return Detached(_report(definition["name"], outcome, None), outcome)


def keep_in_docs(results: Sequence[Detached], suite: Mapping[str, Any], docs: DataDocs) -> None:
    """The results of :func:`validate_detached` stored in the file-system project of ``docs``, each
    under its own run name, with the suite, and the Data Docs rebuilt once: what :func:`run_suite`
    with ``docs`` leaves there for each of them."""
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    definition = as_suite(suite)
    name = definition["name"]
    with _locked(Path(docs.root)):
        context = _context(docs)
        _saved_suite(context, gx.ExpectationSuite(name=name, expectations=definition["expectations"]))
        suite_id = ExpectationSuiteIdentifier(name=name)
        keys = []
        for detached in results:
            key = _result_key(name, detached.result)  # as run_suite's results are named
            context.validation_results_store.store_validation_results(
                suite_validation_result=detached.result, suite_validation_result_identifier=key,
                expectation_suite_identifier=suite_id)
            keys.append(key)
        context.build_data_docs(resource_identifiers=[suite_id, *keys])
