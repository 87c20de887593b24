"""Benchmark of the synthesis families on the shared EU-SILC and SES microdata.

    .venv/bin/python bench/synthesis/run.py [--quick] [--models cart,copula,...] [--gan-seconds 120]

Set-up as in the reference runs of bench/README.md: each dataset split 50/50 into train and holdout by
household (``db030``) or place of employment (``IDunit``), identifiers dropped; every model
is fitted on train and samples as many rows as train has; the baseline row scores the
holdout against train. Each model runs in its own process, so its peak memory (maximum
resident set size, libraries included) is its own. A scale section fits CART and a
time-budgeted CTGAN on 100,000 rows. Results go to ``bench/synthesis/results.md``.

Our own networks: ``neural`` (autoregressive) within ``NEURAL_SECONDS``, ``gan`` (conditional
WGAN-GP) within ``GAN_SECONDS`` (``gan-600s``, ``gan-patient``: 600 s), both stopping early
on held-out rows of whole households / employers.

Scores are the product's own metrics (``synth_assets.validation``), called as
``evaluate`` calls them, so a row here reads like the validation report and the release
gate would read the same synthetic file.

The GANs appear twice: with the pipeline's kind of time budget (``ctgan``, ``tvae``: what
``--gan-seconds`` buys on this machine, so the row moves with the machine's load) and with
a fixed number of epochs and no budget (``ctgan-300ep``, ``tvae-300ep``: the quality the
model reaches after SDV's default training on any machine; repeated fits still differ by
about 15 k3 points, see the README on ctgan's threaded transform).
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
sys.path.insert(0, str(ROOT))

from synth_assets.synthesis import HouseholdSynthesizer, make_synthesizer  # noqa: E402
from synth_assets.synthesis.split import split_by_group  # noqa: E402
from synth_assets.validation.evaluate import PROPENSITY_MAX_ROWS  # noqa: E402
from synth_assets.validation.preparation import sample_rows  # noqa: E402
from synth_assets.validation.privacy import dcr, exact_copy_rate  # noqa: E402
from synth_assets.validation.privacy.gower import gower_encode, nearest_neighbours  # noqa: E402
from synth_assets.validation.utility import kmarginal_scores, pmse  # noqa: E402

#: Default location of eusilc.csv and ses.csv (``--data`` changes it).
DATA = ROOT.parent / "shared" / "data"

#: Training budget of the ``neural`` rows (seconds, fit of the network only): the target is
#: 100,000 rows fitted in under 10 minutes on 2 cores, preprocessing and copy filter included.
NEURAL_SECONDS = 480.0

#: Training budget of the ``gan`` rows (seconds, training of the networks only).
GAN_SECONDS = 240.0


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

#: SDV's default number of epochs for CTGAN and TVAE: the fixed-epoch rows train this many.
SDV_DEFAULT_EPOCHS = 300

#: Worker time limit of the rows without a time budget: a guard against a hung fit only
#: (300 CTGAN epochs on 7,000 rows take about 7 min on an idle 2-core machine).
UNBUDGETED_TIMEOUT_S = 3600.0

#: name -> (description, whether it models households, parameters). GAN rows without an
#: ``epochs`` parameter get SDV's default epochs and ``--gan-seconds`` as a time budget.
MODELS: dict[str, tuple[str, bool, dict]] = {
    "cart": ("CART, defaults (min_leaf sqrt(n), smoothing)", False, {"family": "cart"}),
    "cart-synthpop": ("CART as synthpop (min_leaf 5, no smoothing)", False,
                      {"family": "cart", "min_leaf": 5, "smoothing": False}),
    "cart-households": ("households: CART households + CART persons", True, {}),
    "households-copula-cart": ("households: copula households + CART persons", True,
                               {"household_family": "copula"}),
    "copula": ("Gaussian copula (normal scores)", False, {"family": "copula"}),
    "neural": ("autoregressive masked MLP (ours), early stopping on held-out NLL of whole households", False,
               {"family": "neural", "max_seconds": NEURAL_SECONDS}),
    "neural-dropout": ("autoregressive masked MLP, dropout 0.2", False,
                       {"family": "neural", "dropout": 0.2, "max_seconds": NEURAL_SECONDS}),
    "gan": ("conditional WGAN-GP (ours), CTGAN's settings, early stopping on held-out TVD of whole households",
            False, {"family": "gan", "max_seconds": GAN_SECONDS}),
    "gan-fast": ("conditional WGAN-GP (ours), learning rates 1e-3, batch 200", False,
                 {"family": "gan", "generator_lr": 1e-3, "critic_lr": 1e-3, "batch_size": 200,
                  "max_seconds": GAN_SECONDS}),
    "gan-600s": ("conditional WGAN-GP (ours), CTGAN's settings, 600 s budget", False,
                 {"family": "gan", "max_seconds": 600.0}),
    "gan-patient": ("conditional WGAN-GP (ours), CTGAN's settings, patience 20 checks, 600 s budget", False,
                    {"family": "gan", "patience": 20, "max_seconds": 600.0}),
    "ctgan": ("CTGAN, 300 epochs at most within the time budget", False, {"family": "ctgan"}),
    "ctgan-300ep": ("CTGAN, 300 epochs, no time budget", False,
                    {"family": "ctgan", "epochs": SDV_DEFAULT_EPOCHS, "max_seconds": None}),
    "tvae": ("TVAE, 300 epochs at most within the time budget", False, {"family": "tvae"}),
    "tvae-300ep": ("TVAE, 300 epochs, no time budget", False,
                   {"family": "tvae", "epochs": SDV_DEFAULT_EPOCHS, "max_seconds": None}),
}


def peak_mb() -> float:
    """Peak resident memory of this process since it started (``VmHWM``).

    Not ``ru_maxrss``: Linux keeps that across ``execve``, so a worker would report its
    parent's size whenever that is larger.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def budgeted(model: str) -> bool:
    """Whether the model trains within ``--gan-seconds`` (a GAN row without fixed epochs)."""
    params = MODELS[model][2]
    return params.get("family") in ("ctgan", "tvae") and "epochs" not in params


