"""Households, persons and hidden traits of the fictional city (base wave).

Design
------
Households are drawn first (municipality, size, type), then expanded to
persons with ``np.repeat``: every step is a vectorised numpy operation, there
is no Python loop over households or persons (only over the 19
municipalities), so 2 million persons take a few seconds and a few hundred MB.

* **Size** 1-8, municipality dependent: about 36 % singles overall, more in the
  dense centre, more large families in the outskirts.  The last household is
  truncated so that the population has exactly ``persons`` persons.
* **Type** given size: 1 -> single; 2 -> couple without children, single
  parent or other (flat-share, siblings); 3+ -> mostly couples with children,
  some single parents and "other" households.
* **Relation** to the head: member 0 is the head, member 1 the partner in
  couples, the rest children; large families sometimes host a grandparent
  (``other_relative``); "other" households are either relatives or flatmates
  (``non_relative``).
* **Ages**: heads >= 18 with a type-specific mixture (young and old singles,
  middle-aged parents), partners within a few years of the head, children at
  least 15 years younger than *both* parents, grandparents 22-35 years older
  than the head.
* **Sex**: single parents mostly women, partners mostly of the other sex,
  old singles more often women.
* **Citizenship** per household from the municipality shares, inherited by the
  members with a little individual variation (children of foreign heads are
  sometimes nationals).
* **Hidden traits** (never in the register nor in any survey): ``frailty``
  (health), ``thrift`` (wealth/saving propensity, largely shared within the
  household) and ``work_attachment``.  They are standard normal and drive
  register incomes *and* survey variables, so the survey variables are *not*
  conditionally independent given the common variables: the benchmark for
  statistical matching has a known, non-zero CIA error.

The population is then aged deterministically in later waves (see
:mod:`.generate`): the same persons, one year older per wave, with stable ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import streams
from .city import (
    HT_COUPLE,
    HT_COUPLE_CH,
    HT_OTHER,
    HT_SINGLE,
    HT_SINGLE_PARENT,
    M_CENTRAL,
    M_EU,
    M_NON_EU,
    M_WEIGHT,
    N_MUNIC,
    REL_CHILD,
    REL_HEAD,
    REL_NON_REL,
    REL_OTHER_REL,
    REL_PARTNER,
)

# Household size distribution 1..8 (city-wide reference, before municipality tilts).
SIZE_PROBS = np.array([0.36, 0.28, 0.14, 0.12, 0.06, 0.025, 0.01, 0.005])
MAX_AGE_BASE = 100


@dataclass
class Population:
    """The base-wave population (struct of arrays).

    Household arrays have length ``n_households``; person arrays length
    ``n_persons``; persons are sorted by household then member number.
    Integer codes index the category lists of :mod:`.city`.
    """

    # households
    hh_munic: np.ndarray  # int8, 0..18
    hh_size: np.ndarray  # int8
    hh_type: np.ndarray  # int8
    hh_start: np.ndarray  # int64, index of the head (member 0)
    # persons
    hh: np.ndarray  # int32, household index of each person
    member: np.ndarray  # int8, 0 = head
    relation: np.ndarray  # int8
    age: np.ndarray  # int16, age in the base wave
    sex: np.ndarray  # int8, 0 female 1 male
    citizenship: np.ndarray  # int8
    frailty: np.ndarray  # float64, hidden
    thrift: np.ndarray  # float64, hidden
    work_attachment: np.ndarray  # float64, hidden

    @property
    def n_persons(self) -> int:
        return int(self.hh.shape[0])

    @property
    def n_households(self) -> int:
        return int(self.hh_size.shape[0])

    def hh_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a person-level array within each household."""
        return np.bincount(self.hh, weights=values, minlength=self.n_households)

    def hh_mean(self, values: np.ndarray) -> np.ndarray:
        return self.hh_sum(values) / self.hh_size

    def head(self, values: np.ndarray) -> np.ndarray:
        """Household-level array holding the value of the head."""
        return values[self.hh_start]


def _size_probs(central: float) -> np.ndarray:
    """Household size distribution of a municipality with density ``central``."""
    p = SIZE_PROBS.copy()
    p[0] = 0.27 + 0.20 * central
    p[2:] *= 1.0 + 0.35 * (1.0 - central)
    rest = 1.0 - p[0]
    p[1:] *= rest / p[1:].sum()
    return p


