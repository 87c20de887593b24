"""Every step of the jobs hands its freed memory back to the system when it ends, failed or not."""

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