def build(model: str, dataset: Dataset, gan_seconds: float, seed: int = 0):
    _, households, params = MODELS[model]
    params = dict(params)
    if households:
        return HouseholdSynthesizer(
            params.pop("household_family", "cart"), "cart", household_id=dataset.group,
            size_column=dataset.size_column, seed=seed,
        )
    if budgeted(model):
        params.update(epochs=SDV_DEFAULT_EPOCHS, max_seconds=gan_seconds)
    if keeps_group(model):  # the group column is an identifier here, not modelled
        params.update(id_columns=[dataset.group], holdout_groups=[dataset.group])
    return make_synthesizer(params.pop("family"), seed=seed, **params)


def keeps_group(model: str) -> bool:
    """Whether the model sees the household / employer column (neural, gan: early stopping holds out whole groups)."""
    return MODELS[model][2].get("family") in ("neural", "gan")


# ------------------------------------------------------------------ worker side
def worker(spec: dict) -> None:
    """Fit one model on one dataset's train split, sample, save rows and timings."""
    dataset = DATASETS[spec["dataset"]]
    train, _ = dataset.load(spec["quick"])
    synth = build(spec["model"], dataset, spec["gan_seconds"])
    households = MODELS[spec["model"]][1]
    fit_data = train if households or keeps_group(spec["model"]) else train.drop(columns=[dataset.group])
    started = time.perf_counter()
    synth.fit(fit_data)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    synthetic = synth.sample(len(train))
    sample_s = time.perf_counter() - started
    synthetic.drop(columns=[dataset.group], errors="ignore").to_parquet(spec["out"])
    log = synth.training_log
    epochs = log.get("epochs") or (log.get("person") or {}).get("epochs")
    Path(spec["out"] + ".json").write_text(json.dumps(
        {"fit_s": fit_s, "sample_s": sample_s, "epochs": epochs,
         "peak_mb": peak_mb()},
    ))


