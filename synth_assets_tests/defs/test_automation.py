import datetime
import os
import time

import dagster as dg
import pandas as pd
import pytest

from synth_assets.catalog import load_catalog
from synth_assets.dagster_api import latest_materialization, latest_observation
from synth_assets.defs import keys
from synth_assets.defs.definitions import build_definitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.ingest import discover_waves


def _evaluate(defs, instance, data_root, cursor=None):
    sensor = defs.resolve_sensor_def("incoming_waves_sensor")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"project": ProjectResource(data_root=str(data_root))},
        definitions=defs,
    )
    return sensor(context)


def _tick(defs, instance, data_root, cursor=None, launched=None):
    """One tick as the daemon runs it: partitions added, observations stored, run keys already used dropped."""
    result = _evaluate(defs, instance, data_root, cursor)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    launched = set() if launched is None else launched
    fresh = [r for r in result.run_requests if r.run_key not in launched]
    launched.update(r.run_key for r in fresh)
    return result, fresh


def test_sensor_requests_ingest_for_new_and_changed_files(data_root):
    catalog = load_catalog(data_root / "catalog.yaml")
    defs = build_definitions(data_root)
    files = {(n, w) for n, s in catalog.sources.items() for w in discover_waves(data_root / "incoming", s)}
    launched: set[str] = set()
    with dg.DagsterInstance.ephemeral() as instance:
        first, requests = _tick(defs, instance, data_root, launched=launched)
        requested = {(r.job_name.removeprefix("ingest_"), r.partition_key) for r in requests}
        assert requested == files
        added = {(req.partitions_def_name, tuple(req.partition_keys)) for req in first.dynamic_partitions_requests}
        assert all(name.endswith("_waves") for name, _ in added)
        # Every file observed, its data version the sha256.
        assert {(e.asset_key.to_user_string().removeprefix("incoming_"), e.partition) for e in first.asset_events} \
            == files

        again, requests = _tick(defs, instance, data_root, cursor=first.cursor, launched=launched)
        assert requests == [] and list(again.asset_events) == []  # nothing new, nothing observed again

        survey = next(iter(catalog.surveys))
        changed = sorted((data_root / "incoming" / survey).glob("*"))[0]
        changed.write_bytes(changed.read_bytes() + b"\n")
        third, requests = _tick(defs, instance, data_root, cursor=first.cursor, launched=launched)
        assert [(r.job_name, r.partition_key) for r in requests] == [
            (f"ingest_{survey}", catalog.sources[survey].wave_pattern().match(
                changed.relative_to(data_root / "incoming").as_posix()).group("wave"))
        ]
        assert [e.asset_key for e in third.asset_events] == [keys.incoming(survey)]


def test_unchanged_files_are_neither_rehashed_nor_reingested(data_root, monkeypatch):
    """Hashing only on a new size/mtime; an ingest request only when the content differs from what raw read."""
    from synth_assets.defs import deliveries
    from synth_assets.operations.runner import execute

    defs = build_definitions(data_root)
    hashed: list[str] = []
    real_sha256 = deliveries.file_sha256
    monkeypatch.setattr(deliveries, "file_sha256", lambda path: hashed.append(path.name) or real_sha256(path))
    path = sorted((data_root / "incoming" / "register").glob("*.parquet"))[-1]
    wave = path.stem.rsplit("_", 1)[-1]
    with dg.instance_for_test() as instance:
        first, _ = _tick(defs, instance, data_root)
        assert path.name in hashed
        assert execute(defs, "ingest_register", wave, instance).success
        raw = latest_materialization(instance, keys.raw("register"), wave)
        assert raw is not None and raw.data_version == raw.metadata["sha256"]

        hashed.clear()
        again, requests = _tick(defs, instance, data_root, cursor=first.cursor)
        assert hashed == []  # nothing changed on disk: nothing hashed
        assert ("ingest_register", wave) not in {(r.job_name, r.partition_key) for r in requests}

        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: hashed again, same content
        touched, requests = _tick(defs, instance, data_root, cursor=again.cursor)
        assert hashed == [path.name]
        assert ("ingest_register", wave) not in {(r.job_name, r.partition_key) for r in requests}

        frame = pd.read_parquet(path)
        frame.iloc[:-1].to_parquet(path)  # new content: one record fewer
        _changed, requests = _tick(defs, instance, data_root, cursor=touched.cursor)
        assert ("ingest_register", wave) in {(r.job_name, r.partition_key) for r in requests}
        # The UI's staleness: raw_register was built from another data version than the one observed.
        observed = latest_observation(instance, keys.incoming("register"), wave)
        assert observed is not None and observed.data_version != raw.data_version


