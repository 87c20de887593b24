"""Record sources (diary episodes, trips): day checks and aggregation to person-level variables.

A time-use or travel survey delivers one row per episode or trip, each carrying its person's
variables, its day key and its record number. The pipeline fuses persons, so such a source is
harmonised to one row per person whose specific variables are the catalog's ``aggregate``s
(minutes of sleep per average day, trips per day, kilometres by car...). A day whose episodes
do not tile it or whose records break a rule (an implausible speed) is messy, as real diaries
are: its person's aggregates become unknown, i.e. item non-response, which the matching
imputes from the survey's other respondents, never copied into the population. Adding an
aggregate is editing the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth_assets.catalog.model import RecordAggregate, Records, Source
from synth_assets.catalog.rules import broken_rows, evaluated

DAY = "day_id"
RECORD = "record_id"


@dataclass
class RecordReport:
    """What the records held and which days failed which check."""

    unit: str
    persons: int
    days: int
    records: int
    failed_days: dict[str, int] = field(default_factory=dict)  # check -> days failing it
    persons_unknown: int = 0  # persons whose aggregates are unknown (a day failed)

    def to_dict(self) -> dict[str, object]:
        return {"unit": self.unit, "persons": self.persons, "days": self.days, "records": self.records,
                "failed_days": dict(self.failed_days), "persons_unknown": self.persons_unknown}


def with_derived(rows: pd.DataFrame, source: Source) -> pd.DataFrame:
    """The rows plus the records' derived variables (pandas expressions, in catalog order)."""
    records = _records(source)
    rows = rows.copy()
    for name, expression in records.derived.items():
        values = evaluated(rows, expression)
        rows[name] = pd.to_numeric(values, errors="coerce").astype("float64")
    return rows


def _records(source: Source) -> Records:
    if source.records is None:
        raise ValueError("not a record source: the catalog declares no 'records'")
    return source.records


def _has_record(rows: pd.DataFrame) -> np.ndarray:
    """Rows that are records; record number 0 or empty marks a day without any."""
    number = pd.to_numeric(rows[RECORD], errors="coerce")
    return (number.notna() & number.gt(0)).to_numpy()


def failed_days(rows: pd.DataFrame, source: Source) -> pd.DataFrame:
    """One row per (person, day, check) failed: ``covers_day`` (episodes leave a gap, overlap,
    or miss the day's start or end) or a record ``rules`` query (e.g. speed plausible)."""
    records = _records(source)
    person = source.id_column
    assert person is not None, "the catalog requires a person id in a record source"
    found: list[pd.DataFrame] = []
    real = rows.loc[_has_record(rows)]
    if records.covers_day is not None and len(real):
        cover = records.covers_day
        ordered = real.sort_values([person, DAY, cover.start], kind="stable")
        keys = [ordered[person], ordered[DAY]]
        start = pd.to_numeric(ordered[cover.start], errors="coerce")
        end = pd.to_numeric(ordered[cover.end], errors="coerce")
        previous_end = end.groupby(keys).shift()
        first = ordered.groupby(keys).cumcount().eq(0)
        bad_row = start.isna() | end.isna() | (first & start.ne(0)) | (~first & start.ne(previous_end))
        last_end = end.groupby(keys).transform("last")
        bad_day = bad_row.groupby(keys).transform("any") | last_end.ne(cover.minutes)
        days = ordered.loc[bad_day.to_numpy(), [person, DAY]].drop_duplicates()
        found.append(days.assign(check="covers_day"))
    for i, rule in enumerate(records.rules):
        bad, _ = broken_rows(real, [rule])
        days = real.loc[bad, [person, DAY]].drop_duplicates()
        found.append(days.assign(check=f"rules[{i}] {rule}"))
    if not found:
        return pd.DataFrame({person: [], DAY: [], "check": []})
    return pd.concat(found, ignore_index=True)


