"""CART's ``tree_rows``: each tree's splits chosen on a sample of its records. Time and fidelity.

    PYTHONPATH=. .venv/bin/python bench/synthesis/tree_rows.py --data ROOT [--tree-rows 0 250000 120000]
        [--n-jobs 2] [--output bench/synthesis/results_tree_rows.md]

On a data root a release has run in (``bench/scale/run.py`` leaves one per size): the
population model (households, then members; the catalog's blocks, household variables and
totals and rules, as ``population_model`` builds it) fitted on ``warehouse/training_sample``
once per ``--tree-rows`` value (0: every record, synthpop's way), each fit's seconds and peak
resident memory (a child process each), then as many persons drawn as the holdout sample
holds. Fidelity: the total variation distance (TVD) of every variable and every pair of
variables (bins of ``bench/release/truth.py``, fixed from the demo's truth) between the
draw and the training sample, the model's target. Floor: the holdout sample (real records
the model never saw, as many persons) against the training sample, what chance alone gives.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bench.release.truth import encode, machine, tables_from, total_variation, variables_from  # noqa: E402


def _fit_and_draw(data: Path, tree_rows: int, n_jobs: int, persons: int, draws: int, out: Path) -> dict[str, float]:
    """In this process: fit, time, ``draws`` times ``persons`` persons to ``out/draw_<seed>.parquet``."""
    from synth_assets.catalog.loader import load_catalog
    from synth_assets.synthesis import build_population_synthesizer

    catalog = load_catalog(data / "catalog.yaml")
    register = catalog.register
    wave = sorted(p.stem for p in (data / "warehouse" / "training_sample").glob("*.parquet"))[-1]
    training = pd.read_parquet(data / "warehouse" / "training_sample" / f"{wave}.parquet")
    training = training.drop(columns=[register.id_column])
    model = build_population_synthesizer(
        "cart", household_id=register.household_id_column, person_id=register.id_column, seed=0,
        blocks=[[v for v in source.specific if v in training.columns] for source in catalog.surveys.values()],
        household_level=catalog.household_variables(), household_totals=catalog.register_amounts(),
        rules=catalog.plausibility_rules(), n_jobs=n_jobs, tree_rows=tree_rows or None,
    )
    started = time.perf_counter()
    model.fit(training)
    fit_s = time.perf_counter() - started
    del training
    started = time.perf_counter()
    for seed in range(1, draws + 1):
        model.sample(persons, seed=seed).to_parquet(out / f"draw_{seed}.parquet")
    return {"fit_s": fit_s, "sample_s": (time.perf_counter() - started) / draws,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--tree-rows", type=int, nargs="+", default=[0, 250_000])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--draws", type=int, default=2, help="draws per model (their TVDs averaged; spread shown)")
    parser.add_argument("--output", type=Path, default=HERE / "results_tree_rows.md")
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)  # tree_rows persons out
    args = parser.parse_args()
    data = args.data.resolve()
    if args.child:
        tree_rows, persons, out = int(args.child[0]), int(args.child[1]), Path(args.child[2])
        print(json.dumps(_fit_and_draw(data, tree_rows, args.n_jobs, persons, args.draws, out)))
        return 0

    from synth_assets.catalog.loader import load_catalog

    catalog = load_catalog(data / "catalog.yaml")
    wave = sorted(p.stem for p in (data / "warehouse" / "training_sample").glob("*.parquet"))[-1]
    truth = pd.read_parquet(data / "truth" / f"population_{wave}.parquet")
    variables = variables_from(catalog, truth)
    del truth
    tables = tables_from(variables)
    training = encode(pd.read_parquet(data / "warehouse" / "training_sample" / f"{wave}.parquet"), variables)
    reference = [training.distribution(t) for t in tables]
    holdout_frame = pd.read_parquet(data / "warehouse" / "holdout_sample" / f"{wave}.parquet")
    persons = len(holdout_frame)

    def scores(frame: pd.DataFrame) -> np.ndarray:
        coded = encode(frame, variables)
        return np.array([total_variation(coded.distribution(t), ref) for t, ref in zip(tables, reference, strict=True)])

    rows: dict[str, tuple[np.ndarray, dict[str, float]]] = {"holdout (floor)": (scores(holdout_frame), {})}
    del holdout_frame
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    for tree_rows in args.tree_rows:
        label = f"tree_rows={tree_rows:,}" if tree_rows else "every record"
        print(f"{label} ...", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run(
                [sys.executable, __file__, "--data", str(data), "--n-jobs", str(args.n_jobs), "--draws", str(args.draws),
                 "--child", str(tree_rows), str(persons), tmp],
                env=env, check=True, capture_output=True, text=True)
            timing = json.loads(done.stdout.strip().splitlines()[-1])
            each = [scores(pd.read_parquet(Path(tmp) / f"draw_{seed}.parquet")) for seed in range(1, args.draws + 1)]
            timing["spread"] = float(np.ptp([tvd.mean() for tvd in each]))
            rows[label] = (np.mean(each, axis=0), timing)
        print(label, timing, flush=True)

    kinds = list(dict.fromkeys(t.kind for t in tables))
    head = ["", "fit s", "draw s", "peak MB", *(f"{k}: mean / max TVD" for k in kinds), "all: mean TVD",
            "all: spread over draws"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    kind_of = np.array([t.kind for t in tables])
    for label, (tvd, timing) in rows.items():
        cells = [f"{tvd[kind_of == k].mean():.4f} / {tvd[kind_of == k].max():.4f}" for k in kinds]
        lines.append("| " + " | ".join([
            label, *(f"{timing[key]:.0f}" if key in timing else "–" for key in ("fit_s", "sample_s", "peak_mb")),
            *cells, f"{tvd.mean():.4f}", f"{timing['spread']:.4f}" if "spread" in timing else "–"]) + " |")
    text = "\n".join([
        "# CART `tree_rows`: time and fidelity",
        "",
        f"Command: `PYTHONPATH=. .venv/bin/python bench/synthesis/tree_rows.py --data ROOT --tree-rows "
        f"{' '.join(map(str, args.tree_rows))} --n-jobs {args.n_jobs} --draws {args.draws}`, ROOT a data root of "
        f"`bench/scale/run.py` ({len(training.first_of_household):,} training persons; each model drew "
        f"{persons:,} persons {args.draws} times, its TVDs their mean).",
        f"Machine: {machine()}.",
        "",
        *lines,
        "",
        "TVD against the training sample, every variable and pair (bins of `bench/release/truth.py`); "
        "the holdout sample, as many real persons the model never saw, is the floor.",
        "",
    ])
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