def _households(seed: int, persons: int) -> tuple[np.ndarray, np.ndarray]:
    """Municipality and size of enough households for exactly ``persons`` persons."""
    n_draw = int(persons / 1.6) + 64  # mean size is ~2.3, so this is always enough
    rng = streams.stream(seed, "households")
    munic = rng.choice(N_MUNIC, size=n_draw, p=M_WEIGHT / M_WEIGHT.sum()).astype(np.int8)
    u = rng.random(n_draw)
    size = np.empty(n_draw, dtype=np.int8)
    for m in range(N_MUNIC):  # loop over municipalities only
        sel = munic == m
        cdf = np.cumsum(_size_probs(M_CENTRAL[m]))
        size[sel] = np.minimum(np.searchsorted(cdf, u[sel], side="right"), 7) + 1
    cum = np.cumsum(size, dtype=np.int64)
    if cum[-1] < persons:  # pragma: no cover - mean size >= 1.6 by construction
        raise RuntimeError("not enough households drawn")
    n_hh = int(np.searchsorted(cum, persons, side="left")) + 1
    munic, size = munic[:n_hh].copy(), size[:n_hh].copy()
    size[-1] -= int(cum[n_hh - 1] - persons)
    return munic, size


def _household_types(seed: int, munic: np.ndarray, size: np.ndarray) -> np.ndarray:
    central = M_CENTRAL[munic]
    u = streams.uniform(seed, size.shape[0], "household_type")
    t = np.full(size.shape[0], HT_SINGLE, dtype=np.int8)
    # size 2: single parent / other / couple
    p_sp2 = 0.12 + 0.12 * central
    p_ot2 = 0.08 + 0.10 * central
    two = size == 2
    t[two] = np.where(u[two] < p_sp2[two], HT_SINGLE_PARENT, np.where(u[two] < (p_sp2 + p_ot2)[two], HT_OTHER, HT_COUPLE))
    # size 3+: single parent / other / couple with children
    big = size >= 3
    p_sp = (0.09 + 0.10 * central) * np.where(size >= 5, 0.6, 1.0)
    p_ot = 0.05 + 0.07 * central
    t[big] = np.where(u[big] < p_sp[big], HT_SINGLE_PARENT, np.where(u[big] < (p_sp + p_ot)[big], HT_OTHER, HT_COUPLE_CH))
    return t


def _head_ages(seed: int, hh_type: np.ndarray) -> np.ndarray:
    """Age of the head by household type: mixtures of normals, clipped, >= 18."""
    n = int(hh_type.shape[0])
    rng = streams.stream(seed, "head_age")
    z = rng.standard_normal(n)
    u = rng.random(n)
    age = np.empty(n)
    # single: young / middle / old
    s = hh_type == HT_SINGLE
    age[s] = np.select([u[s] < 0.42, u[s] < 0.68], [31 + 7 * z[s], 52 + 7 * z[s]], 76 + 8 * z[s])
    c = hh_type == HT_COUPLE
    age[c] = np.where(u[c] < 0.35, 31 + 5 * z[c], 65 + 10 * z[c])
    cc = hh_type == HT_COUPLE_CH
    age[cc] = 42 + 7.5 * z[cc]
    sp = hh_type == HT_SINGLE_PARENT
    age[sp] = 43 + 9 * z[sp]
    o = hh_type == HT_OTHER
    age[o] = np.where(u[o] < 0.6, 29 + 7 * z[o], 55 + 15 * z[o])
    lo = np.select([cc, sp, c], [24.0, 21.0, 19.0], 18.0)
    hi = np.select([cc, sp], [68.0, 80.0], 98.0)
    return np.clip(np.rint(age), lo, hi)


