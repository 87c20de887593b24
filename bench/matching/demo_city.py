"""Matching benchmark on the demo population, where every person's survey variables are known.

``generate_demo`` writes a city of ``persons`` persons for wave 2026, the one wave in which
all four surveys run (silc, lfs: persons; hbs, hfcs: households).  For each survey:

* recipient = the register file: random whole households of the city, up to
  ``recipients`` persons (all of it by default), restricted to the survey's universe,
  with X = the catalog's common variables and Y = the register-specific incomes
  (pension, self-employment, unemployment, property);
* donor = the persons the survey sampled from the *whole* city, with their true survey
  variables Z (no measurement error or item non-response: the truth rows listed in
  ``truth/samples``) and their calibrated survey weights;
* every method runs through the pipeline's own ``fuse_sources`` (household surveys are
  matched household to household on the head's X plus household labour income, then
  broadcast to the members);
* scores, all at person level against the recipients' truth, numbers cut at the truth's
  quintiles: Z marginal TVD (mean over Z), X×Z TVD (mean over the X-Z pairs), Y×Z TVD
  (mean over the Y-Z pairs).

Reference rows:

* CIA oracle: each recipient unit takes the Z block of a random unit of the *whole
  population* in the same X cell, its own household left out: Z drawn from the true
  P(Z | X cell), Y and Z independent given the cell, and no sampling error.  Cells are the
  finest of a ladder (municipality x 5-year age x sex x citizenship x household size x
  household type x relation x labour income class, then coarser) holding at least 5 units
  outside the own household.
* sampling floor: ``floor_draws`` further samples drawn with the survey's own design
  (stratified, unequal probabilities, calibrated weights) from the same city, scored with
  their weights against the recipients' truth: what an independent survey of the same
  size gets wrong by chance.  Its Y×Z is what a survey observing Y and Z would get.
* the donor sample itself, scored the same way (one draw of the floor).

The auxiliary runs give ``aux_hotdeck`` a random 5% of households holding Y and Z
together (5% of the donor sample's households, as in the EU-SILC part, and 5% of the
recipient households) for one (Y, Z) pair per survey (:data:`AUX_PAIRS`).

The chained runs fuse all four surveys in catalog order, as ``matched_dataset`` does, and
compare every cross-source joint (register × survey, survey × survey) with the truth
(:func:`synth_assets.matching.report.truth_comparison`), and check the Fréchet bounds of
:func:`synth_assets.matching.report.fusion_diagnostics` against the truth's cell shares.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.catalog import Catalog, load_catalog
from synth_assets.catalog.model import MatchingStep
from synth_assets.common.columns import is_numeric
from synth_assets.common.distances import code_shares, total_variation
from synth_assets.demo import generate_demo
from synth_assets.demo.incomes import generate_incomes
from synth_assets.demo.population import generate_population
from synth_assets.demo.surveys import SURVEYS, draw_sample
from synth_assets.matching.diagnostics import shared_codes, weighted_quantile_edges
from synth_assets.matching.encoding import as_float
from synth_assets.matching.report import BOUNDS_TOLERANCE, DonorSpec, fusion_diagnostics, truth_comparison
from synth_assets.matching.sources import _head_rows, fuse_sources, household_view

ROOT = Path(__file__).resolve().parents[2]
WAVE = 2026  # (2026 - 2022) % 2 == 0 and (2026 - 2023) % 3 == 0: every survey runs
DEMO_SEED = 20240101
N_BINS = 5

# (label, method, options) run on every survey.
RUNS: list[tuple[str, str, dict[str, Any]]] = [
    ("nnd_hotdeck (Gower, all X)", "nnd_hotdeck", {}),
    ("nnd_hotdeck k=5", "nnd_hotdeck", {"k": 5}),
    ("nnd_hotdeck, Mahalanobis", "nnd_hotdeck", {"distance": "mahalanobis"}),
    ("nnd_constrained", "nnd_constrained", {}),
    ("rank_hotdeck (on age)", "rank_hotdeck", {}),
    ("random_hotdeck", "random_hotdeck", {}),
    ("pmm (first Z)", "pmm", {}),
    ("model_draw", "model_draw", {}),
    ("neural_draw (k=3 nearest in predicted space)", "neural_draw", {}),
    ("neural_draw k=10", "neural_draw", {"k": 10}),
    ("neural_draw, level of the first Z drawn first", "neural_draw", {"draw": "level"}),
]
# One (Y, Z) pair per survey for the auxiliary runs: the pair whose CIA oracle was farthest from
# the truth in a pilot city (seed DEMO_SEED + 100, not one of the benchmark's), i.e. where the
# conditional independence assumption fails most and auxiliary information has most to add.
AUX_PAIRS = {
    "silc": ("property_income", "deprivation"),
    "hbs": ("self_employment_income", "spend_food"),
    "lfs": ("self_employment_income", "contract"),
    "hfcs": ("property_income", "real_estate"),
}


@dataclass
class City:
    """One generated population and what the benchmark needs of it."""

    seed: int
    catalog: Catalog
    truth: pd.DataFrame  # every person, every variable (row i = person_id i + 1)
    recipients: np.ndarray  # mask over truth rows: the persons of the register file fused into
    samples: dict[str, pd.DataFrame]  # survey -> links (person_id, weight, ...)
    population: Any
    incomes: Any

    @property
    def register(self) -> pd.DataFrame:
        return self.truth.loc[self.recipients, list(self.catalog.register.variables)].reset_index(drop=True)

    @property
    def recipient_truth(self) -> pd.DataFrame:
        return self.truth.loc[self.recipients].reset_index(drop=True)


def build_city(persons: int, recipients: int | None, seed: int, workdir: Path) -> City:
    """Generate a city; the recipient file is all of it, or random whole households up to ``recipients`` persons."""
    generate_demo(workdir, persons=persons, waves=(WAVE,), seed=seed)
    catalog = load_catalog(ROOT / "data" / "catalog.yaml")
    truth = pd.read_parquet(workdir / "truth" / f"population_{WAVE}.parquet")
    mask = np.ones(len(truth), bool)
    if recipients is not None and recipients < len(truth):
        households = np.random.default_rng(seed).permutation(truth["household_id"].unique())
        size = truth.groupby("household_id").size().reindex(households).to_numpy()
        mask = truth["household_id"].isin(households[: np.searchsorted(np.cumsum(size), recipients) + 1]).to_numpy()
    samples = {d.name: pd.read_parquet(workdir / "truth" / "samples" / f"{d.name}_{WAVE}.parquet") for d in SURVEYS}
    population = generate_population(seed, persons)
    incomes = generate_incomes(population, seed, WAVE, 0)
    return City(seed, catalog, truth, mask, samples, population, incomes)


def survey_columns(city: City, survey: str) -> tuple[list[str], list[str], list[str]]:
    """(X, Y, Z): the survey's common variables, the register-specific ones, the survey-specific ones."""
    source = city.catalog.sources[survey]
    return source.common, list(city.catalog.register.specific), source.specific


