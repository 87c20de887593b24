"""Time and peak memory of the register's two Great Expectations checks, whole or a batch at a time.

    PYTHONPATH=. .venv/bin/python bench/scale/register_suites.py --data ROOT [--wave 2024] [--batch 0 200000]

On a finished run's data root (``bench/scale/run.py`` keeps them), each check (the delivered
file's suite on ``raw_<register>``, the common schema's on ``harmonised_<register>``) runs in a
fresh process per batch size (0: the table whole, in one Great Expectations validation): the
table is read, then ``validate_table`` runs; printed are its seconds, the process's resident set
once the table is loaded and its peak (``ru_maxrss``), so the check's own rise is peak minus base.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path


def _child(root: Path, which: str, wave: str, batch: int) -> None:
    import pandas as pd

    from synth_assets.catalog import load_catalog
    from synth_assets.catalog.expectations import harmonised_suite_spec, raw_suite_spec, validate_table

    catalog = load_catalog(root / "catalog.yaml")
    name = catalog.register_name
    data = pd.read_parquet(root / f"warehouse/{which}_{name}/{wave}.parquet")
    spec = (raw_suite_spec if which == "raw" else harmonised_suite_spec)(catalog, name)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    started = time.perf_counter()
    report = validate_table(data, spec, batch_rows=batch or len(data) + 1)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"| {which}_{name} | {len(data):,} | {'whole' if not batch else f'{batch:,}'} | {seconds:.1f} | {base} | "
          f"{peak} | {peak - base} | {report.success} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--wave", default="2024")
    parser.add_argument("--batch", type=int, nargs="+", default=[0, 200_000])
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.data, args.child[0], args.wave, int(args.child[1]))
        return 0
    print("| check | rows | batch rows | s | base MiB | peak MiB | rise MiB | passed |\n|---|---|---|---|---|---|---|---|")
    for which in ("raw", "harmonised"):
        for batch in args.batch:
            subprocess.run([sys.executable, __file__, "--data", str(args.data), "--wave", args.wave,
                            "--child", which, str(batch)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
