"""Headless runs of the whole pipeline against a Dagster instance (``make run``, tests).

The same jobs the UI launches: per source and wave an ingest run, then a release run per
register wave. Partitions are registered from the files found in ``data/incoming``.

Runs execute in this process, one step after another, or, with ``StepProcesses``, through the
deployment's executor (``defs/deployment.py``: each step a process of its own, two at a time,
as a run launched from the UI; the k8s executor inside a cluster): a step then starts from a
fresh interpreter, not from what the allocator kept of the steps before it, and region steps
run side by side; the ingest runs then go to processes of their own (the register's waves in
one, the surveys' beside it). Either way no daemon watches the runs: each run is tagged with the
process that orchestrates it, and a start-up marks failed the runs of a process that is gone (``kill -9``,
a crashed machine) and frees the pool slots they held, which would otherwise block every
later ``population_model`` (pool ``model_training``, one slot) for good.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.common.layout import DataLayout
from synth_assets.common.memory import release_free_memory
from synth_assets.common.parallel import available_cores
from synth_assets.dagster_api import is_check_failure, latest_materialization
from synth_assets.defs import keys
from synth_assets.defs.automation.jobs import RELEASE_JOB, ingest_job_name
from synth_assets.defs.deliveries import needs_ingest, observe_deliveries, record_deliveries
from synth_assets.defs.partitions import latest_wave_at_or_before, partitions_name
from synth_assets.defs.synthesis.fallback import fallback_selection
from synth_assets.defs.synthesis.fallback_sensor import fallback_for, run_refusals
from synth_assets.ingest import discover_waves, misnamed_files
from synth_assets.operations.progress import Progress
from synth_assets.publication import latest_release


@dataclass
class RunSummary:
    job: str
    partition: str
    success: bool
    run_id: str
    failures: list[str] = field(default_factory=list)
    #: the failed gate checks, with their figures, when the gate refused the run (``defs/synthesis/fallback.py``)
    refused_by: list[str] = field(default_factory=list)
    #: a release run refused by the gate: the fallback family's run that released the wave instead
    fallback: RunSummary | None = None

    @property
    def released(self) -> bool:
        """Whether the run, or its fallback, ended with the wave released."""
        return self.success or (self.fallback is not None and self.fallback.success)


@dataclass
class PipelineOutcome:
    runs: list[RunSummary]
    release: Path | None
    report: Path | None

    @property
    def success(self) -> bool:
        return all(r.released for r in self.runs) and self.release is not None

    @property
    def fallbacks(self) -> list[RunSummary]:
        """The release runs the gate refused and whose fallback family's run released the wave."""
        return [r for r in self.runs if not r.success and r.released]


def register_waves(instance: dg.DagsterInstance, catalog: Catalog, layout: DataLayout) -> dict[str, list[str]]:
    """Add a dynamic partition for every delivered file; return the waves per source."""
    found: dict[str, list[str]] = {}
    for name, source in catalog.sources.items():
        waves = list(discover_waves(layout.incoming, source))
        partitions = partitions_name(name)
        new = [w for w in waves if not instance.has_dynamic_partition(partitions, w)]
        if new:
            instance.add_dynamic_partitions(partitions, new)
        found[name] = waves
    return found


class MissingSourceError(FileNotFoundError):
    """A catalog source has no delivered file a release could use."""


def missing_sources(catalog: Catalog, layout: DataLayout, waves: dict[str, list[str]], release_wave: str) -> list[str]:
    """One message per catalog source without a file at or before ``release_wave``.

    The instance may remember a wave whose file has since been removed; only files present
    in ``data/incoming`` count, so a release never cites a file that no longer exists.
    """
    problems = []
    for name, source in catalog.sources.items():
        if latest_wave_at_or_before(waves.get(name, []), release_wave) is None:
            present = sorted(waves.get(name, []))
            problems.append(
                f"source {name!r}: no file for release wave {release_wave}: expected "
                f"{layout.incoming / source.path} with a wave at or before {release_wave} "
                f"(present: {', '.join(present) if present else 'none'})"
            )
    return problems


def latest_report(instance: dg.DagsterInstance, wave: str, run_id: str | None = None) -> Path | None:
    """The report.html of the latest ``validation_report`` of ``wave`` (of that run only, if given)."""
    latest = latest_materialization(instance, keys.VALIDATION_REPORT, wave)
    path = latest.metadata.get("report") if latest else None
    if latest is None or not path or (run_id is not None and latest.run_id != run_id):
        return None
    return Path(path)


