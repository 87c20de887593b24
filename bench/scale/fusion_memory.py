"""Peak resident memory of the matching's fusions, and of a table read whole, on a finished run's data root.

    PYTHONPATH=. .venv/bin/python bench/scale/fusion_memory.py --data ROOT [--wave 2024] [--read TABLE ...]

``fuse_sources`` (the matched dataset's fusions, one after another in this process) runs on the
root's harmonised register and latest donors, its resident set polled every 0.1 s; printed are the
seconds, the resident set once the inputs are read (Arrow's freed buffers handed back) and the
peak, then a hash of the matched data (equal hashes: the same records) and of the fusions'
diagnostics (their seconds left out). Run it with each version's code on one root to compare them.

``--read TABLE`` (a warehouse folder, e.g. ``matched_dataset``): instead, the table's latest file
read whole, in a fresh process each, by Arrow alone (``to_pandas`` with ``self_destruct``) and by
``common.frames.ParquetTable.read``; printed are the frame's size and the resident set each leaves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path


def resident_mib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))


def _fusions(root: Path, wave: str) -> None:
    import pandas as pd

    from synth_assets.catalog import load_catalog
    from synth_assets.common.frames import ParquetTable
    from synth_assets.matching.sources import fuse_sources

    catalog = load_catalog(root / "catalog.yaml")
    register = ParquetTable(root / f"warehouse/harmonised_{catalog.register_name}/{wave}.parquet").read()
    surveys = {}
    for name in catalog.surveys:
        latest = sorted((root / f"warehouse/donor_{name}").glob("*.parquet"))[-1]
        surveys[name] = (latest.stem, ParquetTable(latest).read())
    base = resident_mib()
    peak = [base]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], resident_mib())

    threading.Thread(target=poll, daemon=True).start()
    started = time.perf_counter()
    matched, fusions = fuse_sources(catalog, register, surveys, seed=0, processes=1)
    seconds = time.perf_counter() - started
    done.set()

    def without_seconds(value):
        if isinstance(value, dict):
            return {k: without_seconds(v) for k, v in value.items() if "seconds" not in k}
        return [without_seconds(v) for v in value] if isinstance(value, list) else value

    diagnostics = json.dumps(without_seconds([f.diagnostics for f in fusions]), sort_keys=True, default=str)
    print(f"| {len(register):,} persons | {seconds:.1f} s | inputs read: {base:,} MiB | "
          f"peak {max(peak[0], resident_mib()):,} MiB | data {int(pd.util.hash_pandas_object(matched, index=False).sum())} "
          f"| diagnostics {hashlib.sha1(diagnostics.encode()).hexdigest()[:12]} |")


def _read(path: Path, how: str) -> None:
    import pyarrow.parquet as pq

    from synth_assets.common.frames import ParquetTable

    before = resident_mib()
    if how == "arrow":
        table = pq.read_table(path)
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
    else:
        frame = ParquetTable(path).read()
    size = frame.memory_usage(deep=True).sum() / 2**20
    print(f"| {path.parent.name} | {how} | frame {size:,.0f} MiB | left resident {resident_mib() - before:,} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--wave", default="2024")
    parser.add_argument("--read", nargs="+", default=None, metavar="TABLE")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _read(Path(args.child[0]), args.child[1])
    elif args.read:
        for table in args.read:
            path = sorted((args.data / "warehouse" / table).glob("*.parquet"))[-1]
            for how in ("arrow", "ParquetTable.read"):
                subprocess.run([sys.executable, __file__, "--data", str(args.data), "--child", str(path), how],
                               check=True)
    else:
        _fusions(args.data, args.wave)


if __name__ == "__main__":
    main()
