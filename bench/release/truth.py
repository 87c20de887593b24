"""The public release against the demo's complete truth, every pair of variables.

    PYTHONPATH=. .venv/bin/python bench/release/truth.py --data data [--wave 2024]
        [--output bench/release/results.md] [--draws 5] [--label 'before the fixes']

Reads, under one data root (after ``make run`` on the demo): the newest release of the wave
(``public/LATEST``, or the newest ``public/<wave>-*`` folder), all its replicates; the
``matched_dataset`` of that wave (warehouse); and ``truth/population_<wave>.parquet``, which
the pipeline never reads.

Every variable of the register source and every survey's ``specific`` variable (origins
from the catalog) is coded once, with bins taken from the truth: categories as such;
numbers in truth deciles of their non-zero, non-special values, with exact zero, each
special code (e.g. -8) and missing as bins of their own. Household-level variables (those
constant within every truth household) are counted on one row per household (the head's): a
table whose variables are all household-level counts households, any other counts persons.

Tables: every 1-way margin, every pair, and three register margins of several variables (persons by
municipality x sex x age group; persons by sex x single year of age, 90+; households by
municipality x size (6+) x type). Distance:
total variation distance (TVD) between the table's proportions and the truth's. Rows:

* release: each replicate against the truth, then the mean over replicates;
* matched_dataset: what the generative model was trained from (register + fused surveys);
* matched replicates (when ``warehouse/matched_replicates`` holds them): what replicate r's
  model was taught, the surveys redrawn by their design bootstrap and fused again for the
  training sample's households; mean over the release's replicates. A replicate carries its
  survey bootstrap on purpose (the combining rules need the spread), so its distance to the
  truth is the matched replicates', not the one fusion's: on the demo's 50,000 persons the
  matched replicates alone, no model involved, sit 0.020 above ``matched_dataset`` on the
  register × survey mean (0.0987 against 0.0792) and 0.024 above it on survey × survey
  (0.1491 against 0.1253; bench/README.md, "Thirty-fourth pass"). The targets against ``matched_dataset`` stay as
  they were; those against the matched replicates judge what the model adds;
* CIA oracle: the truth's register variables, each survey's block drawn from a random other
  truth person (household, for household surveys, cells on the head) of the same cell
  municipality x age group x sex x household size (1-4, 5+) x head or not x labour income
  class (none, terciles; the household's total for household surveys), coarser where a cell
  holds fewer than ``MIN_DONORS`` others (:data:`ORACLE_LADDER`): perfect matching under
  conditional independence;
* floor: as many households as the truth holds, resampled with replacement from the truth
  (a superpopulation draw of the same size): the TVD that chance alone gives.

The oracle and the floor are each the mean over ``--draws`` draws. Targets and the output
format are in :func:`targets` and :func:`to_markdown`. Importable: :func:`evaluate` runs on
any data root (e.g. one a test has produced).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synth_assets.catalog import Catalog, load_catalog
from synth_assets.common.distances import total_variation
from synth_assets.common.layout import DataLayout
from synth_assets.publication.release import latest_release

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

N_DECILES = 10
MIN_DONORS = 5
AGE_GROUP_EDGES = [15, 25, 45, 65, 80]  # 0-14, 15-24, 25-44, 45-64, 65-79, 80+
AGE_GROUP_LABELS = ["0-14", "15-24", "25-44", "45-64", "65-79", "80+"]
AGE_CAP = 90  # single years of age up to this, then one band
SIZE_CAP = 6  # households by size: 1, ..., 5, 6+

# Targets, judged in :func:`targets`.
FLOOR_RATIO_LIMIT = 1.5
HOUSEHOLD_SIZE_TVD_LIMIT = 0.01
MATCHED_SLACK = 0.01

KINDS = [
    "register margin",
    "register × register",
    "register × survey",
    "within one survey",
    "across two surveys",
    "survey margin",
]
SURVEY_KINDS = ["register × survey", "survey × survey"]  # survey × survey = within + across


# --------------------------------------------------------------------------- coding


@dataclass
class Variable:
    """How one variable is coded into bins, fixed once from the truth."""

    name: str
    origin: str  # "register" or the survey's name
    household_level: bool
    levels: list[str] | None = None  # categories (None for numbers)
    specials: list[float] = field(default_factory=list)
    edges: np.ndarray | None = None  # inner decile edges of the non-zero, non-special values

    @property
    def n_codes(self) -> int:
        if self.levels is not None:
            return len(self.levels) + 2  # + unknown category, + missing
        return len(self.specials) + 1 + len(self.edges) + 1 + 1  # specials, zero, bins, missing

    def code(self, values: pd.Series) -> np.ndarray:
        missing = values.isna().to_numpy()
        if self.levels is not None:
            codes = pd.Categorical(values.astype("object"), categories=self.levels).codes.astype(np.int64)
            codes = np.where(codes < 0, len(self.levels), codes)  # a value the truth never has
        else:
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            n_special = len(self.specials)
            codes = n_special + 1 + np.searchsorted(self.edges, np.nan_to_num(x), side="left")
            codes[x == 0] = n_special
            for i, special in enumerate(self.specials):
                codes[x == special] = i
        codes[missing] = self.n_codes - 1
        return codes


def household_rows(frame: pd.DataFrame) -> np.ndarray:
    """One row per household: its head's, or its first row when it has no head."""
    ids = frame["household_id"].to_numpy()
    is_head = (frame["relation"] == "head").to_numpy() if "relation" in frame else np.zeros(len(frame), bool)
    heads_first = np.argsort(~is_head, kind="stable")
    chosen = heads_first[~pd.Series(ids[heads_first]).duplicated().to_numpy()]
    mask = np.zeros(len(frame), dtype=bool)
    mask[chosen] = True
    return mask


