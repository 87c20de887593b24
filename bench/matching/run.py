"""Benchmark of synth_assets.matching on EU-SILC, on the demo population, plus a scale run.

    python bench/matching/run.py [--quick] [--parts eusilc,demo,scale]

EU-SILC part (skipped with a message when ../shared/data/eusilc.csv is absent):
persons aged 16+ split 60/40 by household into recipient and donor; X = age,
sex, region, household size, citizenship; Y = employee income (py010n), kept
in the recipient; Z = economic status (pl030) plus unemployment benefit
(py090n), kept in the donor.  Truth = the recipient's hidden pl030.  Scores as
in the reference runs (bench/README.md): Z TVD vs donor, Y×Z TVD vs truth (Y in 5 weighted quantile
classes), Cramér's V of Y×Z, mean X×Z TVD vs donor (numeric X in donor-weighted
quintiles).  The auxiliary runs add a 5% sample of donor households observing
Y and Z together, redrawn several times because one 5% sample is noisy.

The true Z of the recipients scored against the donor is the sampling floor there: the
recipient and donor halves are two independent samples of the same population.

Demo part (runs by default; see bench/matching/demo.py): a generated city whose truth
holds every survey variable of every person; each of the four catalog surveys fused
into the register by every method through the pipeline's fuse_sources, side by side
with a CIA oracle and the sampling floor of an independent sample of the same design;
5% auxiliary samples; all four surveys chained, every cross-source joint vs the truth.

Scale part: generated files, 1,000,000 recipients × 20,000 donors for
nnd_hotdeck and neural_draw and 50,000 × 5,000 for nnd_constrained, each in a
child process so that its peak RSS is its own.

Writes bench/matching/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo_city as demo  # noqa: E402  (bench/matching/demo_city.py)

from synth_assets.matching import compare_to_truth, fuse  # noqa: E402
from synth_assets.matching.diagnostics import weighted_tvd, x_by_z_tvds  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "eusilc.csv"
FLOOR_LABEL = "the true Z itself (= sampling floor: an independent sample scored against the donor)"
RESULTS = Path(__file__).with_name("results.md")
X = ["age", "rb090", "db040", "hsize", "pb220a"]
Y, Z, W = "py010n", "pl030", "rb050"
CLASSES = ["db040", "rb090"]

# (label, method, options) run on the EU-SILC split.
RUNS = [
    ("nnd_hotdeck, Gower, classes region × sex", "nnd_hotdeck", {}),
    ("nnd_hotdeck k=5 (≈ RANDwNND)", "nnd_hotdeck", {"k": 5}),
    ("nnd_hotdeck, Mahalanobis, classes region × sex", "nnd_hotdeck", {"distance": "mahalanobis"}),
    ("nnd_constrained, classes region × sex", "nnd_constrained", {}),
    ("nnd_constrained, slack=0.25", "nnd_constrained", {"slack": 0.25}),
    ("rank_hotdeck on age, classes region × sex", "rank_hotdeck", {}),
    ("random_hotdeck within region × sex", "random_hotdeck", {}),
    ("pmm (ridge on pl030 indicators, k=5)", "pmm", {"target": Z}),
    ("model_draw (boosting for pl030, forest leaves for py090n)", "model_draw", {}),
    ("neural_draw (torch MLP; k=3 nearest in predicted space)", "neural_draw", {}),
    ("neural_draw, pl030 level drawn first", "neural_draw", {"draw": "level"}),
]
DEFAULT_CANDIDATES = ("nnd_hotdeck", "neural_draw")  # checked against the targets
REFERENCE_SCORES = """\
| StatMatch NND.hotdeck, Gower, classes region × sex | 1.8 | 0.011 | 0.197 | 0.262 | 0.029 |
| StatMatch NND.hotdeck constrained | 71.6 | 0.006 | 0.198 | 0.261 | 0.022 |
| StatMatch RANDwNND.hotdeck | 2.1 | 0.016 | 0.223 | 0.237 | 0.036 |
| StatMatch rankNND.hotdeck | 0.3 | 0.008 | 0.221 | 0.249 | 0.034 |
| microimpute QRF | 6.7 | 0.078 | 0.212 | 0.252 | 0.085 |
| random hot deck within classes | 0.0 | 0.010 | 0.380 | 0.071 | 0.126 |
| CIA oracle | 1.9 | 0.009 | 0.194 | 0.266 | 0.025 |
| the true Z itself | – | 0.014 | 0 | 0.437 | 0.032 |"""


def load_split(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(recipient, donor, truth, full adult data): 60/40 split of households."""
    data = pd.read_csv(DATA)
    adults = data[data["age"] >= 16].reset_index(drop=True)
    adults[Z] = pd.Categorical(adults[Z].astype("Int64"))
    households = adults["db030"].unique()
    rng = np.random.default_rng(seed)
    in_recipient = adults["db030"].isin(rng.permutation(households)[: int(0.6 * len(households))])
    truth = adults[in_recipient].reset_index(drop=True)
    donor = adults[~in_recipient].reset_index(drop=True)
    recipient = truth[X + [Y, W, "db030", "rb030"]]
    return recipient, donor[X + [Z, "py090n", Y, W, "db030"]], truth, adults