def scale_worker(spec: dict) -> None:
    """Fit on 100,000 EU-SILC-like rows (train resampled), sample 100,000; time both."""
    train, _ = DATASETS["eusilc"].load(False)
    if not keeps_group(spec["model"]):
        train = train.drop(columns=["db030"])
    big = train.sample(100_000, replace=True, random_state=0).reset_index(drop=True)
    synth = build(spec["model"], DATASETS["eusilc"], spec["gan_seconds"])
    started = time.perf_counter()
    synth.fit(big)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    synth.sample(100_000)
    sample_s = time.perf_counter() - started
    Path(spec["out"] + ".json").write_text(json.dumps(
        {"fit_s": fit_s, "sample_s": sample_s, "epochs": synth.training_log.get("epochs"),
         "peak_mb": peak_mb(),
         "shape": list(big.shape)},
    ))


# ------------------------------------------------------------------ parent side
def run_worker(spec: dict, timeout: float) -> dict | None:
    env = dict(os.environ, XDG_DATA_HOME=os.environ.get("XDG_DATA_HOME", "/tmp/xdg"))
    command = [sys.executable, __file__, "--data", str(DATA), "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, env=env, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        print(f"  {spec['model']}: timed out after {timeout:.0f} s")
        return None
    if done.returncode != 0:
        print(f"  {spec['model']}: failed\n{done.stderr[-2000:]}")
        return None
    return json.loads(Path(spec["out"] + ".json").read_text())


def worker_timeout(model: str, gan_seconds: float) -> float:
    """Time limit of a worker: generous against load, only there to stop a hung fit."""
    if MODELS[model][2].get("family") in ("ctgan", "tvae") and not budgeted(model):
        return UNBUDGETED_TIMEOUT_S
    if MODELS[model][2].get("family") == "neural":
        return NEURAL_SECONDS * 2 + 300
    if MODELS[model][2].get("family") == "gan":
        return MODELS[model][2]["max_seconds"] * 2 + 300
    return gan_seconds * 3 + 300


def baseline_dcr_share(train: pd.DataFrame, holdout: pd.DataFrame, seed: int = 0, sample: int = 5000) -> float:
    """DCR share of the holdout itself, as the reference runs define the baseline row.

    ``dcr`` cannot score the holdout: each holdout record would find itself in the
    holdout at distance 0. Here each record's nearest train record is compared with its
    nearest *other* holdout record, on ``dcr``'s terms (the product's Gower encoding,
    train and holdout subsampled to equal size, ties count one half); the same
    definition as ``bench/validation``'s baseline, which matches the reference runs' 0.45.
    """
    rng = np.random.default_rng(seed)
    n = min(len(train), len(holdout))
    train_s, holdout_s = sample_rows(train, n, rng), sample_rows(holdout, n, rng)
    probe = holdout_s.iloc[: min(sample, n)]
    probe_e, train_e, holdout_e = gower_encode([probe, train_s, holdout_s], train)
    to_train = nearest_neighbours(probe_e, train_e, k=1)[0][:, 0]
    to_other_holdout = nearest_neighbours(probe_e, holdout_e, k=2)[0][:, 1]
    return float((to_train < to_other_holdout).mean() + 0.5 * (to_train == to_other_holdout).mean())


def score(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, baseline: bool = False) -> dict:
    """Headline metrics of ``synthetic`` against train, as ``validation.evaluate`` computes them.

    Same functions and arguments as ``evaluate`` (seed 0; k-marginal over all 1-way and
    200 random 2- and 3-way marginals; CART pMSE ratio and gradient-boosting AUC on at
    most ``PROPENSITY_MAX_ROWS`` rows per table; exact copies; Gower DCR share with
    balanced train and holdout). Only the baseline's DCR share needs its own definition
    (``baseline_dcr_share``). Not ``evaluate`` itself: its attacks, association tables
    and figures would triple the scoring time for numbers this table does not show.
    """
    seed = 0
    k = kmarginal_scores(train, synthetic, (1, 2, 3), seed=seed)
    rng = np.random.default_rng(seed)
    propensity = pmse(sample_rows(train, PROPENSITY_MAX_ROWS, rng), sample_rows(synthetic, PROPENSITY_MAX_ROWS, rng),
                      "cart", seed=seed)
    if baseline:
        share = baseline_dcr_share(train, holdout, seed)
    else:
        share = dcr(synthetic, train, holdout, seed=seed).dcr_share
    return {
        **{f"k{i}": round(v) for i, v in k.items()},
        "auc": round(propensity["propensity_auc"], 3),
        "s_pmse": round(propensity["s_pmse"], 1),
        "copies": round(exact_copy_rate(synthetic, train), 4),
        "dcr": round(share, 3),
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
        result = run_worker(spec, timeout=worker_timeout(model, args.gan_seconds))
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

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM; Python {platform.python_version()}, "
            f"torch {torch.__version__} (CUDA {'yes' if torch.cuda.is_available() else 'no'}), "
            f"sdv {sdv.__version__}, scikit-learn {sklearn.__version__}")


def table(rows: list[dict], baseline_k3: float) -> str:
    header = ("| model | fit s | sample s | peak MB | epochs | k1 | k2 | k3 | k3 % of baseline "
              "| AUC | S_pMSE | copies | DCR share |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [header]
    for r in rows:
        if r.get("failed"):
            lines.append(f"| {r['model']} | failed | | | | | | | | | | | |")
            continue
        fit = f"{r['fit_s']:.1f}" if "fit_s" in r else "–"
        sample = f"{r['sample_s']:.1f}" if "sample_s" in r else "–"
        peak = f"{r['peak_mb']:.0f}" if "peak_mb" in r else "–"
        epochs = r.get("epochs") or "–"
        share = f"{100 * r['k3'] / baseline_k3:.0f}%"
        lines.append(f"| {r['model']} | {fit} | {sample} | {peak} | {epochs} | {r['k1']} | {r['k2']} | {r['k3']} "
                     f"| {share} | {r['auc']:.2f} | {r['s_pmse']:.1f} | {r['copies']:.4f} | {r['dcr']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    global DATA
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="about 2,000 train rows, 20 s GAN budget (fixed-epoch rows still train 300 epochs), no scale")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--datasets", default="eusilc,ses")
    parser.add_argument("--gan-seconds", type=float, default=120.0, help="time budget of ctgan/tvae")
    parser.add_argument("--no-scale", action="store_true", help="skip the 100,000-row timing")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument("--data", type=Path, default=None, help=f"folder of eusilc.csv and ses.csv (default {DATA})")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scale-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data is not None:
        DATA = args.data.resolve()
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
            for model in [m for m in ("cart", "neural", "gan", "ctgan") if m in models]:
                spec = {"model": model, "gan_seconds": args.gan_seconds, "out": str(Path(tmp) / f"scale-{model}")}
                command = [sys.executable, __file__, "--data", str(DATA), "--scale-worker", json.dumps(spec)]
                done = subprocess.run(command, capture_output=True, text=True, timeout=max(args.gan_seconds * 4, NEURAL_SECONDS * 2) + 600)
                if done.returncode == 0:
                    scale.append((model, json.loads(Path(spec["out"] + ".json").read_text())))
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
        "Set-up as in the reference runs of bench/README.md (50/50 split by household / employer, ids dropped, "
        f"as many synthetic rows as train rows); `ctgan`/`tvae`: {SDV_DEFAULT_EPOCHS} epochs at most within a budget "
        f"of {args.gan_seconds:.0f} s (preprocessing included); `ctgan-300ep`/`tvae-300ep`: {SDV_DEFAULT_EPOCHS} "
        "epochs, no budget. "
        "Metrics: `synth_assets.validation` as `evaluate` computes them (k-marginal: all 1-way, 200 random 2- and "
        "3-way marginals; AUC: gradient boosting, pooled 5-fold out-of-fold; S_pMSE: CART pMSE ratio; "
        "copies: exact copies of train rows; DCR share: Gower, train and holdout of equal size). "
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
