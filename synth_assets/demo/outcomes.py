"""Survey-specific variables, computed for *everyone* (the truth).

Each survey only observes a sample, but the truth holds every variable for
every person so that matching and synthesis can be evaluated.  Household-level
variables (tenure, rent, deprivation, spending, wealth) are computed once per
household and repeated for its members.

Every variable depends on register variables (age, sex, income, municipality,
household size/type, status) **and** on the hidden traits:

========================  =======================================================
variable (survey)          hidden drivers
========================  =======================================================
health (silc)              frailty (strong), plus age, relative income, status
deprivation (silc)         household thrift and frailty, relative income, tenure
tenure, rent (silc)        household thrift (owners), income, head age, municipality
spend_* (hbs)              thrift (food), frailty (energy), mortgage (housing)
hours, occupation,         work attachment, frailty (part-time), earnings rank
contract (lfs)
deposits, real_estate,     household thrift (strong), relative income, head age
debt (hfcs)
========================  =======================================================

so that e.g. ``health`` (silc) and ``hours_worked`` (lfs) are correlated
through frailty even given all common variables: the conditional independence
assumption fails by construction.

Prices: consumer prices +4 %/year (spending, rents), house prices +5 %/year,
deposits +2 %/year.  Monetary amounts are monthly euros for spending and rent,
euros (stocks) for wealth; the HFCS file reports thousands (see :mod:`.mess`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from . import streams
from .city import (
    CON_NONE,
    CON_PERMANENT,
    CON_SELF,
    CON_TEMPORARY,
    HT_COUPLE,
    HT_COUPLE_CH,
    HT_SINGLE_PARENT,
    M_CENTRAL,
    M_INCOME,
    NOT_APPLICABLE,
    OCC_NONE,
    ST_EMPLOYED,
    ST_INACTIVE,
    ST_SELF,
    ST_UNEMPLOYED,
    TEN_FREE,
    TEN_MARKET,
    TEN_OWNER,
    TEN_SOCIAL,
)
from .incomes import WaveIncomes
from .population import Population

PRICE_GROWTH = 0.04
HOUSE_PRICE_GROWTH = 0.05
DEPOSIT_GROWTH = 0.02

# ISCO major groups from low to high "skill" score, with target shares among workers.
_OCC_ORDER = np.array([8, 5, 7, 6, 4, 3, 2, 1, 0])  # elementary .. managers (indices in city.OCCUPATION)
_OCC_SHARES = np.array([0.12, 0.01, 0.06, 0.09, 0.16, 0.11, 0.16, 0.22, 0.07])


def household_context(pop: Population, inc: WaveIncomes) -> dict[str, np.ndarray]:
    """Household-level quantities shared by several outcomes (length = households)."""
    total = (
        inc.labour_income
        + inc.self_employment_income
        + inc.pension_income
        + inc.unemployment_income
        + inc.property_income
    )
    hh_income = pop.hh_sum(total)
    n_adult = pop.hh_sum((inc.age >= 14).astype(np.float64))
    n_kid = pop.hh_size - n_adult
    oecd = 1.0 + 0.5 * np.maximum(n_adult - 1, 0) + 0.3 * n_kid
    eq = hh_income / oecd
    rel = eq / np.median(eq[pop.hh])  # relative to the person-weighted median
    return {
        "log_rel": np.log(np.clip(rel, 0.1, 20.0)),
        "oecd": oecd,
        "size": pop.hh_size.astype(np.float64),
        "head_age": inc.age[pop.hh_start].astype(np.float64),
        "head_citizenship": pop.citizenship[pop.hh_start],
        "thrift": pop.hh_mean(pop.thrift),
        "frailty": pop.hh_mean(pop.frailty),
        "log_idx": np.log(M_INCOME)[pop.hh_munic],
        "central": M_CENTRAL[pop.hh_munic],
        "property_income": pop.hh_sum(inc.property_income),
    }


def _gumbel(seed: int, n: int, name: str) -> np.ndarray:
    u = streams.uniform(seed, n, "gumbel", name)
    return -np.log(-np.log(np.clip(u, 1e-300, 1.0)))


def silc_variables(pop: Population, inc: WaveIncomes, ctx: dict, seed: int, wave: int, dt: int) -> dict:
    """tenure, rent (household), deprivation (household), health (person)."""
    n_hh = pop.n_households
    lr, thrift = ctx["log_rel"], ctx["thrift"]
    hc = ctx["head_citizenship"]
    couple = (pop.hh_type == HT_COUPLE) | (pop.hh_type == HT_COUPLE_CH)
    single_parent = pop.hh_type == HT_SINGLE_PARENT
    score = np.zeros((n_hh, 4))
    score[:, TEN_OWNER] = (
        -0.2
        + 1.0 * lr
        + 0.7 * thrift
        + 0.035 * (ctx["head_age"] - 45)
        - 0.8 * (hc == 2)
        - 0.4 * (hc == 1)
        + 1.2 * (1 - ctx["central"])
        + 0.4 * couple
    )
    score[:, TEN_SOCIAL] = -2.4 - 1.2 * lr + 0.5 * (hc == 2) + 0.6 * single_parent + 0.6 * ctx["central"]
    score[:, TEN_FREE] = -2.6 + 0.4 * (ctx["head_age"] < 30)
    for k, name in enumerate(("owner", "market", "social", "free")):
        score[:, k] += _gumbel(seed, n_hh, f"tenure_{name}")  # persistent: tenure rarely changes
    tenure = score.argmax(axis=1).astype(np.int8)

    prices = (1 + PRICE_GROWTH) ** dt
    z_rent = streams.panel_normal(seed, n_hh, "rent", wave, 0.97)
    market = np.exp(np.log(820) + 0.18 * np.log(ctx["size"]) + 0.22 * lr + 0.5 * ctx["log_idx"] + 0.2 * z_rent)
    social = np.exp(np.log(430) + 0.12 * np.log(ctx["size"]) + 0.10 * lr + 0.15 * z_rent)
    rent = np.select([tenure == TEN_MARKET, tenure == TEN_SOCIAL], [market, social], np.nan) * prices
    rent = np.where(np.isnan(rent), NOT_APPLICABLE, np.round(rent, 2))

    tenant = (tenure == TEN_MARKET) | (tenure == TEN_SOCIAL)
    dep_idx = (
        -1.45
        - 0.55 * lr
        - 0.30 * thrift
        + 0.20 * tenant
        + 0.15 * single_parent
        + 0.15 * ctx["frailty"]
        + 0.25 * streams.panel_normal(seed, n_hh, "deprivation", wave, 0.8)
    )
    deprivation = streams.stream(seed, "deprivation_count", wave).binomial(13, ndtr(dep_idx)).astype(np.int8)

    a = inc.age.astype(np.float64)
    h_idx = (
        0.032 * (a - 45)
        + 0.8 * pop.frailty
        - 0.28 * lr[pop.hh]
        + 0.35 * (inc.status == ST_UNEMPLOYED)
        + 0.2 * (inc.status == ST_INACTIVE)
        + 0.45 * streams.panel_normal(seed, pop.n_persons, "health", wave, 0.8)
    )
    health = np.searchsorted(np.array([-0.9, 0.35, 1.25, 2.05]), h_idx).astype(np.int8)
    return {"tenure": tenure, "rent": rent, "deprivation": deprivation, "health": health}


def hfcs_variables(pop: Population, inc: WaveIncomes, ctx: dict, tenure: np.ndarray, seed: int, wave: int, dt: int) -> dict:
    """deposits, real_estate, debt (household, euros) and the mortgage (for housing costs)."""
    n_hh = pop.n_households
    lr, thrift, head_age = ctx["log_rel"], ctx["thrift"], ctx["head_age"]
    owner = tenure == TEN_OWNER
    house_prices = (1 + HOUSE_PRICE_GROWTH) ** dt
    home = np.exp(
        np.log(310_000)
        + 0.8 * ctx["log_idx"]
        + 0.2 * np.log(ctx["size"])
        + 0.25 * lr
        + 0.22 * streams.normal(seed, n_hh, "home_value", "persistent")
    )
    other_idx = -1.5 + 0.6 * thrift + 0.45 * lr + 0.7 * (ctx["property_income"] > 0) + 0.01 * (head_age - 45)
    has_other = other_idx + streams.panel_normal(seed, n_hh, "other_property", wave, 0.95) > 0
    other = np.exp(np.log(190_000) + 0.5 * streams.normal(seed, n_hh, "other_property_value", "persistent"))
    real_estate = np.round((owner * home + has_other * other) * house_prices, 2)

    z_dep = streams.panel_normal(seed, n_hh, "deposits", wave, 0.85)
    deposits = np.exp(
        np.log(8_000) + 0.85 * thrift + 0.75 * lr + 0.018 * (head_age - 45) + 0.35 * np.log(ctx["size"]) + 0.8 * z_dep
    )
    no_account = streams.uniform(seed, n_hh, "no_deposits", wave) < ndtr(-2.2 - 0.8 * lr)
    deposits = np.round(np.where(no_account, 0.0, deposits) * (1 + DEPOSIT_GROWTH) ** dt, 2)

    z_m = streams.normal(seed, n_hh, "mortgage", "persistent")
    has_mortgage = owner & (0.9 - 0.055 * (head_age - 35) - 0.35 * thrift + 0.25 * z_m > 0)
    ltv = np.clip(0.85 - 0.035 * (head_age - 30) + 0.1 * streams.normal(seed, n_hh, "ltv", "persistent"), 0.05, 0.9)
    mortgage = np.where(has_mortgage, home * house_prices * ltv, 0.0)
    other_debt_idx = -0.8 - 0.5 * thrift - 0.25 * lr + 0.2 * (head_age < 40)
    has_other_debt = other_debt_idx + streams.panel_normal(seed, n_hh, "other_debt", wave, 0.6) > 0
    other_debt = np.where(
        has_other_debt, np.exp(np.log(7_000) + 0.9 * streams.normal(seed, n_hh, "other_debt_amount", wave)), 0.0
    )
    debt = np.round(mortgage + other_debt * (1 + PRICE_GROWTH) ** dt, 2)
    return {"deposits": deposits, "real_estate": real_estate, "debt": debt, "_mortgage": mortgage}


def hbs_variables(
    pop: Population, ctx: dict, tenure: np.ndarray, rent: np.ndarray, mortgage: np.ndarray, seed: int, wave: int, dt: int
) -> dict:
    """Monthly household spending on food, housing, energy and transport (euros)."""
    n_hh = pop.n_households
    lr, thrift, size = ctx["log_rel"], ctx["thrift"], ctx["size"]
    prices = (1 + PRICE_GROWTH) ** dt

    def z(name: str, rho: float) -> np.ndarray:
        return streams.panel_normal(seed, n_hh, f"spend_{name}", wave, rho)

    food = np.exp(np.log(265) + 0.55 * np.log(ctx["oecd"]) + 0.30 * lr - 0.12 * thrift + 0.18 * z("food", 0.7))
    energy = np.exp(
        np.log(105)
        + 0.30 * np.log(size)
        + 0.08 * lr
        + 0.15 * (tenure == TEN_OWNER)
        + 0.20 * ctx["frailty"]
        + 0.22 * z("energy", 0.7)
    )
    no_car_idx = -1.5 - 0.7 * lr + 1.3 * ctx["central"] + 0.5 * (ctx["head_age"] >= 75) - 0.25 * (size >= 3)
    no_car = no_car_idx + z("car", 0.9) > 0
    transport = np.where(no_car, 0.0, np.exp(np.log(240) + 0.45 * lr + 0.2 * np.log(size) + 0.55 * z("transport", 0.6)))
    z_h = z("housing", 0.8)
    tenant = (tenure == TEN_MARKET) | (tenure == TEN_SOCIAL)
    charges = (45 + 12 * size) * np.exp(0.1 * z_h)
    owner_cost = mortgage * 0.0052 / prices + np.exp(np.log(140) + 0.3 * lr + 0.4 * z_h)
    housing = np.select(
        [tenant, tenure == TEN_OWNER, tenure == TEN_FREE],
        [np.where(tenant, rent, 0) / prices + charges, owner_cost, np.exp(np.log(60) + 0.4 * z_h)],
    )
    out = {}
    for name, x in (("spend_food", food), ("spend_housing", housing), ("spend_energy", energy), ("spend_transport", transport)):
        out[name] = np.round(x * prices, 2)
    return out


def lfs_variables(pop: Population, inc: WaveIncomes, seed: int, wave: int) -> dict:
    """hours_worked (usual weekly), occupation (ISCO major group), contract."""
    n = pop.n_persons
    st = inc.status
    a = inc.age.astype(np.float64)
    work = pop.work_attachment
    self_emp = st == ST_SELF
    employee = (st == ST_EMPLOYED) | inc.side_job
    working = employee | self_emp
    rng = streams.stream(seed, "lfs", wave)
    z = streams.panel_normal(seed, n, "hours", wave, 0.8)
    full = np.where(self_emp, 46 + 3 * work + 6 * z, 38.5 + 1.5 * work + 2.5 * z)
    part = 12 + 22 * streams.uniform(seed, n, "part_time_fraction", "persistent") + 2 * z
    side = 4 + 12 * rng.random(n)
    hours = np.select([inc.side_job, inc.part_time, working], [side, part, full], 0.0)
    hours = np.clip(np.rint(hours), 1, 80)
    hours = np.where(working, hours, np.where(st == ST_UNEMPLOYED, 0, NOT_APPLICABLE)).astype(np.int16)

    non_eu = pop.citizenship == 2
    skill = (
        0.55 * inc.earnings_rank
        + 0.3 * work
        + 0.3 * np.log(M_INCOME)[pop.hh_munic[pop.hh]]
        - 0.35 * non_eu
        - 1.2 * inc.side_job
        + 0.5 * streams.normal(seed, n, "occupation", "persistent")
    )
    skill /= np.sqrt(0.55**2 + 0.3**2 + 0.5**2 + 0.35**2 * 0.15)
    cuts = ndtri(np.cumsum(_OCC_SHARES)[:-1])
    occupation = _OCC_ORDER[np.searchsorted(cuts, skill)].astype(np.int8)
    occupation[~working] = OCC_NONE

    temp_idx = -1.2 + 0.7 * (a < 30) - 0.35 * work + 0.35 * non_eu + 1.8 * inc.side_job
    temporary = temp_idx + streams.panel_normal(seed, n, "temporary", wave, 0.7) > 0
    contract = np.select(
        [self_emp, employee & temporary, employee], [CON_SELF, CON_TEMPORARY, CON_PERMANENT], CON_NONE
    ).astype(np.int8)
    return {"hours_worked": hours, "occupation": occupation, "contract": contract}


def survey_variables(pop: Population, inc: WaveIncomes, seed: int, wave: int, dt: int) -> tuple[dict, dict, dict]:
    """All survey-specific variables.

    Returns ``(household_level, person_level, context)``; household-level arrays
    have one entry per household (to be repeated for members).
    """
    ctx = household_context(pop, inc)
    silc = silc_variables(pop, inc, ctx, seed, wave, dt)
    hfcs = hfcs_variables(pop, inc, ctx, silc["tenure"], seed, wave, dt)
    hbs = hbs_variables(pop, ctx, silc["tenure"], silc["rent"], hfcs.pop("_mortgage"), seed, wave, dt)
    lfs = lfs_variables(pop, inc, seed, wave)
    household = {
        "tenure": silc["tenure"],
        "rent": silc["rent"],
        "deprivation": silc["deprivation"],
        **hbs,
        **hfcs,
    }
    person = {"health": silc["health"], **lfs}
    return household, person, ctx
