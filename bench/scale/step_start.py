"""What a step's process costs before its step runs: spawned afresh, or forked from a server.

    PYTHONPATH=. .venv/bin/python bench/scale/step_start.py [--data data] [--processes 6]

Each process does what a step's process of the multiprocess executor does before the step's
code: it rebuilds the release job (``job_for_step_processes``: imports, catalog, definitions).
``spawn`` starts a fresh interpreter each time (Dagster's default);
``forkserver`` forks each from a server that imported the job's module once (this project's
executor, ``synth_assets.defs.deployment``).
Processes one after another; per method the first (for the fork server: its start and the
preload) and the median of the others, wall seconds from ``start()`` to the child's report.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rebuild(data: str, started: float, queue) -> None:
    from synth_assets.operations.runner import job_for_step_processes

    job_for_step_processes("release", data, {})
    queue.put(time.time() - started)


def measure(method: str, data: str, processes: int) -> list[float]:
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["dagster._core.executor.multiprocess", "synth_assets.operations.runner"])
    queue = context.Queue()
    seconds = []
    for _ in range(processes):
        process = context.Process(target=rebuild, args=(data, time.time(), queue))
        process.start()
        seconds.append(queue.get())
        process.join()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data"))
    parser.add_argument("--processes", type=int, default=6)
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="step-start-"))  # nothing written to the data root
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| start method | first process: s | median of the others: s |\n|---|---|---|")
    for method in ("spawn", "forkserver"):
        seconds = measure(method, args.data, args.processes)
        print(f"| {method} | {seconds[0]:.2f} | {statistics.median(seconds[1:]):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