def variables_from(catalog: Catalog, truth: pd.DataFrame) -> dict[str, Variable]:
    """Register variables, then each survey's specific ones, in catalog order."""
    register = next(name for name, s in catalog.sources.items() if s.kind == "register")
    origins: dict[str, str] = {}
    for name, source in catalog.sources.items():
        names = source.common + source.specific if name == register else source.specific
        for var in names:
            origins.setdefault(var, name)
    per_household = truth.groupby("household_id", sort=False)
    first = household_rows(truth)
    variables = {}
    for name, origin in origins.items():
        household_level = bool((per_household[name].nunique(dropna=False) <= 1).all())
        source_var = catalog.sources[origin].variables[name]
        common = catalog.common_variables.get(name)
        kind = source_var.type or (common.type if common else None)
        var = Variable(name, origin, household_level)
        if kind == "category":
            levels = list(source_var.categories or (common.categories if common else []) or [])
            levels += sorted(set(truth[name].dropna().astype(str)) - set(levels))
            var.levels = levels
        else:
            var.specials = [float(s) for s in source_var.special_values]
            values = pd.to_numeric(truth.loc[first if household_level else slice(None), name]).to_numpy(float)
            values = values[~np.isnan(values) & (values != 0) & ~np.isin(values, var.specials)]
            quantiles = np.quantile(values, np.arange(1, N_DECILES) / N_DECILES) if len(values) else []
            var.edges = np.unique(quantiles)
        variables[name] = var
    return variables


@dataclass
class Table:
    name: str
    kind: str
    columns: tuple[str, ...]
    household: bool  # counted on one row per household


def tables_from(variables: dict[str, Variable]) -> list[Table]:
    tables = [
        Table(
            "persons: municipality × sex × age group", "register margin", ("municipality", "sex", "_age_group"), False
        ),
        # microsimulation's benefits and taxes turn on exact ages (18, 25, 65)
        Table(f"persons: sex × age in single years ({AGE_CAP}+)", "register margin", ("sex", "_age_year"), False),
        Table(
            f"households: municipality × size ({SIZE_CAP}+) × type",
            "register margin",
            ("municipality", "_size_capped", "household_type"),
            True,
        ),
    ]
    for var in variables.values():
        kind = "register margin" if var.origin == "register" else "survey margin"
        tables.append(Table(var.name, kind, (var.name,), var.household_level))
    for a, b in itertools.combinations(variables.values(), 2):
        if a.origin == "register" and b.origin == "register":
            kind = "register × register"
        elif "register" in (a.origin, b.origin):
            kind = "register × survey"
        elif a.origin == b.origin:
            kind = "within one survey"
        else:
            kind = "across two surveys"
        tables.append(Table(f"{a.name} × {b.name}", kind, (a.name, b.name), a.household_level and b.household_level))
    return tables


