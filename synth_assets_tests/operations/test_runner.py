"""A step's process of ``--step-processes`` ends with the run's process (``end_with_parent``)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from synth_assets.operations.runner import end_with_parent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no SIGKILL on Windows")

PARENT = textwrap.dedent("""
    import multiprocessing, sys, time

    def step(pid_file, end):
        if end:
            from synth_assets.operations.runner import end_with_parent
            assert end_with_parent()
        with open(pid_file, "w") as f:
            f.write(str(__import__("os").getpid()))
        time.sleep(120)

    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[3])
        context.Process(target=step, args=(sys.argv[1], sys.argv[2] == "1")).start()
        time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except OSError:
        return False


def _orphan_after_parent_killed(tmp_path: Path, end: bool, method: str) -> bool:
    """Start a parent whose spawned child (``end``: calling end_with_parent) writes its pid; kill the
    parent hard; whether the child is still running 5 s later (it is then killed here)."""
    script, pid_file = tmp_path / "parent.py", tmp_path / f"child-{end}.pid"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file), "1" if end else "0", method],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    survived = _alive(child)
    if survived:
        os.kill(child, signal.SIGKILL)
    return survived


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_step_process_is_killed_when_the_run_process_dies(tmp_path, method):
    """Spawned, the step's parent is the run's process; by a fork server, the server, which ends with it."""
    assert not _orphan_after_parent_killed(tmp_path, end=True, method=method)
    # the kernel's doing, not multiprocessing's: without it the child outlives its parent
    assert _orphan_after_parent_killed(tmp_path, end=False, method=method)


def test_the_run_process_itself_is_left_alone():
    """Not started by multiprocessing (the CLI, a test): its own parent's end must not kill it."""
    assert end_with_parent() is False


def test_an_ingest_process_that_ends_early_is_an_error_naming_how_far_it_got(tmp_path):
    """The ingest runs of ``--step-processes`` run in processes of their own: one that dies (here a
    job the code location lacks) is an error, not a pipeline waiting for runs that never end."""
    import dagster as dg

    from synth_assets.operations.runner import IngestLanes, StepProcesses, ingest_in_processes

    root = Path(__file__).parents[2] / "data"
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        summaries = ingest_in_processes(IngestLanes([[("no_such_job", "2024")]]), StepProcesses(str(root)), instance,
                                        None, None)
        with pytest.raises(RuntimeError, match=r"ingest process ended \(exit code 1\) after 0 of 1 ingest runs"):
            list(summaries)


def test_ingest_lanes_put_the_register_s_waves_in_one_process_and_share_the_surveys():
    """Two register waves side by side would hold two populations; the surveys' small runs go beside
    them on a second core, the first in the surveys' own lane, the others to whichever lane is free
    first; one core, one lane."""
    from synth_assets.operations.runner import IngestLanes, ingest_lanes

    runs = [("ingest_register", "2023"), ("ingest_silc", "2023"), ("ingest_register", "2024"), ("ingest_lfs", "2024"),
            ("ingest_hbs", "2024")]
    assert ingest_lanes(runs, "ingest_register", 2) == IngestLanes([[runs[0], runs[2]], [runs[1]]], [runs[3], runs[4]])
    assert ingest_lanes(runs, "ingest_register", 1) == IngestLanes([runs])
    assert ingest_lanes(runs[1:2], "ingest_register", 2) == IngestLanes([runs[1:2]])  # surveys alone: one lane
    assert ingest_lanes([], "ingest_register", 2) == IngestLanes([])
    assert len(ingest_lanes(runs, "ingest_register", 2)) == len(runs)


def test_an_ingest_lane_makes_its_own_runs_then_takes_shared_ones_until_their_end(tmp_path, monkeypatch):
    """The register's lane, its waves done, takes the surveys' runs left: the shared queue's runs
    go to whichever lane asks first, each once, and a lane stops at the queue's end."""
    import queue as queues

    import dagster as dg

    from synth_assets.operations import runner

    made: list[tuple[str, str]] = []
    monkeypatch.setattr(runner, "execute", lambda _defs, job, partition, *args, **kwargs: made.append((job, partition))
                        or (job, partition))
    shared: queues.Queue = queues.Queue()
    for run in [("ingest_silc", "2024"), ("ingest_lfs", "2024"), None, ("ingest_hbs", "2024"), None]:
        shared.put(run)
    results: queues.Queue = queues.Queue()
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        runner.ingest_in_this_process([("ingest_register", "2024")], shared, runner.StepProcesses(str(tmp_path)),
                                      instance.get_ref(), None, results, lane=0)
    assert made == [("ingest_register", "2024"), ("ingest_silc", "2024"), ("ingest_lfs", "2024")]
    assert [results.get_nowait() for _ in made] == [(0, run) for run in made]
    assert shared.get_nowait() == ("ingest_hbs", "2024")  # after this lane's end: the other lane's


