"""Time and peak memory of each step of one register wave's ingest (read, harmonise, their checks).

    PYTHONPATH=. .venv/bin/python bench/scale/register_ingest.py --data ROOT [--wave 2024] [--repeats 1]

On a data root holding the demo's delivered files (``synth-assets demo-data --output ROOT``, with
the catalog copied in; its ``warehouse`` is overwritten), the ``ingest_register`` job of one wave
runs in a fresh process, its steps one after another there (``synth-assets run``'s ingest process:
``operations.runner.execute`` with ``in_process``). Printed per step: its seconds and its own peak
resident memory (the step's log line: the kernel's high-water mark, reset as each step ends, so
the process's ``ru_maxrss`` says nothing of the job), and the process's resident set after its
imports. The same command on an older checkout (its ``PYTHONPATH``) gives the before.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def _child(root: Path, wave: str) -> None:
    import dagster as dg

    from synth_assets.catalog import load_catalog
    from synth_assets.common.layout import DataLayout
    from synth_assets.operations.runner import StepProcesses, execute, register_waves

    layout = DataLayout(root)
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        register_waves(instance, load_catalog(layout.catalog), layout)
        base = _resident_mib()
        summary = execute(None, "ingest_register", wave, instance, processes=StepProcesses(str(root)), in_process=True)
        steps: dict[str, dict[str, float]] = {}
        for record in instance.get_records_for_run(summary.run_id).records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is not None and event.event_type_value == "STEP_SUCCESS":
                steps.setdefault(event.step_key, {})["s"] = event.event_specific_data.duration_ms / 1000
            found = re.search(r"peak resident memory ([0-9.]+) GB", entry.user_message or "")
            if found and entry.step_key:
                steps.setdefault(entry.step_key, {})["peak_mib"] = float(found.group(1)) * 1e9 / 2**20
        print(json.dumps({"success": summary.success, "base_mib": base, "steps": steps}))


def _resident_mib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS:"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--wave", default="2024")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.data.resolve(), args.wave)
        return 0
    env = {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"}
    for repeat in range(args.repeats):
        done = subprocess.run([sys.executable, __file__, "--data", str(args.data), "--wave", args.wave, "--child"],
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if repeat == 0:
            print("| repeat | step | s | own peak MiB |\n|---|---|---|---|")
        for step, figures in result["steps"].items():
            print(f"| {repeat + 1} | `{step}` | {figures.get('s', float('nan')):.1f} | {figures.get('peak_mib', float('nan')):.0f} |")
        print(f"| {repeat + 1} | (the process after its imports) | | {result['base_mib']} |"
              + ("" if result["success"] else " FAILED"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