@dataclass
class Coded:
    """One dataset as bin codes, ready for any table."""

    codes: dict[str, np.ndarray]
    first_of_household: np.ndarray
    n_codes: dict[str, int]

    def distribution(self, table: Table) -> np.ndarray:
        keep = self.first_of_household if table.household else slice(None)
        columns = [self.codes[c][keep] for c in table.columns]
        shape = tuple(self.n_codes[c] for c in table.columns)
        counts = np.bincount(np.ravel_multi_index(columns, shape), minlength=int(np.prod(shape)))
        return counts / max(counts.sum(), 1)


def encode(frame: pd.DataFrame, variables: dict[str, Variable]) -> Coded:
    codes, n_codes = {}, {}
    for name, var in variables.items():
        column = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)  # absent: all missing
        codes[name] = var.code(column)
        n_codes[name] = var.n_codes
    age = pd.to_numeric(frame["age"]).to_numpy(dtype=float, na_value=np.nan)
    age_group = np.searchsorted(AGE_GROUP_EDGES, age, "right")
    codes["_age_group"] = np.where(np.isnan(age), len(AGE_GROUP_LABELS), age_group)
    n_codes["_age_group"] = len(AGE_GROUP_LABELS) + 1
    codes["_age_year"] = np.where(np.isnan(age), AGE_CAP + 1, np.clip(np.nan_to_num(age), 0, AGE_CAP)).astype(np.int64)
    n_codes["_age_year"] = AGE_CAP + 2
    size = pd.to_numeric(frame["household_size"]).to_numpy(dtype=float, na_value=np.nan)
    capped = np.clip(np.nan_to_num(size), 1, SIZE_CAP) - 1
    codes["_size_capped"] = np.where(np.isnan(size), SIZE_CAP, capped).astype(np.int64)
    n_codes["_size_capped"] = SIZE_CAP + 1
    return Coded(codes, household_rows(frame), n_codes)


# --------------------------------------------------------------------------- references


