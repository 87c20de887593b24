"""Peak resident memory and time of the steps that make the release's replicates, each alone in a fresh process.

    PYTHONPATH=. .venv/bin/python bench/scale/release_steps.py --data ROOT [--replicates 3] [--family cart] [--steps NAME ... | --population-checks]
        [--set model.params.n_jobs=2 ...]

On a finished run's data root (``synth-assets run --data ROOT ...``), each step (default
``matched_replicates``, ``fictitious_dataset`` and every ``linked_<survey>``) is materialized
alone for the latest wave, without its checks, in a subprocess of its own (an asset check,
``ASSET:CHECK``, or ``--population-checks``: the check alone, on the stored asset; its
evaluation is recorded in the root's instance like a run's), through the
release job with the run's settings (``fictitious.replicates``, ``--family`` as the run's: the default
is the settings' own, neural, for ``population_model``; the model and every other
input are the run's, read from the warehouse). The step writes its output back to the
warehouse: a rerun with the same inputs and seeds, so the data root stays a finished run's.
Per step: seconds, the resident set once imports and definitions are loaded (the process's
base) and the process's peak (``ru_maxrss`` of the subprocess from ``wait4``: kernel-kept,
exact), so the step's own rise is peak minus base. Not tracemalloc: it misses NumPy and
Arrow buffers. A step that forks children (``--set compute.processes=2``: the region step's
replicates side by side) needs their memory together: the tree's proportional set size (PSS,
``smaps_rollup``: a page shared by the fork counted once) is polled every 0.2 s beside it.
Run with each version's code on the same data root to compare them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.scale.resident import TreePeakPoller, rss_mb

#: The release's checks whose inputs are population-sized (``--population-checks``).
POPULATION_CHECKS = [
    "matched_dataset:household_variables_constant",
    *(f"fictitious_dataset:{check}" for check in ("household_variables_constant", "calibrated_to_register",
                                                  "amounts_top_coded", "no_real_record_copied",
                                                  "rules_and_categories_hold")),
    *(f"linked_{survey}:aggregates_agree_with_persons" for survey in ("tus", "mobility")),
]


def child(data: Path, step: str, replicates: int, family: str | None, settings: list[str]) -> None:
    """Materialize ``step`` alone (no checks) and print the base resident set as JSON."""
    import dataclasses

    import dagster as dg

    from synth_assets.defs.automation.jobs import RELEASE_JOB
    from synth_assets.defs.definitions import build_definitions
    from synth_assets.defs.deployment import Deployment
    from synth_assets.operations.settings import parse_assignments, release_run_config

    deployment = dataclasses.replace(Deployment.from_environment(), data_root=data)
    defs = build_definitions(deployment=deployment)
    wave = sorted(p.stem for p in (data / "warehouse" / "matched_dataset").glob("*.parquet"))[-1]
    checked = ":" in step
    if checked:  # an asset check alone, its inputs read from the warehouse as a run's step reads them
        asset, check = step.split(":")
        job = defs.resolve_job_def(RELEASE_JOB).get_subset(
            asset_selection=set(), asset_check_selection={dg.AssetCheckKey(dg.AssetKey(asset), check)})
        step = asset
    else:
        keys = set(defs.resolve_assets_def(dg.AssetKey(step)).keys)  # a multi-asset's whole (matched_dataset)
        job = defs.resolve_job_def(RELEASE_JOB).get_subset(asset_selection=keys, asset_check_selection=set())
    config = release_run_config({"fictitious.replicates": replicates, **({"model.family": family} if family else {}),
                                 **parse_assignments(settings)})
    # the step's alone (a check takes none)
    config["ops"] = {op: value for op, value in config.get("ops", {}).items() if op == step and not checked}
    base = rss_mb()
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, partition_key=wave, raise_on_error=False, run_config=config)
    checks = result.get_asset_check_evaluations()
    success = result.success and all(e.passed for e in checks)
    print(json.dumps({"success": success, "base_mb": base, "seconds": time.perf_counter() - started,
                      "rows": _rows(data, step, wave)}), flush=True)


def _rows(data: Path, step: str, wave: str) -> int:
    import pyarrow.parquet as pq

    path = data / "warehouse" / step / f"{wave}.parquet"
    return int(pq.ParquetFile(path).metadata.num_rows) if path.exists() else 0  # a model is no table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--family", default=None, help="model.family, as the run's (population_model)")
    parser.add_argument("--steps", nargs="+", default=None,
                        help="assets, or asset checks as ASSET:CHECK (fictitious_dataset:calibrated_to_register)")
    parser.add_argument("--population-checks", action="store_true",
                        help="every check of the release that holds a population's data (POPULATION_CHECKS)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a run setting, as `synth-assets run --set` (model.params.n_jobs=2)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data.resolve()
    if args.child:
        child(data, args.child, args.replicates, args.family, args.set)
        return
    steps = args.steps or (POPULATION_CHECKS if args.population_checks else [
        "matched_replicates", "fictitious_dataset", *sorted(p.name for p in (data / "warehouse").glob("linked_*"))])
    env = {**os.environ, "DAGSTER_HOME": str(data / "dagster_home"), "DAGSTER_DISABLE_TELEMETRY": "1"}
    print(f"load average at the start {os.getloadavg()[0]:.1f}")
    print("| step | rows written | s | base MB | peak MB | rise MB | peak PSS of its processes MiB |\n"
          "|---|---|---|---|---|---|---|")
    for step in steps:
        with tempfile.TemporaryFile("w+") as log:
            process = subprocess.Popen([sys.executable, __file__, "--data", str(data), "--replicates",
                                        str(args.replicates), "--child", step,
                                        *(["--family", args.family] if args.family else []),
                                        *(f"--set={item}" for item in args.set)],
                                       stdout=subprocess.PIPE, stderr=log, text=True, env=env)
            assert process.stdout is not None
            with TreePeakPoller(process.pid) as tree:
                out = process.stdout.read()
            _, status, usage = os.wait4(process.pid, 0)  # before Popen reaps it: its own ru_maxrss
            lines = out.strip().splitlines()
            facts = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
            if os.waitstatus_to_exitcode(status) != 0 or not facts.get("success"):
                log.seek(0)
                print(f"| {step} | failed | | | | | |\n{log.read()[-3000:]}", flush=True)
                continue
        peak = usage.ru_maxrss / 1024
        print(f"| {step} | {facts['rows']:,} | {facts['seconds']:.1f} | {facts['base_mb']:.0f} | {peak:.0f} | "
              f"{peak - facts['base_mb']:.0f} | {tree.peak:.0f} |", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
