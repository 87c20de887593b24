"""What each stage's data must satisfy, derived from the catalog as suite specifications.

The specs are the table specs of ``synth_assets.common.expectations`` (turned into Great
Expectations suites there), special codes (e.g. -8 'not applicable') among them, left out of
ranges and sets by GE's ``row_condition``; plus one catalog notion checked beside the suite,
plausibility rules (pandas queries over several columns).
Deriving everything from the catalog keeps one source of truth for the schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.catalog.model import Catalog
from synth_assets.catalog.rules import RuleError, broken_rows
from synth_assets.common.expectations import (
    DataDocs,
    Detached,
    ExpectationReport,
    FailedExpectation,
    keep_in_docs,
    run_suite,
    table_suite,
    validate_detached,
)
from synth_assets.common.frames import ParquetTable
from synth_assets.common.hashing import key_hashes
from synth_assets.common.parallel import forked_imap

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


def validate_table(frame: pd.DataFrame, spec: dict[str, Any], docs: DataDocs | None = None,
                   batch_rows: int | None = None) -> ExpectationReport:
    """Run the spec's Great Expectations suite, with special codes exempt and rules checked.

    With ``docs``, the suite, its result and the Data Docs are kept there (``run_suite``).

    A table of more than ``batch_rows`` rows (default :data:`BATCH_ROWS`) with its default index
    is validated a batch at a time (:func:`validate_chunks`): Great Expectations copies what it
    validates (about 250 bytes a row of the register, whatever its size), so the batch, not the
    table, sets the check's memory. Its ``unique`` keys are judged beside the suite on the whole
    columns, by hashing their values: exhaustive, with GE's verdict and count (missing values
    ignored). Either way the same verdict and failures.

    Returns the :class:`~synth_assets.common.expectations.ExpectationReport`, with one
    :class:`RuleFailure` per broken rule (how many records break it, and examples).
    """
    batch_rows = BATCH_ROWS if batch_rows is None else batch_rows
    if len(frame) > batch_rows and frame.index.equals(pd.RangeIndex(len(frame))):
        chunks = (frame.iloc[first:first + batch_rows] for first in range(0, len(frame), batch_rows))
        return _validated_in_batches(chunks, lambda key: _uniqueness(frame, key), spec, docs, batch_rows)
    spec = dict(spec)
    rules = spec.pop("rules", [])
    return _with_rules(run_suite(frame, table_suite(spec), docs=docs), frame, rules)


def validate_stored(table: ParquetTable, spec: dict[str, Any], docs: DataDocs | None = None,
                    batch_rows: int | None = None, key_rows: int | None = None) -> ExpectationReport:
    """:func:`validate_table` of a table left in its Parquet file, never read whole when larger than
    ``batch_rows``: its row groups are validated in batches and its ``unique`` keys judged on their
    values' hashes, at most ``key_rows`` of them held at a time (:func:`_stored_uniqueness`). The
    same verdict and failures as the table read whole and validated."""
    batch_rows = BATCH_ROWS if batch_rows is None else batch_rows
    if table.num_rows <= batch_rows:
        return validate_table(table.read(), spec, docs=docs, batch_rows=batch_rows)
    return _validated_in_batches(table.frames(), lambda key: _stored_uniqueness(table, key, key_rows), spec, docs,
                                 batch_rows)


#: Rows whose key hashes a stored table's uniqueness test holds at a time (16 bytes each, with their
#: row numbers, about 100 MB with the sort): a larger table is hashed once per share of its rows.
KEY_ROWS = 2_000_000


def _validated_in_batches(chunks: Iterable[pd.DataFrame],
                          uniqueness: Callable[[str | list[str]], FailedExpectation | None],
                          spec: dict[str, Any], docs: DataDocs | None, batch_rows: int) -> ExpectationReport:
    """The spec's row-wise part on ``chunks`` (:func:`validate_chunks`), each of its ``unique`` keys
    judged on the whole table by ``uniqueness(key)``."""
    keys = spec.get("unique", [])
    row_spec = {k: v for k, v in spec.items() if k != "unique"}
    report = validate_chunks(chunks, row_spec, docs=docs, batch_rows=batch_rows)
    failures = [f for f in map(uniqueness, keys) if f is not None]
    return replace(report, success=report.success and not failures, n_expectations=report.n_expectations + len(keys),
                   failures=[*report.failures, *failures])


def _uniqueness_expectation(key: str | list[str]) -> tuple[list[str], str, dict[str, Any]]:
    """The key's columns, and GE's expectation for it: ``expect_column_values_to_be_unique`` (a
    column) or ``expect_compound_columns_to_be_unique`` (a list) with its arguments."""
    if isinstance(key, str):
        return [key], "expect_column_values_to_be_unique", {"column": key}
    return list(key), "expect_compound_columns_to_be_unique", {"column_list": list(key)}


def _uniqueness(frame: pd.DataFrame, key: str | list[str]) -> FailedExpectation | None:
    """GE's uniqueness expectation of ``key`` on the whole table, None when met: every row holding a
    value another row holds is unexpected; rows missing the value (every value of a compound key) are
    ignored, as GE ignores them."""
    columns, kind, kwargs = _uniqueness_expectation(key)
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        return FailedExpectation(kind, kwargs, error=f"column {absent[0]!r} is not in the table")
    values = frame[columns]
    present = values.notna().any(axis=1).to_numpy() if len(columns) > 1 else values[columns[0]].notna().to_numpy()
    repeated = values.duplicated(keep=False).to_numpy() & present
    if not repeated.any():
        return None
    examples = values.loc[repeated].head(20)
    return FailedExpectation(kind, kwargs, unexpected_count=int(repeated.sum()),
                             unexpected_examples=(examples[columns[0]].tolist() if len(columns) == 1
                                                  else examples.to_dict("records")))


def _stored_uniqueness(table: ParquetTable, key: str | list[str], key_rows: int | None = None) -> FailedExpectation | None:
    """:func:`_uniqueness` of a table left in its file, in memory flat in its rows: the key's values
    are hashed a row group at a time (:func:`~synth_assets.common.hashing.key_hashes`), and the rows
    whose hash another row's repeats are found among a share of the hashes at a time (those equal to
    ``s`` modulo ``shares``, so that equal values fall in one share): at most about ``key_rows``
    hashes held, each share a read of the key's columns. Those rows alone are then read and compared
    by value (a hash collision is no duplicate), so the same failure, count and examples as the
    columns read whole give. Held with their hashes, the columns read whole grew by about 38 MiB a
    million ids (0.45 GiB at 12 million persons)."""
    columns, kind, kwargs = _uniqueness_expectation(key)
    absent = [c for c in columns if c not in table.columns]
    if absent:
        return FailedExpectation(kind, kwargs, error=f"column {absent[0]!r} is not in the table")
    shares = max(1, -(-table.num_rows // (key_rows or KEY_ROWS)))
    candidates = []
    for share in range(shares):
        hashes, rows, first = [], [], 0
        for group in table.arrow_groups(columns):
            hashed, present = key_hashes(group, columns)
            kept = present & (hashed % np.uint64(shares) == share)
            hashes.append(hashed[kept])
            rows.append(np.flatnonzero(kept) + first)
            first += group.num_rows
        if not hashes:
            break
        hashed, row = np.concatenate(hashes), np.concatenate(rows)
        del hashes, rows
        order = np.argsort(hashed, kind="stable")
        ordered = hashed[order]
        repeats = ordered[1:] == ordered[:-1]
        repeated = np.zeros(len(ordered), dtype=bool)
        repeated[1:] |= repeats
        repeated[:-1] |= repeats
        candidates.append(row[order[repeated]])
    found = np.sort(np.concatenate(candidates)) if candidates else np.empty(0, dtype=np.int64)
    if not len(found):
        return None
    # the few rows whose hashes repeat, by value: the rows read whole would give these rows, in order
    return _uniqueness(table.take(found, columns), key)


def _with_rules(report: ExpectationReport, frame: pd.DataFrame, rules: list[str]) -> ExpectationReport:
    """``report`` with one :class:`RuleFailure` per rule that records of ``frame`` break."""
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


#: Rows validated in one Great Expectations batch by :func:`validate_chunks`: GE copies the batch
#: (extension columns as objects, one filtered copy per ``row_condition``): about 2.8 KB a row of
#: the demo release at the peak (700 MB for its 250,006 rows in one batch; bench/README.md, "Bounded memory, fourth pass"),
#: so the batch, not the table, sets the check's memory. Two row groups a batch: each batch costs GE's
#: set-up and a Data Docs rebuild too (30 batches for five replicates of 1.2 million persons).
BATCH_ROWS = 200_000

#: Spec keys judged row by row (a batch's verdict adds up to the table's): all but ``unique``
#: (a duplicate may sit in two batches) and a ``row_count`` maximum.
_ROW_WISE_KEYS = {"name", "required_columns", "exact_columns", "types", "not_null", "ranges", "categories",
                  "special_values", "positive", "rules"}


def validate_chunks(chunks: Iterable[pd.DataFrame], spec: dict[str, Any], docs: DataDocs | None = None,
                    batch_rows: int = BATCH_ROWS, processes: int | None = None) -> ExpectationReport:
    """:func:`validate_table` of a table given a chunk of rows at a time (a Parquet row group, a
    replicate): the same verdict and failures as the table validated whole.

    Chunks are joined into batches of about ``batch_rows`` rows, each validated on its own; a
    failed expectation's unexpected counts are added up over the batches (examples: the first
    ones met), a rule's broken records too, named by their row in the whole table. ``row_count``
    is judged on the total. With ``docs``, each batch's result is kept in the Data Docs, its run
    named by its rows (``<run> rows a-b``). Specs with ``unique`` or a ``row_count`` maximum are
    not row by row and are refused: validate those tables whole.

    The batches' results are kept in the Data Docs together at the end (one rebuild of the site,
    not one a batch). With ``processes`` > 1 each batch is validated in a child process forked once
    it is read, up to that many at a time (``forked_imap``: GE's validation is pandas and Python,
    which threads take turns at), each holding its batch and GE's copies of it. The same report
    either way.
    """
    not_row_wise = set(spec) - _ROW_WISE_KEYS - {"row_count"}
    if not_row_wise or (spec.get("row_count") or {}).get("max") is not None:
        raise ValueError(f"spec {spec.get('name')!r} is not judged row by row "
                         f"({', '.join(sorted(not_row_wise)) or 'row_count max'}): validate the table whole")
    minimum = (spec.get("row_count") or {}).get("min")
    row_spec = {k: v for k, v in spec.items() if k != "row_count"}
    rows = [0]  # rows read so far: the next batch's first row in the whole table

    def numbered() -> Iterable[tuple[pd.DataFrame, str | None]]:
        for batch in _batches(chunks, batch_rows):
            first = rows[0]
            batch.index = pd.RangeIndex(first, first + len(batch))  # rules name rows of the whole table
            rows[0] += len(batch)
            yield batch, None if docs is None else f"{docs.run_name or ''} rows {first}-{rows[0] - 1}".strip()

    # each batch detached from the Data Docs, kept there together at the end: one rebuild of the site,
    # not one a batch (a whole register's check is tens of batches)
    detached = list(forked_imap(lambda job: _validated_batch(job[0], row_spec, job[1]), numbered(), processes))
    if docs is not None and detached:
        suite_spec = {k: v for k, v in row_spec.items() if k != "rules"}
        keep_in_docs(detached, table_suite(suite_spec), docs)
    reports = [replace(d.report, suite_file=docs.suite_file(d.report.suite_name) if docs else None,
                       docs_index=docs.index if docs else None) for d in detached]
    if not reports:  # no row: the suite on the empty table (its columns still checked)
        return validate_table(pd.DataFrame(columns=list(spec.get("required_columns", []))), spec, docs=docs)
    merged = _merged(reports)
    if minimum is None:
        return merged
    count = FailedExpectation("expect_table_row_count_to_be_between", {"min_value": minimum, "max_value": None},
                              observed_value=rows[0])
    failed = rows[0] < minimum
    return replace(merged, success=merged.success and not failed, n_expectations=merged.n_expectations + 1,
                   failures=[*merged.failures, *([count] if failed else [])])


def _validated_batch(batch: pd.DataFrame, row_spec: dict[str, Any], run_name: str | None) -> Detached:
    """One batch's suite and rules, detached from the Data Docs (in a child: no file, no lock)."""
    spec = dict(row_spec)
    rules = spec.pop("rules", [])
    detached = validate_detached(batch, table_suite(spec), run_name)
    return replace(detached, report=_with_rules(detached.report, batch, rules))


