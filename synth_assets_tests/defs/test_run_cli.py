"""``synth-assets run`` through its entry point: a failed step means a non-zero exit, with the reason first."""

from __future__ import annotations

import os
import sys

import dagster as dg
import pandas as pd
import pytest

from synth_assets.operations.runner import step_failure_message
from synth_assets_tests.defs.conftest import FAST_RUN_OPTIONS


def _error_chain():
    from dagster._utils.error import serializable_error_info_from_exc_info

    from synth_assets.ingest import IngestError

    try:
        try:
            try:
                float("not a number")
            except ValueError as inner:
                raise IngestError("silc_2022.csv: column 'pweight': bad value 'x' in row 3") from inner
        except IngestError as exc:
            raise RuntimeError("Error occurred while executing op raw_silc") from exc
    except RuntimeError:
        return serializable_error_info_from_exc_info(sys.exc_info())


def test_step_failure_puts_the_projects_message_first():
    message = step_failure_message(_error_chain())
    first, _, rest = message.partition("\n")
    assert first == "synth_assets.ingest.readers.IngestError: silc_2022.csv: column 'pweight': bad value 'x' in row 3"
    assert "caused by: ValueError: could not convert string to float" in rest


@pytest.mark.slow
def test_run_exits_non_zero_when_an_ingest_failed_even_with_a_release(ingested_copy, monkeypatch, capsys):
    """Waves already ingested (a copy of the prepared state); one file then replaced by a broken one."""
    from synth_assets.cli import main

    data_root = ingested_copy.root
    monkeypatch.setenv("DAGSTER_HOME", str(ingested_copy.home))
    broken = data_root / "incoming" / "silc" / "silc_2022.csv"
    options = {"sep": ";", "decimal": ",", "encoding": "latin-1"}
    frame = pd.read_csv(broken, dtype=str, keep_default_na=False, **options)
    frame.loc[2, "pweight"] = "inf"
    frame.to_csv(broken, index=False, **options)

    code = main(["run", "--data", str(data_root), *FAST_RUN_OPTIONS])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "[FAILED] ingest silc wave 2022" in out
    reason = out.split("[FAILED] ingest silc wave 2022", 1)[1].splitlines()[1].strip()
    assert reason.startswith("step raw_silc failed: synth_assets.ingest.readers.IngestError: "), reason
    assert str(broken) in reason and "column 'pweight'" in reason and "inf in 1 row(s), first rows 3" in reason
    # The other waves went on to a release; the run still failed, and says so at the end.
    assert "Public fictitious dataset:" in out
    assert "1 run(s) failed:" in out.split("Public fictitious dataset:")[0]


def _step_spans(instance: dg.DagsterInstance, run: dg.DagsterRun, working_set: str) -> dict[str, tuple[float, float]]:
    """(start, end) of each step of ``run`` tagged with ``working_set`` (``defs/working_sets.py``), from its events."""
    from synth_assets.defs.working_sets import WORKING_SET

    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    tagged = {step.key.split("[")[0] for step in plan.steps if step.tags.get(WORKING_SET) == working_set}
    spans: dict[str, list[float]] = {}
    for event in instance.all_logs(run.run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                                                        dg.DagsterEventType.STEP_FAILURE}):
        if event.step_key and event.step_key.split("[")[0] in tagged:
            spans.setdefault(event.step_key, []).append(event.timestamp)
    return {key: (min(times), max(times)) for key, times in spans.items()}