def donor_frame(city: City, survey: str, persons: np.ndarray, weights: np.ndarray) -> pd.DataFrame:
    """Truth rows of sampled persons with the survey's harmonised columns and weight."""
    source = city.catalog.sources[survey]
    x, _, z = survey_columns(city, survey)
    frame = city.truth.iloc[persons][["person_id", "household_id", *x, *z]].reset_index(drop=True)
    frame[source.weight_column] = weights
    return frame


def delivered_donor(city: City, survey: str) -> pd.DataFrame:
    links = city.samples[survey]
    return donor_frame(city, survey, links["person_id"].to_numpy() - 1, links["weight"].to_numpy())


def universe(city: City, survey: str, frame: pd.DataFrame) -> np.ndarray:
    rule = city.catalog.sources[survey].universe
    return frame.eval(rule).to_numpy(dtype=bool) if rule else np.ones(len(frame), bool)


def edges_for(truth: pd.DataFrame, columns: list[str]) -> dict[str, np.ndarray | None]:
    return {
        c: weighted_quantile_edges(as_float(truth[c]), np.ones(len(truth)), N_BINS) if is_numeric(truth[c]) else None
        for c in columns
    }


def joint_tvd(
    a: pd.DataFrame, wa: np.ndarray, b: pd.DataFrame, wb: np.ndarray, cols: list[str], edges: dict
) -> float:
    """TVD between the weighted joint tables of ``cols`` in ``a`` and ``b``."""
    ca, cb, n = np.zeros(len(a), np.int64), np.zeros(len(b), np.int64), 1
    for c in cols:
        xa, xb, k = shared_codes(a[c].reset_index(drop=True), b[c].reset_index(drop=True), edges[c])
        ca, cb, n = ca * k + xa, cb * k + xb, n * k
    return total_variation(code_shares(ca, n, wa), code_shares(cb, n, wb))


