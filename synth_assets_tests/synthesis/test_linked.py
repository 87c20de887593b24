"""Linked diary days and trips generated for persons from their aggregates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synth_assets.catalog import load_catalog
from synth_assets.harmonise import harmonise_record_rows
from synth_assets.harmonise.records import aggregate_records, failed_days, person_table, with_derived
from synth_assets.ingest import read_source_file, source_path
from synth_assets.synthesis.linked import EpisodeDays, TripDays, compare_distributions, copied_days, generator_for

CATALOG = Path(__file__).resolve().parents[2] / "data" / "catalog.yaml"
WAVE = "2026"  # both diary surveys run in 2026


@pytest.fixture(scope="module")
def surveys(tmp_path_factory):
    from synth_assets.demo import generate_demo

    root = tmp_path_factory.mktemp("linked")
    generate_demo(root, persons=3000, waves=(int(WAVE),), seed=5)
    catalog = load_catalog(CATALOG)
    out = {}
    for name in ("tus", "mobility"):
        source = catalog.sources[name]
        raw = read_source_file(source_path(root / "incoming", source, WAVE), source)
        rows = harmonise_record_rows(raw.data, catalog, name)
        persons, _ = person_table(rows, source)
        out[name] = (source, rows, persons.dropna())
    return out


def _generated(source, rows, persons, seed=1):
    generator = generator_for(source, seed=seed).fit(rows)
    # stand-ins for synthetic persons: aggregates as the release holds them, ids of their own
    synthetic = persons.assign(person_id=np.arange(1, len(persons) + 1) + 10_000_000)
    generated = generator.sample(synthetic).merge(synthetic[["person_id", "age"]], on="person_id")
    return generator, synthetic, with_derived(generated, source)


@pytest.mark.parametrize("name", ["tus", "mobility"])
def test_generated_records_aggregate_back_to_the_persons_values(surveys, name):
    source, rows, persons = surveys[name]
    generator, synthetic, generated = _generated(source, rows, persons)
    assert isinstance(generator, EpisodeDays if name == "tus" else TripDays)
    again = aggregate_records(generated, source).reindex(synthetic["person_id"])
    want = synthetic.set_index("person_id")[list(source.aggregates)]
    assert np.allclose(again.to_numpy(dtype=float), want.to_numpy(dtype=float), atol=1e-6)
    assert failed_days(generated, source).empty  # days tile 24 hours; speeds plausible


def test_diary_days_are_a_weekday_and_a_weekend_day_never_a_real_one(surveys):
    source, rows, persons = surveys["tus"]
    _, synthetic, generated = _generated(source, rows, persons)
    days = generated.groupby("person_id")["day_type"].agg(lambda t: tuple(sorted(set(t))))
    assert (days == ("weekday", "weekend")).all()
    # weekends hold less paid work than weekdays, as in the survey
    work = generated.loc[generated["activity"] == "paid_work"].groupby("day_type")["duration"].sum()
    assert work["weekend"] < 0.5 * work["weekday"]
    assert copied_days(generated, rows, "person_id", ["start", "end", "activity"]) == 0
    report = compare_distributions(generated, rows, "person_id", [], per_day=("activity", "duration"))
    minutes = report.loc[report["variable"] == "duration per day"]
    assert len(minutes) == 7  # the activity groups
    assert np.isclose(minutes["generated"].sum(), 1440)
    assert abs(minutes["survey"].sum() - 1440) < 5  # real days include the misrecorded ones
    assert copied_days(rows, rows, "person_id", ["start", "end", "activity"]) > 0  # the test sees copies


def test_trips_keep_the_surveys_shapes_and_children_never_drive(surveys):
    source, rows, persons = surveys["mobility"]
    _, synthetic, generated = _generated(source, rows, persons)
    assert not ((generated["age"] < 18) & (generated["main_mode"] == "car_driver")).any()
    report = compare_distributions(generated, rows, "person_id", ["main_mode", "purpose", "departure"])
    shares = report.loc[report["variable"] == "main_mode"].set_index("statistic")
    assert (shares["generated"] - shares["survey"]).abs().max() < 0.08
    median = report.set_index(["variable", "statistic"]).loc[("departure", "q50")]
    assert abs(median["generated"] - median["survey"]) < 90  # minutes
    stay_home = synthetic.loc[synthetic["trips_per_day"] == 0, "person_id"]
    assert len(stay_home) and (generated.loc[generated["person_id"].isin(stay_home), "record_id"] == 0).all()