def _batches(chunks: Iterable[pd.DataFrame], batch_rows: int) -> Iterable[pd.DataFrame]:
    pending: list[pd.DataFrame] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= batch_rows:
            yield pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0].reset_index(drop=True)
            pending, size = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0].reset_index(drop=True)


def _merged(reports: list[ExpectationReport]) -> ExpectationReport:
    """One report of several batches' reports of one suite: failures added up, in order of appearance."""
    merged: dict[str, Any] = {}
    for report in reports:
        for failure in report.failures:
            if isinstance(failure, RuleFailure):
                key = f"rule:{failure.rule}"
                seen = merged.get(key)
                merged[key] = failure if seen is None else replace(
                    seen, broken=seen.broken + failure.broken, examples=[*seen.examples, *failure.examples][:5],
                    error=seen.error or failure.error)
            elif isinstance(failure, FailedExpectation):
                key = f"{failure.type}:{json.dumps(failure.kwargs, sort_keys=True, default=str)}"
                seen = merged.get(key)
                if seen is None:
                    merged[key] = failure
                    continue
                counts = [c for c in (seen.unexpected_count, failure.unexpected_count) if c is not None]
                merged[key] = replace(
                    seen, unexpected_count=sum(counts) if counts else None,
                    unexpected_examples=[*seen.unexpected_examples, *failure.unexpected_examples][:20],
                    observed_value=seen.observed_value if seen.observed_value is not None else failure.observed_value,
                    error=seen.error or failure.error)
            else:
                merged[f"other:{failure.describe()}"] = failure
    first = reports[0]
    return replace(first, success=all(r.success for r in reports), failures=list(merged.values()))
