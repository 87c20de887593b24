"""Benchmark of the synthesis families on the shared EU-SILC and SES microdata.

    .venv/bin/python bench/synthesis/run.py [--quick] [--models cart,copula,...] [--gan-seconds 120]

Set-up as in /work/shared/PEERS.md: each dataset split 50/50 into train and holdout by
household (``db030``) or place of employment (``IDunit``), identifiers dropped; every model
is fitted on train and samples as many rows as train has; the baseline row scores the
holdout against train. Each model runs in its own process, so its peak memory (maximum
resident set size, libraries included) is its own. A scale section fits CART and a
time-budgeted CTGAN on 100,000 rows. Results go to ``bench/synthesis/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

from metrics import copy_rate, dcr_share, kmarginal, propensity_auc  # noqa: E402

from synth_assets.synthesis import HouseholdSynthesizer, make_synthesizer  # noqa: E402
from synth_assets.synthesis.split import split_by_group  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Dataset:
    name: str
    group: str  # household / employer id: the split unit
    ids: tuple[str, ...]  # identifier columns dropped before fitting
    size_column: str | None  # household size column, if any

    def load(self, quick: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, holdout), both still holding the group column."""
        data = pd.read_csv(DATA / f"{self.name}.csv")
        if quick:  # whole groups, about 4,000 rows, so each side holds about 2,000
            groups = data[self.group].drop_duplicates().sample(frac=1, random_state=0)
            sizes = data.groupby(self.group).size().loc[groups].cumsum()
            data = data[data[self.group].isin(groups[: int(np.searchsorted(sizes, 4000)) + 1])]
        train, holdout = split_by_group(data, self.group, 0.5, seed=0)
        drop = [c for c in self.ids if c != self.group]
        return train.drop(columns=drop), holdout.drop(columns=drop)


DATASETS = {
    "eusilc": Dataset("eusilc", "db030", ("db030", "rb030"), "hsize"),
    "ses": Dataset("ses", "IDunit", ("IDunit",), None),
}

#: name -> (description, whether it models households, parameters)
MODELS: dict[str, tuple[str, bool, dict]] = {
    "cart": ("CART, defaults (min_leaf sqrt(n), smoothing)", False, {"family": "cart"}),
    "cart-synthpop": ("CART as synthpop (min_leaf 5, no smoothing)", False,
                      {"family": "cart", "min_leaf": 5, "smoothing": False}),
    "cart-households": ("households: CART households + CART persons", True, {}),
    "households-copula-cart": ("households: copula households + CART persons", True,
                               {"household_family": "copula"}),
    "copula": ("Gaussian copula (normal scores)", False, {"family": "copula"}),
    "ctgan": ("CTGAN, time budget", False, {"family": "ctgan"}),
    "tvae": ("TVAE, time budget", False, {"family": "tvae"}),
}


def peak_mb() -> float:
    """Peak resident memory of this process since it started (``VmHWM``).

    Not ``ru_maxrss``: Linux keeps that across ``execve``, so a worker would report its
    parent's size whenever that is larger.
    """
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(model: str, dataset: Dataset, gan_seconds: float, seed: int = 0):
    description, households, params = MODELS[model]
    params = dict(params)
    if households:
        return HouseholdSynthesizer(
            params.pop("household_family", "cart"), "cart", household_id=dataset.group,
            size_column=dataset.size_column, seed=seed,
        )
    family = params.pop("family")
    if family in ("ctgan", "tvae"):
        params.update(epochs=300, max_seconds=gan_seconds)
    return make_synthesizer(family, seed=seed, **params)


# ------------------------------------------------------------------ worker side
def worker(spec: dict) -> None:
    """Fit one model on one dataset's train split, sample, save rows and timings."""
    dataset = DATASETS[spec["dataset"]]
    train, _ = dataset.load(spec["quick"])
    synth = build(spec["model"], dataset, spec["gan_seconds"])
    households = MODELS[spec["model"]][1]
    fit_data = train if households else train.drop(columns=[dataset.group])
    started = time.perf_counter()
    synth.fit(fit_data)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    synthetic = synth.sample(len(train))
    sample_s = time.perf_counter() - started
    synthetic.drop(columns=[dataset.group], errors="ignore").to_parquet(spec["out"])
    log = synth.training_log
    epochs = log.get("epochs") or (log.get("person") or {}).get("epochs")
    json.dump(
        {"fit_s": fit_s, "sample_s": sample_s, "epochs": epochs,
         "peak_mb": peak_mb()},
        open(spec["out"] + ".json", "w"),
    )


