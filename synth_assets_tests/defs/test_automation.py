import datetime

import dagster as dg

from synth_assets.catalog import load_catalog
from synth_assets.defs.definitions import build_definitions
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
    when = datetime.datetime(2025, 3, 1, 3, tzinfo=datetime.UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def())
        assert isinstance(schedule.evaluate_tick(context).skip_message, str)
        instance.add_dynamic_partitions("register_waves", ["2022", "2024", "2023"])
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()))
        assert [r.partition_key for r in result.run_requests] == ["2024"]


def test_sensor_reports_misnamed_files_and_does_not_make_them_waves(data_root, capsys):
    import shutil

    defs = build_definitions(data_root)
    register = sorted((data_root / "incoming" / "register").glob("*.parquet"))[0]
    bad = register.with_name("register_-2025.parquet")
    shutil.copy(register, bad)
    with dg.DagsterInstance.ephemeral() as instance:
        capsys.readouterr()
        first = _evaluate(defs, instance, data_root)
        waves = {key for req in first.dynamic_partitions_requests for key in req.partition_keys}
        assert "-2025" not in waves and all(w[:4].isdigit() for w in waves)
        assert all(r.partition_key != "-2025" for r in first.run_requests)
        logged = capsys.readouterr().err  # the sensor's log (Dagster writes it to stderr)
        assert f"ignored incoming file {bad}" in logged and "does not match register/register_{wave}" in logged
        again = _evaluate(defs, instance, data_root, cursor=first.cursor)
        assert "ignored incoming file" not in capsys.readouterr().err  # reported once, not at every tick
        assert again.run_requests == []


def test_headless_run_reports_misnamed_files(tmp_path):
    import shutil
    from pathlib import Path

    import pytest

    from synth_assets.common.layout import DataLayout
    from synth_assets.operations.runner import run_pipeline

    root = tmp_path / "data"
    (root / "incoming" / "register").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml", root / "catalog.yaml")
    (root / "incoming" / "register" / "register_-2025.parquet").write_bytes(b"x")
    layout = DataLayout(root)
    lines: list[str] = []
    with dg.instance_for_test() as instance, pytest.raises(FileNotFoundError, match="no register file"):
        run_pipeline(build_definitions(root), load_catalog(layout.catalog), layout, instance, echo=lines.append)
        assert not instance.has_dynamic_partition("register_waves", "-2025")
    assert any(line.startswith("[IGNORED]") and "register_-2025.parquet" in line for line in lines), lines
