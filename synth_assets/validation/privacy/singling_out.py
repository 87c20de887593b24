"""Singling-out attack, after anonymeter's ``SinglingOutEvaluator``.

The attacker writes predicates that isolate exactly one synthetic record ("age >= 94
and region == 'Tyrol' and sex == 'female'") and bets that they also isolate exactly
one real person. Predicates come from the synthetic data only:

- univariate: a value held by a single synthetic record, or the single smallest or
  largest value of a number;
- multivariate: a random synthetic record and ``n_cols`` random columns, numbers turned
  into ``>=`` (above the synthetic median) or ``<=`` (below), categories into ``==``.

Success = the predicate matches exactly one training record; the same predicates
applied to the (equally large) control set give the base rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.validation.preparation import align_columns, sample_rows
from synth_assets.validation.privacy.risk import AttackRisk, attack_risk

Term = tuple[str, str, Any]

#: Random candidates a replicate may try to find its ``n_attacks`` isolating predicates: anonymeter's
#: default is 10 million. At 100 per attack (as before) a 20,000-row sample gave about 125 of the
#: 500 asked for per replicate, and the pooled risk of a two-replicate release swung from -0.03 to
#: 0.10 with the attack's seed alone (standard deviation about 0.05 against a limit of 0.10).
MAX_ATTEMPTS = 2_000_000


@dataclass(frozen=True)
class Predicate:
    """Conjunction of ``(column, operator, value)`` terms; operators ==, <=, >=, isna."""

    terms: tuple[Term, ...]

    def count(self, columns: dict[str, np.ndarray]) -> int:
        mask = None
        for column, op, value in self.terms:
            values = columns[column]
            with np.errstate(invalid="ignore"):
                if op == "isna":
                    hit = pd.isna(values)
                elif op == "==":
                    hit = values == value
                elif op == "<=":
                    hit = values <= value
                else:
                    hit = values >= value
            mask = hit if mask is None else mask & hit
        return 0 if mask is None else int(np.count_nonzero(mask))

    def __str__(self) -> str:
        return " and ".join(f"{c}.isna()" if op == "isna" else f"{c} {op} {v!r}" for c, op, v in self.terms)


def _arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        c: frame[c].to_numpy(dtype=float) if is_numeric(frame[c]) else frame[c].to_numpy(dtype=object)
        for c in frame.columns
    }


def univariate_predicates(synthetic: pd.DataFrame) -> list[Predicate]:
    """Every one-column predicate that isolates a single synthetic record."""
    found = []
    for column in synthetic.columns:
        values = synthetic[column]
        if values.isna().sum() == 1:
            found.append(Predicate(((column, "isna", None),)))
        observed = values.dropna()
        if observed.empty:
            continue
        if is_numeric(values):
            low, high = observed.min(), observed.max()
            if (observed == low).sum() == 1:
                found.append(Predicate(((column, "<=", float(low)),)))
            if high != low and (observed == high).sum() == 1:
                found.append(Predicate(((column, ">=", float(high)),)))
        else:
            counts = observed.value_counts()
            found.extend(Predicate(((column, "==", v),)) for v in counts.index[counts.to_numpy() == 1])
    return found


#: Rows of the candidates' masks evaluated at once (attempts x synthetic records booleans).
_BATCH_CELLS = 8_000_000


def _codes(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each column as float32 for the vectorised search: numbers as they are, categories as their
    codes (missing: NaN). Rounding to float32 keeps the order, so a predicate isolating a record
    here isolates it in float64 too (ties only merge, never split)."""
    out = {}
    for column in frame.columns:
        if is_numeric(frame[column]):
            out[column] = frame[column].to_numpy(dtype=np.float32)
        else:
            codes, _ = pd.factorize(frame[column], use_na_sentinel=True)
            out[column] = np.where(codes < 0, np.nan, codes).astype(np.float32)
    return out