def scale_worker(spec: dict) -> None:
    """Fit on 100,000 EU-SILC-like rows (train resampled), sample 100,000; time both."""
    train, _ = DATASETS["eusilc"].load(False)
    train = train.drop(columns=["db030"])
    big = train.sample(100_000, replace=True, random_state=0).reset_index(drop=True)
    synth = build(spec["model"], DATASETS["eusilc"], spec["gan_seconds"])
    started = time.perf_counter()
    synth.fit(big)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    synth.sample(100_000)
    sample_s = time.perf_counter() - started
    json.dump(
        {"fit_s": fit_s, "sample_s": sample_s, "epochs": synth.training_log.get("epochs"),
         "peak_mb": peak_mb(),
         "shape": list(big.shape)},
        open(spec["out"] + ".json", "w"),
    )


# ------------------------------------------------------------------ parent side
def run_worker(spec: dict, timeout: float) -> dict | None:
    env = dict(os.environ, XDG_DATA_HOME=os.environ.get("XDG_DATA_HOME", "/tmp/xdg"))
    command = [sys.executable, __file__, "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, env=env, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        print(f"  {spec['model']}: timed out after {timeout:.0f} s")
        return None
    if done.returncode != 0:
        print(f"  {spec['model']}: failed\n{done.stderr[-2000:]}")
        return None
    return json.load(open(spec["out"] + ".json"))


def score(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, baseline: bool = False) -> dict:
    k = kmarginal(train, synthetic)
    return {
        **{key: round(v) for key, v in k.items()},
        "auc": round(propensity_auc(train, synthetic), 3),
        "copies": round(copy_rate(train, synthetic), 4),
        "dcr": round(dcr_share(train, holdout, synthetic, synthetic_is_holdout=baseline), 3),
    }


def bench_dataset(dataset: Dataset, models: list[str], args: argparse.Namespace, tmp: Path) -> list[dict]:
    if not (DATA / f"{dataset.name}.csv").exists():
        print(f"skipping {dataset.name}: {DATA / f'{dataset.name}.csv'} not found")
        return []
    train, holdout = dataset.load(args.quick)
    train, holdout = train.drop(columns=[dataset.group]), holdout.drop(columns=[dataset.group])
    print(f"{dataset.name}: train {train.shape}, holdout {holdout.shape}", flush=True)
    rows = [{"model": "baseline (holdout)", **score(train, holdout, holdout, baseline=True)}]
    print(f"  {rows[-1]}", flush=True)
    for model in models:
        spec = {"dataset": dataset.name, "model": model, "quick": args.quick,
                "gan_seconds": args.gan_seconds, "out": str(tmp / f"{dataset.name}-{model}.parquet")}
        result = run_worker(spec, timeout=args.gan_seconds * 3 + 300)
        if result is None:
            rows.append({"model": model, "failed": True})
            continue
        synthetic = pd.read_parquet(spec["out"])
        rows.append({"model": model, **result, "rows": len(synthetic), **score(train, holdout, synthetic)})
        print(f"  {rows[-1]}", flush=True)
    return rows


def machine() -> str:
    import sdv
    import sklearn
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM; Python {platform.python_version()}, "
            f"torch {torch.__version__} (CUDA {'yes' if torch.cuda.is_available() else 'no'}), "
            f"sdv {sdv.__version__}, scikit-learn {sklearn.__version__}")


