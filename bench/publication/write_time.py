"""The publication's file writes timed on a finished run's data: the release's persons and linked tables.

    PYTHONPATH=. .venv/bin/python bench/publication/write_time.py --data ROOT [--repeats 3]

On a finished run's data root, ``publish_release`` is called as ``public_dataset`` calls it, on the
warehouse's ``fictitious_dataset`` and ``linked_<survey>`` files (left on disk, as the step reads
them), into a temporary folder: with the tables written one at a time (one thread, as before the
twenty-sixth pass) and side by side (every core), alternately, ``--repeats`` times each. Prints each
try's wall seconds and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from synth_assets.common.frames import ParquetTable
from synth_assets.publication import ColumnInfo, LinkedTable, publish_release
from synth_assets.publication import release as release_module


def _latest(root: Path, asset: str) -> ParquetTable:
    return ParquetTable(str(sorted((root / "warehouse" / asset).glob("*.parquet"))[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a finished run's data root")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    persons = _latest(args.data, "fictitious_dataset")
    linked = {}
    for folder in sorted((args.data / "warehouse").glob("linked_*")):
        table = _latest(args.data, folder.name)
        columns = {c: ColumnInfo(c, "any") for c in table.columns if c != "replicate"}
        linked[folder.name.removeprefix("linked_")] = LinkedTable(table, "record", ["person_id"], columns)
    cores = release_module.available_cores
    seconds: dict[str, list[float]] = {"one at a time": [], "side by side": []}
    with tempfile.TemporaryDirectory(prefix="publication-", dir=args.data) as work:
        for repeat in range(args.repeats):
            for label in seconds:
                release_module.available_cores = (lambda: 1) if label == "one at a time" else cores
                started = time.perf_counter()
                publish_release(persons, public_dir=Path(work) / f"{label}-{repeat}", wave="2024",
                                report_dir=Path(work), provenance={}, model={}, metrics={}, checks=[],
                                columns={c: ColumnInfo(c, "any") for c in persons.columns if c != "replicate"},
                                linked=linked)
                seconds[label].append(time.perf_counter() - started)
                print(f"{label}: {seconds[label][-1]:.1f} s")
    release_module.available_cores = cores
    for label, values in seconds.items():
        print(f"median {label}: {statistics.median(values):.1f} s ({len(values)} tries)")


if __name__ == "__main__":
    main()
