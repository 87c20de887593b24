import datetime

import dagster as dg

from synth_assets.catalog import load_catalog
from synth_assets.defs.build import build_definitions
from synth_assets.defs.resources import ProjectResource


def _evaluate(defs, instance, data_root, cursor=None):
    sensor = defs.resolve_sensor_def("incoming_waves_sensor")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"project": ProjectResource(data_root=str(data_root))},
        definitions=defs,
    )
    return sensor(context)


def test_sensor_requests_ingest_for_new_and_changed_files(data_root):
    catalog = load_catalog(data_root / "catalog.yaml")
    defs = build_definitions(data_root)
    files = {(n, w) for n, s in catalog.sources.items()
             for w in __import__("synth_assets.ingest", fromlist=["x"]).discover_waves(data_root / "incoming", s)}
    with dg.DagsterInstance.ephemeral() as instance:
        first = _evaluate(defs, instance, data_root)
        requested = {(r.job_name.removeprefix("ingest_"), r.partition_key) for r in first.run_requests}
        assert requested == files
        added = {(req.partitions_def_name, tuple(req.partition_keys)) for req in first.dynamic_partitions_requests}
        assert all(name.endswith("_waves") for name, _ in added)

        again = _evaluate(defs, instance, data_root, cursor=first.cursor)
        assert again.run_requests == []  # nothing new

        survey = next(iter(catalog.surveys))
        changed = sorted((data_root / "incoming" / survey).glob("*"))[0]
        changed.write_bytes(changed.read_bytes() + b"\n")
        third = _evaluate(defs, instance, data_root, cursor=first.cursor)
        assert [(r.job_name, r.partition_key) for r in third.run_requests] == [
            (f"ingest_{survey}", catalog.sources[survey].wave_pattern().match(
                changed.relative_to(data_root / "incoming").as_posix()).group("wave"))
        ]


def test_schedule_targets_latest_register_wave(data_root):
    defs = build_definitions(data_root)
    schedule = defs.resolve_schedule_def("monthly_release_refresh")
    when = datetime.datetime(2025, 3, 1, 3, tzinfo=datetime.timezone.utc)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def())
        assert isinstance(schedule.evaluate_tick(context).skip_message, str)
        instance.add_dynamic_partitions("register_waves", ["2022", "2024", "2023"])
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()))
        assert [r.partition_key for r in result.run_requests] == ["2024"]