def table(rows: list[dict], baseline_k3: float) -> str:
    header = ("| model | fit s | sample s | peak MB | epochs | k1 | k2 | k3 | k3 % of baseline "
              "| AUC | copies | DCR share |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [header]
    for r in rows:
        if r.get("failed"):
            lines.append(f"| {r['model']} | failed | | | | | | | | | | |")
            continue
        fit = f"{r['fit_s']:.1f}" if "fit_s" in r else "–"
        sample = f"{r['sample_s']:.1f}" if "sample_s" in r else "–"
        peak = f"{r['peak_mb']:.0f}" if "peak_mb" in r else "–"
        epochs = r.get("epochs") or "–"
        share = f"{100 * r['k3'] / baseline_k3:.0f}%"
        lines.append(f"| {r['model']} | {fit} | {sample} | {peak} | {epochs} | {r['k1']} | {r['k2']} | {r['k3']} "
                     f"| {share} | {r['auc']:.2f} | {r['copies']:.4f} | {r['dcr']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 2,000 train rows, 20 s GAN budget, no scale run")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--datasets", default="eusilc,ses")
    parser.add_argument("--gan-seconds", type=float, default=120.0, help="time budget of ctgan/tvae")
    parser.add_argument("--no-scale", action="store_true", help="skip the 100,000-row timing")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scale-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if args.scale_worker:
        return scale_worker(json.loads(args.scale_worker))
    if args.quick:
        args.gan_seconds = min(args.gan_seconds, 20.0)
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models: {sorted(unknown)}")
    started = time.perf_counter()
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in [d for d in args.datasets.split(",") if d]:
            rows = bench_dataset(DATASETS[name], models, args, Path(tmp))
            if rows:
                sections.append((name, rows))
        scale = []
        if not (args.quick or args.no_scale) and (DATA / "eusilc.csv").exists():
            for model in [m for m in ("cart", "ctgan") if m in models]:
                spec = {"model": model, "gan_seconds": args.gan_seconds, "out": str(Path(tmp) / f"scale-{model}")}
                command = [sys.executable, __file__, "--scale-worker", json.dumps(spec)]
                done = subprocess.run(command, capture_output=True, text=True, timeout=args.gan_seconds * 4 + 600)
                if done.returncode == 0:
                    scale.append((model, json.load(open(spec["out"] + ".json"))))
                    print(f"scale {model}: {scale[-1][1]}", flush=True)
                else:
                    print(f"scale {model} failed:\n{done.stderr[-2000:]}")
    write_results(args, sections, scale, time.perf_counter() - started)


def write_results(args: argparse.Namespace, sections: list, scale: list, seconds: float) -> None:
    command = "XDG_DATA_HOME=/tmp/xdg .venv/bin/python bench/synthesis/run.py " + " ".join(sys.argv[1:])
    out = [
        "# Synthesis benchmark",
        "",
        f"Machine: {machine()}.  ",
        f"Command: `{command.strip()}` ({seconds / 60:.1f} min in all).  ",
        "Set-up as in /work/shared/PEERS.md (50/50 split by household / employer, ids dropped, "
        f"as many synthetic rows as train rows); ctgan/tvae: 300 epochs at most, budget {args.gan_seconds:.0f} s. "
        "Metrics: local versions in `bench/synthesis/metrics.py` (`synth_assets.validation.metrics` did not exist). "
        "Peak MB is the worker process's maximum resident set (Python, numpy, sklearn, and torch/SDV where used).",
        "",
    ]
    out += ["Targets: k3 at least 95% of the baseline's, no copies, DCR share at most 0.55.", ""]
    for name, rows in sections:
        out += [f"## {name}", "", table(rows, rows[0]["k3"]), ""]
    if sections:
        out += ["Models:", ""]
        out += [f"- `{m}`: {MODELS[m][0]}" for m in MODELS if any(r["model"] == m for _, rows in sections for r in rows)]
        out += ["", "Reading and discussion: `bench/synthesis/README.md`.", ""]
    if scale:
        out += ["## 100,000 rows (EU-SILC train resampled to 100,000 x 26)", "",
                "| model | fit s | sample s (100,000 rows) | peak MB | epochs |", "|---|---|---|---|---|"]
        for model, r in scale:
            out.append(f"| {model} | {r['fit_s']:.1f} | {r['sample_s']:.1f} | {r['peak_mb']:.0f} | {r.get('epochs') or '–'} |")
        out.append("")
    args.output.write_text("\n".join(out))
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
