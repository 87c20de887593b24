"""Data Docs builds: templates compiled once a process (``share_compiled_templates``) against
Great Expectations' own way (every page view compiles its templates again).

    PYTHONPATH=. .venv/bin/python bench/validation/data_docs.py [--builds 8] [--rows 3000]

Each way runs in a fresh process of its own (the shared templates live for a process): ``--builds``
validations of a small person suite, three suite names in turn, each stored in a file-system project
and its Data Docs rebuilt (``run_suite`` with ``docs``), as a release's checks do. Prints the first
build's seconds (the compiling one either way), the median of the others and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def builds(count: int, rows: int, shared: bool) -> list[float]:
    """Seconds of each of ``count`` ``run_suite`` calls with Data Docs, in this process."""
    import pandas as pd

    from synth_assets.common import expectations

    if not shared:  # GE's own: each page view's Jinja environment compiles its templates
        expectations.share_compiled_templates = lambda: None
    spec = {"name": "persons", "required_columns": ["person_id", "age"], "ranges": {"age": {"min": 0, "max": 120}},
            "categories": {"status": [1, 2]}, "special_values": {"age": [-8, -9], "status": [-8]}}
    frame = pd.DataFrame({"person_id": range(rows), "age": [30] * rows, "status": [1] * rows})
    seconds = []
    with tempfile.TemporaryDirectory() as root:
        for i in range(count):
            started = time.perf_counter()
            expectations.run_suite(frame, expectations.table_suite({**spec, "name": f"persons_{i % 3}"}),
                                   docs=expectations.DataDocs(Path(root), run_name=f"run {i}"))
            seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--builds", type=int, default=8)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--child", choices=["shared", "own"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(builds(args.builds, args.rows, args.child == "shared")))
        return
    found = {}
    for way in ("own", "shared"):
        out = subprocess.run([sys.executable, __file__, "--builds", str(args.builds), "--rows", str(args.rows),
                              "--child", way], check=True, capture_output=True, text=True).stdout
        found[way] = json.loads(out.strip().splitlines()[-1])
    print(f"{args.builds} builds of {args.rows:,} rows, each way in a fresh process\n")
    print("| templates | first build: s | median of the others: s |\n|---|---|---|")
    for way, label in (("own", "compiled by every view (GE's own)"), ("shared", "compiled once a process")):
        print(f"| {label} | {found[way][0]:.2f} | {statistics.median(found[way][1:]):.3f} |")
    print(f"\nratio of the medians: {statistics.median(found['own'][1:]) / statistics.median(found['shared'][1:]):.2f}")


if __name__ == "__main__":
    main()
