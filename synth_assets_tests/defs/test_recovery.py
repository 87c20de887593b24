"""Crashes and signals: a real ``synth-assets run`` process, killed or stopped, and run again.

A run killed with SIGKILL cannot clean up: its run stays STARTED and its ``model_training``
pool slot stays claimed, so without recovery every later ``population_model`` waits forever.
The runs start from a copy of the ingested tiny demo (conftest.py): only the release runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from synth_assets.operations.runner import PROCESS_TAG, process_token, recover_dead_runs
from synth_assets_tests.defs.conftest import Prepared

REPO = Path(__file__).resolve().parents[2]
POOL = "model_training"


def _ingested(prepared: Prepared) -> tuple[Path, Path]:
    """The data root and the DAGSTER_HOME (with the repo's dagster.yaml: pools) of an ingested copy."""
    prepared.use_repo_instance_settings()
    return prepared.root, prepared.home


def _start(data_root: Path, home: Path, log: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "synth_assets.cli", "run", "--data", str(data_root), "--replicates", "2",
               "--set", "validation.error_subsamples=0", *options]  # FAST_RUN_OPTIONS but the family
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _instance(home: Path) -> dg.DagsterInstance:
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def _wait_for(condition, proc: subprocess.Popen, log: Path, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert proc.poll() is None, f"run ended (rc {proc.returncode}) before the awaited state:\n{log.read_text()}"
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"awaited state not reached in {timeout} s:\n{log.read_text()[-4000:]}")


def _releases(data_root: Path) -> list[str]:
    public = data_root / "public"
    return sorted(p.name for p in public.iterdir()) if public.exists() else []


@pytest.mark.slow
def test_a_run_killed_while_training_leaves_the_next_run_free_to_train_and_publish(ingested_copy, tmp_path):
    data_root, home = _ingested(ingested_copy)
    log = tmp_path / "killed.log"
    # CTGAN within a 5-minute budget: population_model holds the pool's one slot long enough to be killed there.
    proc = _start(data_root, home, log, "--family", "ctgan", "--max-seconds", "300")
    with _instance(home) as instance:
        _wait_for(lambda: instance.event_log_storage.get_concurrency_info(POOL).active_slot_count, proc, log, 400)
        proc.kill()
        proc.wait(timeout=30)
        killed = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        # The crash as it is left behind: the run still STARTED, the slot still taken.
        assert [r.job_name for r in killed] == ["release"]
        assert instance.event_log_storage.get_concurrency_info(POOL).active_run_ids == {killed[0].run_id}

    rerun_log = tmp_path / "rerun.log"
    rerun = _start(data_root, home, rerun_log, "--family", "cart")
    try:
        code = rerun.wait(timeout=600)
    except subprocess.TimeoutExpired:
        rerun.kill()
        pytest.fail("the run after the crash did not finish in 10 minutes:\n" + rerun_log.read_text()[-4000:])
    out = rerun_log.read_text()
    assert code == 0, out[-4000:]
    assert f"[RECOVERED] run {killed[0].run_id} (release 2024) was left STARTED" in out
    assert "marked failed, pool slot(s) model_training/population_model freed" in out
    assert "Public fictitious dataset:" in out
    release = data_root / "public" / (data_root / "public" / "LATEST").read_text().strip()
    assert (release / "data_card.json").is_file()
    with _instance(home) as instance:
        assert instance.get_run_by_id(killed[0].run_id).status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))


