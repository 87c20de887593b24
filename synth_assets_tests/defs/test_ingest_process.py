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
        summary = execute(None, "ingest_register", "2024", instance, processes=StepProcesses(root), in_process=True)
        # the measure's control: a table held here on purpose (the stored harmonised wave, read whole)
        held = None if in_process else pd.read_parquet(layout.warehouse / "harmonised_register" / "2024.parquet")
        pids = {r.event_log_entry.dagster_event.pid for r in instance.get_records_for_run(summary.run_id).records
                if r.event_log_entry.dagster_event is not None
                and r.event_log_entry.dagster_event.event_type_value == "STEP_SUCCESS"}
        gc.collect()
        # the wave's records, raw (the delivered file's columns) or harmonised; the ingest steps hand on
        # stored files (WaveFile), which hold none
        harmonised = [o for o in gc.get_objects()
                      if isinstance(o, pd.DataFrame) and ("person_id" in o.columns or "PERS_ID" in o.columns)]
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
    left resident for the next (neither the delivered wave's records nor the harmonised ones: the
    steps stream them to their stored files and hand those on); the measure sees a table held."""
    ran = _ingest_in_a_fresh_process(data_root, tmp_path / "home", in_process=True)
    assert ran["success"]
    assert ran["pids"] == [ran["pid"]]
    assert ran["harmonised_alive"] == 0
    kept = _ingest_in_a_fresh_process(data_root, tmp_path / "home_in_process", in_process=False)
    assert kept["success"] and kept["harmonised_alive"] >= 1
