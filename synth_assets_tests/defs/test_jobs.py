"""Every step of the jobs hands its freed memory back to the system when it ends, failed or not, and
says what its own peak was."""

import platform

import dagster as dg
import pytest

from synth_assets.defs.automation import jobs


def test_the_jobs_carry_the_memory_hooks():
    from pathlib import Path

    from synth_assets.catalog import load_catalog

    catalog = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml")
    for job in jobs.build_jobs(catalog):
        assert set(job.hooks) >= jobs.STEP_HOOKS, job.name


@pytest.mark.parametrize("fails", [False, True])
def test_each_step_releases_memory_after_it_ends(monkeypatch, fails):
    calls: list[str] = []
    monkeypatch.setattr(jobs, "release_free_memory", lambda: calls.append("released") or True)

    @dg.asset
    def first() -> int:
        return 1

    @dg.asset
    def second(first: int) -> int:
        if fails:
            raise ValueError("broken")
        return first + 1

    job = dg.define_asset_job("two_steps", hooks=jobs.STEP_HOOKS)
    defs = dg.Definitions(assets=[first, second], jobs=[job])
    result = defs.resolve_job_def("two_steps").execute_in_process(raise_on_error=False)
    assert result.success is not fails
    assert calls == ["released", "released"]  # once per step, the failed one too


@pytest.mark.skipif(platform.system() != "Linux", reason="the kernel's high-water mark: Linux only")
def test_each_step_of_a_run_in_one_process_reports_its_own_peak():
    """One process runs both steps: the second's peak is its own, not the first's 500 MB, and each
    reaches the step's progress line."""
    import re

    import numpy as np

    from synth_assets.operations.progress import Progress

    @dg.asset
    def large() -> int:
        block = np.ones(500_000_000 // 8)
        return int(block[0])

    @dg.asset
    def small(large: int) -> int:
        return large + 1

    lines: list[str] = []
    job = dg.define_asset_job("two_steps", hooks=jobs.STEP_HOOKS)
    job_def = dg.Definitions(assets=[large, small], jobs=[job]).resolve_job_def("two_steps")
    job_def = job_def.with_logger_defs({"progress": Progress(echo=lines.append).logger_def()})
    assert job_def.execute_in_process(run_config={"loggers": {"progress": {}}}).success
    peaks = {}
    for line in lines:
        if (match := re.search(r"done (\w+) \([\d.]+ s, peak ([\d.]+) GB, CPU [\d.]+ s\)", line)):
            peaks[match[1]] = float(match[2])
    assert set(peaks) == {"large", "small"}, lines
    assert peaks["large"] >= peaks["small"] + 0.4, peaks


@pytest.mark.skipif(platform.system() == "Windows", reason="CPU time from getrusage: POSIX only")
def test_each_step_of_a_run_in_one_process_reports_its_own_cpu_time():
    """One process runs both steps: the busy one's CPU time is its own, the idle one's is not the
    busy one's, and each reaches the step's progress line and the event log."""
    import re
    import time

    from synth_assets.operations.progress import Progress

    @dg.asset
    def busy() -> int:
        start = time.thread_time()
        while time.thread_time() - start < 0.6:
            pass
        return 1

    @dg.asset
    def idle(busy: int) -> int:
        time.sleep(0.3)
        return busy + 1

    lines: list[str] = []
    job = dg.define_asset_job("two_steps", hooks=jobs.STEP_HOOKS)
    job_def = dg.Definitions(assets=[busy, idle], jobs=[job]).resolve_job_def("two_steps")
    job_def = job_def.with_logger_defs({"progress": Progress(echo=lines.append).logger_def()})
    instance = dg.DagsterInstance.ephemeral()
    result = job_def.execute_in_process(run_config={"loggers": {"progress": {}}}, instance=instance)
    assert result.success
    cpu = {}
    for line in lines:
        if (match := re.search(r"done (\w+) \([\d.]+ s, (?:peak [\d.]+ GB, )?CPU ([\d.]+) s\)", line)):
            cpu[match[1]] = float(match[2])
    assert set(cpu) == {"busy", "idle"}, lines
    assert cpu["busy"] >= 0.6 and cpu["idle"] < cpu["busy"] - 0.3, cpu
    # the event log (the UI's step log) has each step's line too
    logged = {entry.step_key for entry in instance.all_logs(result.run_id) if entry.user_message.startswith("CPU time ")}
    assert logged == {"busy", "idle"}