def scores(fused: pd.DataFrame, donor: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    versus_truth = compare_to_truth(fused, truth, Y, Z, W)
    x_by_z = x_by_z_tvds(fused, donor, X, [Z], fused[W].to_numpy(), donor[W].to_numpy())
    return {
        "z_tvd": weighted_tvd(fused[Z], donor[Z], fused[W].to_numpy(), donor[W].to_numpy()),
        "yz_tvd": versus_truth["yz_tvd_vs_truth"],
        "cramers_v": versus_truth["cramers_v_fused"],
        "cramers_v_truth": versus_truth["cramers_v_truth"],
        "xz_tvd": float(np.mean(list(x_by_z.values()))),
    }


def timed_fuse(recipient: pd.DataFrame, donor: pd.DataFrame, method: str, **options: object):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fuse(
        recipient,
        donor.drop(columns=[Y, "db030"]),  # the recipient's rb030 rides along untouched
        on=X,
        impute=[Z, "py090n"],
        recipient_weight=W,
        donor_weight=W,
        donation_classes=CLASSES,
        method=method,
        **options,
    )
    return result, time.process_time() - cpu, time.perf_counter() - wall


def cia_oracle(recipient: pd.DataFrame, adults: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Z drawn from the full data's weighted distribution of Z in the recipient's X cell, leaving the
    recipient's own record out (with it in, fine cells leak the true Z: Y×Z TVD 0.18 instead of 0.20).

    Cells: 5-year age group (80+ pooled) × sex × household size (5+ pooled) × citizenship × region.
    """

    def cell(frame: pd.DataFrame) -> np.ndarray:
        parts = [
            (frame["age"].clip(upper=80) // 5).astype(str),
            frame["rb090"],
            frame["hsize"].clip(upper=5).astype(str),
            frame["pb220a"],
            frame["db040"],
        ]
        return pd.concat(parts, axis=1).agg("|".join, axis=1).to_numpy()

    rng = np.random.default_rng(seed)
    members = pd.Series(np.arange(len(adults))).groupby(cell(adults)).apply(np.asarray).to_dict()
    position = pd.Series(np.arange(len(adults)), index=adults["rb030"])
    z, w = adults[Z].to_numpy(), adults[W].to_numpy()
    drawn = np.empty(len(recipient), dtype=object)
    for i, (key, own) in enumerate(zip(cell(recipient), position.loc[recipient["rb030"]].to_numpy(), strict=True)):
        pool = members[key][members[key] != own]
        pool = pool if pool.size else members[key]  # alone in its cell: nothing else to draw from
        drawn[i] = z[rng.choice(pool, p=w[pool] / w[pool].sum())]
    return recipient.assign(**{Z: pd.Categorical(drawn, categories=adults[Z].cat.categories)})


def eusilc_runs(n_splits: int, aux_draws: int) -> tuple[list[dict], list[dict]]:
    """Every method on ``n_splits`` household splits; the auxiliary runs on ``aux_draws`` samples per split."""
    rows, aux_rows = [], []
    for split in range(n_splits):
        recipient, donor, truth, adults = load_split(split)
        print(f"EU-SILC split {split}: {len(recipient)} recipients, {len(donor)} donors", flush=True)
        for label, method, options in RUNS:
            result, cpu, wall = timed_fuse(recipient, donor, method, seed=split, **options)
            rows.append({"label": label, "method": method, "default": not options, "split": split, "cpu": cpu,
                         "wall": wall, **scores(result.data, donor, truth)})
            print(f"  {label}: Y×Z {rows[-1]['yz_tvd']:.3f}, {wall:.2f} s", flush=True)
        cpu, wall = time.process_time(), time.perf_counter()
        oracle = cia_oracle(recipient, adults, seed=split)
        rows.append(
            {
                "label": "CIA oracle: Z drawn from its full-data distribution given X (leave-one-out)",
                "split": split,
                "cpu": time.process_time() - cpu,
                "wall": time.perf_counter() - wall,
                **scores(oracle, donor, truth),
            }
        )
        rows.append(
            {"label": FLOOR_LABEL, "split": split, "cpu": None, "wall": None, **scores(truth, donor, truth)}
        )

        donor_households = donor["db030"].unique()
        for draw in range(aux_draws):
            rng = np.random.default_rng(100 * split + draw)
            sample = rng.choice(donor_households, size=int(0.05 * len(donor_households)), replace=False)
            auxiliary = donor.loc[donor["db030"].isin(sample), X + [Y, Z, W]]
            for label, options in (
                ("aux_hotdeck, 5% auxiliary sample", {}),
                ("aux_hotdeck, same, no shrinkage towards the CIA (prior=0)", {"prior": 0}),
            ):
                result, cpu, wall = timed_fuse(
                    recipient, donor, "aux_hotdeck", seed=draw, auxiliary=auxiliary, **options
                )
                aux_rows.append(
                    {
                        "label": label,
                        "split": split,
                        "n_aux": len(auxiliary),
                        "cpu": cpu,
                        "wall": wall,
                        **scores(result.data, donor, truth),
                    }
                )
                print(f"  {label}, draw {draw}: Y×Z {aux_rows[-1]['yz_tvd']:.3f}", flush=True)
    return rows, aux_rows


def generated(n: int, seed: int, continuous: bool) -> pd.DataFrame:
    """EU-SILC-like X (optionally plus a continuous one) with Z depending on age."""
    rng = np.random.default_rng(seed)
    age = rng.integers(16, 90, n)
    frame = pd.DataFrame(
        {
            "age": age,
            "sex": rng.choice(["female", "male"], n),
            "region": rng.choice([f"r{i}" for i in range(9)], n),
            "hsize": rng.integers(1, 9, n),
            "citizenship": rng.choice(["AT", "EU", "Other"], n, p=[0.85, 0.1, 0.05]),
            "w": rng.uniform(50, 500, n),
        }
    )
    if continuous:
        frame["income"] = rng.lognormal(10, 1, n)
    frame["status"] = np.where(rng.random(n) < 1 / (1 + np.exp((age - 45) / 8)), "work", "other")
    frame["benefit"] = rng.exponential(1000, n)
    return frame


def scale_child(spec: str) -> None:
    """Run one scale case in this (child) process and print its JSON line."""
    method, n_rec, n_don, continuous = spec.split(":")
    continuous = continuous == "1"
    recipient = generated(int(n_rec), 1, continuous).drop(columns=["status", "benefit"])
    donor = generated(int(n_don), 2, continuous)
    on = ["age", "sex", "region", "hsize", "citizenship"] + (["income"] if continuous else [])
    cpu, wall = time.process_time(), time.perf_counter()
    result = fuse(
        recipient, donor, on=on, impute=["status", "benefit"], recipient_weight="w", donor_weight="w", method=method
    )
    print(
        json.dumps(
            {
                "method": method,
                "recipients": int(n_rec),
                "donors": int(n_don),
                "continuous": continuous,
                "wall": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
                "fuse_seconds": result.diagnostics.seconds,
                "peak_rss_mb": peak_rss_mb(),
                "z_tvd": result.diagnostics.marginal["status"]["value"],
            }
        )
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process.

    ``VmHWM`` belongs to the process's own address space, so it starts afresh at exec;
    ``ru_maxrss`` is carried over from the parent on Linux, and the benchmark parent holds
    about 1 GB after the demo part, which then showed up as every child's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_runs(quick: bool) -> list[dict]:
    big = (200_000, 10_000) if quick else (1_000_000, 20_000)
    specs = [
        f"nnd_hotdeck:{big[0]}:{big[1]}:0",
        f"nnd_hotdeck:{big[0]}:{big[1]}:1",
        f"neural_draw:{big[0]}:{big[1]}:0",
        f"neural_draw:{big[0]}:{big[1]}:1",
        "nnd_constrained:50000:5000:0",
        "nnd_constrained:50000:5000:1",
    ]
    out = []
    for spec in specs:
        done = subprocess.run(
            [sys.executable, __file__, "--scale-child", spec], capture_output=True, text=True, check=True
        )
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  scale {spec}: {out[-1]}", flush=True)
    return out


def machine() -> str:
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {platform.python_version()}, {platform.system()}"
    )


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summarise(rows: list[dict]) -> list[dict]:
    """Mean of every score per label (in first-seen order), with the sd of the Y×Z TVD."""
    frame = pd.DataFrame(rows)
    out = []
    for label, group in frame.groupby("label", sort=False):
        means = group.drop(columns=["label"]).mean(numeric_only=True).to_dict()
        means["yz_sd"] = group["yz_tvd"].std(ddof=1) if len(group) > 1 else 0.0
        out.append({"label": label, "n": len(group), **means})
    return out


def score_cells(r: dict) -> str:
    return f"{fmt(r['z_tvd'])} | {fmt(r['yz_tvd'])} ± {r['yz_sd']:.3f} | {fmt(r['cramers_v'])} | {fmt(r['xz_tvd'])}"


def eusilc_targets(rows: list[dict], aux_rows: list[dict]) -> list[str]:
    """The issue's targets on EU-SILC for the default candidates (default options)."""
    frame = pd.DataFrame(rows)
    oracle = frame[frame["label"].str.startswith("CIA oracle")]["yz_tvd"].mean()
    floor = frame[frame["label"] == FLOOR_LABEL][["z_tvd", "xz_tvd"]].mean()
    lines = ["### Targets on EU-SILC (default options, classes region × sex)", "", *demo.TARGETS_HEADER]
    for method in DEFAULT_CANDIDATES:
        picked = frame[(frame["method"] == method) & frame["default"].astype(bool)]
        lines.append(demo.target_row("EU-SILC", method, picked[["z_tvd", "xz_tvd", "yz_tvd", "wall"]].mean()
                                     .rename({"wall": "seconds"}), oracle, floor["z_tvd"], floor["xz_tvd"]))
    if aux_rows:
        aux = pd.DataFrame(aux_rows)
        best = aux.groupby("label")["yz_tvd"].mean().min()
        change = best / oracle - 1
        lines += ["", f"With the 5% auxiliary sample: Y×Z {best:.3f} against the oracle's {oracle:.3f}, {change:+.0%} "
                  f"({'met' if change <= -0.3 else '**missed**'}: target at least 30% below)."]
    return lines + [""]


def ranking(frame: pd.DataFrame, what: str, n: int = 4) -> str:
    """The ``n`` methods with the lowest mean Y×Z TVD (reference rows left out), as one line."""
    methods = frame[frame["method"].notna()] if "method" in frame else frame
    means = methods.groupby("label", sort=False)[["yz_tvd", "z_tvd", "xz_tvd"]].mean().sort_values("yz_tvd")
    best = "; ".join(
        f"{label} {r.yz_tvd:.3f} (Z {r.z_tvd:.3f}, X×Z {r.xz_tvd:.3f})" for label, r in means.head(n).iterrows()
    )
    return f"- {what}, lowest Y×Z TVD first: {best}."


def write_report(
    rows: list[dict],
    aux_rows: list[dict],
    scale: list[dict],
    command: str,
    demo_lines: list[str] | None = None,
    summary: list[str] | None = None,
) -> None:
    lines = [
        "# synth_assets.matching benchmark",
        "",
        f"Machine: {machine()} (shared with other work while it ran).  ",
        f"Command: `{command}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    if summary:
        lines += ["## Summary", "", *summary, ""]
    if rows:
        table = summarise(rows)
        n_splits = table[0]["n"]
        truth_v = table[-1]["cramers_v_truth"]
        lines += [
            f"## EU-SILC (persons 16+, 60/40 household split; mean over {n_splits} splits, ± sd of Y×Z)",
            "",
            "Set-up and scores as in the StatMatch reference runs (bench/README.md). CPU s: process CPU time of the `fuse` call,",
            "diagnostics included; wall s in brackets. Every hot deck imputes pl030 and py090n as one block.",
            "Y = py010n cut at its weighted quintiles in the truth; with 47% zeros, that gives 4 classes.",
            "",
            f"| method | CPU s (wall) | Z TVD vs donor | Y×Z TVD vs truth | Cramér's V (truth {truth_v:.3f}) "
            "| mean X×Z TVD |",
            "|---|---|---|---|---|---|",
        ]
        for r in table:
            time_cell = "–" if pd.isna(r["cpu"]) else f"{r['cpu']:.2f} ({r['wall']:.2f})"
            lines.append(f"| {r['label']} | {time_cell} | {score_cells(r)} |")
        lines += [
            "",
            "Reference runs (StatMatch / microimpute, same set-up, one split of their own; bench/README.md):",
            "",
            "| method | CPU s | Z TVD vs donor | Y×Z TVD vs truth | Cramér's V (truth 0.437) | mean X×Z TVD |",
            "|---|---|---|---|---|---|",
            REFERENCE_SCORES,
            "",
            *eusilc_targets(rows, aux_rows),
        ]
    if aux_rows:
        baseline = next(r for r in summarise(rows) if r["label"] == RUNS[0][0])
        lines += [
            "## With a 5% auxiliary sample of donor households observing Y and Z together",
            "",
            f"Mean over {len(aux_rows) // 2} samples ({n_splits} splits); the CIA row is the nnd_hotdeck above.",
            "",
            "| method | auxiliary records | CPU s | Z TVD vs donor | Y×Z TVD vs truth | Cramér's V | mean X×Z TVD |",
            "|---|---|---|---|---|---|---|",
            f"| nnd_hotdeck, no auxiliary (CIA) | 0 | {baseline['cpu']:.2f} | {score_cells(baseline)} |",
        ]
        for r in summarise(aux_rows):
            lines.append(f"| {r['label']} | {r['n_aux']:.0f} | {r['cpu']:.2f} | {score_cells(r)} |")
        lines.append("")
    lines += demo_lines or []
    if not scale:
        RESULTS.write_text("\n".join(lines) + "\n")
        print(f"wrote {RESULTS}")
        return
    lines += [
        "## Scale (generated data, each case in its own process)",
        "",
        'X = age, sex, region (9), household size, citizenship (3); "+ continuous" adds a lognormal income,',
        "which makes nearly every recipient's X profile unique. Z = a status and an amount, imputed as one block.",
        "Peak RSS is the whole child process (data generation, fuse, diagnostics).",
        "",
        "| method | recipients × donors | X | wall s (fuse) | CPU s | peak RSS MB | Z TVD vs donor |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scale:
        kind = "+ continuous" if s["continuous"] else "discrete"
        lines.append(
            f"| {s['method']} | {s['recipients']:,} × {s['donors']:,} | {kind} | "
            f"{s['fuse_seconds']:.1f} | {s['cpu']:.1f} | {s['peak_rss_mb']:.0f} | {s['z_tvd']:.4f} |"
        )
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true",
        help="one EU-SILC split, one auxiliary draw, one 50k-person demo city, 200k × 10k scale run",
    )
    parser.add_argument("--parts", default="eusilc,demo,scale", help="comma-separated subset of eusilc,demo,scale")
    parser.add_argument("--demo-persons", type=int, help="persons in each demo city (default 200,000; quick 50,000)")
    parser.add_argument("--demo-recipients", type=int, help="register persons fused into (default 50,000)")
    parser.add_argument("--demo-cities", type=int, help="demo cities, i.e. generator seeds (default 3; quick 1)")
    parser.add_argument("--scale-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child:
        scale_child(args.scale_child)
        return 0
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"eusilc", "demo", "scale"}
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    rows: list[dict] = []
    aux_rows: list[dict] = []
    if "eusilc" in parts:
        if DATA.exists():
            rows, aux_rows = eusilc_runs(n_splits=1 if args.quick else 5, aux_draws=1 if args.quick else 2)
        else:
            print(f"skipping the EU-SILC benchmark: {DATA} not found")
    demo_lines: list[str] = []
    summary: list[str] = []
    if rows:
        summary.append(ranking(pd.DataFrame(rows), "EU-SILC (5 household splits)" if not args.quick else "EU-SILC"))
    if "demo" in parts:
        persons = args.demo_persons or (50_000 if args.quick else 200_000)
        recipients = args.demo_recipients or 50_000
        cities = args.demo_cities or (1 if args.quick else 3)
        print(f"demo: {cities} cities of {persons:,} persons, {recipients:,} recipients", flush=True)
        d_rows, d_aux, d_chained, d_bounds = demo.demo_runs(
            persons, recipients, cities, floor_draws=3 if args.quick else 5, log=lambda m: print(m, flush=True)
        )
        settings = f"{persons:,} persons, register file of {min(recipients, persons):,} persons"
        demo_lines = demo.report_lines(d_rows, d_aux, d_chained, d_bounds, settings)
        summary.append(ranking(pd.DataFrame(d_rows), f"Demo population ({settings}), mean of the four surveys"))
        if not args.quick and args.demo_persons is None:
            # The regime the surveys of a 50,000-person city are in: a few hundred households each.
            print("demo: one city of 50,000 persons (small surveys)", flush=True)
            s_rows, _, _, _ = demo.demo_runs(50_000, None, 1, floor_draws=5, runs=demo.RUNS, chained_methods=(),
                                             aux=False, log=lambda m: print(m, flush=True))
            small = pd.DataFrame(s_rows)
            demo_lines += [
                "### Small surveys: one city of 50,000 persons, the whole register fused into",
                "",
                "Donor persons: " + ", ".join(f"{k} {v:,.0f}" for k, v in small.groupby("survey", sort=False)["donors"]
                                              .mean().items()) + ". Mean over the four surveys.",
                "",
                *demo.method_table(small),
                "",
            ]
    scale = scale_runs(args.quick) if "scale" in parts else []
    command = "python bench/matching/run.py" + (" --quick" if args.quick else "") + (
        f" --parts {args.parts}" if parts != {"eusilc", "demo", "scale"} else ""
    )
    write_report(rows, aux_rows, scale, command, demo_lines, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
