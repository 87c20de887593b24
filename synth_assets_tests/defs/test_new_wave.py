"""A new wave dropped into data/incoming leads, with no other action, to a new release.

The daemon is simulated tick by tick: the sensor requests ingest runs, then declarative
automation requests the release assets; each requested set is executed as the daemon would.
"""

from functools import cache
from unittest import mock

import dagster as dg
import pandas as pd
import pytest

from synth_assets.catalog import load_catalog
from synth_assets.common.layout import DataLayout
from synth_assets.defs.definitions import build_definitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.operations.runner import execute
from synth_assets.publication import latest_release
from synth_assets_tests.defs.conftest import FAST_RELEASE, Prepared, deliver_2025

pytestmark = pytest.mark.slow


def _evaluate(defs, instance, cursor=None):
    """One evaluation of the automation conditions, reading each wave list once, as the daemon does.

    The daemon serialises its new cursor with the tick's caching instance queryer;
    ``evaluate_automation_conditions`` hands it the instance itself, which reads a partitions
    definition's waves from SQLite again for every node of every condition (profiled on the
    prepared release: about 4,100 queries, 95% of an evaluation). No partition is added during
    one evaluation, so reading each list once changes no result.
    """
    with mock.patch.object(instance, "get_dynamic_partitions", cache(instance.get_dynamic_partitions)):
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)


def _daemon_tick(defs, instance, cursor):
    result = _evaluate(defs, instance, cursor)
    requested = {}
    for result_ in result.results:
        for partition in result.get_requested_partitions(result_.key) if result_.true_subset.size else []:
            requested.setdefault(partition, set()).add(result_.key)
    for partition, keys in requested.items():
        job = defs.resolve_implicit_global_asset_job_def()
        outcome = job.execute_in_process(instance=instance, partition_key=partition, asset_selection=list(keys),
                                         run_config={"ops": {k: v for k, v in FAST_RELEASE["ops"].items()
                                                             if dg.AssetKey(k) in keys}},
                                         raise_on_error=False)
        assert outcome.success, [e.message for e in outcome.all_events if e.is_step_failure]
    return result.cursor, {p: {k.to_user_string() for k in ks} for p, ks in requested.items()}


def test_new_wave_file_leads_to_a_new_release(release_copy: Prepared, wave_2025):
    """From the prepared 2024 release (waves 2022-2024 ingested); the 2025 files arrive."""
    root = release_copy.root
    layout = DataLayout(root)
    defs = build_definitions(root)
    sensor = defs.resolve_sensor_def("incoming_waves_sensor")

    def sense(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                          resources={"project": ProjectResource(data_root=str(root))})
        return sensor(context)

    with release_copy.instance() as instance:
        first_release = latest_release(layout.public)
        assert first_release is not None and first_release.name.startswith("2024-")
        sensor_cursor = sense(None).cursor
        automation_cursor, _ = _daemon_tick(defs, instance, None)

        deliver_2025(wave_2025, root / "incoming")  # the delivery arrives
        sensed = sense(sensor_cursor)
        assert {(r.job_name, r.partition_key) for r in sensed.run_requests} == {
            ("ingest_register", "2025"), ("ingest_silc", "2025"), ("ingest_lfs", "2025")}
        for request in sensed.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for request in sensed.run_requests:
            assert execute(defs, request.job_name, request.partition_key, instance).success

        seen: dict[str, set[str]] = {}
        for _ in range(6):  # the chain advances as blocking checks pass (linked tables: one layer more)
            automation_cursor, requested = _daemon_tick(defs, instance, automation_cursor)
            for partition, keys in requested.items():
                seen.setdefault(partition, set()).update(keys)
            if "public_dataset" in seen.get("2025", set()):
                break
    assert set(seen) == {"2025"}  # older releases are left alone
    assert {"donor_hbs", "matched_dataset", "population_model", "validation_report", "public_dataset"} <= seen["2025"]
    release = latest_release(layout.public)
    assert release.name.startswith("2025-")
    assert (first_release / "data_card.md").exists()  # the previous release is still there
    card = pd.read_json(release / "data_card.json", typ="series")
    assert card["provenance"]["hbs"]["wave"] == "2024"  # latest budget survey at or before 2025
    assert card["provenance"]["hfcs"]["wave"] == "2023"


def test_schema_drift_is_refused_with_a_message_naming_the_change(data_root):
    layout = DataLayout(data_root)
    catalog = load_catalog(layout.catalog)
    source = catalog.sources["register"]
    path = sorted((layout.incoming / "register").glob("*"))[-1]
    wave = source.wave_pattern().match(path.relative_to(layout.incoming).as_posix()).group("wave")
    register = pd.read_parquet(path)
    defs = build_definitions(data_root)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("register_waves", [wave])
        register.rename(columns={"CITIZEN": "CITIZENSHIP"}).to_parquet(path)
        renamed = execute(defs, "ingest_register", wave, instance)
        register.assign(SEX=register["SEX"].where(register.index > 2, 9)).to_parquet(path)
        new_code = execute(defs, "ingest_register", wave, instance)
    assert not renamed.success
    assert any("'CITIZEN' (for citizenship)" in f and "CITIZENSHIP" in f for f in renamed.failures)
    assert not new_code.success
    assert any("column 'SEX'" in f and "'9' (3 rows)" in f for f in new_code.failures)


def _requested(result) -> dict[str, set[str]]:
    requested: dict[str, set[str]] = {}
    for result_ in result.results:
        for partition in result.get_requested_partitions(result_.key) if result_.true_subset.size else []:
            requested.setdefault(partition, set()).add(result_.key.to_user_string())
    return requested


def test_donors_follow_a_wave_added_before_the_automations_first_tick(ingested_copy, wave_2025):
    """The daemon's race: the incoming sensor adds wave 2025 before the automation sensor's first
    evaluation (which counts every partition as handled). The donors must still follow the
    register's ingest, or the release stalls after ``calibration_targets``."""
    defs = build_definitions(ingested_copy.root)
    deliver_2025(wave_2025, ingested_copy.root / "incoming", ("register",))
    with ingested_copy.instance() as instance:
        instance.add_dynamic_partitions("register_waves", ["2025"])  # the incoming sensor's first tick
        first = _evaluate(defs, instance)
        assert _requested(first) == {}
        assert execute(defs, "ingest_register", "2025", instance).success
        second = _evaluate(defs, instance, first.cursor)
    requested = _requested(second)
    assert set(requested) == {"2025"}  # older waves' releases are left alone
    survey_donors = {f"donor_{s}" for s in load_catalog(DataLayout(ingested_copy.root).catalog).surveys}
    assert survey_donors | {"calibration_targets", "matched_dataset"} <= requested["2025"]