def _overlapping(spans: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    ordered = sorted(spans.items(), key=lambda item: item[1])
    return [(a, b) for i, (a, (_, end)) in enumerate(ordered) for b, (start, _) in ordered[i + 1:] if start < end]


@pytest.mark.slow
def test_run_prints_one_line_per_stage_and_builds_data_docs(ingested_copy, monkeypatch, capfd):
    """Progress for people (no raw Dagster log without --verbose); GE Data Docs for every run.

    With ``--step-processes``: every step in a process of its own (the real multiprocess
    executor), whose progress lines reach the same output (read from the file descriptors).

    ``validation.max_rows=2000``, under the tiny demo's 3,000 persons: the one Dagster run of the
    suite whose sampling errors come from real subsamples (``FAST_RELEASE`` skips them).
    From the ingested copy with only the 2024 release's files and its register delivered again
    (the same rows, other bytes): one ingest run instead of seven. The Data Docs are removed
    first, so every suite and page checked below is this run's."""
    import re
    import shutil

    from synth_assets.cli import main
    from synth_assets_tests.defs.conftest import drop_older_waves

    data_root = ingested_copy.root
    drop_older_waves(data_root)
    register = data_root / "incoming" / "register" / "register_2024.parquet"
    pd.read_parquet(register).to_parquet(register, index=False, compression="gzip")  # a new sha256
    silc = data_root / "incoming" / "silc" / "silc_2024.csv"
    silc.write_bytes(silc.read_bytes() + b"\n")  # a survey's too (a blank line pandas skips): a second lane
    mobility = data_root / "incoming" / "mobility" / "mobility_2024.csv"
    mobility.write_bytes(mobility.read_bytes() + b"\n")  # and another's: shared by the lanes
    shutil.rmtree(data_root / "reports" / "data_docs")
    monkeypatch.setenv("DAGSTER_HOME", str(ingested_copy.home))
    ingested_copy.use_repo_instance_settings()  # as `make run`: the step processes log at INFO, not DEBUG
    from synth_assets.operations import sizing

    # no flag: step processes chosen from the register's size (its largest wave: 3,000 persons)
    monkeypatch.setattr(sizing, "STEP_PROCESSES_FROM_PERSONS", 2_000)
    code = main(["run", "--data", str(data_root), "--set", "model.family=cart", "--set", "fictitious.replicates=2",
                 "--set", "validation.max_rows=2000"])
    captured = capfd.readouterr()
    out = captured.out + captured.err
    assert code == 0, out
    assert "A register of 3,000 persons: each release step in a process of its own" in out
    with ingested_copy.instance() as instance:
        release_run = instance.get_runs(dg.RunsFilter(job_name="release"), limit=1)[0]
        pids = {e.step_key: e.dagster_event.pid
                for e in instance.all_logs(release_run.run_id, of_type=dg.DagsterEventType.STEP_START)
                if e.dagster_event is not None}
    assert {"population_model", "fictitious_dataset.fictitious_region[all]", "public_dataset"} <= set(pids)
    assert os.getpid() not in pids.values() and len(set(pids.values())) == len(pids)  # a process per step
    # the executor's limits: population-sized steps one at a time, a streamed step beside a
    # population one (a linked table beside the other's aggregates check) or beside another
    with ingested_copy.instance() as instance:
        population, streamed = (_step_spans(instance, release_run, tier) for tier in ("population", "streamed"))
    assert {"population_model", "matched_dataset", "validation_report"} <= set(population)
    assert {"linked_tus", "linked_tus_no_real_day_copied", "public_dataset"} <= set(streamed)
    assert not _overlapping(population), _overlapping(population)
    assert _overlapping({**population, **streamed}), "no streamed step ran beside a population-sized one"
    # streamed steps side by side (a linked table's checks, ready together once it is made)
    assert _overlapping(streamed), streamed
    with ingested_copy.instance() as instance:  # an ingest run's few small steps share one process
        ingest_pids = {}
        for job in ("ingest_register", "ingest_silc", "ingest_mobility"):
            ingest_run = instance.get_runs(dg.RunsFilter(job_name=job), limit=1)[0]
            ingest_pids[job] = {e.dagster_event.pid for e in instance.all_logs(ingest_run.run_id,
                                                                              of_type=dg.DagsterEventType.STEP_START)
                                if e.dagster_event is not None}
    assert all(len(found) == 1 for found in ingest_pids.values())
    # the register's lane and the surveys' are processes of their own, side by side, not the run's
    register_pid, survey_pid = ingest_pids["ingest_register"], ingest_pids["ingest_silc"]
    assert register_pid != survey_pid and not (register_pid | survey_pid) & {os.getpid(), *pids.values()}
    assert ingest_pids["ingest_mobility"] <= register_pid | survey_pid  # made by whichever lane was free first
    stamped = r"\[ *\d+:\d\d\] "
    for line in ("\\[ok\\] ingest register wave 2024", "\\[ok\\] ingest silc wave 2024",
                 "\\[ok\\] ingest mobility wave 2024", "done matched_dataset \\(",
                 # each step's own peak (its process's high-water mark), from the step's hook in its process
                 "done population_model \\([\\d.]+ s, peak [\\d.]+ GB, CPU [\\d.]+ s\\)",
                 # the region step (one, all, without release.regions) draws and chooses, then the join
                 "  fictitious_dataset.fictitious_region\\[all\\]: replicate 1 of 2: .* calibrated",
                 "  fictitious_dataset.fictitious_region\\[all\\]: replicate 2 of 2: .* calibrated",
                 "done fictitious_dataset.fictitious_join \\(",
                 "  validation_report: metrics: kmarginal \\(", "  validation_report: metrics: dcr \\(",
                 # made in a child of its own beside the figures', its lines relayed to the step's
                 "  validation_report: population tables: calibration residuals",
                 "  validation_report: linked tables: distributions against the surveys",
                 "done validation_report \\(", "done public_dataset \\("):
        assert re.search(stamped + line, out), line
    # Dagster's console log (run ids, event names such as STEP_START) stays behind --verbose
    for raw in ("STEP_START", "STEP_SUCCESS", "ASSET_MATERIALIZATION", "LOADED_INPUT", " - dagster - "):
        assert raw not in out, raw
    assert len(out.splitlines()) < 100, out  # Dagster's own log of the same run: about 150 lines

    docs = data_root / "reports" / "data_docs" / "gx"
    index = docs / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert index.exists()
    listed = index.read_text()
    for suite in ("raw_register", "harmonised_register", "fictitious_dataset"):
        assert (docs / "expectations" / f"{suite}.json").exists(), suite
        assert suite in listed, suite
    report = next((data_root / "reports" / "2024").rglob("report.html"))
    link = re.search(r'href="([^"]*index\.html)"', report.read_text()).group(1)
    assert (report.parent / link).resolve() == index.resolve()