def _variable(name: str) -> str | None:
    return os.environ.get(name)


def _environment_of_a_forked_process(context, name: str) -> str | None:
    with context.Pool(1) as pool:
        return pool.apply(_variable, (name,))


def test_a_run_after_the_environment_changed_forks_its_steps_from_a_fresh_server(monkeypatch):
    """Steps forked from a fork server hold the server's environment: one started for an earlier run
    would hand its steps a stale one (another data root, model key, storage); each run ends its own."""
    import multiprocessing

    from synth_assets.operations.runner import stop_fork_server

    context = multiprocessing.get_context("forkserver")
    stop_fork_server()  # none of an earlier test's
    monkeypatch.setenv("SYNTH_ASSETS_FORK_TEST", "first run")
    assert _environment_of_a_forked_process(context, "SYNTH_ASSETS_FORK_TEST") == "first run"
    monkeypatch.setenv("SYNTH_ASSETS_FORK_TEST", "second run")
    # the server the first run started: the first run's environment (why the runner ends it)
    assert _environment_of_a_forked_process(context, "SYNTH_ASSETS_FORK_TEST") == "first run"
    stop_fork_server()
    assert _environment_of_a_forked_process(context, "SYNTH_ASSETS_FORK_TEST") == "second run"
    stop_fork_server()
    stop_fork_server()  # none running: nothing to do


def _watchers_after_three_calls(_: int) -> tuple[bool, int]:
    import threading

    from synth_assets.operations.runner import WATCHER_THREAD, end_with_parent

    started = [end_with_parent() for _ in range(3)]
    return all(started), sum(t.name == WATCHER_THREAD for t in threading.enumerate())


def test_a_process_that_rebuilds_jobs_again_and_again_has_one_watcher():
    """The ingest process rebuilds a job per run (``job_for_step_processes``): one thread waits on its
    parent, not one per run."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_watchers_after_three_calls, (0,)) == (True, 1)


def test_a_process_builds_the_definitions_once_while_what_they_are_built_from_is_unchanged(tmp_path, monkeypatch):
    """Dagster rebuilds a step's job twice in the step's process and an ingest process once per run
    (``job_for_step_processes``): the definitions are built once, and again when the catalog, the
    release options or the deployment's environment differ."""
    import shutil

    from synth_assets.defs import definitions
    from synth_assets.defs.automation.jobs import RELEASE_JOB, ingest_job_name
    from synth_assets.operations import runner

    built: list[str] = []
    real = definitions.build_definitions

    def counted(data_root, **options):
        built.append(str(data_root))
        return real(data_root, **options)

    monkeypatch.setattr(definitions, "build_definitions", counted)
    monkeypatch.setattr(runner, "_DEFINITIONS", {})
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml", root / "catalog.yaml")
    release = runner.job_for_step_processes(RELEASE_JOB, str(root), {})
    assert release.name == RELEASE_JOB
    assert runner.job_for_step_processes(RELEASE_JOB, str(root), {}).name == RELEASE_JOB
    assert runner.job_for_step_processes(ingest_job_name("silc"), str(root), {}).name == ingest_job_name("silc")
    assert len(built) == 1
    runner.job_for_step_processes(RELEASE_JOB, str(root), {"disclosure.k": 5})
    assert len(built) == 2
    catalog = root / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("version: 1", "version: 1\n# edited"))
    runner.job_for_step_processes(RELEASE_JOB, str(root), {"disclosure.k": 5})
    assert len(built) == 3
    monkeypatch.setenv("SYNTH_ASSETS_STORAGE", str(tmp_path / "storage"))
    runner.job_for_step_processes(RELEASE_JOB, str(root), {"disclosure.k": 5})
    assert len(built) == 4 and len(runner._DEFINITIONS) == 1  # the last one kept, not every one


