"""The fictional city: municipalities and the harmonised category sets.

Everything here is invented.  The 19 municipality names are made up (none is a
Brussels commune) and two carry accents on purpose, so that a reader that gets
the CSV encoding wrong fails loudly.

Each municipality has

* ``weight``      - relative number of households (unequal sizes: the largest is
                    about ten times the smallest, so that stratified designs
                    with a minimum allocation really oversample the small ones);
* ``income``      - an income level index (1.0 = city average) that shifts
                    labour incomes, rents and house prices;
* ``eu``/``non_eu`` - shares of households whose head is an EU / non-EU citizen
                    (poorer central municipalities have more non-EU residents);
* ``central``     - how urban/dense it is, in [0, 1]: more singles, more
                    tenants, fewer cars (zero transport spending).

The category lists are the *harmonised* codes used in the truth files and in
``data/catalog.yaml``; raw spellings per source live in :mod:`.mess`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Municipality:
    code: int  # register code, 1..19
    name: str
    weight: float
    income: float
    eu: float
    non_eu: float
    central: float


MUNICIPALITIES: tuple[Municipality, ...] = (
    Municipality(1, "Aubeval", 11.0, 0.86, 0.16, 0.22, 0.95),
    Municipality(2, "Brenneck", 8.5, 0.78, 0.12, 0.34, 0.90),
    Municipality(3, "Célanges", 7.0, 1.22, 0.22, 0.07, 0.45),
    Municipality(4, "Dornhal", 6.5, 0.92, 0.14, 0.18, 0.75),
    Municipality(5, "Estrevel", 6.0, 1.35, 0.18, 0.05, 0.25),
    Municipality(6, "Faulmarais", 5.5, 0.74, 0.10, 0.38, 0.85),
    Municipality(7, "Grisbourg", 5.0, 1.05, 0.15, 0.12, 0.60),
    Municipality(8, "Hautevergne", 5.0, 1.42, 0.20, 0.04, 0.15),
    Municipality(9, "Ilvermont", 4.5, 0.95, 0.13, 0.16, 0.70),
    Municipality(10, "Jolimare", 4.5, 1.10, 0.24, 0.09, 0.50),
    Municipality(11, "Kervessel", 4.0, 0.83, 0.11, 0.27, 0.80),
    Municipality(12, "Lindhove", 4.0, 1.18, 0.17, 0.06, 0.35),
    Municipality(13, "Marbrecourt", 3.5, 1.00, 0.14, 0.14, 0.55),
    Municipality(14, "Noirvesse", 3.0, 0.88, 0.12, 0.20, 0.65),
    Municipality(15, "Orbeck", 3.0, 1.28, 0.16, 0.05, 0.20),
    Municipality(16, "Périsaule", 2.5, 0.97, 0.19, 0.13, 0.45),
    Municipality(17, "Quellmont", 2.0, 1.12, 0.13, 0.08, 0.30),
    Municipality(18, "Rozendrecht", 1.6, 0.81, 0.09, 0.24, 0.60),
    Municipality(19, "Saulnoy", 1.2, 1.50, 0.21, 0.03, 0.10),
)

N_MUNIC = len(MUNICIPALITIES)
MUNICIPALITY_NAMES: list[str] = [m.name for m in MUNICIPALITIES]

# Column vectors indexed by municipality index 0..18 (register code - 1).
M_WEIGHT = np.array([m.weight for m in MUNICIPALITIES])
M_INCOME = np.array([m.income for m in MUNICIPALITIES])
M_EU = np.array([m.eu for m in MUNICIPALITIES])
M_NON_EU = np.array([m.non_eu for m in MUNICIPALITIES])
M_CENTRAL = np.array([m.central for m in MUNICIPALITIES])

# Harmonised category sets (order = integer code order used internally, 0-based).
SEX = ["female", "male"]
CITIZENSHIP = ["national", "eu", "non_eu"]
HOUSEHOLD_TYPE = ["single", "couple_no_children", "couple_with_children", "single_parent", "other"]
RELATION = ["head", "partner", "child", "other_relative", "non_relative"]
EMPLOYMENT_STATUS = ["child", "student", "employed", "self_employed", "unemployed", "retired", "inactive"]
HEALTH = ["very_good", "good", "fair", "bad", "very_bad"]
TENURE = ["owner", "tenant_market", "tenant_social", "free"]
OCCUPATION = [
    "managers",
    "professionals",
    "technicians",
    "clerks",
    "service_sales",
    "skilled_agricultural",
    "craft",
    "operators",
    "elementary",
    "none",
]
CONTRACT = ["permanent", "temporary", "self_employed", "none"]

NOT_APPLICABLE = -8  # special value kept by harmonisation (rent of owners, hours of inactive)
MISSING = -9  # item non-response code in the Stata/SPSS files

# Internal integer codes (0-based indices into the lists above).
HT_SINGLE, HT_COUPLE, HT_COUPLE_CH, HT_SINGLE_PARENT, HT_OTHER = range(5)
REL_HEAD, REL_PARTNER, REL_CHILD, REL_OTHER_REL, REL_NON_REL = range(5)
ST_CHILD, ST_STUDENT, ST_EMPLOYED, ST_SELF, ST_UNEMPLOYED, ST_RETIRED, ST_INACTIVE = range(7)
TEN_OWNER, TEN_MARKET, TEN_SOCIAL, TEN_FREE = range(4)
OCC_NONE = OCCUPATION.index("none")
CON_PERMANENT, CON_TEMPORARY, CON_SELF, CON_NONE = range(4)
