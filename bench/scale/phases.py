"""Peak resident memory and time of each phase of one replicate's sampling and calibration.

    PYTHONPATH=. .venv/bin/python bench/scale/phases.py --data ROOT [--chunk-persons 100000]

Reads a finished run's warehouse under ROOT (``make run``'s ``data``, or the root
``bench/scale/run.py`` leaves in /tmp) and runs what ``fictitious_dataset`` runs for one
replicate: a posterior draw of the population model, the surplus drawn (in chunks of
``--chunk-persons``; 0: one chunk, as before chunking), rules and copy filters enforced per
chunk, then the calibration's selection. A thread reads VmRSS from /proc every 50 ms; each
line gives a phase's seconds, the resident set at its end and its peak.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import pandas as pd

from bench.scale.resident import rss_mb
from synth_assets.calibration import Targets, calibrated_population, spec_from_catalog
from synth_assets.calibration.tails import top_code
from synth_assets.catalog import load_catalog
from synth_assets.defs.calibration.assets import amount_thresholds, household_key
from synth_assets.synthesis import load_synthesizer
from synth_assets.synthesis.constraints import copy_detectors, enforce_rules, enforced_chunks


class Phases:
    def __init__(self) -> None:
        self.peak, self.started = rss_mb(), time.perf_counter()
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.05)

    def mark(self, label: str) -> None:
        now = rss_mb()
        print(f"| {label} | {time.perf_counter() - self.started:.1f} | {now:.0f} | {max(self.peak, now):.0f} |",
              flush=True)
        self.peak, self.started = now, time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--chunk-persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    phases = Phases()
    print("| phase | s | MB at the end | peak MB |\n|---|---|---|---|")
    warehouse = args.data / "warehouse"
    wave = sorted(p.stem for p in (warehouse / "matched_dataset").glob("*.parquet"))[-1]
    catalog = load_catalog(args.data / "catalog.yaml")
    register, release = catalog.register, catalog.release
    model = load_synthesizer(args.data / "models" / "population_model" / f"{wave}.model")
    matched = pd.read_parquet(warehouse / "matched_dataset" / f"{wave}.parquet")
    targets = Targets.from_frame(spec_from_catalog(catalog),
                                 pd.read_parquet(warehouse / "calibration_targets" / f"{wave}.parquet"))
    ids = {register.id_column, register.household_id_column}
    references = {"matched dataset": matched.drop(columns=[c for c in ids if c in matched])}
    for name, source in catalog.surveys.items():
        files = sorted((warehouse / f"donor_{name}").glob("*.parquet"))
        if files:
            donor = pd.read_parquet(files[-1])
            own = {source.id_column, source.household_id_column, source.weight_column}
            references[f"{name} survey"] = donor.drop(columns=[c for c in own if c in donor])
    compare = [c for c in matched.columns if c not in ids]
    unique = {"register": matched[[c for c in register.variables if c in matched.columns and c not in ids]]}
    detectors = copy_detectors(references, unique, compare, quasi_identifiers=list(release.quasi_identifiers),
                               k=release.disclosure.k)
    thresholds = amount_thresholds(catalog, matched)
    phases.mark(f"inputs ({len(matched):,} matched persons), copy filters indexed")
    replicate = model.posterior_draw(args.seed)
    phases.mark("posterior draw")

    def enforce(sample: pd.DataFrame, seed: int) -> pd.DataFrame:
        phases.mark(f"sample {len(sample):,} persons")
        enforced = enforce_rules(
            sample, rules=catalog.plausibility_rules(), draw=lambda k, s: replicate.sample(k, seed=s),
            references=references, unique_references=unique, detectors=detectors, compare_columns=compare,
            household_id=register.household_id_column, households=replicate, seed=seed, drop_unfixable=True,
            quasi_identifiers=list(release.quasi_identifiers), k=release.disclosure.k,
            member_rounds=release.enforcement.member_rounds, max_rounds=release.enforcement.max_rounds,
            max_rejection_rate=release.enforcement.max_rejection_rate)
        phases.mark("enforce rules and copy filters")
        return top_code(enforced.data, thresholds)[0]

    result = calibrated_population(
        lambda n, seed: enforced_chunks(replicate, n, enforce, seed=seed, chunk_size=args.chunk_persons or None),
        targets, household_key(catalog), surplus=release.calibration.surplus, seed=args.seed)
    phases.mark(f"select {len(result.data):,} persons, weights, residuals")


if __name__ == "__main__":
    main()
