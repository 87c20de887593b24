"""Time and peak memory of a stored table's uniqueness test: the key's column read whole, or its hashes a share at a time.

    PYTHONPATH=. .venv/bin/python bench/scale/unique_keys.py --data ROOT [--wave 2024] [--copies 1 10]

On a finished run's data root (``bench/scale/run.py`` keeps them), the delivered register wave
(``raw_<register>``) is the table; ``--copies k`` stacks it k times with its ids shifted (k copies
of 1.2 million persons: a country's register of 12 million ids, all unique), written in the run's
row groups. Each way runs in a fresh process: ``whole`` (the key's column read whole, then pandas'
``duplicated``, as the ingest checks judged it until the thirty-third pass) and ``shares``
(``expectations._stored_uniqueness``). Printed: seconds, the process's resident set before the
test (imports, the file opened) and its peak (``ru_maxrss``), so the test's own rise is peak minus base.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _stacked(source: Path, key: str, copies: int, folder: Path) -> Path:
    """``source``'s key column ``copies`` times over, each copy's ids past the last one's, in its row groups."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if copies == 1:
        return source
    file = pq.ParquetFile(source)
    span = pc.max(file.read([key]).column(key)).as_py() + 1
    path = folder / f"stacked_{copies}.parquet"
    with pq.ParquetWriter(path, file.schema_arrow.empty_table().select([key]).schema) as writer:
        for copy in range(copies):
            for group in range(file.num_row_groups):
                table = file.read_row_group(group, columns=[key])
                writer.write_table(pa.table({key: pc.add(table.column(key), copy * span)}))
    return path


def _child(path: Path, key: str, way: str) -> None:
    from synth_assets.catalog import expectations
    from synth_assets.common.frames import ParquetTable

    table = ParquetTable(path)
    rows = table.num_rows
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    started = time.perf_counter()
    failure = (expectations._uniqueness(table.read([key]), key) if way == "whole"
               else expectations._stored_uniqueness(table, key))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"| {rows:,} | {way} | {seconds:.2f} | {base} | {peak} | {peak - base} | {failure is None} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--wave", default="2024")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), args.child[1], args.child[2])
        return
    from synth_assets.catalog import load_catalog
    from synth_assets.catalog.expectations import raw_suite_spec

    catalog = load_catalog(args.data / "catalog.yaml")
    name = catalog.register_name
    key = raw_suite_spec(catalog, name)["unique"][0]
    source = args.data / f"warehouse/raw_{name}/{args.wave}.parquet"
    print("| ids | way | s | base MiB | peak MiB | rise MiB | unique |\n|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="unique-keys-") as folder:
        for copies in args.copies:
            path = _stacked(source, key, copies, Path(folder))
            for way in ("whole", "shares"):
                subprocess.run([sys.executable, __file__, "--child", str(path), key, way], check=True)


if __name__ == "__main__":
    main()
