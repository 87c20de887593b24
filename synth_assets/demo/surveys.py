"""Survey designs: calendars, stratified unequal-probability sampling, raking.

Design
------
* **Frame and strata**: households of the register, stratified by
  municipality.  The LFS frame only holds households with at least one member
  aged 15-74 (its scope).
* **Allocation**: ``n_h`` proportional to the square root of the stratum size
  with a minimum of 4 households per stratum, so small municipalities are
  oversampled (and a 3,000-person test population still has every stratum).
* **Within strata**: inclusion probabilities proportional to a size measure.
  It is 1 for SILC/HBS/LFS; the HFCS oversamples wealthy households using the
  register's property income (as real wealth surveys do with tax data).
  Selection is Pareto order sampling: fixed size per stratum, inclusion
  probabilities close to the targets, fully vectorised.
* **Weights**: design weight ``1 / pi``, then *calibrated* by raking
  (exponential-distance calibration solved by Newton's method, which for 0/1
  auxiliaries is exactly iterative proportional fitting but also handles the
  integrated household weighting used here) to register totals of in-scope
  persons on two margins: municipality and sex x age group (0-14, 15-29,
  30-44, 45-64, 65+; coarser groups as a fallback when a tiny sample cannot
  support them - see :func:`calibrate`).  All members of a
  household share the household's weight (integrated weighting), so person and
  household estimates are consistent.
* **Survey identifiers** are new numbers in a random order, so a survey record
  cannot be linked to the register by id; the link is kept in the truth folder
  for evaluation only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import streams
from .city import N_MUNIC
from .incomes import WaveIncomes
from .population import Population

log = logging.getLogger("synth_assets.demo")

MIN_PER_STRATUM = 4


@dataclass(frozen=True)
class SurveyDesign:
    name: str
    description: str
    fraction: float  # target share of frame households
    first_wave: int  # calendar: waves with (wave - first_wave) % every == 0
    every: int
    age_min: int = 0  # person scope
    age_max: int = 200
    oversample_wealthy: bool = False

    def runs_in(self, wave: int) -> bool:
        return (wave - self.first_wave) % self.every == 0


SURVEYS: tuple[SurveyDesign, ...] = (
    SurveyDesign("silc", "Living conditions (SILC-like), person level, yearly", 0.04, 2022, 1),
    SurveyDesign("hbs", "Household budget survey, household level, every 2 years", 0.02, 2022, 2),
    SurveyDesign("lfs", "Labour force survey, persons aged 15-74, yearly", 0.03, 2022, 1, age_min=15, age_max=74),
    SurveyDesign("hfcs", "Household finance and consumption (wealth), every 3 years", 0.015, 2023, 3, oversample_wealthy=True),
    SurveyDesign("tus", "Time use survey (HETUS-like), persons aged 10+, two diary days each, every 3 years",
                 0.012, 2023, 3, age_min=10),
    SurveyDesign("mobility", "Mobility survey, persons aged 6+, one travel day each, every 2 years",
                 0.015, 2022, 2, age_min=6),
)


@dataclass
class Sample:
    """A drawn and weighted survey sample (person rows, ordered by survey ids)."""

    design: SurveyDesign
    persons: np.ndarray  # population person indices, one per survey row
    household_id: np.ndarray  # survey household id per row
    person_id: np.ndarray  # survey person id per row
    inclusion_prob: np.ndarray  # per row (household's)
    design_weight: np.ndarray
    weight: np.ndarray  # calibrated


def _allocate(frame_sizes: np.ndarray, n_total: int) -> np.ndarray:
    root = np.sqrt(frame_sizes)
    n = np.rint(n_total * root / root.sum()).astype(np.int64)
    return np.minimum(np.maximum(n, MIN_PER_STRATUM), frame_sizes)


def _inclusion_probs(strata: np.ndarray, measure: np.ndarray, n_h: np.ndarray) -> np.ndarray:
    """pi_i = n_h m_i / M_h, with units above 1 taken with certainty (iterated)."""
    pi = np.zeros_like(measure)
    certain = np.zeros(measure.shape[0], dtype=bool)
    for _ in range(10):
        m = np.where(certain, 0.0, measure)
        m_h = np.bincount(strata, weights=m, minlength=N_MUNIC)
        n_left = n_h - np.bincount(strata, weights=certain, minlength=N_MUNIC)
        pi = np.where(certain, 1.0, n_left[strata] * m / np.maximum(m_h[strata], 1e-300))
        over = pi > 1.0
        if not over.any():
            break
        certain |= over
    return np.minimum(pi, 1.0)


def _pareto_select(seed: int, strata: np.ndarray, pi: np.ndarray, n_h: np.ndarray, *key) -> np.ndarray:
    """Pareto order sampling: in each stratum the n_h smallest ``odds(u) / odds(pi)``."""
    u = streams.uniform(seed, pi.shape[0], "sample", *key)
    p = np.clip(pi, 1e-12, 1.0 - 1e-12)
    q = (u / (1.0 - u)) / (p / (1.0 - p))
    q[pi >= 1.0] = -1.0
    order = np.lexsort((q, strata))
    s_sorted = strata[order]
    first = np.searchsorted(s_sorted, np.arange(N_MUNIC))
    rank = np.arange(order.shape[0]) - first[s_sorted]
    return np.sort(order[rank < n_h[s_sorted]])


def rake(
    d: np.ndarray, x: np.ndarray, totals: np.ndarray, *, max_iter: int = 60, tol: float = 1e-9
) -> tuple[np.ndarray, bool]:
    """Raking (exponential-distance calibration) of weights ``d``.

    Finds ``w = d * exp(x @ lam)`` with ``x.T @ w == totals``.  ``x`` holds, per
    household, the number of in-scope members in each calibration cell; margins
    may overlap (collinear columns are fine: least-squares Newton steps with
    backtracking).  Returns ``(w, converged)``.
    """
    lam = np.zeros(x.shape[1])
    w = d.copy()
    scale = np.maximum(totals, 1.0)
    for _ in range(max_iter):
        g = x.T @ w - totals
        if np.max(np.abs(g) / scale) < tol:
            return w, True
        hess = x.T @ (x * w[:, None])
        step = np.linalg.lstsq(hess, -g, rcond=None)[0]
        t, norm0 = 1.0, np.linalg.norm(g / scale)
        while True:
            lam_new = lam + t * step
            w_new = d * np.exp(np.clip(x @ lam_new, -50, 50))
            if np.linalg.norm((x.T @ w_new - totals) / scale) < norm0 or t < 1e-6:
                break
            t /= 2
        lam, w = lam_new, w_new
    return w, bool(np.max(np.abs(x.T @ w - totals) / scale) < tol)


# Raking margins, from the finest to the coarsest: the second margin is sex x age
# group with these lower age bounds (None: no second margin).  A small sample
# (tests use 3,000 persons) may not support the finest one; we fall back to a
# coarser one rather than produce absurd weights.  Municipality is always kept.
G_BOUNDS = (0.1, 10.0)  # accepted range of calibrated / design weight; else go coarser
CALIBRATION_LEVELS: tuple[tuple[int, ...] | None, ...] = ((0, 15, 30, 45, 65), (0, 15, 65), (0,), None)


def calibrate(
    d: np.ndarray, row_hh: np.ndarray, munic: np.ndarray, sex: np.ndarray, age: np.ndarray, population: tuple
) -> tuple[np.ndarray, int]:
    """Calibrate household design weights ``d`` to register person counts.

    ``row_hh`` maps each in-scope sampled person to its household position in
    ``d``; ``munic``/``sex``/``age`` are those persons' values and
    ``population`` the same three arrays for all in-scope register persons.
    The finest level whose raking converges with weight ratios ``w / d`` inside
    ``G_BOUNDS`` is used.  Returns the weights and the level (0 = finest).
    """
    p_munic, p_sex, p_age = population
    for level, bounds in enumerate(CALIBRATION_LEVELS):
        n_groups = 0 if bounds is None else 2 * len(bounds)
        n_cells = N_MUNIC + n_groups
        totals = np.bincount(p_munic, minlength=n_cells).astype(np.float64)
        x = np.zeros((d.shape[0], n_cells))
        np.add.at(x, (row_hh, munic), 1.0)
        if bounds is not None:
            edges = np.array(bounds)
            p_cell = N_MUNIC + p_sex * len(bounds) + np.searchsorted(edges, p_age, side="right") - 1
            s_cell = N_MUNIC + sex * len(bounds) + np.searchsorted(edges, age, side="right") - 1
            totals += np.bincount(p_cell, minlength=n_cells)
            np.add.at(x, (row_hh, s_cell), 1.0)
        keep = x.sum(axis=0) > 0  # cells out of scope (e.g. children in the LFS) are empty on both sides
        if (totals[:N_MUNIC][~keep[:N_MUNIC]] > 0).any():  # pragma: no cover - >= MIN_PER_STRATUM per stratum
            raise RuntimeError("a municipality has no sampled persons")
        if (totals[~keep] > 0).any():
            continue
        w, ok = rake(d, x[:, keep], totals[keep])
        g = w / d
        if ok and g.min() >= G_BOUNDS[0] and g.max() <= G_BOUNDS[1]:
            return w, level
        log.debug("calibration level %d not feasible, trying a coarser one", level)
    raise RuntimeError("calibration on municipality totals failed")  # pragma: no cover


def draw_sample(design: SurveyDesign, pop: Population, inc: WaveIncomes, seed: int, wave: int) -> Sample:
    """Draw, weight and calibrate one survey wave."""
    in_scope = (inc.age >= design.age_min) & (inc.age <= design.age_max)
    frame = pop.hh_sum(in_scope.astype(np.float64)) > 0
    frame_idx = np.nonzero(frame)[0]
    strata = pop.hh_munic[frame_idx].astype(np.int64)
    n_h = _allocate(np.bincount(strata, minlength=N_MUNIC), int(round(design.fraction * frame_idx.shape[0])))

    measure = np.ones(frame_idx.shape[0])
    if design.oversample_wealthy:
        prop = pop.hh_sum(inc.property_income)[frame_idx]
        top = prop >= np.quantile(prop[prop > 0], 0.9) if (prop > 0).any() else np.zeros_like(prop, dtype=bool)
        measure += 1.5 * (prop > 0) + 3.0 * top
    pi = _inclusion_probs(strata, measure, n_h)
    chosen = _pareto_select(seed, strata, pi, n_h, design.name, wave)
    hh_sel = frame_idx[chosen]
    pi_sel = pi[chosen]
    d = 1.0 / pi_sel

    # calibration to register counts of in-scope persons
    selected = np.zeros(pop.n_households, dtype=bool)
    selected[hh_sel] = True
    rows = np.nonzero(selected[pop.hh] & in_scope)[0]
    pos = np.full(pop.n_households, -1, dtype=np.int64)
    pos[hh_sel] = np.arange(hh_sel.shape[0])
    row_hh = pos[pop.hh[rows]]
    munic = pop.hh_munic[pop.hh].astype(np.int64)
    sex = pop.sex.astype(np.int64)
    w, level = calibrate(
        d, row_hh, munic[rows], sex[rows], inc.age[rows], (munic[in_scope], sex[in_scope], inc.age[in_scope])
    )
    if level:
        log.info("%s %d: calibrated on coarser margins (level %d) - small sample", design.name, wave, level)

    # anonymous survey ids: households renumbered in random order, persons = hid * 100 + member
    perm = streams.stream(seed, "survey_ids", design.name, wave).permutation(hh_sel.shape[0])
    hid_of = 1001 + perm  # survey household id for each selected household (by position)
    order = np.lexsort((pop.member[rows], hid_of[row_hh]))
    rows, row_hh = rows[order], row_hh[order]
    hid = hid_of[row_hh]
    return Sample(
        design=design,
        persons=rows,
        household_id=hid.astype(np.int64),
        person_id=(hid * 100 + pop.member[rows] + 1).astype(np.int64),
        inclusion_prob=pi_sel[row_hh],
        design_weight=d[row_hh],
        weight=w[row_hh],
    )
