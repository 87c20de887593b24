"""Record sources: day checks and the catalog's aggregates to person-level variables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import CatalogError, parse_catalog
from synth_assets.harmonise import harmonise_table
from synth_assets.harmonise.records import aggregate_records, failed_days, with_derived

CATALOG = """
version: 1
common_variables:
  age: {type: integer, min: 0, max: 110}
sources:
  register:
    kind: register
    path: "register/register_{wave}.csv"
    format: csv
    variables:
      person_id: {column: pid, role: id, type: integer}
      age: {column: age, role: common}
  diary:
    kind: survey
    path: "diary/diary_{wave}.csv"
    format: csv
    variables:
      person_id: {column: pid, role: id, type: integer}
      weight: {column: w, role: weight, type: number, min: 0}
      age: {column: age, role: common}
      minutes_sleep:
        role: specific
        type: number
        aggregate: {how: sum, of: duration, where: "activity == 'sleep'", per: average_day}
      minutes_work:
        role: specific
        type: number
        aggregate: {how: sum, of: duration, where: "activity == 'work'", per: average_day}
      episodes:
        role: specific
        type: number
        aggregate: {how: count, per: day}
    records:
      unit: episode
      day_id: day
      record_id: ep
      day_type: day_type
      day_weights: {weekday: 5, weekend: 2}
      variables:
        day_type: {column: dtype, role: specific, type: category, categories: [weekday, weekend], codes: {1: weekday, 2: weekend}}
        start: {column: s, role: specific, type: number, min: 0, max: 1440}
        end: {column: e, role: specific, type: number, min: 0, max: 1440}
        activity: {column: act, role: specific, type: category, categories: [sleep, work, other], codes: {1: sleep, 2: work, 3: other}}
      derived:
        duration: "end - start"
      covers_day: {start: start, end: end}
  trips:
    kind: survey
    path: "trips/trips_{wave}.csv"
    format: csv
    variables:
      person_id: {column: pid, role: id, type: integer}
      weight: {column: w, role: weight, type: number, min: 0}
      age: {column: age, role: common}
      trips_per_day: {role: specific, type: number, aggregate: {how: count, per: day}}
      km_car: {role: specific, type: number, aggregate: {how: sum, of: distance, where: "mode == 'car'"}}
      car_share: {role: specific, type: number, aggregate: {how: share, where: "mode == 'car'"}}
    records:
      unit: trip
      day_id: day
      record_id: trip
      variables:
        mode: {column: mode, role: specific, type: category, categories: [car, walk], codes: {1: car, 2: walk}}
        distance: {column: km, role: specific, type: number, min: 0}
        duration: {column: minutes, role: specific, type: number, min: 0}
      derived:
        speed: "distance / (duration / 60)"
      rules: ["speed <= 130"]