def generate_population(seed: int, persons: int) -> Population:
    """Draw the base-wave population with exactly ``persons`` persons."""
    munic, size = _households(seed, persons)
    n_hh = size.shape[0]
    hh_type = _household_types(seed, munic, size)
    hh_start = np.zeros(n_hh, dtype=np.int64)
    np.cumsum(size[:-1], out=hh_start[1:])

    hh = np.repeat(np.arange(n_hh, dtype=np.int32), size)
    member = (np.arange(persons, dtype=np.int64) - hh_start[hh]).astype(np.int8)
    t = hh_type[hh]
    s = size[hh]

    # --- relation to the head -------------------------------------------------
    u_hh = streams.uniform(seed, n_hh, "relation", "household")[hh]
    u_p = streams.uniform(seed, persons, "relation", "person")
    rel = np.full(persons, REL_CHILD, dtype=np.int8)
    rel[member == 0] = REL_HEAD
    couple = (t == HT_COUPLE) | (t == HT_COUPLE_CH)
    rel[couple & (member == 1)] = REL_PARTNER
    grandparent = (member == s - 1) & (member >= 2) & (
        ((t == HT_COUPLE_CH) & (s >= 5)) | ((t == HT_SINGLE_PARENT) & (s >= 4))
    ) & (u_hh < 0.25)
    rel[grandparent] = REL_OTHER_REL
    other = (t == HT_OTHER) & (member > 0)
    flatshare = u_hh < 0.55
    rel[other] = np.where(flatshare[other] ^ (u_p[other] < 0.1), REL_NON_REL, REL_OTHER_REL)

    # --- ages -------------------------------------------------------------------
    head_age = _head_ages(seed, hh_type)
    z_partner = streams.normal(seed, n_hh, "partner_age")
    partner_age = np.clip(np.rint(head_age - 1.5 + 4 * z_partner), np.where(hh_type == HT_COUPLE_CH, 20, 18), MAX_AGE_BASE)
    has_partner = hh_type == HT_COUPLE_CH
    parent_min = np.where(has_partner, np.minimum(head_age, partner_age), head_age)
    child_hi = np.minimum(parent_min - 15, 35)
    child_lo = np.minimum(np.maximum(parent_min - 45, 0), child_hi)

    h_age = head_age[hh]
    rng = streams.stream(seed, "member_age")
    u_age = rng.random(persons)
    z_age = rng.standard_normal(persons)
    age = h_age.copy()
    pm = rel == REL_PARTNER
    age[pm] = partner_age[hh[pm]]
    ch = rel == REL_CHILD
    lo, hi = child_lo[hh[ch]], child_hi[hh[ch]]
    age[ch] = lo + np.floor(u_age[ch] * (hi - lo + 1))
    gp = grandparent
    age[gp] = np.minimum(h_age[gp] + 22 + np.floor(u_age[gp] * 14), MAX_AGE_BASE)
    orl = (rel == REL_OTHER_REL) & ~gp
    age[orl] = np.clip(np.rint(h_age[orl] + 12 * z_age[orl]), 0, MAX_AGE_BASE)
    nr = rel == REL_NON_REL
    age[nr] = np.clip(np.rint(h_age[nr] + 6 * z_age[nr]), 18, 95)
    age = age.astype(np.int16)

    # --- sex ----------------------------------------------------------------------
    u_sex = streams.uniform(seed, persons, "sex")
    head_female = np.select(
        [t == HT_SINGLE, couple, t == HT_SINGLE_PARENT],
        [0.5 + 0.2 * (age >= 70), np.full(persons, 0.3), np.full(persons, 0.83)],
        0.5,
    )
    female = np.where(rel == REL_HEAD, u_sex < head_female, u_sex < 0.49)
    head_is_female = female[hh_start][hh]
    female[pm] = np.where(u_sex[pm] < 0.96, ~head_is_female[pm], head_is_female[pm])
    sex = (~female).astype(np.int8)  # 0 female, 1 male

    # --- citizenship ------------------------------------------------------------------
    m_p = munic[hh]
    u_hh_cit = streams.uniform(seed, n_hh, "citizenship", "household")
    hh_cit = np.where(u_hh_cit < M_NON_EU[munic], 2, np.where(u_hh_cit < M_NON_EU[munic] + M_EU[munic], 1, 0))
    cit = hh_cit[hh].astype(np.int8)
    rng = streams.stream(seed, "citizenship", "person")
    u_flip, u_new = rng.random(persons), rng.random(persons)
    flip = (member > 0) & (u_flip < 0.08)
    new = np.where(u_new < M_NON_EU[m_p], 2, np.where(u_new < M_NON_EU[m_p] + M_EU[m_p], 1, 0))
    cit[flip] = new[flip]
    naturalised = (rel == REL_CHILD) & (cit > 0) & (u_flip > 0.7)
    cit[naturalised] = 0

    # --- hidden traits ----------------------------------------------------------------
    frailty = streams.normal(seed, persons, "trait", "frailty")
    thrift = 0.8 * streams.normal(seed, n_hh, "trait", "thrift", "household")[hh]
    thrift += 0.6 * streams.normal(seed, persons, "trait", "thrift", "person")
    work = streams.normal(seed, persons, "trait", "work_attachment")

    return Population(
        hh_munic=munic,
        hh_size=size,
        hh_type=hh_type,
        hh_start=hh_start,
        hh=hh,
        member=member,
        relation=rel,
        age=age,
        sex=sex,
        citizenship=cit,
        frailty=frailty,
        thrift=thrift,
        work_attachment=work,
    )