def score(
    fused: pd.DataFrame, w: np.ndarray, truth: pd.DataFrame, x: list[str], y: list[str], z: list[str], edges: dict
) -> dict[str, float]:
    """Z marginal, X×Z and Y×Z TVD of ``fused`` (weights ``w``) against ``truth`` (unit weights)."""
    wt = np.ones(len(truth))
    return {
        "z_tvd": float(np.mean([joint_tvd(fused, w, truth, wt, [c], edges) for c in z])),
        "xz_tvd": float(np.mean([joint_tvd(fused, w, truth, wt, [a, c], edges) for a in x for c in z])),
        "yz_tvd": float(np.mean([joint_tvd(fused, w, truth, wt, [a, c], edges) for a in y for c in z])),
    }


def fuse_survey(
    city: City, register: pd.DataFrame, survey: str, donor: pd.DataFrame, method: str, options: dict, seed: int
) -> tuple[pd.DataFrame, float]:
    """One survey fused into the register by the pipeline's ``fuse_sources``; (matched, seconds)."""
    step = MatchingStep(method=method, options=options)
    release = city.catalog.release.model_copy(update={"matching": {survey: step}})
    catalog = city.catalog.model_copy(update={"release": release})
    start = time.perf_counter()
    matched, _ = fuse_sources(catalog, register, {survey: (str(WAVE), donor)}, seed=seed)
    return matched, time.perf_counter() - start


# ---------------------------------------------------------------- CIA oracle


def _cells(frame: pd.DataFrame, columns: list[np.ndarray]) -> np.ndarray:
    codes = np.zeros(len(frame), np.int64)
    for col in columns:
        c, uniques = pd.factorize(col)
        codes, _ = pd.factorize(codes * (len(uniques) + 1) + c)
    return codes


def _income_class(values: np.ndarray) -> np.ndarray:
    positive = values > 0
    edges = np.quantile(values[positive], [0.2, 0.4, 0.6, 0.8]) if positive.any() else np.empty(0)
    return np.where(positive, 1 + np.searchsorted(edges, values, side="left"), 0)