"""


@pytest.fixture
def catalog():
    return parse_catalog(CATALOG)


def _day(pid: int, day: int, kind: int, episodes: list[tuple[int, int, int]]) -> list[dict]:
    return [{"pid": pid, "w": 1.0, "age": 30, "day": day, "dtype": kind, "ep": i + 1, "s": s, "e": e, "act": a}
            for i, (s, e, a) in enumerate(episodes)]


def _diary() -> pd.DataFrame:
    rows = (
        _day(1, 1, 1, [(0, 420, 1), (420, 900, 2), (900, 1380, 3), (1380, 1440, 1)])  # weekday: 480 sleep, 480 work
        + _day(1, 2, 2, [(0, 600, 1), (600, 1440, 3)])  # weekend: 600 sleep
        + _day(2, 1, 1, [(0, 480, 1), (450, 1440, 3)])  # overlap: 30 minutes counted twice
        + _day(2, 2, 2, [(0, 480, 1), (480, 1440, 3)])
        + _day(3, 1, 1, [(0, 480, 1), (500, 1440, 3)])  # a gap
        + _day(3, 2, 2, [(0, 480, 1), (480, 1400, 3)])  # ends before midnight
    )
    return pd.DataFrame(rows)


def test_average_day_weighs_weekdays_five_sevenths_and_weekend_two(catalog):
    table = harmonise_table(_diary(), catalog, "diary", file="diary_2024.csv")
    first = table.set_index("person_id").loc[1]
    assert first["minutes_sleep"] == pytest.approx((5 * 480 + 2 * 600) / 7)
    assert first["minutes_work"] == pytest.approx(5 * 480 / 7)
    assert first["episodes"] == pytest.approx(3)  # mean of 4 and 2 episodes a day
    assert list(table.columns) == list(catalog.sources["diary"].variables)
    assert table["person_id"].tolist() == [1, 2, 3]


def test_days_not_covering_24_hours_leave_their_persons_aggregates_unknown(catalog):
    source = catalog.sources["diary"]
    table = harmonise_table(_diary(), catalog, "diary")
    assert table.set_index("person_id").loc[[2, 3], ["minutes_sleep", "minutes_work", "episodes"]].isna().all().all()
    assert table.attrs["records"]["failed_days"] == {"covers_day": 3}  # person 2's weekday, both of person 3's
    assert table.attrs["records"]["persons_unknown"] == 2
    rows = harmonise_rows(catalog, "diary", _diary())
    failures = failed_days(with_derived(rows, source), source)
    assert sorted(map(tuple, failures[["person_id", "day_id"]].to_numpy().tolist())) == [(2, 1), (3, 1), (3, 2)]


def harmonise_rows(catalog, name: str, raw: pd.DataFrame) -> pd.DataFrame:
    """The harmonised rows of a record file (before aggregation), through the public API's pieces."""
    source = catalog.sources[name]
    assert source.records is not None
    columns = {"person_id": raw["pid"], "day_id": raw["day"], "record_id": raw[source.records.record_id]}
    for var_name, var in source.records.variables.items():
        values = raw[var.column]
        if var.codes:
            values = pd.Categorical(values.map(var.codes), categories=var.categories)
        columns[var_name] = values
    return pd.DataFrame(columns)


def _trips() -> pd.DataFrame:
    base = {"w": 1.0, "age": 40, "day": 1}
    rows = [
        {**base, "pid": 1, "trip": 1, "mode": 1, "km": 10.0, "minutes": 20},
        {**base, "pid": 1, "trip": 2, "mode": 2, "km": 1.0, "minutes": 15},
        {**base, "pid": 1, "trip": 3, "mode": 1, "km": 12.0, "minutes": 25},
        {**base, "pid": 2, "trip": 0, "mode": np.nan, "km": np.nan, "minutes": np.nan},  # stayed home
        {**base, "pid": 3, "trip": 1, "mode": 1, "km": 900.0, "minutes": 20},  # a mistyped distance
    ]
    return pd.DataFrame(rows)


def test_trips_counted_summed_by_mode_and_shared_a_day_without_trips_is_zero(catalog):
    table = harmonise_table(_trips(), catalog, "trips").set_index("person_id")
    assert table.loc[1, "trips_per_day"] == 3 and table.loc[1, "km_car"] == pytest.approx(22.0)
    assert table.loc[1, "car_share"] == pytest.approx(2 / 3)
    assert table.loc[2, ["trips_per_day", "km_car", "car_share"]].tolist() == [0, 0, 0]


def test_implausible_speed_is_reported_and_its_person_left_to_imputation(catalog):
    table = harmonise_table(_trips(), catalog, "trips")
    assert table.set_index("person_id").loc[3, ["trips_per_day", "km_car", "car_share"]].isna().all()
    assert table.attrs["records"] == {"unit": "trip", "persons": 3, "days": 3, "records": 4,
                                      "failed_days": {"rules[0] speed <= 130": 1}, "persons_unknown": 1}


