"""The validation report's population and linked tables made in a forked child beside its figures
(``ComputeResource.processes``): the report one process makes, the child's progress in the step's log."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from synth_assets_tests.defs.conftest import FAST_RELEASE, Prepared

WAVE = "2024"


def _report(prepared: Prepared, processes: int) -> tuple[dict, list[str]]:
    """``validation_report`` (not its checks) made again with ``processes``: its metrics.json, less
    the timings, and the run's log messages."""
    from synth_assets.defs.automation.jobs import RELEASE_JOB
    from synth_assets.defs.definitions import build_definitions

    defs = build_definitions(prepared.root)
    job = defs.resolve_job_def(RELEASE_JOB).get_subset(
        asset_selection={dg.AssetKey("validation_report")}, asset_check_selection=set())
    with prepared.instance() as instance:
        result = job.execute_in_process(
            instance=instance, partition_key=WAVE,
            run_config={"ops": {"validation_report": FAST_RELEASE["ops"]["validation_report"]},
                        "resources": {"compute": {"config": {"processes": processes}}}})
        assert result.success
        messages = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]
        verdict = result.output_for_node("validation_report")
    content = json.loads(Path(verdict["report_dir"], "metrics.json").read_text())
    content["details"].pop("timings_s")
    return content, messages


def test_tables_made_beside_the_figures_are_the_report_one_process_makes(release_copy: Prepared):
    one, one_log = _report(release_copy, 1)
    two, two_log = _report(release_copy, 2)
    assert any(name.startswith("population: ") for name in two["tables"])
    assert any(name.startswith("linked: ") for name in two["tables"])
    assert two == one  # every figure and every table
    for log in (one_log, two_log):  # the child's lines reach the step's log as the step's own did
        assert "population tables: calibration residuals, missing shares" in log
        assert "linked tables: distributions against the surveys" in log
        assert any(m.startswith("metrics: kmarginal (") for m in log)
    # each child's own peak, beside the step's: the tables were made in a process of their own
    for label in ("the figures", "the tables"):
        assert any(m.startswith(f"{label}: its process's peak resident memory") for m in two_log), label
    assert not any("its process's peak" in m for m in one_log)