def oracle_ladder(units: pd.DataFrame, labour: list[str]) -> list[np.ndarray]:
    """Cell codes from fine to coarse for person or household units."""
    age = units["age"].to_numpy().clip(max=85)
    lab = [_income_class(as_float(units[c])) for c in labour]
    size = units["household_size"].to_numpy().clip(max=6)
    s = units["sex"].astype(str).to_numpy()
    full = [units["municipality"].astype(str).to_numpy(), age // 5, s, units["citizenship"].astype(str).to_numpy(),
            size, units["household_type"].astype(str).to_numpy(), units["relation"].astype(str).to_numpy(), *lab]
    return [
        _cells(units, full),
        _cells(units, full[1:]),
        _cells(units, [age // 5, s, size, units["household_type"].astype(str).to_numpy(), *lab]),
        _cells(units, [age // 10, s, *lab]),
        _cells(units, [age // 10]),
        np.zeros(len(units), np.int64),
    ]


def oracle_draw(ladder: list[np.ndarray], household: np.ndarray, rng: np.random.Generator, min_size: int = 5):
    """Position of a random unit of the same cell outside the own household, finest cell with enough of them."""
    n = len(household)
    chosen = np.full(n, -1, np.int64)
    for level, codes in enumerate(ladder):
        todo = chosen < 0
        if not todo.any():
            break
        size = np.bincount(codes)[codes]
        pair, _ = pd.factorize(codes * (household.max() + 1) + household)
        own = np.bincount(pair)[pair]
        ok = todo & ((size - own >= min_size) | ((level == len(ladder) - 1) & (size > own)))
        order = np.argsort(codes, kind="stable")
        start = np.searchsorted(codes[order], np.arange(codes.max() + 1))
        rows = np.flatnonzero(ok)
        pick = np.empty(rows.size, np.int64)
        pending = np.arange(rows.size)
        while pending.size:
            r = rows[pending]
            cand = order[start[codes[r]] + (rng.random(r.size) * size[r]).astype(np.int64)]
            good = household[cand] != household[r]
            pick[pending[good]] = cand[good]
            pending = pending[~good]
        chosen[rows] = pick
    return chosen


def cia_oracle(city: City, survey: str, rng: np.random.Generator) -> pd.DataFrame:
    """The recipients of the survey's universe (X, Y) with Z drawn from the population's P(Z | X cell),
    own household left out; household surveys draw whole households."""
    x, y, z = survey_columns(city, survey)
    inside = universe(city, survey, city.truth)
    units_all = city.truth.loc[inside].reset_index(drop=True)
    wanted = city.recipients[inside]
    out = units_all.loc[wanted, ["household_id", *x, *y]].reset_index(drop=True)
    if city.catalog.sources[survey].unit == "household":
        units = household_view(units_all, "household_id", x)
        ladder = oracle_ladder(units, ["labour_income", "hh_labour_income"])
        hh = units["household_id"].to_numpy()
        donor_hh = hh[oracle_draw(ladder, hh, rng)]
        heads = _head_rows(units_all, "household_id").set_index("household_id")[z]
        drawn = heads.loc[donor_hh].set_axis(pd.Index(hh, name="household_id"))
        for c in z:
            out[c] = drawn[c].reindex(out["household_id"]).reset_index(drop=True)
    else:
        ladder = oracle_ladder(units_all, ["labour_income"])
        pick = oracle_draw(ladder, units_all["household_id"].to_numpy(), rng)[wanted]
        for c in z:
            out[c] = units_all[c].iloc[pick].reset_index(drop=True)
    return out


# ---------------------------------------------------------------- runs


def survey_rows(
    city: City, survey: str, floor_draws: int, runs: list, log, aux: bool = True
) -> tuple[list[dict], list[dict]]:
    """Every method and the reference rows on one survey; plus the auxiliary runs."""
    x, y, z = survey_columns(city, survey)
    register, everyone = city.register, city.recipient_truth
    inside = universe(city, survey, everyone)
    truth = everyone.loc[inside].reset_index(drop=True)
    edges = edges_for(truth, x + y + z)
    donor = delivered_donor(city, survey)
    weight = city.catalog.sources[survey].weight_column
    ones = np.ones(len(truth))
    base = {"survey": survey, "city": city.seed, "donors": len(donor), "recipients": int(inside.sum())}
    rows = []
    for label, method, options in runs:
        matched, seconds = fuse_survey(city, register, survey, donor, method, options, seed=city.seed)
        fused = matched.loc[inside].reset_index(drop=True)
        rows.append({**base, "label": label, "method": method, "default": not options, "seconds": seconds,
                     **score(fused, ones, truth, x, y, z, edges)})
        log(f"    {survey} {label}: Z {rows[-1]['z_tvd']:.4f}, X×Z {rows[-1]['xz_tvd']:.4f}, "
            f"Y×Z {rows[-1]['yz_tvd']:.4f}, {seconds:.1f} s")
    rng = np.random.default_rng(city.seed)
    start = time.perf_counter()
    oracle = cia_oracle(city, survey, rng)
    rows.append({**base, "label": "CIA oracle", "seconds": time.perf_counter() - start,
                 **score(oracle, ones, truth, x, y, z, edges)})
    own = donor.merge(city.truth[["person_id", *y]], on="person_id")
    rows.append({**base, "label": "the donor sample itself", "seconds": None,
                 **score(own, own[weight].to_numpy(), truth, x, y, z, edges)})
    design = next(d for d in SURVEYS if d.name == survey)
    for draw in range(floor_draws):
        sample = draw_sample(design, city.population, city.incomes, city.seed * 1000 + 17 + draw, WAVE)
        other = city.truth.iloc[sample.persons]
        rows.append({**base, "label": "sampling floor", "seconds": None,
                     **score(other, sample.weight, truth, x, y, z, edges)})

    aux_rows: list[dict] = []
    if not aux:
        return rows, aux_rows
    y_aux, z_aux = AUX_PAIRS[survey]
    pair = [y_aux, z_aux]
    oracle_pair = joint_tvd(oracle, ones, truth, ones, pair, edges)
    cia_matched, _ = fuse_survey(city, register, survey, donor, "nnd_hotdeck", {}, seed=city.seed)
    cia_pair = joint_tvd(cia_matched.loc[inside].reset_index(drop=True), ones, truth, ones, pair, edges)
    household = city.catalog.sources[survey].unit == "household"
    for kind in ("5% of the donor households", "5% of the recipient households"):
        for draw in range(2):
            aux_rng = np.random.default_rng(city.seed * 100 + draw)
            if kind.startswith("5% of the donor"):
                pool = donor
            else:
                pool = truth[["person_id", "household_id", *x, *z]].assign(**{weight: 1.0 / 0.05})
            households = pool["household_id"].unique()
            chosen = aux_rng.choice(households, size=max(1, int(round(0.05 * len(households)))), replace=False)
            aux = pool[pool["household_id"].isin(chosen)].merge(city.truth[["person_id", y_aux]], on="person_id")
            if household:  # household to household: Y = the household's total, Z the household's value
                totals = aux.groupby("household_id", sort=False)[y_aux].sum().rename(f"hh_{y_aux}").reset_index()
                aux = household_view(aux, "household_id", x).merge(totals, on="household_id").merge(
                    _head_rows(aux, "household_id")[["household_id", z_aux, weight]], on="household_id"
                )
                aux_y = f"hh_{y_aux}"
                recipients = register.assign(**{aux_y: register.groupby("household_id")[y_aux].transform("sum")})
            else:
                recipients, aux_y = register, y_aux
            matched, seconds = fuse_aux(city, survey, donor, recipients, aux, aux_y, z_aux, draw)
            fused = matched.loc[inside].reset_index(drop=True)
            aux_rows.append({
                **base, "label": f"aux_hotdeck, {kind}", "pair": f"{y_aux} × {z_aux}", "n_aux": len(aux),
                "seconds": seconds, "pair_tvd": joint_tvd(fused, ones, truth, ones, pair, edges),
                "oracle_pair_tvd": oracle_pair, "cia_pair_tvd": cia_pair,
                **score(fused, ones, truth, x, y, z, edges),
            })
            log(f"    {survey} {kind} (n={len(aux)}): {y_aux}×{z_aux} {aux_rows[-1]['pair_tvd']:.4f} "
                f"(oracle {oracle_pair:.4f}, nnd {cia_pair:.4f})")
    return rows, aux_rows


def fuse_aux(
    city: City, survey: str, donor: pd.DataFrame, register: pd.DataFrame, aux: pd.DataFrame, y: str, z: str,
    seed: int,
) -> tuple[pd.DataFrame, float]:
    """aux_hotdeck through fuse_sources; household surveys need the household Y in the household view."""
    step = MatchingStep(method="aux_hotdeck", options={"auxiliary": aux, "y": y, "z": z})
    release = city.catalog.release.model_copy(update={"matching": {survey: step}})
    catalog = city.catalog.model_copy(update={"release": release})
    start = time.perf_counter()
    if city.catalog.sources[survey].unit == "household":
        matched = _fuse_household_with_y(catalog, survey, register, donor, y, seed)
    else:
        matched, _ = fuse_sources(catalog, register, {survey: (str(WAVE), donor)}, seed=seed)
    return matched, time.perf_counter() - start


def _fuse_household_with_y(
    catalog: Catalog, survey: str, register: pd.DataFrame, donor: pd.DataFrame, y: str, seed: int
) -> pd.DataFrame:
    """As fuse_sources does for household surveys, with the household total Y kept in the recipient view."""
    from synth_assets.matching import fuse

    source = catalog.sources[survey]
    x, z = source.common, source.specific
    step = catalog.release.matching[survey]
    recipient_view = household_view(register, "household_id", x).merge(
        register.drop_duplicates("household_id")[["household_id", y]], on="household_id"
    )
    donor_view = household_view(donor, "household_id", x).merge(
        _head_rows(donor, "household_id")[["household_id", *z, source.weight_column]], on="household_id"
    )
    on = [c for c in recipient_view.columns if c not in ("household_id", y) and c in donor_view.columns]
    result = fuse(recipient_view, donor_view, on=on, impute=z, donor_weight=source.weight_column,
                  method="aux_hotdeck", seed=seed, **step.options)
    return register.drop(columns=[y]).merge(result.data[["household_id", *z]], on="household_id", how="left")


def chained_rows(city: City, methods: list[str], log) -> tuple[list[dict], list[dict]]:
    """All four surveys fused into the register in catalog order: every cross-source joint vs the truth,
    and the Fréchet-bounds report of the fusion (with the truth's cell shares)."""
    donors = {s: (str(WAVE), delivered_donor(city, s)) for s in city.catalog.surveys}
    groups = {"register": city.catalog.register.specific}
    groups.update({s: city.catalog.sources[s].specific for s in city.catalog.surveys})
    register, truth = city.register, city.recipient_truth
    out, bounds = [], []
    for method in methods:
        start = time.perf_counter()
        matched, fusions = fuse_sources(city.catalog, register, donors,
                                        methods={s: method for s in city.catalog.surveys}, seed=city.seed)
        seconds = time.perf_counter() - start
        table = truth_comparison(matched, truth, groups=groups)
        for row in table.itertuples():
            out.append({"method": method, "city": city.seed, "seconds": seconds, "sources": row.sources,
                        "y": row.y, "z": row.z, "tvd": row.tvd})
        specs = {
            f.survey: DonorSpec(donors[f.survey][1], city.catalog.sources[f.survey].weight_column, f.on, f.imputed,
                                city.catalog.sources[f.survey].universe)
            for f in fusions
        }
        report = fusion_diagnostics(register, matched, specs, register_y=city.catalog.register.specific, truth=truth)
        for s in report.surveys:
            for p in s.pairs:
                cells = p.cells
                bounds.append({
                    "method": method, "city": city.seed, "survey": s.survey, "pair": f"{p.y} × {p.z}",
                    "width_u": p.width_unconditional, "width_x": p.width_conditional,
                    "matched_within": p.share_within,
                    "truth_within": float(((cells.truth >= cells.low_cx - BOUNDS_TOLERANCE)
                                           & (cells.truth <= cells.up_cx + BOUNDS_TOLERANCE)).mean()),
                })
        log(f"    chained {method}: mean cross-source TVD {table['tvd'].mean():.4f}, {seconds:.1f} s")
    return out, bounds


def demo_runs(
    persons: int, recipients: int | None, cities: int, floor_draws: int, runs: list | None = None,
    chained_methods: tuple[str, ...] = ("nnd_hotdeck", "neural_draw"), aux: bool = True, log=print,
):
    """Every survey of ``cities`` generated populations; returns (rows, aux rows, chained rows, bounds rows)."""
    runs = RUNS if runs is None else runs
    rows, aux_rows, chained, bounds = [], [], [], []
    for i in range(cities):
        with tempfile.TemporaryDirectory(prefix="matching_demo_") as tmp:
            city = build_city(persons, recipients, DEMO_SEED + i, Path(tmp))
        log(f"  demo city {city.seed}: {len(city.truth):,} persons, {int(city.recipients.sum()):,} recipients, "
            "donors " + ", ".join(f"{s} {len(city.samples[s]):,}" for s in city.catalog.surveys))
        for survey in city.catalog.surveys:
            r, a = survey_rows(city, survey, floor_draws, runs, log, aux=aux)
            rows += r
            aux_rows += a
        if chained_methods:
            c, b = chained_rows(city, list(chained_methods), log)
            chained += c
            bounds += b
    return rows, aux_rows, chained, bounds


# ---------------------------------------------------------------- report

ORACLE, FLOOR, DONOR = "CIA oracle", "sampling floor", "the donor sample itself"


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def method_table(frame: pd.DataFrame) -> list[str]:
    """Mean scores per label (first-seen order)."""
    lines = ["| method | seconds | Z TVD vs truth | Y×Z TVD vs truth | X×Z TVD vs truth |", "|---|---|---|---|---|"]
    for label, g in frame.groupby("label", sort=False):
        lines.append(
            f"| {label} | {fmt(g['seconds'].mean(), 2)} | {fmt(g['z_tvd'].mean())} | {fmt(g['yz_tvd'].mean())} "
            f"| {fmt(g['xz_tvd'].mean())} |"
        )
    return lines


def reference(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Mean scores of the oracle and the floor."""
    return {k: frame[frame["label"] == k][["z_tvd", "xz_tvd", "yz_tvd"]].mean() for k in (ORACLE, FLOOR)}


def default_scores(frame: pd.DataFrame, method: str) -> pd.Series:
    picked = frame[(frame.get("method") == method) & frame.get("default", False).astype(bool)]
    return picked[["z_tvd", "xz_tvd", "yz_tvd", "seconds"]].mean()


TARGETS_HEADER = [
    "| data | method | Y×Z − oracle ≤ 0.01 | Z − floor ≤ 0.01 | X×Z − floor ≤ 0.01 | floor's own Y×Z |",
    "|---|---|---|---|---|---|",
]


def target_row(
    name: str, method: str, scores: pd.Series, oracle_yz: float, floor_z: float, floor_xz: float,
    floor_yz: float | None = None,
) -> str:
    """One line of the targets table; the floor's own Y×Z is the sampling noise of a Y×Z table of that size."""
    yz, z, xz = scores["yz_tvd"] - oracle_yz, scores["z_tvd"] - floor_z, scores["xz_tvd"] - floor_xz
    marks = ["met" if d <= 0.01 else "**missed**" for d in (yz, z, xz)]
    return (f"| {name} | {method} | {scores['yz_tvd']:.3f} − {oracle_yz:.3f} = {yz:+.3f} ({marks[0]}) "
            f"| {scores['z_tvd']:.3f} − {floor_z:.3f} = {z:+.3f} ({marks[1]}) "
            f"| {scores['xz_tvd']:.3f} − {floor_xz:.3f} = {xz:+.3f} ({marks[2]}) | {fmt(floor_yz)} |")


def report_lines(
    rows: list[dict], aux_rows: list[dict], chained: list[dict], bounds: list[dict], settings: str,
    candidates: tuple[str, ...] = ("nnd_hotdeck", "neural_draw"),
) -> list[str]:
    frame = pd.DataFrame(rows)
    n_cities = frame["city"].nunique()
    surveys = list(dict.fromkeys(frame["survey"]))
    lines = [
        f"## Demo population ({settings}; mean over {n_cities} cit{'y' if n_cities == 1 else 'ies'})",
        "",
        "Recipient: the register (X = the 8 catalog common variables, Y = the 4 register-specific incomes);",
        "donor: each survey's sample as drawn, true values, calibrated weights; fused through the pipeline's",
        "`fuse_sources` (hbs and hfcs household to household). Scores against the recipients' truth at person",
        "level, numbers in the truth's quintiles: Z TVD (mean over Z), Y×Z TVD (mean over Y-Z pairs), X×Z TVD",
        "(mean over X-Z pairs). CIA oracle: Z drawn from the *population's* P(Z | X cell), own household left out",
        "(no sampling error at all). Sampling floor: independent samples of the survey's own design and size",
        "scored the same way (its Y×Z is what a survey observing Y and Z would get). Seconds: `fuse_sources` wall",
        "time for one survey.",
        "",
        "### Mean over the four surveys",
        "",
        *method_table(frame),
        "",
    ]
    for survey in surveys:
        part = frame[frame["survey"] == survey]
        lines += [
            f"### {survey} ({part['donors'].mean():,.0f} donor persons, {part['recipients'].mean():,.0f} recipients)",
            "",
            *method_table(part),
            "",
        ]
    lines += [
        "### Targets on the demo (default options)",
        "",
        "The oracle draws from the whole population and so carries no sampling error, while every method",
        "inherits the donor sample's: where the floor's own Y×Z (the sampling noise of a Y×Z table from a sample",
        "of the donor's size) is well above 0.01, the Y×Z target cannot be met by any matching of that sample.",
        "",
        *TARGETS_HEADER,
    ]
    for survey in surveys + ["mean of the four"]:
        part = frame if survey == "mean of the four" else frame[frame["survey"] == survey]
        ref = reference(part)
        for method in candidates:
            lines.append(target_row(survey, method, default_scores(part, method), ref[ORACLE]["yz_tvd"],
                                    ref[FLOOR]["z_tvd"], ref[FLOOR]["xz_tvd"], ref[FLOOR]["yz_tvd"]))
    lines.append("")
    if aux_rows:
        aux = pd.DataFrame(aux_rows)
        lines += [
            "### With a 5% auxiliary sample holding Y and Z (aux_hotdeck), demo",
            "",
            "Y×Z TVD vs truth of the one pair the auxiliary file observes (chosen in a pilot city as the pair where",
            "the CIA fails most); household surveys: Y = the household's total. Target: at least 30% below the",
            "oracle's.",
            "",
            "| survey | pair | nnd_hotdeck (CIA) | CIA oracle | aux: 5% of donor households (records) "
            "| aux: 5% of recipient households (records) | best vs oracle |",
            "|---|---|---|---|---|---|---|",
        ]
        for survey, g in aux.groupby("survey", sort=False):
            by = {k: v for k, v in g.groupby("label", sort=False)}
            donor_aux = by["aux_hotdeck, 5% of the donor households"]
            rec_aux = by["aux_hotdeck, 5% of the recipient households"]
            oracle = g["oracle_pair_tvd"].mean()
            best = min(donor_aux["pair_tvd"].mean(), rec_aux["pair_tvd"].mean())
            change = best / oracle - 1
            lines.append(
                f"| {survey} | {g['pair'].iloc[0]} | {g['cia_pair_tvd'].mean():.3f} | {oracle:.3f} "
                f"| {donor_aux['pair_tvd'].mean():.3f} ({donor_aux['n_aux'].mean():,.0f}) "
                f"| {rec_aux['pair_tvd'].mean():.3f} ({rec_aux['n_aux'].mean():,.0f}) "
                f"| {change:+.0%} ({'met' if change <= -0.3 else '**missed**'}) |"
            )
        lines.append("")
    if chained:
        ch = pd.DataFrame(chained)
        methods = list(dict.fromkeys(ch["method"]))
        lines += [
            "### All four surveys chained (as `matched_dataset`): every cross-source joint vs the truth",
            "",
            "Mean TVD of the joint tables, by pair of sources (`truth_comparison`); register × survey pairs are",
            "the Y×Z above, survey × survey pairs are only related through X (and what earlier surveys added to X).",
            "",
            "| sources | pairs | " + " | ".join(methods) + " |",
            "|---|---|" + "---|" * len(methods),
        ]
        for sources, g in ch.groupby("sources", sort=False):
            pairs = g.groupby(["y", "z"]).ngroups
            cells = [fmt(g[g["method"] == m]["tvd"].mean()) for m in methods]
            lines.append(f"| {sources} | {pairs} | " + " | ".join(cells) + " |")
        total = [fmt(ch[ch["method"] == m]["tvd"].mean()) for m in methods]
        seconds = [fmt(ch[ch["method"] == m].groupby("city")["seconds"].first().mean(), 1) for m in methods]
        lines += [
            "| all | | " + " | ".join(total) + " |",
            "| seconds (four surveys) | | " + " | ".join(seconds) + " |",
            "",
        ]
    if bounds:
        b = pd.DataFrame(bounds)
        lines += [
            "### Fréchet bounds (`fusion_diagnostics`, chained run): do the matched and the true shares lie within?",
            "",
            "Per survey the 3 (Y, Z) pairs most associated in the matched file, bounds given the 2 X most associated",
            f"with Z; a share counts as within up to {BOUNDS_TOLERANCE} outside. Mean over cities.",
            "",
            "| method | survey | pairs | mean width, no X | mean width given X | matched cells within "
            "| true cells within |",
            "|---|---|---|---|---|---|---|",
        ]
        for (method, survey), g in b.groupby(["method", "survey"], sort=False):
            lines.append(
                f"| {method} | {survey} | {'; '.join(dict.fromkeys(g['pair']))} | {g['width_u'].mean():.3f} "
                f"| {g['width_x'].mean():.3f} | {g['matched_within'].mean():.0%} | {g['truth_within'].mean():.0%} |"
            )
        lines.append("")
    return lines
