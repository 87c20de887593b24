"""Linked diary days and trips generated for persons from their aggregates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import load_catalog
from synth_assets.harmonise import harmonise_record_rows
from synth_assets.harmonise.records import aggregate_records, failed_days, person_table, with_derived
from synth_assets.ingest import read_source_file, source_path
from synth_assets.synthesis import linked as linked_module
from synth_assets.synthesis.linked import (
    EpisodeDays,
    TripDays,
    compare_distributions,
    copied_days,
    copy_columns,
    day_hashes,
    generator_for,
)

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


def test_a_replicate_given_in_blocks_draws_each_block_from_its_own_stream(surveys, tmp_path):
    """A replicate read a row group at a time (``person_blocks``): the first block draws as the
    replicate whole would start, later ones from streams of their own, and every person's trips
    still add up to their aggregates."""
    from synth_assets.common.frames import ParquetTable, write_rows
    from synth_assets.defs.synthesis.linked import person_blocks
    from synth_assets.synthesis.linked import aggregate_differences, block_seed, linked_records

    source, rows, persons = surveys["mobility"]
    n = len(persons)
    # the same persons twice in replicate 1 (ids 1..2n), once in replicate 2
    release = pd.concat([persons, persons, persons], ignore_index=True).assign(
        replicate=[1] * 2 * n + [2] * n, person_id=[*range(1, 2 * n + 1), *range(1, n + 1)], household_id=0)
    write_rows(release, tmp_path / "release.parquet", row_group_rows=n)
    blocks = list(person_blocks(ParquetTable(tmp_path / "release.parquet")))
    assert [(b["replicate"].iloc[0], len(b)) for b in blocks] == [(1, n), (1, n), (2, n)]
    parts = list(linked_records(blocks, rows, source, person_id="person_id", household_id="household_id", seed=3))
    first, second = (p.drop(columns=["person_id"]).reset_index(drop=True) for p in parts[:2])
    assert not first.equals(second)  # the same persons again, not the same stream again
    for block, part in ((blocks[0], parts[0]), (blocks[2], parts[2])):  # a first block: as its replicate alone
        alone = next(linked_records([block], rows, source, person_id="person_id", household_id="household_id", seed=3))
        pd.testing.assert_frame_equal(alone, part)
    linked = pd.concat(parts, ignore_index=True)
    assert (aggregate_differences(linked, release, source, person_id="person_id")["persons_off"] == 0).all()
    assert block_seed(3, 1, 0) == 4 and len({block_seed(3, 1, b) for b in range(50)}) == 50


@pytest.mark.parametrize("name", ["tus", "mobility"])
def test_release_tables_are_keyed_agree_with_their_persons_and_copy_no_real_day(surveys, name, tmp_path, monkeypatch):
    from synth_assets.common.frames import ParquetTable, write_rows
    from synth_assets.synthesis.linked import (
        aggregate_differences,
        distribution_columns,
        linked_distributions,
        linked_records,
    )

    source, rows, persons = surveys[name]
    persons = persons.head(300)
    # two replicates of stand-in synthetic persons, ids unique within a replicate
    release = pd.concat([persons.assign(replicate=r, person_id=np.arange(1, len(persons) + 1),
                                        household_id=np.arange(1, len(persons) + 1) // 2) for r in (1, 2)])
    parts = list(linked_records((g for _, g in release.groupby("replicate")), rows, source, person_id="person_id",
                                household_id="household_id", seed=3))
    assert [p["replicate"].unique().tolist() for p in parts] == [[1], [2]]  # one frame per replicate, in order
    linked = pd.concat(parts, ignore_index=True)
    # the replicates are independent: generated one at a time, the records of both generated at once
    alone = linked_records([release.loc[release["replicate"] == 2]], rows, source, person_id="person_id",
                           household_id="household_id", seed=3)
    pd.testing.assert_frame_equal(next(alone), parts[1])
    with pytest.raises(ValueError, match="one replicate at a time"):
        next(linked_records([release], rows, source, person_id="person_id", seed=3))
    assert list(linked.columns[:5]) == ["replicate", "person_id", "household_id", "day_id", "record_id"]
    assert not set(source.records.derived) & set(linked.columns)  # derived ones follow from the rest
    # labels are categoricals of the catalog's categories, in both replicates alike (one Parquet dictionary)
    labels = [c for c, v in source.records.variables.items() if v.categories and c in linked.columns]
    assert labels and all(isinstance(linked[c].dtype, pd.CategoricalDtype) for c in labels)
    for c in labels:
        declared = [str(v) for v in source.records.variables[c].categories]
        assert list(linked[c].cat.categories[:len(declared)]) == declared
        assert set(linked[c].dropna()) <= set(rows[c].dropna().astype(str)) | {"other"}
    keys = linked[["replicate", "person_id", "household_id"]].drop_duplicates()
    assert keys.merge(release, on=["replicate", "person_id", "household_id"]).shape[0] == len(keys)  # foreign keys
    differences = aggregate_differences(linked, release, source, person_id="person_id")
    assert (differences["persons_off"] == 0).all() and (differences["persons"] == 2 * len(persons)).all()
    copies = copy_columns(source)
    assert copied_days(linked, rows, "person_id", copies, ["replicate", "person_id", "day_id"]) == 0
    # a broken table fails both: a real day pasted over a person's, an aggregate changed
    real_day = rows.loc[(rows["person_id"] == rows.loc[rows["record_id"] > 0, "person_id"].iloc[0])
                        & (rows["day_id"] == rows.loc[rows["record_id"] > 0, "day_id"].iloc[0])]
    pasted = real_day.assign(replicate=1, person_id=-1, household_id=-1)[linked.columns.intersection(real_day.columns)
                                                                          .union(["replicate", "household_id"])]
    assert copied_days(pd.concat([linked, pasted]), rows, "person_id", copies, ["replicate", "person_id", "day_id"]) >= 1
    changed = release.copy()
    changed.loc[changed.index[0], list(source.aggregates)[0]] += 1
    assert aggregate_differences(linked, changed, source, person_id="person_id")["persons_off"].sum() >= 1
    # the table on disk (as the gate's checks read it): the same verdicts, whether its rows come sorted
    # by person and day (read a row group at a time, persons straddling row groups) or not (a replicate
    # at a time)
    day = ["replicate", "person_id", "day_id"]
    broken = pd.concat([linked, pasted])
    expected = (copied_days(broken, rows, "person_id", copies, day),
                aggregate_differences(broken, changed, source, person_id="person_id"))
    # the persons on disk too, sorted by person as the release is: both read a row group at a time
    write_rows(changed, tmp_path / "persons.parquet", row_group_rows=23)
    persons_on_disk = ParquetTable(tmp_path / "persons.parquet")
    assert persons_on_disk.rows_in_order(["replicate", "person_id"])
    read = ParquetTable.read
    for layout, order in (("sorted", broken.sort_values([*day, "record_id"], kind="stable")),
                        ("unsorted", broken.sort_values("replicate", kind="stable"))):
        write_rows(order, tmp_path / f"{layout}.parquet", row_group_rows=37)
        on_disk = ParquetTable(tmp_path / f"{layout}.parquet")
        assert on_disk.rows_in_order(day) == (layout == "sorted")
        with monkeypatch.context() as patch:
            if layout == "sorted":  # never a replicate's rows at once, nor the whole table
                patch.setattr(linked_module, "AGGREGATE_PART_ROWS", 3 * 37)  # row groups joined three at a time
                patch.setattr(ParquetTable, "part", lambda *a, **k: pytest.fail("a replicate read whole"))
                # one label column's codes read whole is the parts' categories (ParquetTable._categories)
                patch.setattr(ParquetTable, "read", lambda table, columns=None: read(table, columns)
                              if columns is not None and len(columns) == 1 else pytest.fail("the table read whole"))
            assert copied_days(on_disk, rows, "person_id", copies, day) == expected[0]
            for given in (changed, persons_on_disk):
                pd.testing.assert_frame_equal(aggregate_differences(on_disk, given, source, person_id="person_id"),
                                              expected[1])
    table = linked_distributions(linked, rows, source, person_id="person_id")
    variables = set(table["variable"])
    expected = ({"episodes per day", "minutes per day"} if name == "tus" else
                {"trips per day (share of days)", "main_mode (share of trips)", "departure (share of trips)"})
    assert expected <= variables
    shares = table.loc[table["variable"].str.contains("share")].groupby("variable")[["generated", "survey"]].sum()
    assert np.allclose(shares.to_numpy(), 1.0)
    if name == "tus":  # every generated day lasts 24 hours
        assert np.isclose(table.loc[table["variable"] == "minutes per day", "generated"].sum(), 1440)
    # read one replicate at a time, only the columns it needs (as the report reads it from disk): the same figures
    wanted = [c for c in distribution_columns(source, person_id="person_id") if c in linked]
    assert "household_id" not in wanted
    parts = (linked.loc[linked["replicate"] == r, wanted] for r in (1, 2))
    pd.testing.assert_frame_equal(linked_distributions(parts, rows, source, person_id="person_id"), table,
                                  check_exact=False, rtol=1e-12)


def test_day_hashes_see_the_order_of_a_day():
    frame = pd.DataFrame({"person_id": [1, 1, 2, 2], "day_id": 1, "record_id": [1, 2, 1, 2],
                          "activity": ["sleep", "work", "work", "sleep"], "start": [0, 600, 0, 840],
                          "end": [600, 1440, 600, 1440]})
    hashes = day_hashes(frame, {"activity": 0, "start": 0, "end": 0}, ["person_id", "day_id"])
    assert hashes.nunique() == 2
    swapped = frame.assign(activity=["work", "sleep", "work", "sleep"], start=[0, 600, 0, 600], end=[600, 1440] * 2)
    assert day_hashes(swapped, {"activity": 0, "start": 0, "end": 0}, ["person_id", "day_id"]).nunique() == 1


def test_top_coded_persons_still_make_whole_days(surveys):
    """The release is top-coded before its linked tables are generated: kilometres are capped
    (amounts), but a count of trips is not, since the car share is a share of it (capping a
    person's 11 trips at 10 left a share of 3/11 that no 10 trips make)."""
    from synth_assets.calibration.tails import tail_thresholds, top_code

    catalog = load_catalog(CATALOG)
    source, rows, persons = surveys["mobility"]
    amounts = [v for v in catalog.amounts() if v in persons]
    assert "km_car" in amounts and "trips_per_day" not in amounts and "car_trip_share" not in amounts
    # a quantile low enough that every aggregate would have values beyond it
    everything = tail_thresholds(persons, list(source.aggregates), 0.6)
    assert (persons["trips_per_day"] > everything["trips_per_day"]).any()
    coded, counts = top_code(persons, tail_thresholds(persons, amounts, 0.6))
    assert counts["km_car"] > 0
    generator = generator_for(source, seed=1).fit(rows)
    synthetic = coded.assign(person_id=np.arange(1, len(coded) + 1) + 10_000_000)
    generated = with_derived(generator.sample(synthetic).merge(synthetic[["person_id", "age"]], on="person_id"), source)
    again = aggregate_records(generated, source).reindex(synthetic["person_id"])
    want = synthetic.set_index("person_id")[list(source.aggregates)]
    assert np.allclose(again.to_numpy(dtype=float), want.to_numpy(dtype=float), atol=1e-6)


def test_day_hashes_of_categorical_labels_are_those_of_the_text():
    from synth_assets.synthesis.linked import day_hashes

    rows = pd.DataFrame({"person_id": [1, 1, 2, 2, 3], "day_id": [1, 1, 1, 1, 1], "record_id": [1, 2, 1, 2, 1],
                         "start": [0.0, 600.0, 0.0, 500.0, 0.0],
                         "activity": ["sleep", "work", "sleep", None, "work"]})
    columns = {"activity": 0, "start": 0}
    text = day_hashes(rows, columns, ["person_id", "day_id"])
    labels = rows.assign(activity=rows["activity"].astype("category"))
    pd.testing.assert_series_equal(day_hashes(labels, columns, ["person_id", "day_id"]), text)
    # categories alike as text (1 and '1') hash as their text, as before
    mixed = rows.assign(activity=pd.Categorical([1, "1", 1, "1", 2]))
    pd.testing.assert_series_equal(day_hashes(mixed, columns, ["person_id", "day_id"]),
                                   day_hashes(mixed.assign(activity=mixed["activity"].astype(object)), columns,
                                              ["person_id", "day_id"]))
    assert text.loc[(1, 1)] != text.loc[(2, 1)] and len(text) == 3
