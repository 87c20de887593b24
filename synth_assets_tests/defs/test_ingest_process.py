"""The ingest runs of a run with a process per step: in processes of their own (the register's lane and the surveys'), one run after another in each."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: One ingest run as the ingest process makes it, then what of its tables is still alive there.
INGEST_PROCESS = textwrap.dedent("""
    import gc, json, sys
    import dagster as dg
    import pandas as pd
    from synth_assets.catalog import load_catalog
    from synth_assets.common.layout import DataLayout
    from synth_assets.operations.runner import StepProcesses, execute, register_waves

    root, home, in_process = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    layout = DataLayout(__import__("pathlib").Path(root))
    with dg.DagsterInstance.local_temp(home) as instance:
        register_waves(instance, load_catalog(layout.catalog), layout)  # the waves, as partitions
        if in_process:
            summary = execute(None, "ingest_register", "2024", instance, processes=StepProcesses(root), in_process=True)
        else:  # the definitions' own in-process run
            from synth_assets.defs.definitions import build_definitions
            summary = execute(build_definitions(root), "ingest_register", "2024", instance)
        pids = {r.event_log_entry.dagster_event.pid for r in instance.get_records_for_run(summary.run_id).records
                if r.event_log_entry.dagster_event is not None
                and r.event_log_entry.dagster_event.event_type_value == "STEP_SUCCESS"}
        gc.collect()
        harmonised = [o for o in gc.get_objects() if isinstance(o, pd.DataFrame) and "person_id" in o.columns]
        print(json.dumps({"success": summary.success, "pids": sorted(pids), "pid": __import__("os").getpid(),
                          "harmonised_alive": len(harmonised)}))
""")


def _ingest_in_a_fresh_process(root: Path, home: Path, in_process: bool) -> dict:
    home.mkdir()
    (home / "dagster.yaml").touch()
    env = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", INGEST_PROCESS, str(root), str(home), "1" if in_process else "0"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform == "win32", reason="the step processes' fork server")
def test_an_ingest_run_in_its_process_keeps_none_of_its_tables(data_root, tmp_path):
    """The job rebuilt from the data root, its steps in this process, and no table of a finished run
    left resident for the next: ``execute_in_process`` keeps every step's output in its result (a
    register wave's raw and harmonised tables: 0.9 GB at 2 million persons, held through the wave's
    checks and into the next wave's run)."""
    ran = _ingest_in_a_fresh_process(data_root, tmp_path / "home", in_process=True)
    assert ran["success"]
    assert ran["pids"] == [ran["pid"]]
    assert ran["harmonised_alive"] == 0
    # the measure sees a kept table: the definitions' own in-process run keeps it in its result
    kept = _ingest_in_a_fresh_process(data_root, tmp_path / "home_in_process", in_process=False)
    assert kept["success"] and kept["harmonised_alive"] == 1