def _definitions_built_in_this_process(_: int) -> list:
    from synth_assets.operations import runner

    return list(runner._DEFINITIONS)


def test_a_run_s_fork_server_builds_the_definitions_its_steps_are_forked_with(tmp_path, monkeypatch):
    """The run's fork server imports the runner (``STEP_PRELOAD_MODULES``) with the run's
    ``FORK_SERVER_DEFINITIONS``: it builds the definitions, and a step's process forked from it
    finds them under the key its own ``job_for_step_processes`` asks for, with nothing to build."""
    import json
    import multiprocessing
    import shutil

    from synth_assets.defs.deployment import STEP_PRELOAD_MODULES
    from synth_assets.operations import runner

    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml", root / "catalog.yaml")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(STEP_PRELOAD_MODULES))
    runner.stop_fork_server()  # none of an earlier test's
    try:
        monkeypatch.setenv(runner.FORK_SERVER_DEFINITIONS,
                           json.dumps({"data_root": str(root), "release_options": {"disclosure.k": 5}}))
        with context.Pool(1) as pool:
            built = pool.apply(_definitions_built_in_this_process, (0,))
        assert built == [runner._definitions_key(str(root), {"disclosure.k": 5})]
        runner.stop_fork_server()
        # a catalog a step could not build from: the server builds nothing, the step's own build names it
        (root / "catalog.yaml").write_text("sources: [")
        with context.Pool(1) as pool:
            assert pool.apply(_definitions_built_in_this_process, (0,)) == []
    finally:
        runner.stop_fork_server()


def test_only_a_run_with_a_process_per_step_hands_its_fork_server_the_definitions(tmp_path, monkeypatch):
    """``execute`` sets ``FORK_SERVER_DEFINITIONS`` for the run's fork server while the run lasts, and
    leaves the environment as it was; a run whose steps run in its own process needs none."""
    import contextlib
    import json
    import shutil

    import dagster as dg

    from synth_assets.operations import runner

    seen: list[str | None] = []

    @contextlib.contextmanager
    def recorded(*_, **__):
        seen.append(os.environ.get(runner.FORK_SERVER_DEFINITIONS))
        raise RuntimeError("recorded")
        yield  # pragma: no cover

    monkeypatch.setattr(dg, "execute_job", recorded)
    monkeypatch.delenv(runner.FORK_SERVER_DEFINITIONS, raising=False)
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml", root / "catalog.yaml")
    processes = runner.StepProcesses(str(root), {"disclosure.k": 5})
    for in_process in (False, True):
        with pytest.raises(RuntimeError, match="recorded"):
            runner.execute(None, "release", "2024", None, processes=processes, in_process=in_process)
        assert runner.FORK_SERVER_DEFINITIONS not in os.environ
    assert json.loads(seen[0]) == {"data_root": str(root), "release_options": {"disclosure.k": 5}}
    assert seen[1] is None


def test_a_stopped_run_its_executor_reported_failed_is_marked_canceled_again():
    """On a signal the runs are canceled, then their step processes ended; the run's executor sees
    them end and reports the run failed over its cancellation (seen: SIGTERM with a process per step).
    What the stop ended is canceled again; a run that ended otherwise is left as it is."""
    import dagster as dg

    from synth_assets.operations.runner import cancel_again

    with dg.instance_for_test() as instance:
        stopped, failed = (instance.add_run(dg.DagsterRun(job_name="release", run_id=run_id,
                                                              status=dg.DagsterRunStatus.STARTED))
                              for run_id in ("stopped", "failed"))
        instance.report_run_canceled(stopped, "synth-assets received SIGTERM")
        instance.report_run_failed(instance.get_run_by_id("stopped"), "a step's process ended")
        instance.report_run_failed(failed, "not ours")  # never canceled: not the stop's doing
        assert instance.get_run_by_id("stopped").status == dg.DagsterRunStatus.FAILURE
        assert cancel_again(instance, ["stopped"], "synth-assets received SIGTERM") == ["stopped"]
        assert instance.get_run_by_id("stopped").status == dg.DagsterRunStatus.CANCELED
        assert instance.get_run_by_id("failed").status == dg.DagsterRunStatus.FAILURE
        assert cancel_again(instance, ["stopped"], "again") == []  # canceled already: nothing to do