def multivariate_predicates(
    synthetic: pd.DataFrame, n_attacks: int, n_cols: int, rng: np.random.Generator, max_attempts: int
) -> list[Predicate]:
    """Up to ``n_attacks`` distinct random record-based predicates isolating one synthetic record.

    Tried in batches: a batch's candidates (a random record, ``n_cols`` random columns each) are
    evaluated together on the synthetic records as one boolean matrix, categories compared as
    codes, so that the ``max_attempts`` it may take to find the predicates asked for (anonymeter
    tries up to 10 million) cost tens of microseconds each instead of a Python loop over arrays of
    objects (about 450 microseconds each on a 20,000-row sample).
    """
    arrays = _arrays(synthetic)
    codes = _codes(synthetic)
    missing = {c: np.isnan(v) for c, v in codes.items()}
    medians = {c: float(np.nanmedian(v)) for c, v in arrays.items() if v.dtype != object and np.isfinite(v).any()}
    columns = list(synthetic.columns)
    n_cols = min(n_cols, len(columns))
    rows_n = len(synthetic)
    found: dict[tuple[Term, ...], Predicate] = {}
    if rows_n == 0 or n_cols == 0:
        return []
    batch = max(1, min(1024, _BATCH_CELLS // rows_n))
    attempts = since_new = 0
    # a table with fewer distinct isolating predicates than asked gives up once a hundred tries per
    # predicate asked found none new (the search's former whole budget), not after max_attempts
    while len(found) < n_attacks and attempts < max_attempts and since_new < 100 * n_attacks:
        size = min(batch, max_attempts - attempts)
        attempts += size
        since_new += size
        rows = rng.integers(rows_n, size=size)
        chosen = np.sort(np.argsort(rng.random((size, len(columns))), axis=1)[:, :n_cols], axis=1)
        hits = np.ones((size, rows_n), dtype=bool)
        for j in range(n_cols):
            for position in np.unique(chosen[:, j]):
                column = columns[position]
                at = np.flatnonzero(chosen[:, j] == position)
                x, value = codes[column], arrays[column][rows[at]]
                absent = pd.isna(value)
                if absent.any():  # a missing value: the missing ones
                    hits[at[absent]] &= missing[column][None, :]
                at, v = at[~absent], x[rows[at[~absent]]][:, None]
                if column in medians:  # the tail away from the median, decided on the exact value
                    above = value[~absent].astype(float) > medians[column]
                    hits[at[above]] &= x[None, :] >= v[above]
                    hits[at[~above]] &= x[None, :] <= v[~above]
                else:
                    hits[at] &= x[None, :] == v
        for i in np.flatnonzero(np.count_nonzero(hits, axis=1) == 1):
            terms: list[Term] = []
            for position in chosen[i]:
                column = columns[position]
                value = arrays[column][rows[i]]
                if pd.isna(value):
                    terms.append((column, "isna", None))
                elif column in medians:
                    terms.append((column, ">=" if value > medians[column] else "<=", float(value)))
                else:
                    terms.append((column, "==", value))
            key = tuple(terms)
            if key not in found and len(found) < n_attacks:
                found[key] = Predicate(key)
                since_new = 0
    return list(found.values())


def singling_out_risk(
    synthetic: pd.DataFrame | Sequence[pd.DataFrame],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    mode: Literal["univariate", "multivariate"] = "multivariate",
    n_attacks: int = 500,
    n_cols: int = 3,
    seed: int = 0,
) -> AttackRisk:
    """Singling-out risk: predicates isolating one record in train vs in control.

    ``synthetic`` may be several replicates of one release: each gives its own predicates (up
    to ``n_attacks``) and the successes are pooled, the risk of the release as published. One
    replicate yields only about 190 distinct isolating predicates on the 50,000-person demo,
    whose risk then swings from -0.07 to 0.11 with the attack's seed alone (ten seeds, one
    release); pooling five replicates' predicates divides that spread by about the square root
    of five.
    """
    parts = [synthetic] if isinstance(synthetic, pd.DataFrame) else list(synthetic)
    if not parts:
        raise ValueError("singling_out_risk needs at least one synthetic table")
    holdout = align_columns(train, holdout, names=("train", "holdout"))
    rng = np.random.default_rng(seed)
    n = min(len(train), len(holdout))
    train_arrays = _arrays(sample_rows(train, n, rng))
    control_arrays = _arrays(sample_rows(holdout, n, rng))
    attack: list[bool] = []
    control: list[bool] = []
    for part in parts:
        part = align_columns(train, part)
        if mode == "univariate":
            candidates = univariate_predicates(part)
            chosen = rng.permutation(len(candidates))[:n_attacks]
            predicates = [candidates[i] for i in chosen]
        elif mode == "multivariate":
            predicates = multivariate_predicates(part, n_attacks, n_cols, rng, max_attempts=MAX_ATTEMPTS)
        else:
            raise ValueError(f"unknown singling-out mode {mode!r}")
        attack += [p.count(train_arrays) == 1 for p in predicates]
        control += [p.count(control_arrays) == 1 for p in predicates]
    return attack_risk(np.array(attack, dtype=bool), np.array(control, dtype=bool))
