"""The linked tables' generation and checks on a finished run's data: seconds and CPU seconds, labels as stored or as text.

    PYTHONPATH=. .venv/bin/python bench/scale/linked_checks.py --data ROOT [--survey tus mobility] [--as-text]

On a finished run's data root (``synth-assets run --data ROOT ...``), for each record survey,
what ``linked_<survey>`` and its checks compute, each on the stored tables, in this process:

- ``generate``: :func:`~synth_assets.synthesis.linked.linked_records` of every replicate's persons
  (a row group of persons at a time, as the step reads them; nothing written);
- ``aggregates``: :func:`~synth_assets.synthesis.linked.aggregate_differences` (the blocking check
  ``aggregates_agree_with_persons``);
- ``copies``: :func:`~synth_assets.synthesis.linked.copied_days` (the blocking check
  ``no_real_day_copied``);
- ``distributions``: :func:`~synth_assets.synthesis.linked.linked_distributions` (the report).

``--as-text``: the checks also run on a copy of the stored table whose label columns are text (how
``linked_<survey>`` wrote them before the forty-fifth pass), the same code: the cost of text labels
alone, and the same verdicts. Per line: wall and CPU seconds, and the verdict (rows generated,
persons off, days copied, rows of the report).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_assets.catalog import load_catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.defs.synthesis.linked import linked_parts, person_blocks
from synth_assets.synthesis.linked import (
    aggregate_differences,
    copied_days,
    copy_columns,
    linked_distributions,
    linked_records,
)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    started, used = time.perf_counter(), _cpu()
    value = work()
    return time.perf_counter() - started, _cpu() - used, value


def _as_text(table: Path, out: Path) -> Path:
    """``table`` rewritten row group by row group with its dictionary (label) columns as text."""
    file = pq.ParquetFile(table)
    schema = pa.schema([pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
                        for f in file.schema_arrow])
    with pq.ParquetWriter(out, schema) as writer:
        for group in range(file.num_row_groups):
            writer.write_table(file.read_row_group(group).cast(schema))
    return out


def _checks(path: Path, release: ParquetTable, records: pd.DataFrame, source: Any,
            person_id: str) -> dict[str, Callable[[], Any]]:
    day = ["replicate", person_id, "day_id"]
    return {
        "aggregates": lambda: int(aggregate_differences(ParquetTable(path), release, source,
                                                        person_id=person_id)["persons_off"].sum()),
        "copies": lambda: copied_days(ParquetTable(path), records, person_id, copy_columns(source), day),
        "distributions": lambda: len(linked_distributions(linked_parts(ParquetTable(path), source, person_id),
                                                          records, source, person_id=person_id)),
    }


def _survey_lines(catalog: Any, warehouse: Path, release: ParquetTable, survey: str, text_dir: Path | None) -> None:
    source = catalog.sources[survey]
    person_id = catalog.register.id_column or "person_id"
    records = pd.read_parquet(sorted((warehouse / f"survey_records_{survey}").glob("*.parquet"))[-1])
    stored = sorted((warehouse / f"linked_{survey}").glob("*.parquet"))[-1]
    seconds, cpu, rows = _timed(lambda: sum(len(part) for part in linked_records(
        person_blocks(release), records, source, person_id=person_id,
        household_id=catalog.register.household_id_column, seed=0)))
    print(f"| {survey} | generate | categorical | {seconds:.1f} | {cpu:.1f} | {rows:,} rows |", flush=True)
    tables = [("as stored", stored)]
    if text_dir is not None:
        tables.append(("text", _as_text(stored, text_dir / f"{survey}.parquet")))
    for labels, path in tables:
        for name, check in _checks(path, release, records, source, person_id).items():
            seconds, cpu, verdict = _timed(check)
            print(f"| {survey} | {name} | {labels} | {seconds:.1f} | {cpu:.1f} | {verdict} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--survey", nargs="+", default=["tus", "mobility"])
    parser.add_argument("--as-text", action="store_true")
    args = parser.parse_args()
    catalog = load_catalog(args.data / "catalog.yaml")
    warehouse = args.data / "warehouse"
    release = ParquetTable(sorted((warehouse / "fictitious_dataset").glob("*.parquet"))[-1])
    print(f"Command: `PYTHONPATH=. .venv/bin/python bench/scale/linked_checks.py {' '.join(sys.argv[1:])}`")
    print(f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; release {release.num_rows:,} persons\n")
    print("| survey | work | labels | s | CPU s | verdict |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="linked-checks-") as work:
        for survey in args.survey:
            _survey_lines(catalog, warehouse, release, survey, Path(work) if args.as_text else None)


if __name__ == "__main__":
    main()
