"""Time and peak memory of one step that reads the register, materialized alone in a fresh process.

    PYTHONPATH=. .venv/bin/python bench/scale/register_step.py --data ROOT [--step calibration_targets] [--wave 2024] [--repeats 2]

On a data root whose register wave is ingested (``register_ingest.py`` leaves one; its instance is
not needed), the step (an asset key whose inputs are all in the warehouse: by default
``calibration_targets``, whose input is the harmonised register) is materialized with
``dg.materialize`` in a subprocess, its inputs loaded through the IO managers as a run loads them.
Printed: seconds, the subprocess's resident set once its imports and definitions are loaded, its
peak (``ru_maxrss``: the kernel's, exact) and the difference, the step's own rise. The same command
on an older checkout (its ``PYTHONPATH``) gives the before.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(root: Path, step: str, wave: str) -> None:
    import dagster as dg

    from bench.scale.resident import rss_mb
    from synth_assets.catalog import load_catalog
    from synth_assets.common.layout import DataLayout
    from synth_assets.defs.definitions import build_definitions
    from synth_assets.operations.runner import register_waves

    layout = DataLayout(root)
    defs = build_definitions(root)
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        register_waves(instance, load_catalog(layout.catalog), layout)
        base = rss_mb()
        started = time.perf_counter()
        result = dg.materialize([*(defs.assets or [])], selection=[dg.AssetKey(step)], partition_key=wave,
                                instance=instance, resources=defs.resources, raise_on_error=False)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"success": result.success, "seconds": seconds, "base": base, "peak": peak}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--step", default="calibration_targets")
    parser.add_argument("--wave", default="2024")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.data.resolve(), args.step, args.wave)
        return 0
    env = {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"}
    print("| step | s | base MiB | peak MiB | rise MiB |\n|---|---|---|---|---|")
    for _ in range(args.repeats):
        done = subprocess.run([sys.executable, __file__, "--data", str(args.data), "--step", args.step,
                               "--wave", args.wave, "--child"], env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| `{args.step}`{'' if r['success'] else ' (FAILED)'} | {r['seconds']:.1f} | {r['base']:.0f} | "
              f"{r['peak']:.0f} | {r['peak'] - r['base']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
