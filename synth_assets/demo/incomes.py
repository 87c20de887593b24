"""Activity status and register incomes for one wave.

Design
------
* **Status** (truth only, not in the register): child (< 16), student,
  employed, self-employed, unemployed, retired, inactive.  Each transition is a
  probit on age, sex, citizenship, municipality income level and the hidden
  traits ``work_attachment`` / ``frailty``, with a *panel* error (persistent
  person effect + a little wave noise), so most persons keep their status from
  one wave to the next.  Employment drifts up over the waves (participation
  +0.05 and unemployment -0.06 on the probit scale per year).
* **Incomes** (annual, euros, nominal): lognormal with an age profile, sex,
  municipality and citizenship effects, the hidden work attachment and a
  persistent earnings rank; part-time / part-year work scales labour income
  down (the same flag gives part-time hours in the LFS).  Many exact zeros:
  children (< 16) never have labour income, pensions go to the retired
  (mostly 65+) plus some disability and survivor pensions, unemployment
  benefits to most unemployed and a few short spells among the employed,
  property income to a minority of adults driven by the hidden thrift trait.
  Self-employment income can be negative (losses).  All nominal amounts grow
  by 3 % a year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import streams
from .city import (
    M_INCOME,
    ST_CHILD,
    ST_EMPLOYED,
    ST_INACTIVE,
    ST_RETIRED,
    ST_SELF,
    ST_STUDENT,
    ST_UNEMPLOYED,
)
from .population import Population

INCOME_GROWTH = 0.03  # nominal income growth per year


@dataclass
class WaveIncomes:
    age: np.ndarray  # int16, age in this wave
    status: np.ndarray  # int8, index into city.EMPLOYMENT_STATUS
    part_time: np.ndarray  # bool
    side_job: np.ndarray  # bool: student/retired with a small job
    earnings_rank: np.ndarray  # float, persistent earnings position (standard normal)
    labour_income: np.ndarray
    self_employment_income: np.ndarray
    pension_income: np.ndarray
    unemployment_income: np.ndarray
    property_income: np.ndarray


def _probit(seed: int, n: int, name: str, wave: int, index: np.ndarray | float, rho: float) -> np.ndarray:
    """``index + panel error > 0``, i.e. probability ``Phi(index)`` with persistence ``rho``."""
    return index + streams.panel_normal(seed, n, name, wave, rho) > 0


def _lognormal(mu: np.ndarray | float, sigma: float, z: np.ndarray) -> np.ndarray:
    return np.exp(mu + sigma * z)


def generate_incomes(pop: Population, seed: int, wave: int, dt: int) -> WaveIncomes:
    """Status and register incomes in ``wave`` (``dt`` years after the base wave)."""
    n = pop.n_persons
    age = (pop.age + dt).astype(np.int16)
    a = age.astype(np.float64)
    male = pop.sex == 1
    eu = pop.citizenship == 1
    non_eu = pop.citizenship == 2
    munic = pop.hh_munic[pop.hh]
    log_idx = np.log(M_INCOME)[munic]
    work = pop.work_attachment
    frail = pop.frailty
    young_child = pop.hh_sum((age < 6).astype(np.float64))[pop.hh] > 0

    # --- status -------------------------------------------------------------------
    status = np.full(n, ST_INACTIVE, dtype=np.int8)
    child = age < 16
    status[child] = ST_CHILD
    student = ~child & (age < 30) & _probit(seed, n, "student", wave, 2.4 - 0.40 * (a - 16) + 0.15 * work, 0.95)
    status[student] = ST_STUDENT
    ret_idx = np.where(a >= 65, 1.6 + 0.1 * (a - 65) - 0.3 * work, -2.5 + 0.2 * (a - 55) + 0.4 * frail - 0.3 * work)
    retired = ~child & ~student & (age >= 55) & _probit(seed, n, "retired", wave, ret_idx, 0.95)
    status[retired] = ST_RETIRED
    candidate = ~child & ~student & ~retired
    act_idx = (
        1.0
        + 0.8 * work
        - 0.45 * frail
        + 0.35 * male
        - 0.35 * (~male & young_child)
        + 0.8 * log_idx
        - 0.2 * (non_eu & ~male)
        - 0.02 * np.maximum(a - 55, 0)
        + 0.05 * dt
    )
    active = candidate & _probit(seed, n, "active", wave, act_idx, 0.85)
    u_idx = -1.45 - 0.5 * work + 0.45 * non_eu + 0.15 * eu - 1.5 * log_idx + 0.3 * (a < 25) - 0.06 * dt
    unemployed = active & _probit(seed, n, "unemployed", wave, u_idx, 0.7)
    employed = active & ~unemployed
    self_idx = -1.35 + 0.25 * male + 0.015 * (a - 40) + 0.2 * eu + 0.1 * work
    self_emp = employed & _probit(seed, n, "self_employed", wave, self_idx, 0.97)
    status[unemployed] = ST_UNEMPLOYED
    status[employed] = ST_EMPLOYED
    status[self_emp] = ST_SELF

    side_job = (student & _probit(seed, n, "side_job", wave, -0.6 + 0.1 * (a - 18), 0.6)) | (
        retired & (age < 75) & _probit(seed, n, "side_job", wave, -1.75, 0.8)
    )
    pt_idx = -1.1 + 0.8 * ~male + 0.3 * (~male & young_child) - 0.3 * work + 0.3 * frail + 0.4 * (a >= 60)
    part_time = (employed & _probit(seed, n, "part_time", wave, pt_idx, 0.8)) | side_job

    rank = streams.normal(seed, n, "earnings_rank", "persistent")
    infl = (1.0 + INCOME_GROWTH) ** dt
    rng = streams.stream(seed, "incomes", wave)

    # --- labour income (employees and side jobs) -------------------------------------
    mu = (
        np.log(36_000)
        + 0.035 * (a - 40)
        - 0.0012 * (a - 40) ** 2
        + 0.18 * male
        + 0.5 * log_idx
        - 0.15 * non_eu
        - 0.03 * eu
        + 0.20 * work
        - 0.10 * frail
    )
    z_lab = streams.panel_normal(seed, n, "labour_noise", wave, 0.9)
    lab = _lognormal(mu, 0.25, z_lab) * np.exp(0.35 * rank)
    frac = np.where(part_time, 0.35 + 0.5 * streams.uniform(seed, n, "part_time_fraction", "persistent"), 1.0)
    lab *= frac
    lab = np.where(side_job, _lognormal(np.log(4_500), 0.6, rng.standard_normal(n)), lab)
    lab[~((status == ST_EMPLOYED) | side_job)] = 0.0
    lab[child] = 0.0

    # --- self-employment income ---------------------------------------------------
    z_self = streams.panel_normal(seed, n, "self_noise", wave, 0.7)
    self_inc = _lognormal(np.log(32_000) + 0.3 * log_idx + 0.2 * work + 0.3 * rank, 0.7, z_self)
    loss = rng.random(n) < 0.12
    self_inc = np.where(loss, -_lognormal(np.log(4_000), 1.0, rng.standard_normal(n)), self_inc)
    side_self = (status == ST_EMPLOYED) & (rng.random(n) < 0.03)
    self_inc = np.where(side_self, _lognormal(np.log(3_500), 0.9, rng.standard_normal(n)), self_inc)
    self_inc[~((status == ST_SELF) | side_self)] = 0.0

    # --- pensions ---------------------------------------------------------------------
    z_pen = rng.standard_normal(n)
    pension = np.zeros(n)
    pension[retired] = _lognormal(np.log(19_000) + 0.25 * rank + 0.12 * male + 0.2 * log_idx, 0.15, z_pen)[retired]
    inactive = status == ST_INACTIVE
    u_pen = rng.random(n)
    disability = inactive & (age >= 18) & (frail > 1.0) & (u_pen < 0.6)
    pension[disability] = _lognormal(np.log(14_000), 0.2, z_pen)[disability]
    survivor = inactive & ~disability & (age >= 55) & (u_pen < 0.3)
    pension[survivor] = _lognormal(np.log(9_000), 0.3, z_pen)[survivor]

    # --- unemployment benefits ----------------------------------------------------------
    u_ben = rng.random(n)
    ben = np.zeros(n)
    full = unemployed & (u_ben < 0.82)
    ben[full] = (_lognormal(np.log(13_500) + 0.2 * rank, 0.25, rng.standard_normal(n)) * (0.4 + 0.6 * rng.random(n)))[full]
    spell = (status == ST_EMPLOYED) & (u_ben < 0.04)
    ben[spell] = _lognormal(np.log(2_500), 0.6, rng.standard_normal(n))[spell]

    # --- property income ---------------------------------------------------------------
    p_idx = -1.0 + 0.55 * pop.thrift + 0.018 * (a - 45) + 0.4 * log_idx + 0.15 * rank
    has_prop = (age >= 18) & _probit(seed, n, "property", wave, p_idx, 0.9)
    z_prop = streams.panel_normal(seed, n, "property_amount", wave, 0.9)
    prop = np.where(has_prop, _lognormal(np.log(700) + 0.7 * pop.thrift + 0.01 * (a - 45), 1.3, z_prop), 0.0)

    def money(x: np.ndarray) -> np.ndarray:
        return np.round(x * infl, 2)

    return WaveIncomes(
        age=age,
        status=status,
        part_time=part_time,
        side_job=side_job,
        earnings_rank=rank,
        labour_income=money(lab),
        self_employment_income=money(self_inc),
        pension_income=money(pension),
        unemployment_income=money(ben),
        property_income=money(prop),
    )