def _failures(events: list[dg.DagsterEvent]) -> list[str]:
    messages = []
    for event in events:
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if not evaluation.passed:
                messages.append(
                    f"check {evaluation.asset_key.to_user_string()}.{evaluation.check_name} failed: "
                    f"{evaluation.description or ''}".rstrip(": ")
                )
        elif event.is_step_failure:
            error = event.step_failure_data.error
            if is_check_failure(error):
                continue  # already reported by the check evaluation above
            messages.append(f"step {event.step_key} failed: {step_failure_message(error)}")
    return messages


def step_failure_message(error: Any) -> str:
    """The project's own error first (it names file, column and value), then the root cause.

    Dagster wraps the asset's exception, and the asset's exception often wraps a library's
    (``IngestError ... from`` a parser error): the innermost alone loses the file name, the
    outermost is Dagster's "error occurred while executing op".
    """
    chain = []
    while error is not None:
        chain.append(error.message.strip())
        error = error.cause or getattr(error, "context", None)
    if not chain:
        return ""
    own = next((m for m in chain if m.startswith("synth_assets.")), None)
    innermost = chain[-1]
    if own is None:
        return innermost
    return own if own == innermost else f"{own}\n      caused by: {innermost}"


#: Run tag naming the process that executes the run in process: ``host:pid:start time``.
PROCESS_TAG = "synth_assets/process"
IN_FLIGHT = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
             dg.DagsterRunStatus.CANCELING]
ENDED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not taken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def process_alive(token: str) -> bool | None:
    """Whether the process of a ``PROCESS_TAG`` still runs; None when it ran on another host."""
    host, pid, started = (token.rsplit(":", 2) + ["", ""])[:3]
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return not started or _process_start(int(pid)) in ("", started)


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> str:
    """Free every pool slot the run holds or waits for; name them (``model_training/population_model``)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits or run_id not in storage.get_concurrency_run_ids():
        return "no pool slot"
    held = [
        f"{pool}/{slot.step_key}"
        for pool, info in storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())).items()
        for slot in info.claimed_slots if slot.run_id == run_id
    ]
    storage.free_concurrency_slots_for_run(run_id)
    return f"pool slot(s) {', '.join(held)} freed" if held else "pending pool claims dropped"


def recover_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the in-flight runs whose process is gone; free the pool slots of every ended run.

    Marking a run failed does not free its slots (the daemon's run monitoring does, after
    ``free_slots_after_run_end_seconds``; headless there is no daemon), so a slot held by a
    run that ended, killed and marked failed by hand, say, is freed here too.
    """
    notes = []
    for run in instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT)):
        token = run.tags.get(PROCESS_TAG)
        if token is None or process_alive(token) is not False:
            continue  # launched elsewhere (the daemon's run monitoring watches those) or still running
        instance.report_run_failed(
            run, f"the process that executed this run ({token}) is gone; marked failed at the next start-up"
        )
        notes.append(f"run {run.run_id} ({run.job_name} {run.tags.get('dagster/partition', '')}) was left "
                     f"{run.status.value} by a process that is gone: marked failed, {_free_slots(instance, run.run_id)}")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        runs = {r.run_id: r for r in instance.get_runs(dg.RunsFilter(run_ids=list(holders)))} if holders else {}
        for run_id in sorted(holders):
            holder = runs.get(run_id)
            if holder is None or holder.status in ENDED:
                notes.append(f"run {run_id} ({holder.status.value if holder else 'deleted'}) had ended: "
                             f"{_free_slots(instance, run_id)}")
    return notes


#: How long a stopped pipeline waits for its runs' executor to report the runs whose step processes
#: it ended (a run's executor notices an ended step within a second; the stop stays prompt).
STOPPED_RUN_REPORT_S = 5.0


def cancel_again(instance: dg.DagsterInstance, run_ids: Iterable[str], reason: str) -> list[str]:
    """Mark canceled again the runs of ``run_ids`` that their executor reported failed after they
    were canceled (their step processes ended by the stop); the runs so marked."""
    again = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status == dg.DagsterRunStatus.FAILURE:
            instance.report_run_canceled(run, reason)
            again.append(run_id)
    return again