def test_adding_an_aggregate_is_editing_the_catalog(catalog):
    text = CATALOG.replace(
        "      car_share:", "      km_walk: {role: specific, type: number, aggregate: {how: sum, of: distance, "
        "where: \"mode == 'walk'\"}}\n      car_share:")
    table = harmonise_table(_trips(), parse_catalog(text), "trips").set_index("person_id")
    assert table.loc[1, "km_walk"] == pytest.approx(1.0) and table.loc[2, "km_walk"] == 0


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("of: distance, where", "of: distanse, where", "'of' 'distanse' is not a record variable"),
        ('rules: ["speed <= 130"]', 'rules: ["sped <= 130"]', "records.rules[0]"),
        ("aggregate: {how: count, per: day}}\n      km_car", "aggregate: {how: sum, per: day}}\n      km_car",
         "'of' names the record variable"),
        ("      age: {column: age, role: common}\n  diary:",
         "      age: {column: age, role: common}\n      n: {role: specific, type: number, aggregate: {how: count}}\n  diary:",
         "sources.register.variables.n: an 'aggregate' needs the source's 'records'"),
    ],
)
def test_catalog_refuses_aggregates_it_cannot_compute(old, new, message):
    assert old in CATALOG
    with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_catalog(CATALOG.replace(old, new))


def test_a_record_files_checks_and_reader_know_its_record_columns(catalog, tmp_path):
    from synth_assets.catalog.expectations import raw_suite_spec
    from synth_assets.ingest import IngestError, read_source_file

    spec = raw_suite_spec(catalog, "trips")
    assert {"day", "trip", "mode", "km", "minutes"} <= set(spec["required_columns"])
    assert spec["unique"] == [] and "pid" in spec["not_null"]  # a person has several trips
    path = tmp_path / "trips_2024.csv"
    _trips().drop(columns="km").to_csv(path, index=False)
    with pytest.raises(IngestError, match=r"missing column\(s\) 'km' \(for distance\)"):
        read_source_file(path, catalog.sources["trips"])


def test_aggregates_of_no_rows_are_every_aggregate_with_no_person(catalog):
    """A part of a linked table with no row (a replicate without records) still has every aggregate's
    column, by day and by average day alike: the aggregates are grouped together, not one by one."""
    for name, raw in (("diary", _diary()), ("trips", _trips())):
        source = catalog.sources[name]
        rows = with_derived(harmonise_rows(catalog, name, raw).iloc[:0], source)
        table = aggregate_records(rows, source)
        assert list(table.columns) == list(source.aggregates) and table.empty, name


def test_aggregates_of_several_persons_equal_each_persons_own(catalog):
    """Grouped together, each person's aggregates are what that person's rows alone give."""
    for name, raw in (("diary", _diary()), ("trips", _trips())):
        source = catalog.sources[name]
        rows = with_derived(harmonise_rows(catalog, name, raw), source)
        together = aggregate_records(rows, source)
        for person, own in rows.groupby("person_id"):
            pd.testing.assert_frame_equal(together.loc[[person]], aggregate_records(own, source), check_names=False)


def test_derived_variables_and_aggregates_evaluate_their_expressions_on_the_columns_they_name(catalog, monkeypatch):
    """Each catalog expression is handed to pandas with its own columns only (pandas wraps every column
    of the frame it evaluates on in a Series, a fifth of a city's diary aggregates), with the same values."""
    source = catalog.sources["trips"]
    rows = harmonise_rows(catalog, "trips", _trips())
    widened = rows.assign(**{f"unrelated_{i}": np.arange(len(rows)) for i in range(20)})
    handed: list[list[str]] = []
    evaluate = pd.eval

    def recorded(expression, **kwargs):
        handed.append(sorted(c for resolver in kwargs.get("resolvers", ()) for c in resolver))
        return evaluate(expression, **kwargs)

    monkeypatch.setattr(pd, "eval", recorded)
    derived = with_derived(widened, source)
    table = aggregate_records(derived, source)
    assert handed and all(not any(c.startswith("unrelated_") for c in columns) for columns in handed)
    assert ["distance", "duration"] in handed and ["mode"] in handed
    np.testing.assert_allclose(derived["speed"], rows["distance"] / (rows["duration"] / 60))
    monkeypatch.undo()
    pd.testing.assert_frame_equal(table, aggregate_records(with_derived(rows, source), source))