def test_automation_requests_no_ingest_asset_when_a_raw_wave_is_made(data_root):
    """A wave's raw and harmonised tables are the ingest run's alone: the automation sensor requesting the
    harmonised table too once its raw one is written would run a second writer of the wave beside the
    ingest run (it did, in the daemon test, when a tick fell on the ingest's harmonise step)."""
    defs = build_definitions(data_root)
    wave = "2024"
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("register_waves", [wave])
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor  # every partition handled
        job = defs.resolve_implicit_global_asset_job_def()
        assert job.execute_in_process(instance=instance, partition_key=wave,
                                      asset_selection=[keys.raw("register")]).success
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    requested = {r.key.to_user_string() for r in result.results if r.true_subset.size}
    assert not {k for k in requested if k.startswith(("raw_", "harmonised_"))}, requested


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
        launched: set[str] = set()
        first, _ = _tick(defs, instance, data_root, launched=launched)
        waves = {key for req in first.dynamic_partitions_requests for key in req.partition_keys}
        assert "-2025" not in waves and all(w[:4].isdigit() for w in waves)
        assert all(r.partition_key != "-2025" for r in first.run_requests)
        logged = capsys.readouterr().err  # the sensor's log (Dagster writes it to stderr)
        assert f"ignored incoming file {bad}" in logged and "does not match register/register_{wave}" in logged
        _again, requests = _tick(defs, instance, data_root, cursor=first.cursor, launched=launched)
        assert "ignored incoming file" not in capsys.readouterr().err  # reported once, not at every tick
        assert requests == []


def test_headless_run_reports_misnamed_files(tmp_path):
    import shutil
    from pathlib import Path

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


@pytest.mark.slow  # seven in-process ingest runs, each file once
def test_headless_run_ingests_only_new_or_changed_waves(release_inputs_root, monkeypatch):
    """`synth-assets run` twice: the second ingests nothing; a file whose content changed is ingested again."""
    data_root = release_inputs_root
    from synth_assets.common.layout import DataLayout
    from synth_assets.operations import runner

    real_execute = runner.execute
    launched: list[tuple[str, str]] = []

    def execute(defs, job, partition, instance, run_config=None, *args, **kwargs):
        launched.append((job, partition))
        if job == runner.RELEASE_JOB:  # the release is not what this test is about
            return runner.RunSummary(job, partition, True, "no-run")
        return real_execute(defs, job, partition, instance, run_config, *args, **kwargs)

    monkeypatch.setattr(runner, "execute", execute)
    layout = DataLayout(data_root)
    catalog = load_catalog(layout.catalog)
    defs = build_definitions(data_root)
    with dg.instance_for_test() as instance:
        runner.run_pipeline(defs, catalog, layout, instance, echo=lambda _: None)
        first = [r for r in launched if r[0] != runner.RELEASE_JOB]
        assert len(first) == sum(len(discover_waves(layout.incoming, s)) for s in catalog.sources.values())
        launched.clear()
        lines: list[str] = []
        runner.run_pipeline(defs, catalog, layout, instance, echo=lines.append)
        assert [r for r in launched if r[0] != runner.RELEASE_JOB] == []
        assert any(line.startswith("[unchanged] ingest register") for line in lines), lines

        path = sorted((layout.incoming / "register").glob("*.parquet"))[-1]
        pd.read_parquet(path).iloc[:-1].to_parquet(path)
        launched.clear()
        runner.run_pipeline(defs, catalog, layout, instance, echo=lambda _: None)
        assert [r for r in launched if r[0] != runner.RELEASE_JOB] == [
            ("ingest_register", path.stem.rsplit("_", 1)[-1])]