def _step_pids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    return {e.dagster_event.pid for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
            if e.dagster_event is not None and e.dagster_event.pid is not None}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (ended, not yet reaped by init) counts as gone
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("processes", [[], ["--step-processes"]], ids=["in_process", "step_processes"])
def test_sigterm_stops_the_run_promptly_cancels_its_run_and_publishes_nothing(ingested_copy, tmp_path, processes):
    data_root, home = _ingested(ingested_copy)
    log = tmp_path / "terminated.log"
    # with step processes: CTGAN within a 5-minute budget, stopped while population_model's process trains
    family = ["--family", "ctgan", "--max-seconds", "300"] if processes else ["--family", "cart"]
    proc = _start(data_root, home, log, *family, *processes)
    with _instance(home) as instance:
        def release_started():
            # a step under way, not just the run: the run's start is logged before its first step's
            runs = instance.get_runs(dg.RunsFilter(job_name="release", statuses=[dg.DagsterRunStatus.STARTED]))
            if not runs or not _step_pids(instance, runs[0].run_id):
                return None
            training = instance.event_log_storage.get_concurrency_info(POOL).active_slot_count
            return runs if not processes or training else None

        started = _wait_for(release_started, proc, log, 400)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("SIGTERM did not stop the run within 60 s:\n" + log.read_text()[-4000:])
        out = log.read_text()
        assert code == 128 + signal.SIGTERM, out[-4000:]
        assert f"stopped by SIGTERM: run(s) marked canceled: {started[0].run_id}" in out
        assert _releases(data_root) == []  # not even a half-written (hidden) release folder
        assert instance.get_run_by_id(started[0].run_id).status == dg.DagsterRunStatus.CANCELED
        assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert not instance.event_log_storage.get_concurrency_run_ids()
        pids = _step_pids(instance, started[0].run_id)
        # in its own process, or in processes of their own
        assert (pids and proc.pid not in pids) if processes else pids == {proc.pid}, (pids, proc.pid)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in pids if _alive(pid)], "step processes left running after the run stopped"


def test_start_up_fails_runs_of_a_dead_process_and_frees_slots_of_ended_runs(tmp_path):
    """The recovery alone, on runs whose process is known: a dead child, this process, another host."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = process_token(child.pid)
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("model_training", 3)  # one active claim per run
        runs = {}
        for name, token in {"dead": dead, "alive": process_token(), "elsewhere": "another-host:1:1"}.items():
            run = instance.create_run_for_job(
                dg.GraphDefinition(name=f"job_{name}", node_defs=[]).to_job(), tags={PROCESS_TAG: token}
            )
            instance.report_dagster_event(_run_start_event(run), run.run_id)
            storage.claim_concurrency_slot("model_training", run.run_id, f"step_{name}")
            runs[name] = run.run_id
        # A run failed by hand keeps its slot: recovery frees it.
        ended = runs["elsewhere"]
        instance.report_run_failed(instance.get_run_by_id(ended), "marked failed by hand")

        notes = recover_dead_runs(instance)

        assert instance.get_run_by_id(runs["dead"]).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(runs["alive"]).status == dg.DagsterRunStatus.STARTED
        assert storage.get_concurrency_info("model_training").active_run_ids == {runs["alive"]}
        assert any(runs["dead"] in n and "marked failed, pool slot(s) model_training/step_dead freed" in n for n in notes), notes
        assert any(ended in n and "(FAILURE) had ended: pool slot(s) model_training/step_elsewhere freed" in n for n in notes), notes


def _run_start_event(run):
    from dagster._core.events import DagsterEvent, DagsterEventType

    return DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name)


def test_stopped_processes_get_a_grace_period_then_are_killed():
    """What a stopped pipeline does to its step processes: SIGTERM, and SIGKILL to one that does not
    answer it (a long native call) once the grace period is over."""
    from synth_assets.operations.runner import stop_processes

    def child(ignore_term: bool) -> subprocess.Popen:
        # the disposition set either way: a child inherits an ignored SIGTERM (the suite's workers ignore it)
        code = ("import signal, time\n"
                + f"signal.signal(signal.SIGTERM, signal.{'SIG_IGN' if ignore_term else 'SIG_DFL'})\n"
                + "print('ready', flush=True)\ntime.sleep(300)\n")
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)

    started = [child(True), child(False)]
    try:
        for process in started:  # each has set its handler
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        # a grace period a loaded machine still delivers SIGTERM within (1 s was not, once, beside the suite)
        assert stop_processes([p.pid for p in started], grace_s=8.0) == [p.pid for p in started]
        assert [p.wait(timeout=10) for p in started] == [-signal.SIGKILL, -signal.SIGTERM]
        assert stop_processes([p.pid for p in started]) == []  # ended: nothing to signal
    finally:
        for process in started:
            process.kill()
            process.wait()
