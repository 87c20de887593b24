"""Peak resident memory of the ingest runs, one after another in one process, as a run makes them.

    PYTHONPATH=. .venv/bin/python bench/scale/ingest_runs.py --data ROOT [--runs register:2022 register:2023 ...]
        [--definitions-in-process]

On a finished run's data root (``bench/scale/run.py`` leaves one in /tmp), each ingest run
(default: every register wave delivered, then each survey's latest) is made again in this
process as ``synth-assets run``'s ingest process makes it (``runner.execute`` with
``in_process``: the job rebuilt from the data root, its steps in this process), a run's
tables collected before the next. ``--definitions-in-process`` makes them with the
definitions' ``execute_in_process`` instead, nothing collected between runs (the ingest
process's way before the nineteenth pass: every step's output kept in the run's result; run
it with that version's code for the whole of that way). A thread reads VmRSS every 50 ms; per
run: seconds, the process's peak so far and its resident set at the run's end. The runs
write to the root's instance and warehouse: the same files, read again.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", nargs="*", help="source:wave, in order (default: the register's waves, then "
                                                  "each survey's latest)")
    parser.add_argument("--definitions-in-process", action="store_true")
    args = parser.parse_args()
    data = args.data.resolve()
    os.environ.setdefault("DAGSTER_HOME", str(data / "dagster_home"))

    import dagster as dg

    from bench.scale.resident import PeakPoller, rss_mb
    from synth_assets.catalog import load_catalog
    from synth_assets.common.layout import DataLayout
    from synth_assets.common.memory import release_free_memory
    from synth_assets.ingest import discover_waves
    from synth_assets.operations.runner import StepProcesses, execute

    poller = PeakPoller()
    layout = DataLayout(data)
    catalog = load_catalog(layout.catalog)
    runs = [tuple(run.split(":", 1)) for run in args.runs] if args.runs else [
        *((catalog.register_name, wave) for wave in discover_waves(layout.incoming, catalog.register)),
        *((name, sorted(discover_waves(layout.incoming, source))[-1]) for name, source in catalog.surveys.items()
          if discover_waves(layout.incoming, source))]
    defs = None
    if args.definitions_in_process:
        from synth_assets.defs.definitions import build_definitions

        defs = build_definitions(data)
    way = "definitions' execute_in_process" if defs else "as the run's ingest process"
    print(f"Command: `PYTHONPATH=. .venv/bin/python bench/scale/ingest_runs.py {' '.join(sys.argv[1:])}` ({way})")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"base {rss_mb():.0f} MB\n")
    print("| run | s | peak so far MB | resident at its end MB |\n|---|---|---|---|")
    with dg.DagsterInstance.get() as instance:
        for source, wave in runs:
            started = time.perf_counter()
            job = f"ingest_{source}"
            if defs is not None:  # nothing collected between runs, as before
                summary = execute(defs, job, wave, instance, steps=False)
            else:
                summary = execute(None, job, wave, instance, steps=False, processes=StepProcesses(str(data)),
                                  in_process=True)
                gc.collect()  # as the ingest process does between runs
                release_free_memory()
            if not summary.success:
                raise SystemExit(f"ingest {source} {wave} failed: {summary}")
            print(f"| {source} {wave} | {time.perf_counter() - started:.1f} | {poller.peak:.0f} | {rss_mb():.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