def cancel_own_runs(instance: dg.DagsterInstance, reason: str) -> list[str]:
    """Mark canceled the runs this process has in flight, and free their slots (on a signal)."""
    token = process_token()
    canceled = []
    for run in instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT, tags={PROCESS_TAG: token})):
        instance.report_run_canceled(run, reason)
        _free_slots(instance, run.run_id)
        canceled.append(run.run_id)
    return canceled


class Interrupted(Exception):
    """The pipeline was stopped by a signal; its in-flight runs were marked canceled."""

    def __init__(self, signum: int, canceled: list[str]):
        self.signum = signum
        self.canceled = canceled
        super().__init__(f"stopped by {signal.Signals(signum).name}: run(s) marked canceled: "
                         f"{', '.join(canceled) or 'none in flight'}")


T = TypeVar("T")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()  # a zombie has ended
    except OSError:
        return True  # no /proc (not Linux): alive as far as can be told


def stop_processes(pids: Iterable[int], grace_s: float = 10.0) -> list[int]:
    """SIGTERM to each of ``pids`` still running, then SIGKILL to any still running after
    ``grace_s`` seconds; the pids signalled."""
    signalled = []
    for pid in pids:
        if _running(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                signalled.append(pid)
    deadline = time.monotonic() + grace_s
    while any(_running(pid) for pid in signalled) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in signalled:
        if _running(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return signalled


def end_step_processes(instance: dg.DagsterInstance, run_ids: Iterable[str], grace_s: float = 10.0) -> list[int]:
    """Stop the step processes of ``run_ids`` (``--step-processes``: their pids from the runs' step
    events; none in this process's runs otherwise). A step process answers its executor's
    termination between Python statements, which a long native call (a torch epoch on a loaded
    machine) can delay past the run's own exit; after ``grace_s`` seconds it is killed."""
    pids = {e.dagster_event.pid for run_id in run_ids
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
            if e.dagster_event is not None and e.dagster_event.pid not in (None, os.getpid())}
    return stop_processes(sorted(pids), grace_s)


def run_until_signal(work: Callable[[threading.Event], T], instance: dg.DagsterInstance) -> T:
    """Run ``work(stop)`` in a worker thread; on SIGINT or SIGTERM cancel its runs and raise ``Interrupted``.

    In the main thread Dagster holds SIGINT back until a step's own code runs, then turns it
    into a failed run and goes on; a step waiting for a pool slot never sees it, and SIGTERM
    is not handled at all. In a worker thread Dagster leaves signals alone, so the main
    thread answers them at once whatever the run is doing. ``stop`` is set so the worker
    starts no further run. The caller should exit: the worker is a daemon thread.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return work(stop)  # only the main thread can take signals: leave them to it
    received: queue.SimpleQueue[int] = queue.SimpleQueue()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work(stop)
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, _frame: received.put(signum)) for s in handled}
    worker = threading.Thread(target=target, name="synth-assets-pipeline", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
            if not received.empty():
                signum = received.get()
                stop.set()
                reason = f"synth-assets received {signal.Signals(signum).name}"
                canceled = cancel_own_runs(instance, reason)
                if end_step_processes(instance, canceled):  # none left behind (--step-processes)
                    # the run's executor sees its steps' processes end and reports the run failed,
                    # over its cancellation: let it, then mark canceled again what the stop ended
                    worker.join(STOPPED_RUN_REPORT_S)
                    cancel_again(instance, canceled, reason)
                raise Interrupted(signum, canceled)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@dataclass(frozen=True)
class StepProcesses:
    """What a step's process needs to rebuild the code location the run was started with
    (``job_for_step_processes``): JSON values, since they cross the process boundary."""

    data_root: str
    release_options: dict[str, Any] = field(default_factory=dict)


#: The name of :func:`end_with_parent`'s thread, and the process it watches for (None: none yet).
WATCHER_THREAD = "synth-assets-end-with-parent"
_WATCHED_IN: int | None = None


def end_with_parent() -> bool:
    """In a process started by ``multiprocessing`` (a step's process of ``--step-processes``): kill
    itself when the process that started it ends; True where that is now so.

    A stopped ``synth-assets run`` ends the step processes it knows of (``end_step_processes``: from
    the runs' step events), but a step process spawned just before the stop has no event yet, and
    would go on computing alone, its run canceled (seen: a CTGAN step two minutes after its run's
    process had exited). A thread waits on the parent's sentinel (a pipe the parent holds open,
    whichever the start method: the kernel's parent-death signal would follow a fork server,
    which its own children keep alive) and ends the process when it closes.
    """
    global _WATCHED_IN
    parent = multiprocessing.parent_process()
    if parent is None:
        return False
    if os.getpid() == _WATCHED_IN:  # one watcher a process (the ingest process rebuilds a job per run)
        return True

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGKILL)  # nothing left to do: its run's process is gone

    threading.Thread(target=watch, name=WATCHER_THREAD, daemon=True).start()
    _WATCHED_IN = os.getpid()  # a process forked from this one has no such thread: its pid differs
    return True


def stop_fork_server() -> None:
    """End this process's fork server (the multiprocess executor's ``forkserver`` start method), if any.

    Step processes forked from it hold the environment and standard streams it was started with,
    not this process's now (an earlier run's: another model key, or a test's captured output that
    the next test never sees); the next run of this process starts one of its own. A run launched
    by Dagster's daemon or UI is a process of its own, and its fork server ends with it.
    """
    import multiprocessing.forkserver

    server: Any = multiprocessing.forkserver._forkserver  # no public way to stop it (CPython's own tests use this)
    with server._lock:
        server._stop_unlocked()


#: This process's last definitions, under what they were built from (``_definitions_key``).
_DEFINITIONS: dict[tuple[Any, ...], dg.Definitions] = {}
#: What a run with a process per step is built from (JSON: ``StepProcesses``' fields), set while the
#: run's process starts its fork server: the server builds the definitions as it imports this module
#: (``preload_modules``), and every step's process forked from it finds them built.
FORK_SERVER_DEFINITIONS = "SYNTH_ASSETS_FORK_SERVER_DEFINITIONS"


def _definitions_key(data_root: str | None, release_options: dict[str, Any]) -> tuple[Any, ...]:
    """What ``build_definitions(data_root, release_options=...)`` reads: its arguments, the
    deployment's environment, and the bytes of the catalog and of an executor file."""
    from synth_assets.defs.deployment import Deployment

    environment = tuple(sorted((k, v) for k, v in os.environ.items()
                               if k.startswith("SYNTH_ASSETS_") and k != FORK_SERVER_DEFINITIONS))
    deployment = Deployment.from_environment()
    root = Path(data_root) if data_root is not None else deployment.data_root
    files = [DataLayout(root).catalog, *([deployment.executor_config] if deployment.executor_config else [])]
    contents = tuple(hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None for path in files)
    return str(root), json.dumps(release_options, sort_keys=True, default=str), environment, contents


def _definitions(data_root: str | None, release_options: dict[str, Any]) -> dg.Definitions:
    """``build_definitions`` once a process while what it reads is unchanged: Dagster rebuilds a
    step's job twice in the step's process (for its plan, then to run it) and an ingest process once
    per run; each build read and validated the catalog again (0.6 s of a core, as much again as a
    small step's own work)."""
    from synth_assets.defs.definitions import build_definitions

    key = _definitions_key(data_root, release_options)
    if key not in _DEFINITIONS:
        _DEFINITIONS.clear()  # the last one only
        _DEFINITIONS[key] = build_definitions(data_root, release_options=release_options)
    return _DEFINITIONS[key]


def job_for_step_processes(job: str, data_root: str, release_options: dict[str, Any],
                           progress_start: float | None = None, steps: bool = True,
                           in_process: bool = False) -> dg.JobDefinition:
    """Job ``job`` of the code location at ``data_root`` (the deployment of the environment
    otherwise), rebuilt in each step's process; with ``progress_start`` (a ``time.monotonic()``
    reading: the machine's clock, the same in every process), its progress lines; with
    ``in_process``, its steps one after another in the process that runs it.

    Dagster reconstructs a job in each step's process from a module-level function
    (``dg.build_reconstructable_job``); the parent's ``Definitions`` never cross. A step's
    process ends with the run's process (``end_with_parent``).
    """
    end_with_parent()

    job_def = _definitions(data_root, release_options).resolve_job_def(job)
    if in_process:
        job_def = job_def.with_executor_def(dg.in_process_executor)
    if progress_start is not None:
        job_def = job_def.with_logger_defs({"progress": Progress(start=progress_start).logger_def(steps=steps)})
    return job_def


def execute(defs: dg.Definitions | None, job: str, partition: str, instance: dg.DagsterInstance,
            run_config: dict[str, Any] | None = None, progress: Progress | None = None,
            steps: bool = True, asset_selection: list[dg.AssetKey] | None = None,
            tags: dict[str, str] | None = None, processes: StepProcesses | None = None,
            in_process: bool = False) -> RunSummary:
    """One run in this process, or through the deployment's executor with ``processes`` (of
    ``asset_selection`` only, if given); with ``progress``, its lines instead of Dagster's console log.

    With ``processes`` and ``in_process``, the job rebuilt from ``processes`` runs its steps in this
    process: unlike ``execute_in_process``, which keeps every step's output in its result until the
    result is collected (a register wave's raw and harmonised tables, 0.9 GB at 2 million persons,
    held through the wave's checks and into the next wave's run)."""
    config = dict(run_config or {})
    if progress is not None:
        config["loggers"] = {"progress": {}}
    tags = {**(tags or {}), PROCESS_TAG: process_token()}
    if processes is not None:
        reconstructable = dg.build_reconstructable_job(
            __name__, job_for_step_processes.__name__,
            reconstructable_kwargs={"job": job, "data_root": processes.data_root,
                                    "release_options": processes.release_options,
                                    "progress_start": progress.start if progress else None, "steps": steps,
                                    "in_process": in_process})
        stop_fork_server()  # one started earlier in this process holds that moment's environment and streams
        before = os.environ.get(FORK_SERVER_DEFINITIONS)
        if not in_process:  # this run's fork server builds its steps' definitions once (_preload_definitions)
            os.environ[FORK_SERVER_DEFINITIONS] = json.dumps(
                {"data_root": processes.data_root, "release_options": processes.release_options})
        try:
            with dg.execute_job(reconstructable, instance, run_config=config, raise_on_error=False,
                                tags={**tags, "dagster/partition": partition}, asset_selection=asset_selection) as result:
                events, success, run_id = list(result.all_events), result.success, result.run_id
        finally:
            stop_fork_server()
            if before is None:
                os.environ.pop(FORK_SERVER_DEFINITIONS, None)
            else:
                os.environ[FORK_SERVER_DEFINITIONS] = before
    else:
        if defs is None:
            raise ValueError("execute: a run without processes needs the definitions")
        job_def = defs.resolve_job_def(job)
        if progress is not None:
            job_def = job_def.with_logger_defs({"progress": progress.logger_def(steps=steps)})
        outcome = job_def.execute_in_process(
            instance=instance, partition_key=partition, run_config=config, raise_on_error=False,
            tags=tags, asset_selection=asset_selection,
        )
        events, success, run_id = list(outcome.all_events), outcome.success, outcome.run_id
    refused_by = [] if success else run_refusals(events)
    return RunSummary(job, partition, success, run_id, _failures(events), refused_by)


def ingest_in_this_process(runs: list[tuple[str, str]], shared: Any, processes: StepProcesses, instance_ref: Any,
                           progress_start: float | None, results: Any, lane: int = 0) -> None:
    """Ingest runs of a run with a process per step, one after another in this process (started
    by :func:`ingest_in_processes`): ``runs`` first, then those it takes from the ``shared`` queue
    until its ``None``; each run's summary put on ``results`` as it ends, with ``lane``.

    In the run's own process, an ingest run leaves what the allocator kept of the register read
    behind: the run's process held about 0.56 GB at 300,000 persons and 0.85 GB at 1.2 million through
    the whole release, beside each step's own process. A process per ingest step costs 7-8
    minutes of imports over the demo's 15 runs; one process for a lane of them, one start.
    """
    end_with_parent()
    progress = Progress(start=progress_start) if progress_start is not None else None
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        for job, partition in itertools.chain(runs, iter(shared.get, None)):
            results.put((lane, execute(None, job, partition, instance, progress=progress, steps=False,
                                       processes=processes, in_process=True)))
            # a run's frames sit in reference cycles (its context, its events' errors) until collected:
            # the next wave's run would otherwise start with the last one's tables still resident
            gc.collect()
            release_free_memory()


@dataclass(frozen=True)
class IngestLanes:
    """The ingest runs of a run with a process per step, split among processes side by side: each
    lane's own runs first, in order, then the ``shared`` ones, each taken by the first lane free."""

    own: list[list[tuple[str, str]]]
    shared: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(map(len, self.own)) + len(self.shared)


def ingest_lanes(runs: list[tuple[str, str]], register_job: str, cores: int) -> IngestLanes:
    """The ingest runs split into lanes, each a process of its own, side by side, where a second core
    is there to run them: the register's waves all in one (one register's tables at a time: each holds
    the population, 1.7 GB at 1.2 million persons), the surveys' first wave in the other, the surveys'
    other waves shared, in their order, so that the register's lane takes the surveys' left when its
    waves are done (at 1.2 million persons the surveys' lane alone ended 23 s after the register's:
    bench/README.md, "Twenty-seventh pass")."""
    registers = [run for run in runs if run[0] == register_job]
    surveys = [run for run in runs if run[0] != register_job]
    if cores < 2 or not registers or not surveys:
        return IngestLanes([runs] if runs else [])
    return IngestLanes([registers, surveys[:1]], surveys[1:])


def ingest_in_processes(lanes: IngestLanes, processes: StepProcesses, instance: dg.DagsterInstance,
                        progress: Progress | None, stop: threading.Event | None) -> Iterable[RunSummary]:
    """Each ingest run's summary as it ends, each lane of runs made in one process of its own
    (:func:`ingest_in_this_process`), the lanes side by side; stopped with ``stop``, or an error if
    a process ends early. A release waits for every ingest run: the register's waves (one lane, about
    a third of a core's time per wave at 1.2 million persons) and the surveys' (the other: a dozen
    small runs, shared by both once the register's are done) then end together, not one after the
    other (bench/README.md, "Twenty-first pass")."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    shared = context.Queue()
    for run in lanes.shared:
        shared.put(run)
    for _ in lanes.own:
        shared.put(None)  # one end for each lane
    children = [context.Process(target=ingest_in_this_process, name=f"synth-assets-ingest-{lane}", daemon=True,
                                args=(runs, shared, processes, instance.get_ref(),
                                      progress.start if progress else None, results, lane))
                for lane, runs in enumerate(lanes.own)]
    for child in children:
        child.start()
    done = 0
    try:
        while done < len(lanes):
            if stop is not None and stop.is_set():
                raise InterruptedError("pipeline stopped by a signal")
            try:
                _, summary = results.get(timeout=0.5)
            except queue.Empty:
                # a lane that took the shared queue's end exits 0 while the others still run
                ended = [child for child in children if not child.is_alive() and child.exitcode != 0]
                if (ended or not any(child.is_alive() for child in children)) and results.empty():
                    code = ended[0].exitcode if ended else 0
                    raise RuntimeError(f"the ingest process ended (exit code {code}) after "
                                       f"{done} of {len(lanes)} ingest runs") from None
                continue
            done += 1
            yield summary
        for child in children:
            child.join()
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()


def release_fallback_selection(defs: dg.Definitions) -> list[dg.AssetKey]:
    """The release job's assets a fallback run builds again (``fallback_selection``)."""
    return fallback_selection(defs.resolve_asset_graph(),
                              defs.resolve_job_def(RELEASE_JOB).asset_layer.executable_asset_keys)


def run_pipeline(
    defs: dg.Definitions,
    catalog: Catalog,
    layout: DataLayout,
    instance: dg.DagsterInstance,
    *,
    release_waves: list[str] | None = None,
    release_config: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    processes: StepProcesses | None = None,
) -> PipelineOutcome:
    """Ingest every delivered wave of every source, then build the release(s).

    ``stop`` (see ``run_until_signal``), once set, starts no further run. With ``progress``,
    runs print its lines (one per release step, replicate and metric group), each line of
    ``echo`` gets its time stamp, and Dagster's console log is left out; without it, the
    console log shows every event. With ``processes``, release runs go through the deployment's executor.
    """
    if progress is not None:
        echo = progress.line

    def run(job: str, partition: str, config: dict[str, Any] | None = None, **subset: Any) -> RunSummary:
        if stop is not None and stop.is_set():
            raise InterruptedError("pipeline stopped by a signal")
        # an ingest run (one source's wave, a few small steps) is not split into step processes: a
        # process per step cost 7-8 minutes of imports over the demo's 15 ingest runs
        return execute(defs, job, partition, instance, config, progress, steps=job == RELEASE_JOB,
                       processes=processes if job == RELEASE_JOB else None, **subset)

    waves = register_waves(instance, catalog, layout)
    for path, why in misnamed_files(layout.incoming, catalog.sources):
        echo(f"[IGNORED] {path} {why}")
    if not waves[catalog.register_name]:
        raise MissingSourceError(f"no register file under {layout.incoming}: run `synth-assets demo-data` first")
    targets = release_waves or waves[catalog.register_name][-1:]
    # Refused before any run: a release without one of its sources would either fail deep in
    # matching or, on an instance that saw the source before, fuse a file that is gone.
    problems = [p for wave in targets for p in missing_sources(catalog, layout, waves, wave)]
    if problems:
        raise MissingSourceError("refusing the release:\n" + "\n".join(f"  {p}" for p in problems))
    runs: list[RunSummary] = []
    # Observed first (a file is hashed only if new or changed on disk), so a wave whose file is
    # the one its raw_<source> was built from is not ingested again.
    deliveries = observe_deliveries(instance, catalog, layout.incoming)
    record_deliveries(instance, deliveries)
    stale = {(d.source, d.wave) for d in deliveries if needs_ingest(instance, d)}
    ingests: list[tuple[str, str, str]] = []
    for name in catalog.sources:
        for wave in waves[name]:
            if (name, wave) in stale:
                ingests.append((name, wave, ingest_job_name(name)))
            else:
                echo(f"[unchanged] ingest {name} wave {wave}: already ingested from this file")
    # with a process per step, the ingest runs are made in processes of their own: this one, which
    # orchestrates the release, then never holds a table
    source_of = {(job, wave): name for name, wave, job in ingests}
    if processes is not None and ingests:
        lanes = ingest_lanes([(job, wave) for _, wave, job in ingests], ingest_job_name(catalog.register_name),
                             available_cores())
        summaries = ingest_in_processes(lanes, processes, instance, progress, stop)
    else:
        summaries = (run(job, wave) for _, wave, job in ingests)
    for summary in summaries:  # as each run ends
        runs.append(summary)
        echo(f"[{'ok' if summary.success else 'FAILED'}] ingest {source_of[summary.job, summary.partition]} "
             f"wave {summary.partition}" + "".join(f"\n    {f}" for f in summary.failures))
    report = None
    for wave in targets:
        echo(f"release for wave {wave}: matching, training, generating, validating ...")
        summary = run(RELEASE_JOB, wave, release_config)
        runs.append(summary)
        echo(f"[{'ok' if summary.success else 'REFUSED'}] release wave {wave}"
             + "".join(f"\n    {f}" for f in summary.failures))
        report = latest_report(instance, wave, summary.run_id)  # each run writes its own report folder
        if summary.success:
            continue
        # In-process runs have no code location, so the daemon's release_fallback_sensor does not
        # see them: this process asks the sensor's own decision (which also finds a fallback run
        # already launched for this one) and runs the fallback itself.
        selection = release_fallback_selection(defs)
        refused_run = instance.get_run_by_id(summary.run_id)
        fallback = fallback_for(instance, refused_run, {keys.name(k) for k in selection}).run if refused_run else None
        if fallback is not None:
            echo(f"release wave {wave}: the gate refused {fallback.refused_family} "
                 f"({len(fallback.refused_by)} check(s)); training the fallback family {fallback.family} ...")
            summary.fallback = run(RELEASE_JOB, wave, fallback.run_config, asset_selection=selection,
                                   tags=fallback.tags)
            echo(f"[{'ok' if summary.fallback.success else 'REFUSED'}] release wave {wave} by the fallback "
                 f"family {fallback.family}" + "".join(f"\n    {f}" for f in summary.fallback.failures))
            report = latest_report(instance, wave, summary.fallback.run_id)
    release = latest_release(layout.public) if all(r.released for r in runs if r.job == RELEASE_JOB) else None
    return PipelineOutcome(runs, release, report if report and report.exists() else None)


def _preload_definitions() -> None:
    """In a run's fork server, which imports this module before it forks a step's process: the
    definitions the run's steps rebuild (``FORK_SERVER_DEFINITIONS``), built once there. Each step's
    process otherwise built them itself, 0.6 s of a core before its own work (a tiny release has 40
    steps). Anything wrong is left for the step, whose own build names it."""
    spec = os.environ.get(FORK_SERVER_DEFINITIONS)
    if not spec:
        return
    try:
        _definitions(**json.loads(spec))
    except Exception:  # noqa: BLE001 - the step's process rebuilds, and its error is the one to read
        _DEFINITIONS.clear()


_preload_definitions()
