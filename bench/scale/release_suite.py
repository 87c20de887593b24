"""Time and peak memory of the release's Great Expectations suite (``rules_and_categories_hold``), its
batches validated in one process or side by side in forked children (issue 16 point 4).

    PYTHONPATH=. .venv/bin/python bench/scale/release_suite.py --data ROOT [--processes 1 2]

Reads a finished run's release (``warehouse/fictitious_dataset/<latest wave>.parquet``, never written)
and validates it as the check does (``validate_chunks`` of its row groups, the catalog's suite and
rules, Data Docs kept in a temporary project), once per ``--processes`` value, each in a subprocess
of its own. Per run: seconds, the verdict and its text's hash (the same report whatever the count),
and the peak of the subprocess tree's proportional set size (PSS, a page shared by the fork counted
once), polled every 0.2 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.scale.resident import TreePeakPoller


def child(data: Path, processes: int) -> None:
    from synth_assets.catalog import load_catalog
    from synth_assets.catalog.expectations import fictitious_suite_spec, validate_chunks
    from synth_assets.common.expectations import DataDocs
    from synth_assets.common.frames import ParquetTable

    release = ParquetTable(sorted((data / "warehouse" / "fictitious_dataset").glob("*.parquet"))[-1])
    spec = fictitious_suite_spec(load_catalog(data / "catalog.yaml"), release.empty())
    with tempfile.TemporaryDirectory() as docs:
        started = time.perf_counter()
        report = validate_chunks(release.frames(), spec, docs=DataDocs(Path(docs), run_name="bench"),
                                 processes=processes)
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": release.num_rows, "success": report.success,
                      "report": hashlib.sha256(report.describe().encode()).hexdigest()[:12]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.data.resolve(), args.child)
        return
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
    print(f"load average at the start {os.getloadavg()[0]:.1f}")
    print("| processes | rows | s | verdict | report (sha256) | peak PSS of its processes MiB |\n|---|---|---|---|---|---|")
    for processes in args.processes:
        process = subprocess.Popen([sys.executable, __file__, "--data", str(args.data), "--child", str(processes)],
                                   stdout=subprocess.PIPE, text=True, env=env)
        with TreePeakPoller(process.pid) as tree:
            out, _ = process.communicate()
        facts = json.loads(out.strip().splitlines()[-1])
        print(f"| {processes} | {facts['rows']:,} | {facts['seconds']:.1f} | {'passed' if facts['success'] else 'failed'} "
              f"| {facts['report']} | {tree.peak:.0f} |", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
