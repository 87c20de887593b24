import fcntl
import json
import threading
from datetime import UTC
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from synth_assets.common.hashing import file_sha256
from synth_assets.publication import LinkedTable, describe_records, latest_release, publish_release, release_id
from synth_assets.publication import release as release_module


def _fictitious(m=2, n=5):
    return pd.concat(
        [pd.DataFrame({"age": range(n), "sex": ["f"] * n}).assign(replicate=r) for r in range(1, m + 1)],
        ignore_index=True,
    )


def _publish(public, reports, release="2024-a", data=None):
    return publish_release(
        data if data is not None else _fictitious(),
        public_dir=public, wave="2024", report_dir=reports, release=release,
        provenance={"register": {"wave": "2024", "sha256": "ab" * 32}},
        model={"family": "cart"},
        metrics={"kmarginal_3": 900.0},
        checks=[{"name": "dcr_share", "metric": "dcr_share", "value": 0.5, "threshold": 0.6, "passed": True}],
    )


def test_release_has_replicates_card_and_checksums(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report.html").write_text("<html></html>")
    (reports / "metrics.json").write_text("{}")
    target, card = _publish(tmp_path / "public", reports)
    names = sorted(p.name for p in target.iterdir())
    assert names == ["data_card.json", "data_card.md", "datapackage.json", "fictitious_population_r1.parquet",
                     "fictitious_population_r2.parquet", "metrics.json", "report.html"]
    first = pd.read_parquet(target / "fictitious_population_r1.parquet")
    assert "replicate" not in first.columns and len(first) == 5
    saved = json.loads((target / "data_card.json").read_text())
    assert saved["checksums"]["fictitious_population_r2.parquet"] == file_sha256(target / "fictitious_population_r2.parquet")
    assert saved["replicates"] == 2 and saved["provenance"]["register"]["wave"] == "2024"
    assert "none describes a real person" in (target / "data_card.md").read_text()
    assert latest_release(tmp_path / "public") == target


def test_existing_release_is_never_overwritten(tmp_path):
    public = tmp_path / "public"
    target, _ = _publish(public, tmp_path)
    before = file_sha256(target / "fictitious_population_r1.parquet")
    with pytest.raises(FileExistsError):
        _publish(public, tmp_path, data=_fictitious(n=9))
    assert file_sha256(target / "fictitious_population_r1.parquet") == before


def test_failed_write_leaves_previous_release_and_pointer(tmp_path):
    public = tmp_path / "public"
    first, _ = _publish(public, tmp_path, release="2023-a")
    broken = _fictitious().assign(age=[object()] * 10)  # cannot be written as Parquet
    with pytest.raises(pa.ArrowException):
        _publish(public, tmp_path, release="2024-b", data=broken)
    assert sorted(p.name for p in public.iterdir() if p.name != ".lock") == ["2023-a", "LATEST"]
    assert latest_release(public) == first


def test_release_names_started_in_the_same_second_differ():
    from datetime import datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert release_id("2024", now) != release_id("2024", now)
    assert release_id("2024", now, unique="abcd1234") == "2024-20260101T000000Z-abcd1234"


def _publish_unnamed(public, reports, data):
    return publish_release(
        data, public_dir=public, wave="2024", report_dir=reports,
        provenance={}, model={"family": "cart"}, metrics={}, checks=[],
    )


def test_concurrent_releases_on_one_root_each_publish_their_own_files(tmp_path):
    public, reports = tmp_path / "public", tmp_path / "reports"
    reports.mkdir()
    inputs = [_fictitious(n=7).assign(age=lambda d, k=k: d["age"] + 100 * k) for k in range(4)]
    start = threading.Barrier(len(inputs))
    outcomes: list = [None] * len(inputs)

    def publish(i):
        start.wait()  # all at once, in the same second: the old names collided here
        try:
            outcomes[i] = _publish_unnamed(public, reports, inputs[i])
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcomes[i] = error

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    names = [card.release for _, card in outcomes]
    assert len(set(names)) == len(inputs)
    for data, (target, card) in zip(inputs, outcomes):
        saved = json.loads((target / "data_card.json").read_text())
        assert saved["release"] == card.release == target.name
        for r in (1, 2):
            name = f"fictitious_population_r{r}.parquet"
            assert saved["checksums"][name] == file_sha256(target / name)
            own = data[data["replicate"] == r].drop(columns="replicate").reset_index(drop=True)
            pd.testing.assert_frame_equal(pd.read_parquet(target / name), own)
    assert latest_release(public).name in names
    assert sorted(p.name for p in public.iterdir() if not p.name.startswith(".")) == sorted([*names, "LATEST"])


def test_release_is_written_and_promoted_under_the_public_lock(tmp_path, monkeypatch):
    public = tmp_path / "public"
    probes = []
    original = release_module.file_sha256

    def probing_sha256(path):
        # Another process trying the lock while the release is being written must be refused.
        with open(public / ".lock", "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(other, fcntl.LOCK_UN)
                probes.append("free")
            except BlockingIOError:
                probes.append("held")
        return original(path)

    monkeypatch.setattr(release_module, "file_sha256", probing_sha256)
    _publish(public, tmp_path)
    assert probes and set(probes) == {"held"}


def test_report_that_changed_since_it_was_written_is_not_published(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report.html").write_text("<html>judged</html>")
    recorded = file_sha256(reports / "report.html")
    (reports / "report.html").write_text("<html>swapped</html>")
    with pytest.raises(ValueError, match="differs from"):
        publish_release(
            _fictitious(), public_dir=tmp_path / "public", wave="2024", report_dir=reports, provenance={},
            model={}, metrics={}, checks=[], report_checksums={"report.html": recorded},
        )
    assert latest_release(tmp_path / "public") is None
    assert [p.name for p in (tmp_path / "public").iterdir()] == [".lock"]


def test_public_card_keeps_only_wave_and_sha256_of_each_source(tmp_path):
    target, card = publish_release(
        _fictitious(m=2, n=5).iloc[:-1],  # replicate 2 one person short: counts are exact
        public_dir=tmp_path / "public", wave="2024", report_dir=tmp_path, release="2024-b",
        provenance={"register": {"wave": "2024", "sha256": "ab" * 32, "file": "/secret/register.parquet",
                                 "ingest_run": "0123-run"}},
        model={"family": "cart"}, metrics={}, checks=[],
    )
    text = (target / "data_card.md").read_text() + (target / "data_card.json").read_text()
    assert "/secret" not in text and "0123-run" not in text and "ab" * 32 in text
    assert card.persons_per_replicate == {"r1": 5, "r2": 4}
    assert "r1 5 persons, r2 4 persons" in (target / "data_card.md").read_text()


def test_columns_carry_meaning_from_the_catalog_and_the_descriptor_is_a_valid_data_package(tmp_path):
    frictionless = pytest.importorskip("frictionless")
    from synth_assets.catalog import load_catalog
    from synth_assets.publication import describe_columns

    catalog = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml")
    frame = pd.DataFrame({
        "household_id": pd.array([1, 1, 2], dtype="Int64"), "age": pd.array([40, 12, 70], dtype="Int64"),
        "sex": pd.Categorical(["female", "male", "female"]), "labour_income": [30000.0, 0.0, 0.0],
        "hours_worked": [38.0, -8.0, -8.0], "spend_food": [400.0, 400.0, 250.0],
    })
    frame.insert(0, "person_id", pd.array([1, 2, 3], dtype="Int64"))
    columns = describe_columns(frame, catalog)
    assert columns["sex"].categories == ["female", "male"]
    assert columns["labour_income"].unit == "EUR per year"
    assert columns["hours_worked"].source == "lfs" and columns["hours_worked"].not_applicable == -8
    assert "not linked to any real household" in columns["household_id"].description
    # trips linked to the persons of each replicate (person 3 stayed home: a day without trips)
    trips = pd.DataFrame({"person_id": pd.array([1, 1, 3], dtype="Int64"), "household_id": pd.array([1, 1, 2], dtype="Int64"),
                          "day_id": [1, 1, 1], "record_id": [1, 2, 0], "main_mode": ["car_driver", "walking", None],
                          "distance": [12.5, 0.8, None], "departure": pd.array([480, 1050, None], dtype="Int64")})
    trip_columns = describe_records(trips, catalog, "mobility")
    assert trip_columns["distance"].unit == "km" and "0: a day without any trip" in trip_columns["record_id"].description
    linked = LinkedTable(pd.concat([trips.assign(replicate=1), trips.head(2).assign(replicate=2)]), "trip",
                         ["person_id", "household_id"], trip_columns)
    target, _ = publish_release(
        pd.concat([frame.assign(replicate=1), frame.assign(replicate=2)]),
        public_dir=tmp_path / "public", wave="2024", report_dir=tmp_path, release="2024-c",
        provenance={}, model={"family": "cart"}, metrics={}, checks=[], columns=columns,
        licence=catalog.release.licence.model_dump(), linked={"mobility_trips": linked},
    )
    markdown = (target / "data_card.md").read_text()
    assert "`labour_income` (number):" in markdown and "unit: EUR per year" in markdown
    assert "categories: female, male" in markdown and "from survey `lfs`" in markdown
    descriptor = json.loads((target / "datapackage.json").read_text())
    package = frictionless.Package.from_descriptor(descriptor)  # raises on an invalid descriptor
    assert [r.path for r in package.resources] == ["fictitious_population_r1.parquet", "fictitious_population_r2.parquet",
                                                   "mobility_trips_r1.parquet", "mobility_trips_r2.parquet"]
    trips_r2 = package.get_resource("mobility_trips_r2")
    assert trips_r2.schema.foreign_keys == [{"fields": ["person_id", "household_id"], "reference": {
        "resource": "fictitious_population_r2", "fields": ["person_id", "household_id"]}}]
    assert trips_r2.schema.get_field("distance").custom.get("unit") == "km"
    assert pd.read_parquet(target / "mobility_trips_r2.parquet").shape[0] == trips_r2.rows == 2
    assert "## Linked table `mobility_trips`" in markdown and "r1 3 rows, r2 2 rows" in markdown
    assert "`main_mode` (string):" in markdown.split("## Linked table")[1]
    resource = descriptor["resources"][0]
    assert resource["hash"] == "sha256:" + file_sha256(target / "fictitious_population_r1.parquet")
    assert resource["rows"] == 3
    sex = next(f for f in resource["schema"]["fields"] if f["name"] == "sex")
    assert sex["constraints"]["enum"] == ["female", "male"]
    assert descriptor["licenses"][0]["name"] == "CC-BY-4.0"


def test_an_invalid_descriptor_is_refused_by_frictionless():
    # guards the test above: the library does reject a broken descriptor
    frictionless = pytest.importorskip("frictionless")
    with pytest.raises(frictionless.FrictionlessException):
        frictionless.Package.from_descriptor({"name": "x", "resources": [{"name": "r", "path": 3}]})


def test_a_linked_table_left_on_disk_is_published_as_the_frame_would_be(tmp_path):
    from synth_assets.common.frames import ParquetTable, write_rows
    from synth_assets.publication import ColumnInfo

    trips = pd.DataFrame({"person_id": [1, 1, 3, 4, 4, 5] * 10, "day_id": 1, "record_id": [1, 2, 0, 1, 2, 1] * 10,
                          "main_mode": ["car", "walk", None, "bus", "car", None] * 10,
                          "distance": [12.5, 0.8, None, 3.0, 1.0, 2.0] * 10,
                          "replicate": [1, 2, 1, 2, 2, 1] * 10})
    write_rows(trips, tmp_path / "trips.parquet", row_group_rows=7)  # parts of each replicate in many groups
    columns = {c: ColumnInfo(c, "string") for c in trips.columns if c != "replicate"}
    written = {}
    for name, data in (("frame", trips), ("disk", ParquetTable(tmp_path / "trips.parquet"))):
        target, card = publish_release(
            _fictitious(), public_dir=tmp_path / name, wave="2024", report_dir=tmp_path, release="2024-x",
            provenance={}, model={}, metrics={}, checks=[],
            linked={"mobility_trips": LinkedTable(data, "trip", ["person_id"], columns)})
        written[name] = {r: pd.read_parquet(target / f"mobility_trips_r{r}.parquet") for r in (1, 2)}
        assert card.linked["mobility_trips"]["rows_per_replicate"] == {"r1": 30, "r2": 30}
    for r in (1, 2):
        expected = trips[trips["replicate"] == r].drop(columns=["replicate"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(written["disk"][r], expected)
        pd.testing.assert_frame_equal(written["frame"][r], expected)


def test_the_persons_and_a_linked_table_are_written_at_once_and_hashed_as_written(tmp_path, monkeypatch):
    """Two cores: the persons' files and a linked table's are written side by side (each waits at a
    barrier for the other: one after the other, the first would time out), and the card's checksums,
    sizes and rows are those of the files written."""
    from synth_assets.publication import ColumnInfo

    monkeypatch.setattr(release_module, "available_cores", lambda: 2)
    barrier, write = threading.Barrier(2, timeout=20), release_module._write_table

    def together(*args, **kwargs):
        barrier.wait()
        return write(*args, **kwargs)

    monkeypatch.setattr(release_module, "_write_table", together)
    trips = pd.DataFrame({"person_id": [0, 1, 2, 0], "distance": [1.0, 2.0, 3.0, 4.0], "replicate": [1, 1, 2, 2]})
    target, card = publish_release(
        _fictitious(), public_dir=tmp_path / "public", wave="2024", report_dir=tmp_path, release="2024-x",
        provenance={}, model={}, metrics={}, checks=[],
        linked={"mobility_trips": LinkedTable(trips, "trip", ["person_id"],
                                              {c: ColumnInfo(c, "number") for c in ("person_id", "distance")})})
    package = json.loads((target / "datapackage.json").read_text())
    described = {resource["path"]: resource for resource in package["resources"]}
    for name in ("fictitious_population_r1.parquet", "fictitious_population_r2.parquet",
                 "mobility_trips_r1.parquet", "mobility_trips_r2.parquet"):
        assert card.checksums[name] == file_sha256(target / name)
        assert described[name]["bytes"] == (target / name).stat().st_size
    assert card.persons_per_replicate == {"r1": 5, "r2": 5}
    assert card.linked["mobility_trips"]["rows_per_replicate"] == {"r1": 2, "r2": 2}


def test_the_cards_model_lists_each_set_of_rules_once(tmp_path):
    """Households' and members' models carry the catalog's rules alike: the card lists them once."""
    rules = ["age >= 0 and age <= 110", "not (age < 16 and labour_income > 0)"]
    card = release_module.DataCard(
        release="2024-a", wave="2024", created_utc="2024-01-01T00:00:00Z", persons_per_replicate={"r1": 5},
        replicates=1, columns={},
        model={"family": "neural", "parameters": {"seed": 0, "household_params": {"epochs": 300, "rules": rules},
                                                  "person_params": {"epochs": 300, "rules": list(rules)}}},
    )
    text = card.to_markdown()
    assert text.count("`not (age < 16 and labour_income > 0)`") == 1
    assert "- rules: the 2 rules of `parameters.household_params.rules`" in text
    assert "    - epochs: 300" in text and "  - seed: 0" in text
