"""Peak resident memory and time of each phase of ``validation_report`` or of the gate (``public_dataset``).

    PYTHONPATH=. .venv/bin/python bench/scale/gate_phases.py --data ROOT [--gate] [--whole] [--out DIR] [--metrics FILE]

Reads a finished run's warehouse under ROOT (never writes there: the gate's release goes to
``--out``, default a temporary folder) and runs, in a process of its own and phase by phase,
what the report runs (default) or the gate (``--gate``): each input as the Parquet IO manager
hands it (a ``ParquetTable`` where the step's parameter is annotated so: the release, the
training and holdout samples, the matched dataset and replicates, the register and the linked
tables; ``--whole``: every table loaded whole, replicate 1 and its training set too, as before
``ParquetTable``), the metrics of ``evaluate`` on the report's samples with the exhaustive copy
counts (``--metrics FILE``: its figures as JSON, to compare two versions), the report's population and linked sections and the content hash; or the gate's hashes
and ``publish_release``. A thread reads VmRSS every 50 ms (as ``phases.py``); each line gives a
phase's seconds, the resident set at its end, its peak, and the peak's rise over the phase's
start per person of the release (persons x replicates); the last line the process's peak
(VmHWM). A phase's rise can hide memory an earlier phase freed and this one reused.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from phases import Phases, rss_mb  # the sibling script: run as `python bench/scale/gate_phases.py`

from synth_assets.catalog import load_catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.common.hashing import dataframe_sha256
from synth_assets.defs.calibration.assets import household_key
from synth_assets.defs.synthesis.linked import linked_parts
from synth_assets.publication import LinkedTable, describe_columns, describe_records, publish_release
from synth_assets.synthesis.linked import linked_distributions
from synth_assets.synthesis.replicates import ReplicateTrainingSets, replicate_training_views
from synth_assets.validation import RegressionSpec, Thresholds, evaluate
from synth_assets.validation.population import population_tables
from synth_assets.validation.preparation import replicate_samples, seeded_sample


class GatePhases(Phases):
    """``phases.Phases`` whose ``mark`` also prints a note and keeps the phase's starting RSS (for its rise)."""

    def __init__(self) -> None:
        super().__init__()
        self.start_rss = self.peak

    def mark(self, label: str) -> None:
        now = rss_mb()
        print(f"| {label.split(' | ')[0]} | {time.perf_counter() - self.started:.1f} | {now:.0f} | "
              f"{max(self.peak, now):.0f} | {label.split(' | ')[1]} |", flush=True)
        self.start_rss = self.peak = now
        self.started = time.perf_counter()


def load(path: Path) -> pd.DataFrame:
    """As ``_ParquetIOManager.load_from_path`` does."""
    table = pq.read_table(path)
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--max-rows", type=int, default=20_000)
    parser.add_argument("--whole", action="store_true", help="every table loaded whole (before ParquetTable)")
    parser.add_argument("--gate", action="store_true", help="the gate's step alone (its inputs, hashes, release)")
    parser.add_argument("--metrics", type=Path, default=None, help="write evaluate's figures there (JSON), to compare")
    args = parser.parse_args()
    phases = GatePhases()
    warehouse = args.data / "warehouse"
    wave = sorted(p.stem for p in (warehouse / "matched_dataset").glob("*.parquet"))[-1]
    catalog = load_catalog(args.data / "catalog.yaml")
    persons: list[int] = [0]

    def mark(label: str) -> None:
        rise = phases.peak - phases.start_rss
        per = f"{rise * 1e6 / persons[0]:.0f}" if persons[0] else "-"
        phases.mark(f"{label} | {per}")

    print("| phase | s | MB at the end | peak MB | peak rise, bytes per release person |\n|---|---|---|---|---|")
    if args.gate:
        gate(args, catalog, warehouse, wave, persons, mark)
        return
    validation(args, catalog, warehouse, wave, persons, mark)