def _cells(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if not columns:
        return np.zeros(len(frame), dtype=np.int64)
    return frame.groupby(columns, observed=True, sort=False).ngroup().to_numpy()


def draw_donors(ladder: list[np.ndarray], rng: np.random.Generator, min_donors: int = MIN_DONORS) -> np.ndarray:
    """For each unit, a random *other* unit of its cell: the finest cell of ``ladder`` with
    at least ``min_donors`` others, the last level taking everyone left."""
    n = len(ladder[0])
    donor = np.full(n, -1)
    for level, cells in enumerate(ladder):
        order = np.argsort(cells, kind="stable")
        sizes = np.bincount(cells)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - starts[cells[order]]
        size = sizes[cells]
        todo = (donor < 0) & ((size - 1 >= min_donors) | ((level == len(ladder) - 1) & (size > 1)))
        pick = rng.integers(0, size[todo] - 1)
        pick += pick >= rank[todo]  # skip the unit itself
        donor[todo] = order[starts[cells[todo]] + pick]
    return donor


def _income_class(income: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """0 for no labour income, then terciles of the reference's positive incomes."""
    positive = reference[reference > 0]
    edges = np.quantile(positive, [1 / 3, 2 / 3]) if len(positive) else np.array([])
    return np.where(income > 0, 1 + np.searchsorted(edges, income, "right"), 0)


# Matching cells of the CIA oracle, finest first; a coarser level only takes the units whose
# cell holds fewer than MIN_DONORS others. Labour income (the register's and every survey's
# common income) is part of X, as it is in the pipeline's matching.
ORACLE_LADDER = [
    ["municipality", "age_group", "sex", "size_band", "head", "income"],
    ["age_group", "sex", "size_band", "head", "income"],
    ["age_group", "sex", "head", "income"],
    ["age_group", "sex", "head"],
    ["head"],
    [],
]


def cia_oracle(
    truth: pd.DataFrame, catalog: Catalog, variables: dict[str, Variable], rng: np.random.Generator
) -> pd.DataFrame:
    """Register variables from the truth; each survey's block drawn within matching cells.

    Person surveys: every person takes the block of a random other person of its cell, heads
    from heads (``head`` is in the cell), so a household's head row carries a head's
    household-level values (deprivation, tenure, rent in silc). Household surveys: the
    household takes the block of a random other household of its head's cell, with the
    household's total labour income, and every member carries it.
    """
    out = truth.copy()
    income = truth["labour_income"].to_numpy(dtype=float)
    household_income = truth.groupby("household_id", sort=False)["labour_income"].transform("sum").to_numpy(float)
    is_head = (truth["relation"] == "head").to_numpy()
    keys = pd.DataFrame(
        {
            "municipality": truth["municipality"].to_numpy(),
            "age_group": np.searchsorted(AGE_GROUP_EDGES, truth["age"].to_numpy(), "right"),
            "sex": truth["sex"].to_numpy(),
            "size_band": np.minimum(truth["household_size"].to_numpy(), 5),
            "head": is_head,
            "income": _income_class(income, income),
        }
    )
    heads = np.flatnonzero(is_head)
    household_keys = keys.iloc[heads].reset_index(drop=True)
    household_keys["income"] = _income_class(household_income[heads], household_income[heads])
    household_ids = truth["household_id"].to_numpy()
    for name, source in catalog.sources.items():
        block = [v for v in source.specific if v in variables and variables[v].origin == name]
        if source.kind != "survey" or not block:
            continue
        if source.unit == "household":
            donor_heads = heads[draw_donors([_cells(household_keys, c) for c in ORACLE_LADDER], rng)]
            # every member takes the block of its household's donor household (via the heads)
            rows = pd.Series(donor_heads, index=household_ids[heads]).loc[household_ids].to_numpy()
        else:
            rows = draw_donors([_cells(keys, c) for c in ORACLE_LADDER], rng)
        for var in block:
            out[var] = truth[var].to_numpy()[rows]
    return out


def floor_sample(truth: pd.DataFrame, rng: np.random.Generator, households: int | None = None) -> pd.DataFrame:
    """``households`` (default: as many as ``truth`` holds) drawn from it with replacement, new ids."""
    hh_codes, _ = pd.factorize(truth["household_id"])
    order = np.argsort(hh_codes, kind="stable")
    sizes = np.bincount(hh_codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pick = rng.integers(0, len(sizes), households or len(sizes))
    member_sizes = sizes[pick]
    offsets = np.arange(member_sizes.sum()) - np.repeat(np.cumsum(member_sizes) - member_sizes, member_sizes)
    rows = order[np.repeat(starts[pick], member_sizes) + offsets]
    sample = truth.iloc[rows].reset_index(drop=True)
    sample["household_id"] = np.repeat(np.arange(len(pick)), member_sizes)
    return sample


# --------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    wave: str
    release: Path
    replicates: list[pd.DataFrame]
    matched: pd.DataFrame
    truth: pd.DataFrame
    catalog: Catalog
    training_households: np.ndarray | None = None  # the model's training sample, when stored
    matched_replicates: list[pd.DataFrame] = field(default_factory=list)  # replicate r's matched data, when stored


def release_folder(layout: DataLayout, wave: str | None) -> Path | None:
    latest = latest_release(layout.public)
    if latest is not None and (wave is None or latest.name.startswith(f"{wave}-")):
        return latest
    if wave is None or not layout.public.exists():
        return None
    folders = sorted(p for p in layout.public.glob(f"{wave}-*") if p.is_dir())  # ids end in a UTC timestamp
    return folders[-1] if folders else None


def load_inputs(data_root: Path | str, wave: str | int | None = None, storage: str | None = None) -> Inputs:
    layout = DataLayout(Path(data_root), storage)
    folder = release_folder(layout, None if wave is None else str(wave))
    if folder is None:
        raise FileNotFoundError(f"no release under {layout.public}" + (f" for wave {wave}" if wave else ""))
    wave = str(wave) if wave is not None else folder.name.split("-", 1)[0]
    files = sorted(folder.glob("fictitious_population_r*.parquet"), key=lambda p: int(p.stem.rsplit("_r", 1)[1]))
    truth_file = layout.truth / f"population_{wave}.parquet"
    matched_file = layout.warehouse / "matched_dataset" / f"{wave}.parquet"
    for needed in [truth_file, matched_file]:
        if not needed.exists():
            raise FileNotFoundError(needed)
    with matched_file.open("rb") as handle:
        matched = pd.read_parquet(handle)
    training_file = layout.warehouse / "training_sample" / f"{wave}.parquet"
    training_households = None
    if training_file.exists():
        with training_file.open("rb") as handle:
            training_households = pd.read_parquet(handle, columns=["household_id"])["household_id"].unique()
    replicates_file = layout.warehouse / "matched_replicates" / f"{wave}.parquet"
    matched_replicates: list[pd.DataFrame] = []
    if replicates_file.exists():
        with replicates_file.open("rb") as handle:
            stacked = pd.read_parquet(handle)
        # replicate r of the release was taught matched replicate r: the first as many as the release has
        values = sorted(stacked["replicate"].unique())[: len(files)]
        matched_replicates = [stacked.loc[stacked["replicate"] == v].drop(columns="replicate") for v in values]
        del stacked
    return Inputs(
        wave=wave,
        release=folder,
        replicates=[pd.read_parquet(f) for f in files],
        matched=matched,
        truth=pd.read_parquet(truth_file),
        catalog=load_catalog(layout.catalog),
        training_households=training_households,
        matched_replicates=matched_replicates,
    )


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    inputs: Inputs
    variables: dict[str, Variable]
    pairs: pd.DataFrame  # one row per table: kind, unit, cells, TVD of each dataset
    checks: pd.DataFrame  # per replicate (and mean): persons, households, household size TVD
    missing: pd.DataFrame  # per variable: share of persons with a missing value
    draws: int
    seconds: float


def household_sizes(frame: pd.DataFrame) -> pd.Series:
    """Households by size (the size on the household's head row)."""
    sizes = pd.to_numeric(frame.loc[household_rows(frame), "household_size"])
    return sizes.value_counts(normalize=True, dropna=False)


def evaluate(data_root: Path | str, wave: str | int | None = None, draws: int = 5, seed: int = 0,
             storage: str | None = None) -> Evaluation:
    started = time.perf_counter()
    inputs = load_inputs(data_root, wave, storage)
    truth = inputs.truth
    variables = variables_from(inputs.catalog, truth)
    tables = tables_from(variables)
    rng = np.random.default_rng(seed)

    truth_p = encode(truth, variables)  # bins and the truth's tables, computed once
    reference = [truth_p.distribution(t) for t in tables]

    def scores(frame: pd.DataFrame) -> np.ndarray:
        coded = encode(frame, variables)
        return np.array([total_variation(coded.distribution(t), ref) for t, ref in zip(tables, reference)])

    by_replicate = np.column_stack([scores(r) for r in inputs.replicates])
    oracle = np.column_stack([scores(cia_oracle(truth, inputs.catalog, variables, rng)) for _ in range(draws)])
    floor = np.column_stack([scores(floor_sample(truth, rng)) for _ in range(draws)])
    # What any model fitted on the training sample can reach at best: the population's size of
    # households resampled from the training households alone (their true values).
    training_resample = np.full(len(tables), np.nan)
    if inputs.training_households is not None:
        trained = truth[truth["household_id"].isin(inputs.training_households)]
        households = truth["household_id"].nunique()
        training_resample = np.column_stack(
            [scores(floor_sample(trained, rng, households)) for _ in range(draws)]).mean(axis=1)
    pairs = pd.DataFrame(
        {
            "table": [t.name for t in tables],
            "kind": [t.kind for t in tables],
            "unit": ["households" if t.household else "persons" for t in tables],
            "cells": [int(np.prod([truth_p.n_codes[c] for c in t.columns])) for t in tables],
            "release": by_replicate.mean(axis=1),
            "release_worst_replicate": by_replicate.max(axis=1),
            "matched": scores(inputs.matched),
            "matched_replicates": (np.column_stack([scores(r) for r in inputs.matched_replicates]).mean(axis=1)
                                   if inputs.matched_replicates else np.full(len(tables), np.nan)),
            "cia_oracle": oracle.mean(axis=1),
            "floor": floor.mean(axis=1),
            "training_resample": training_resample,
        }
    )
    for i in range(by_replicate.shape[1]):
        pairs[f"r{i + 1}"] = by_replicate[:, i]
    # A table the floor gets exactly right (one cell) is met only if the release is exact too.
    ratio = pairs["release"] / pairs["floor"].where(pairs["floor"] > 0)
    pairs["release_over_floor"] = ratio.fillna(pairs["release"].gt(1e-12).map({True: np.inf, False: 0.0}))
    pairs["release_minus_matched"] = pairs["release"] - pairs["matched"]
    pairs["release_minus_matched_replicates"] = pairs["release"] - pairs["matched_replicates"]

    true_sizes = household_sizes(truth)
    rows = []
    for i, frame in enumerate(inputs.replicates, 1):
        sizes = household_sizes(frame)
        both = true_sizes.index.union(sizes.index)
        rows.append(
            {
                "replicate": f"r{i}",
                "persons": len(frame),
                "households": int((~frame["household_id"].duplicated()).sum()),
                "one_person_share": float(sizes.get(1, 0.0)),
                "household_size_tvd": total_variation(sizes.reindex(both, fill_value=0).to_numpy(),
                                          true_sizes.reindex(both, fill_value=0).to_numpy()),
            }
        )
    checks = pd.DataFrame(rows)
    mean_row = {"replicate": "mean", **checks.drop(columns="replicate").mean().to_dict()}
    truth_row = {"replicate": "truth", "persons": len(truth), "households": int(truth["household_id"].nunique()),
                 "one_person_share": float(true_sizes.get(1, 0.0)), "household_size_tvd": 0.0}
    checks = pd.concat([checks, pd.DataFrame([mean_row, truth_row])], ignore_index=True)

    missing = missing_shares(inputs, variables)
    return Evaluation(inputs, variables, pairs, checks, missing, draws, time.perf_counter() - started)


def missing_shares(inputs: Inputs, variables: dict[str, Variable]) -> pd.DataFrame:
    """Share of persons with a missing value, per variable; for a survey with a universe
    (e.g. ages 15-74) also inside and outside it, mean over replicates."""
    rows = []
    for name, var in variables.items():
        universe = inputs.catalog.sources[var.origin].universe if var.origin != "register" else None
        per_replicate = []
        inside, outside = [], []
        for frame in inputs.replicates:
            miss = frame[name].isna().to_numpy() if name in frame else np.ones(len(frame), bool)
            per_replicate.append(miss.mean())
            if universe:
                within = frame.eval(universe).fillna(False).to_numpy(dtype=bool)
                inside.append(miss[within].mean() if within.any() else np.nan)
                outside.append(miss[~within].mean() if (~within).any() else np.nan)
        row = {
            "variable": name,
            "origin": var.origin,
            "truth": float(inputs.truth[name].isna().mean()),
            "matched": float(inputs.matched[name].isna().mean()) if name in inputs.matched else 1.0,
            **{f"r{i + 1}": share for i, share in enumerate(per_replicate)},
            "release": float(np.mean(per_replicate)),
            "release_worst_replicate": float(np.max(per_replicate)),
            "release_in_universe": float(np.mean(inside)) if universe else np.nan,
            "release_outside_universe": float(np.mean(outside)) if universe else np.nan,
            "universe": universe or "",
        }
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- targets


def summary(evaluation: Evaluation) -> pd.DataFrame:
    """Per kind of table: mean and max TVD of each dataset."""
    pairs = evaluation.pairs
    rows = []
    for kind in KINDS:
        part = pairs[pairs["kind"] == kind]
        if part.empty:
            continue
        row = {"kind": kind, "tables": len(part)}
        for column in ["release", "matched", "matched_replicates", "cia_oracle", "floor", "training_resample"]:
            if part[column].isna().all():  # no matched replicates stored, or no training sample
                continue
            row[f"{column}_mean"] = part[column].mean()
            row[f"{column}_max"] = part[column].max()
        rows.append(row)
    return pd.DataFrame(rows)


def _survey_group(kind: str) -> str:
    return "survey × survey" if kind in ("within one survey", "across two surveys") else kind


def targets(evaluation: Evaluation) -> pd.DataFrame:
    """The release's targets: figure, limit, verdict."""
    pairs = evaluation.pairs
    rows = []
    register = pairs[pairs["kind"].isin(["register margin", "register × register"])]
    worst = register.loc[register["release_over_floor"].idxmax()]
    resample = register["training_resample"] / register["floor"]
    reach = ("no training sample stored" if resample.isna().all() else
             f"a resample of the training households alone reaches {resample.max():.2f} x floor at worst, "
             f"{resample.median():.2f} x median")
    rows.append({
        "target": "register margins and register × register pairs: max release TVD / floor TVD",
        "figure": worst["release_over_floor"],
        "limit": f"≤ {FLOOR_RATIO_LIMIT}",
        "verdict": bool(register["release_over_floor"].max() <= FLOOR_RATIO_LIMIT),
        "detail": f"worst: {worst['table']} ({worst['release']:.4f} vs {worst['floor']:.4f}); "
                  f"{int((register['release_over_floor'] > FLOOR_RATIO_LIMIT).sum())} of {len(register)} tables over; "
                  + reach,
    })
    checks = evaluation.checks.set_index("replicate")
    size_tvd = checks.loc["mean", "household_size_tvd"]
    per_rep = checks.drop(index=["mean", "truth"])["household_size_tvd"]
    rows.append({
        "target": "household size distribution (households by size): TVD release vs truth, mean over replicates",
        "figure": size_tvd,
        "limit": f"≤ {HOUSEHOLD_SIZE_TVD_LIMIT}",
        "verdict": bool(size_tvd <= HOUSEHOLD_SIZE_TVD_LIMIT),
        "detail": f"worst replicate {per_rep.max():.4f}; one-person households "
                  f"{checks.loc['mean', 'one_person_share']:.1%} vs "
                  f"{checks.loc['truth', 'one_person_share']:.1%} in truth",
    })
    missing = evaluation.missing
    excess = missing["release_worst_replicate"] - missing["truth"]
    over = missing[excess > 0].sort_values("release", ascending=False)
    rows.append({
        "target": "no missing values the population does not have: "
                  "max share of persons missing where the truth has none (worst replicate)",
        "figure": float(excess.max()),
        "limit": "= 0",
        "verdict": bool(over.empty),
        "detail": (f"{len(over)} variables; worst: " + ", ".join(
            f"{r.variable} {r.release:.1%}" for r in over.head(4).itertuples())) if not over.empty else "none",
    })
    for group in SURVEY_KINDS:
        part = pairs[pairs["kind"].map(_survey_group) == group]
        if part.empty:
            continue
        for stat in ("mean", "max"):
            release, matched = getattr(part["release"], stat)(), getattr(part["matched"], stat)()
            label = "mean" if stat == "mean" else "worst"
            taught = getattr(part["matched_replicates"], stat)()
            rows.append({
                "target": f"{group} pairs: {label} release TVD ≤ matched_dataset's + {MATCHED_SLACK}",
                "figure": release,
                "limit": f"≤ {matched + MATCHED_SLACK:.4f}",
                "verdict": bool(release <= matched + MATCHED_SLACK),
                "detail": f"matched_dataset {matched:.4f}; pairs over matched + {MATCHED_SLACK}: "
                          f"{int((part['release_minus_matched'] > MATCHED_SLACK).sum())} of {len(part)}"
                          + ("" if np.isnan(taught) else f"; the matched replicates alone: {taught:.4f}"),
            })
            if np.isnan(taught):
                continue
            rows.append({
                "target": f"{group} pairs: {label} release TVD ≤ the matched replicates' + {MATCHED_SLACK}",
                "figure": release,
                "limit": f"≤ {taught + MATCHED_SLACK:.4f}",
                "verdict": bool(release <= taught + MATCHED_SLACK),
                "detail": f"matched replicates {taught:.4f} (what each replicate's model was taught); pairs over "
                          f"them + {MATCHED_SLACK}: "
                          f"{int((part['release_minus_matched_replicates'] > MATCHED_SLACK).sum())} of {len(part)}",
            })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- output


def _md(frame: pd.DataFrame, digits: int = 4) -> str:
    def fmt(value: object) -> str:
        if isinstance(value, (bool, np.bool_)):
            return "PASS" if value else "FAIL"
        if isinstance(value, (float, np.floating)):
            return "–" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, nproc {os.cpu_count()}, Python {platform.python_version()}"


def git_commit(path: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def to_markdown(evaluation: Evaluation, command: str, worst: int = 15, label: str = "") -> str:
    inputs, pairs = evaluation.inputs, evaluation.pairs
    data_root = inputs.release.parents[1]
    verdicts = targets(evaluation)
    met = int(verdicts["verdict"].sum())
    lines = [
        f"# Release vs truth, wave {inputs.wave}" + (f": {label}" if label else ""),
        "",
        f"Command: `{command}` ({evaluation.seconds:.1f} s).",
        f"Machine: {machine()}.",
        f"Release: `{inputs.release.name}` ({len(inputs.replicates)} replicates) under `{data_root}`, made by the "
        f"checkout at git commit `{git_commit(data_root)}`; bench code at `{git_commit(HERE)}`.",
        f"CIA oracle and floor: mean of {evaluation.draws} draws each. TVD of the table's proportions "
        "against the truth's; numbers in truth deciles with zero, special codes and missing as bins of their "
        "own; household-level tables count households. See `bench/release/truth.py` for the definitions.",
        "",
        f"## Targets ({met} of {len(verdicts)} met)",
        "",
        _md(verdicts),
        "",
        "## TVD by kind of table (release: mean over replicates)",
        "",
        _md(summary(evaluation).rename(columns=lambda c: c.replace("_", " "))),
        "",
        "## Extra checks, per replicate",
        "",
        _md(evaluation.checks.astype({"persons": int, "households": int}), 4),
        "",
        "## Missing values (share of persons; the truth has none)",
        "",
        "Only variables with a missing value somewhere; `in/outside universe`: the release's share "
        "among the persons inside / outside the survey's universe.",
        "",
        _md(evaluation.missing.loc[evaluation.missing.drop(columns=["variable", "origin", "universe"])
            .fillna(0).gt(0).any(axis=1)]
            .rename(columns={"release_in_universe": "in universe", "release_outside_universe": "outside universe",
                             "release_worst_replicate": "worst replicate"})),
        "",
    ]
    register = pairs[pairs["kind"].isin(["register margin", "register × register"])]
    columns = ["table", "kind", "unit", "cells", "release", "floor", "release_over_floor", "training_resample",
               "matched", "cia_oracle"]
    lines += [
        f"## Worst register tables (release TVD / floor TVD, top {worst})",
        "",
        _md(register.sort_values("release_over_floor", ascending=False).head(worst)[columns]),
        "",
    ]
    for group in SURVEY_KINDS:
        part = pairs[pairs["kind"].map(_survey_group) == group]
        cols = ["table", "kind", "unit", "cells", "release", "matched", "release_minus_matched", "matched_replicates",
                "cia_oracle", "floor"]
        lines += [
            f"## Worst {group} pairs (release TVD, top {worst})",
            "",
            _md(part.sort_values("release", ascending=False).head(worst)[cols]),
            "",
            f"## {group} pairs furthest above matched_dataset (top {worst})",
            "",
            _md(part.sort_values("release_minus_matched", ascending=False).head(worst)[cols]),
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "data", help="data root after `make run` (default: data)")
    parser.add_argument("--storage", default=None, help="warehouse root when not the data root (any fsspec URL)")
    parser.add_argument("--wave", default=None, help="default: the wave of public/LATEST")
    parser.add_argument("--draws", type=int, default=5, help="draws of the CIA oracle and of the floor")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument("--pairs-csv", type=Path, default=None, help="also write every table's TVDs as CSV")
    parser.add_argument("--label", default="", help="said in the title, e.g. 'before the fixes'")
    args = parser.parse_args(argv)
    try:
        evaluation = evaluate(args.data, args.wave, draws=args.draws, seed=args.seed, storage=args.storage)
    except FileNotFoundError as missing:
        # As the other benchmarks do with ../shared/data: no finished run, nothing to measure.
        print(f"skipped: {missing} (run `make run` on the demo first)", file=sys.stderr)
        return 0
    command = "python bench/release/truth.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = to_markdown(evaluation, command.strip(), label=args.label)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    if args.pairs_csv:
        evaluation.pairs.to_csv(args.pairs_csv, index=False)
    verdicts = targets(evaluation)
    for row in verdicts.itertuples():
        print(f"{'PASS' if row.verdict else 'FAIL'}  {row.figure:.4f} ({row.limit})  {row.target}  [{row.detail}]")
    print(f"{evaluation.seconds:.1f} s; written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
