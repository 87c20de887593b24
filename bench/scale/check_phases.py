"""Peak resident memory and time of each blocking check of ``fictitious_dataset`` (issue 16 point 1).

    PYTHONPATH=. .venv/bin/python bench/scale/check_phases.py --data ROOT [--whole]

Reads a finished run's warehouse under ROOT (never writes there) and runs, in a process of its
own and one after another, what the release's blocking checks run on it: the Great Expectations
suite with the catalog's rules (``rules_and_categories_hold``), the copy filters against the
matched data, the surveys and the register (``no_real_record_copied``), the top-coding
thresholds (``amounts_top_coded``), the register's margins and household structure
(``calibrated_to_register``) and the household variables (``household_variables_constant``).
By default the release is a ``ParquetTable``, read by row groups or one replicate at a time, as
the checks now take it; ``--whole``: the release loaded whole and judged at once, as before.
A thread reads VmRSS every 50 ms (``phases.Phases``); each line gives a check's seconds, the
resident set at its end and its peak, and the check's verdict (the same in both modes).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from gate_phases import load  # the sibling scripts: run as `python bench/scale/check_phases.py`
from phases import Phases

from synth_assets.calibration import Targets, spec_from_catalog
from synth_assets.catalog import load_catalog
from synth_assets.catalog.expectations import fictitious_suite_spec, validate_chunks, validate_table
from synth_assets.common.frames import ParquetTable
from synth_assets.defs.calibration.assets import amount_thresholds, household_key
from synth_assets.matching.sources import households_disagreeing
from synth_assets.validation.privacy.copies import disclosive_copies, disclosive_copies_by_blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--whole", action="store_true", help="the release loaded whole (as before ParquetTable)")
    args = parser.parse_args()
    phases = Phases()
    warehouse = args.data / "warehouse"
    wave = sorted(p.stem for p in (warehouse / "matched_dataset").glob("*.parquet"))[-1]
    catalog = load_catalog(args.data / "catalog.yaml")
    file = warehouse / "fictitious_dataset" / f"{wave}.parquet"
    print(f"release: {pq.ParquetFile(file).metadata.num_rows:,} rows\n")
    print("| check | s | MB at the end | peak MB |\n|---|---|---|---|")
    matched = load(warehouse / "matched_dataset" / f"{wave}.parquet")
    register = load(warehouse / "harmonised_register" / f"{wave}.parquet")
    targets = load(warehouse / "calibration_targets" / f"{wave}.parquet")
    release: Any = load(file) if args.whole else ParquetTable(file)
    phases.mark("inputs (matched, register, targets; the release " + ("whole)" if args.whole else "as a handle)"))
    verdicts: dict[str, Any] = {}

    spec = fictitious_suite_spec(catalog, release if args.whole else release.empty())
    suite = validate_table(release, spec) if args.whole else validate_chunks(release.frames(), spec)
    verdicts["rules_and_categories_hold"] = suite.success
    phases.mark("rules_and_categories_hold (GE suite and rules)")

    ids = {catalog.register.id_column, catalog.register.household_id_column}
    columns = [c for c in matched.columns if c not in ids and c in release.columns]
    qis, k = list(catalog.release.quasi_identifiers), catalog.release.disclosure.k
    references = {"matched_dataset": matched,
                  "register": matched[[c for c in catalog.register.variables if c in columns]]}
    if args.whole:
        found = {name: disclosive_copies(release[columns], reference, columns, qis, k)
                 for name, reference in references.items()}
    else:
        found = disclosive_copies_by_blocks(release.frames(columns), references, columns, qis, k)
    verdicts["no_real_record_copied"] = found
    phases.mark("no_real_record_copied (matched and register; the surveys left out)")

    thresholds = amount_thresholds(catalog, matched)
    amounts = [v for v in thresholds if v in release.columns]
    blocks = [release[amounts]] if args.whole else release.frames(amounts)
    beyond = dict.fromkeys(amounts, 0)
    for block in blocks:
        for v in amounts:
            beyond[v] += int((pd.to_numeric(block[v], errors="coerce").abs() > thresholds[v] + 1e-9).sum())
    verdicts["amounts_top_coded"] = not any(beyond.values())
    phases.mark("amounts_top_coded")

    key = household_key(catalog)
    parts = (release.groupby("replicate") if args.whole
             else ((r, release.part("replicate", r)) for r in release.values("replicate")))
    off = 0
    for _, data in parts:
        residuals = Targets.from_frame(spec_from_catalog(catalog), targets).residuals(data, key)
        off += int((~residuals["within"]).sum())
    verdicts["calibrated_to_register: controls beyond tolerance"] = off
    phases.mark("calibrated_to_register (margins; the structure TVD left out)")

    variables = catalog.household_variables()
    household_id = catalog.register.household_id_column
    parts = [release] if args.whole else release.parts("replicate")
    disagreeing: dict[str, int] = {}
    for data in parts:
        for variable, n in households_disagreeing(data, household_id, variables, by=["replicate"]).items():
            disagreeing[variable] = disagreeing.get(variable, 0) + n
    verdicts["household_variables_constant"] = disagreeing
    phases.mark("household_variables_constant")
    del register
    print(f"\nverdicts: {verdicts}")
    with open("/proc/self/status") as status:
        print("process peak", next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:")), "MB")


if __name__ == "__main__":
    main()