def validation(args: argparse.Namespace, catalog: Any, warehouse: Path, wave: str, persons: list[int],
               mark: Any) -> None:
    """What ``validation_report`` runs, in a process of its own, phase by phase."""
    register = catalog.register
    inputs: dict[str, Any] = {}
    # the inputs validation_report annotates ParquetTable
    on_disk = () if args.whole else ("fictitious_dataset", "training_sample", "holdout_sample", "matched_dataset",
                                     "matched_replicates", "harmonised_register")
    for name in ("fictitious_dataset", "training_sample", "holdout_sample", "calibration_targets", "matched_dataset",
                 "matched_replicates", "harmonised_register"):
        file = warehouse / name / f"{wave}.parquet"
        inputs[name] = ParquetTable(file) if name in on_disk else load(file)
        rows = pq.ParquetFile(file).metadata.num_rows
        if name == "fictitious_dataset":
            persons[0] = rows
        mark(f"input {name} ({rows:,} rows)")
    linked_names = [n for n in catalog.surveys if catalog.sources[n].records is not None]
    for name in linked_names:
        file = warehouse / f"linked_{name}" / f"{wave}.parquet"
        inputs[f"linked_{name}"] = load(file) if args.whole else ParquetTable(file)
        inputs[f"records_{name}"] = load(warehouse / f"survey_records_{name}" / f"{wave}.parquet")
        mark(f"input linked_{name} ({pq.ParquetFile(file).metadata.num_rows:,} rows)")
    fictitious, training, holdout = inputs["fictitious_dataset"], inputs["training_sample"], inputs["holdout_sample"]
    ids = {register.id_column, register.household_id_column, "replicate"}
    columns = [c for c in training.columns if c not in ids]
    seed = 0
    release = catalog.release
    if args.whole:  # every table in memory, replicate 1 and the training sets whole (as before ParquetTable)
        n = min(args.max_rows, len(holdout), len(training))
        first: Any = fictitious.loc[fictitious["replicate"] == 1, columns]
        replicates = replicate_samples(fictitious, columns, n, seed)
        own = iter(ReplicateTrainingSets(inputs["matched_replicates"], training, household_key(catalog),
                                         len(replicates)))
        reals: list[Any] = [next(own)[columns], *(seeded_sample(r, n, seed)[columns] for r in own)]
        real, held = training[columns], holdout[columns]
    else:  # as validation_report: views of the files, sampled and hashed a row group at a time
        n = min(args.max_rows, holdout.num_rows, training.num_rows)
        first = fictitious.where("replicate", [1]).select(columns)
        replicates = replicate_samples(fictitious, columns, n, seed)
        key = household_key(catalog)
        households = training.select([key]).read()[key].to_numpy()
        reals = [v.select(columns) for v in replicate_training_views(inputs["matched_replicates"], households, key,
                                                                     len(replicates))]
        real, held = training.select(columns), holdout.select(columns)
    mark("first replicate, replicate samples, replicate training sets")
    result = evaluate(
        real, first, holdout=held, replicates=replicates, replicate_reals=reals,
        max_rows=args.max_rows, error_subsamples=2, seed=seed,
        quasi_identifiers=[c for c in release.quasi_identifiers if c in columns],
        sensitive=[c for c in release.sensitive if c in columns], rules=catalog.plausibility_rules(),
        regressions=[RegressionSpec(**r.model_dump()) for r in release.regressions],
        thresholds=Thresholds.default().updated(release.thresholds))
    mark(f"evaluate (passed: {result.passed})")
    if args.metrics:
        import json

        args.metrics.write_text(json.dumps({"metrics": result.metrics, "sampling_error": result.sampling_error,
                                            "baseline": result.baseline}, indent=1, sort_keys=True, default=str))
    from synth_assets.calibration import Targets, spec_from_catalog

    sources = {catalog.register_name: inputs["harmonised_register"]}
    population_tables(Targets.from_frame(spec_from_catalog(catalog), inputs["calibration_targets"]), fictitious,
                      household_key(catalog), sources, inputs["matched_dataset"])
    mark("population section (calibration residuals, missing shares)")
    person_id = register.id_column or "person_id"
    for name in linked_names:
        linked = inputs[f"linked_{name}"]
        parts = linked if args.whole else linked_parts(linked, catalog.sources[name], person_id)
        linked_distributions(parts, inputs[f"records_{name}"], catalog.sources[name], person_id=person_id)
    mark("linked section (distributions)")
    fictitious.sha256() if isinstance(fictitious, ParquetTable) else dataframe_sha256(fictitious)
    mark("hash of the release judged")
    print(f"\nrelease persons (all replicates): {persons[0]:,}; process peak {peak_mb():.0f} MB")


def gate(args: argparse.Namespace, catalog: Any, warehouse: Path, wave: str, persons: list[int], mark: Any) -> None:
    """What ``public_dataset`` runs, in a process of its own: its inputs, the hashes, the release."""
    register = catalog.register
    names = [n for n in catalog.surveys if catalog.sources[n].records is not None]
    files = {"fictitious": warehouse / "fictitious_dataset" / f"{wave}.parquet",
             **{n: warehouse / f"linked_{n}" / f"{wave}.parquet" for n in names}}
    persons[0] = pq.ParquetFile(files["fictitious"]).metadata.num_rows
    tables: dict[str, pd.DataFrame | ParquetTable] = {}
    for name, file in files.items():
        tables[name] = load(file) if args.whole else ParquetTable(file)
        mark(f"input {name} ({pq.ParquetFile(file).metadata.num_rows:,} rows)")
    for table in tables.values():
        table.sha256() if isinstance(table, ParquetTable) else dataframe_sha256(table)
    mark("content hashes (release and linked tables)")

    def empty(table: pd.DataFrame | ParquetTable) -> pd.DataFrame:
        return table.empty() if isinstance(table, ParquetTable) else table.iloc[:0]

    out = args.out or Path(tempfile.mkdtemp(prefix="gate-phases-"))
    (out / "report").mkdir(parents=True, exist_ok=True)
    keys = [c for c in (register.id_column, register.household_id_column) if c]
    linked = {f"{s}_{catalog.sources[s].records.unit}s": LinkedTable(
        tables[s], catalog.sources[s].records.unit, keys,
        describe_records(empty(tables[s]).drop(columns=["replicate"]), catalog, s)) for s in names}
    fictitious = tables["fictitious"]
    target, _ = publish_release(
        fictitious, public_dir=out / "public", wave=wave, report_dir=out / "report", provenance={}, model={},
        metrics={}, checks=[], linked=linked,
        columns=describe_columns(empty(fictitious).drop(columns=["replicate"], errors="ignore"), catalog))
    mark(f"publish_release ({target.name})")
    print(f"\nrelease persons (all replicates): {persons[0]:,}; process peak {peak_mb():.0f} MB")


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


if __name__ == "__main__":
    main()
