"""How stable is the gate's verdict for one model? The demo release, once per fictitious seed.

    .venv/bin/python bench/validation/gate_stability.py [--seeds 1,2,3,4,5] [--persons 50000]

The demo population is generated once in a temporary data root; the whole pipeline (CART
households and members, as ``make run``) then runs once per ``fictitious_dataset`` seed:
same data, same fitted model, different replicates. For each release: S_pMSE of every
replicate, their mean (what the gate judges), the holdout baseline, the regression
interval overlap and k3, and the verdict. Output: ``bench/validation/gate_stability.md``.
This is the measurement behind the S_pMSE limit in ``synth_assets/validation/thresholds.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import dagster as dg

from synth_assets.catalog import load_catalog
from synth_assets.common.layout import DataLayout
from synth_assets.defs.definitions import build_definitions
from synth_assets.demo import generate_demo
from synth_assets.operations.runner import run_pipeline

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--output", type=Path, default=HERE / "gate_stability.md")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as folder, dg.instance_for_test() as instance:
        root = Path(folder) / "data"
        generate_demo(root, persons=args.persons)
        (root / "catalog.yaml").write_text((REPO / "data" / "catalog.yaml").read_text())
        layout = DataLayout(root)
        defs = build_definitions(root)
        for seed in seeds:
            config = {"ops": {"population_model": {"config": {"family": "cart"}},
                              "fictitious_dataset": {"config": {"seed": seed}}}}
            outcome = run_pipeline(defs, load_catalog(layout.catalog), layout, instance,
                                   release_config=config, echo=lambda _: None)
            metrics = json.loads((outcome.report.parent / "metrics.json").read_text())  # reports/<wave>/<run id>/
            checks = {c["metric"]: c for c in metrics["checks"]}
            row = {
                "seed": seed,
                "by_replicate": metrics["details"]["s_pmse_by_replicate"],
                "pmse_mean": checks["s_pmse"]["value"],
                "pmse_limit": checks["s_pmse"]["threshold"],
                "baseline": metrics["baseline"]["s_pmse"],
                "overlap": checks["regression_ci_overlap"]["value"],
                "overlap_limit": checks["regression_ci_overlap"]["threshold"],
                "k3": checks["kmarginal_3"]["value"],
                "failed": [c["metric"] for c in metrics["checks"] if not c["passed"]],
            }
            rows.append(row)
            print(row, flush=True)
    write(args, rows, time.perf_counter() - started)


def write(args: argparse.Namespace, rows: list[dict], seconds: float) -> None:
    lines = [
        "# Gate stability: one model, one demo population, one release per fictitious seed",
        "",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}.  ",
        f"Command: `.venv/bin/python bench/validation/gate_stability.py --seeds {args.seeds} "
        f"--persons {args.persons}` ({seconds / 60:.1f} min).",
        "",
        "| seed | S_pMSE per replicate | mean (gated) | × baseline | limit | regression overlap (limit) | k3 | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        replicates = ", ".join(f"{v:.1f}" for v in r["by_replicate"])
        lines.append(
            f"| {r['seed']} | {replicates} | {r['pmse_mean']:.2f} | {r['pmse_mean'] / r['baseline']:.2f} | "
            f"{r['pmse_limit']:.2f} | {r['overlap']:.3f} ({r['overlap_limit']:.3f}) | {r['k3']:.0f} | "
            f"{', '.join(r['failed']) or 'none'} |"
        )
    args.output.write_text("\n".join(lines) + "\n")
    print(f"results written to {args.output.relative_to(REPO)}")


if __name__ == "__main__":
    main()
