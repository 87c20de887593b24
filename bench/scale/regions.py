"""Time and peak memory of the fictitious dataset's steps with 1, 2, 3... regions, run in parallel.

    PYTHONPATH=. .venv/bin/python bench/scale/regions.py --data ROOT [--regions 1 2 3] [--replicates 2]

On a finished run's data root (``synth-assets run --data ROOT ...``, or a root ``scale/run.py``
left), for each number of regions R: the catalog's municipalities are split into R groups of
about equal register population (``release.regions``; R = 1 declares none), then
``fictitious_dataset`` and its checks are materialized for the latest wave through the real
multiprocess executor (two steps at a time, as a run launched from the UI), with every other
input the run's. Per step: its duration (Dagster's) and the peak resident set of its process
(VmRSS from /proc, polled every 0.2 s; each step of the multiprocess executor is a process of
its own). Also the whole materialization's wall time and the gate checks' verdicts. The data
root's catalog is restored at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml


def release_job() -> dg.JobDefinition:
    """The release job of the data root in ``SYNTH_ASSETS_DATA`` (each step's process rebuilds it)."""
    from synth_assets.defs.definitions import build_definitions

    return build_definitions().resolve_job_def("release")


def balanced_groups(persons: pd.Series, regions: int) -> dict[str, list[str]]:
    """Municipalities in ``regions`` groups of about equal persons (largest first, to the lightest)."""
    groups: dict[str, list[str]] = {f"region_{i + 1}": [] for i in range(regions)}
    load = dict.fromkeys(groups, 0)
    for name, count in persons.sort_values(ascending=False).items():
        lightest = min(load, key=lambda g: load[g])
        groups[lightest].append(str(name))
        load[lightest] += int(count)
    return groups


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0


def descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as children:
                kids = [int(k) for k in children.read().split()]
        except OSError:
            kids = []
        found += kids
        frontier += kids
    return found


def measure(data: Path, regions: int, replicates: int) -> None:
    catalog_path = data / "catalog.yaml"
    raw = yaml.safe_load(catalog_path.read_text(encoding="utf-8"))
    register = pd.read_parquet(sorted((data / "warehouse" / "matched_dataset").glob("*.parquet"))[-1],
                               columns=["municipality"])
    raw["release"].pop("regions", None)
    if regions > 1:
        raw["release"]["regions"] = {"variable": "municipality",
                                     "groups": balanced_groups(register["municipality"].astype(str).value_counts(),
                                                               regions)}
    catalog_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    wave = sorted(p.stem for p in (data / "warehouse" / "matched_dataset").glob("*.parquet"))[-1]
    peaks: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            for pid in descendants(os.getpid()):
                peaks[pid] = max(peaks.get(pid, 0.0), rss_mb(pid))
            time.sleep(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(release_job), instance, tags={"dagster/partition": wave},
                                run_config={"ops": {"fictitious_dataset": {"config": {"replicates": replicates}}}},
                                asset_selection=[dg.AssetKey("fictitious_dataset")], raise_on_error=False)
        seconds = time.perf_counter() - started
        done.set()
        poller.join()
        rows = []
        for event in instance.all_logs(result.run_id):
            dagster_event = event.dagster_event
            if dagster_event is None or dagster_event.event_type != dg.DagsterEventType.STEP_SUCCESS:
                continue
            rows.append((event.step_key, dagster_event.event_specific_data.duration_ms / 1000,
                         peaks.get(dagster_event.pid or -1, 0.0)))
        verdicts = {e.event_specific_data.check_name: e.event_specific_data.passed for e in result.all_events
                    if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    print(f"\n{regions} region(s), {replicates} replicates: {seconds:.0f} s in all, success {result.success}, "
          f"checks {verdicts}")
    print("| step | s | peak MB |\n|---|---|---|")
    for step, step_seconds, peak in rows:
        if step and step.startswith("fictitious_dataset"):
            print(f"| {step} | {step_seconds:.1f} | {peak:,.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--regions", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--replicates", type=int, default=2)
    args = parser.parse_args()
    data = args.data.resolve()
    os.environ["SYNTH_ASSETS_DATA"] = str(data)
    os.environ.setdefault("DAGSTER_HOME", str(data / "dagster_home"))
    os.environ["SYNTH_ASSETS_EXECUTOR"] = "multiprocess"
    backup = data / "catalog.yaml.regions-bench"
    shutil.copy(data / "catalog.yaml", backup)
    print(f"load average at the start {os.getloadavg()[0]:.1f}; {sys.executable}")
    try:
        for regions in args.regions:
            measure(data, regions, args.replicates)
    finally:
        shutil.move(backup, data / "catalog.yaml")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