def _per_day(rows: pd.DataFrame, person: str, aggregates: dict[str, RecordAggregate]) -> pd.DataFrame:
    """Each aggregate's value on each (person, day) (index: person, day; sorted).

    The rows are grouped once for all of them: each aggregate is a column of per-row values (the
    selected records' ``of``, or 1 per selected record) summed in one groupby (at 1.2 million persons
    the release's diaries, 29 million rows, took 34 s grouped once per aggregate, bench/README.md,
    "Twenty-third pass"); the same sums, as one groupby sums each column as its own.
    """
    real = _has_record(rows)
    columns: dict[int, np.ndarray | pd.Series] = {0: real.astype(np.float64)}  # the day's records, for a share
    for position, aggregate in enumerate(aggregates.values(), start=1):
        selected = real.copy()
        if aggregate.where:
            holds = evaluated(rows, aggregate.where)
            selected &= holds.fillna(False).astype(bool).to_numpy()
        if aggregate.how == "sum":
            assert aggregate.of is not None, "the catalog requires 'of' for a sum"
            # a Series, not its array: a nullable column's missing values stay missing (skipped by the sum)
            columns[position] = pd.to_numeric(rows[aggregate.of], errors="coerce").where(selected, 0.0)
        else:
            columns[position] = selected.astype(np.float64)
    sums = pd.DataFrame(columns, index=rows.index).groupby([rows[person], rows[DAY]], sort=True).sum(min_count=0)
    out: dict[str, pd.Series] = {}
    for position, (name, aggregate) in enumerate(aggregates.items(), start=1):
        if aggregate.how == "share":
            total = sums[0]
            out[name] = (sums[position] / total.where(total > 0)).fillna(0.0)
        else:
            out[name] = sums[position]
    return pd.DataFrame(out, index=sums.index)


def aggregate_records(rows: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Every ``aggregate`` of ``source`` per person (index: the person id), from harmonised rows.

    ``rows`` hold the person id, ``day_id``, ``record_id`` and the record variables (derived
    ones included: :func:`with_derived`). ``per: average_day`` weighs the mean of each day type
    by ``day_weights``; a person lacking a weighted day type gets no value.
    """
    records = _records(source)
    person = source.id_column
    assert person is not None, "the catalog requires a person id in a record source"
    columns: dict[str, pd.Series] = {}
    day_type = None
    if records.day_type is not None:
        day_type = rows.groupby([rows[person], rows[DAY]], sort=True)[records.day_type].first().astype("string")
    days = _per_day(rows, person, source.aggregates)
    by_day = [name for name, aggregate in source.aggregates.items() if aggregate.per == "day"]
    by_average_day = [name for name in source.aggregates if name not in by_day]
    # each grouping once for all the aggregates it serves (the same means, column by column)
    means = days[by_day].groupby(level=0).mean() if by_day else None
    table = None
    if by_average_day:
        assert day_type is not None, "the catalog requires a day type for 'average_day'"
        types = day_type.reindex(days.index).to_numpy()
        table = days[by_average_day].groupby([days.index.get_level_values(0), types]).mean().unstack()
    weights = records.day_weights
    for name in source.aggregates:
        if means is not None and name in means:
            columns[name] = means[name]
            continue
        assert table is not None
        by_type = table[name] if name in table.columns.get_level_values(0) else pd.DataFrame(index=table.index)
        value = pd.Series(0.0, index=table.index)
        for kind, weight in weights.items():  # a day type nobody reported leaves every value unknown
            value = value + by_type.get(kind, np.nan) * weight
        columns[name] = value / sum(weights.values())
    return pd.DataFrame(columns)


def person_table(rows: pd.DataFrame, source: Source) -> tuple[pd.DataFrame, RecordReport]:
    """One row per person: the person's variables (first record's) and the aggregates.

    A person with a day failing a check gets every aggregate unknown (reported, then imputed
    as item non-response), rather than values built from a broken day.
    """
    records = _records(source)
    person = source.id_column
    assert person is not None, "the catalog requires a person id in a record source"
    if any(name not in rows for name in records.derived):
        rows = with_derived(rows, source)
    failures = failed_days(rows, source)
    aggregates = aggregate_records(rows, source)
    unknown = failures[person].unique()
    aggregates.loc[aggregates.index.isin(unknown), :] = np.nan
    read = [name for name, v in source.variables.items() if v.column is not None]
    persons = rows.drop_duplicates(person, keep="first")[read].reset_index(drop=True)
    joined = persons.join(aggregates, on=person)
    report = RecordReport(
        unit=records.unit, persons=len(persons), days=int(rows[[person, DAY]].drop_duplicates().shape[0]),
        records=int(_has_record(rows).sum()),
        failed_days={str(c): int(n) for c, n in failures.drop_duplicates([person, DAY, "check"])["check"].value_counts().items()},
        persons_unknown=int(len(unknown)),
    )
    return joined[list(source.variables)], report
