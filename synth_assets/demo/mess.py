"""Raw codes, spellings and measurement: how each source *delivers* its data.

The truth is clean and harmonised; the delivered files are not.  Per source:

* **register** (Parquet): administrative upper-case names, numeric codes
  (``SEX`` 1 = female / 2 = male, ``MUNIC_CODE`` 1..19, ...), exact incomes.
* **silc** (CSV, ``;`` separator, decimal commas, Latin-1 encoding):
  categories spelled in words ("F"/"M", "Very good", municipality names in
  upper case), missing values as empty cells, ``-8`` for rent not applicable;
  labour income as reported in the interview (multiplicative noise, ~4 %
  item non-response, more among high earners).
* **hbs** (Stata ``.dta``): numeric codes carrying value labels ("Female" /
  "Male", other municipality codes 101..119), ``-9`` for item non-response;
  spending is monthly in euros, labour income annual, rounded to 100.
* **lfs** (SPSS ``.sav``): persons 15-74 only, value labels ("female" /
  "male", statistical municipality codes 21001..21019), ``-9`` declared as
  user-missing, ``-8`` for hours of inactive persons; pay is *monthly*
  (the catalog scales it by 12).
* **hfcs** (Parquet): ECB-style variable codes (``SA0010``, ``RA0200``...), sex
  coded 1 = **male**, 2 = female (the reverse of the register), string codes
  for municipality / citizenship / household type, amounts in **thousands** of
  euros, missing values as nulls.

The code tables below are the single place that defines raw values; the
catalog (``data/catalog.yaml``) describes exactly these tables and the tests
check the two against each other.  For the labelled Stata / SPSS variables the
catalog lists both the numeric code and its label, so harmonisation works
whether the reader converts value labels or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import streams
from .city import (
    CITIZENSHIP,
    CONTRACT,
    HEALTH,
    HOUSEHOLD_TYPE,
    MISSING,
    MUNICIPALITY_NAMES,
    OCCUPATION,
    RELATION,
    TENURE,
)
from .surveys import Sample


@dataclass
class RawTable:
    """A delivered table plus the metadata its writer needs."""

    frame: pd.DataFrame
    fmt: str  # parquet | csv | stata | spss
    column_labels: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[int, str]] = field(default_factory=dict)
    missing_ranges: dict[str, list] = field(default_factory=dict)


def _numbered(categories: list[str], start: int = 1) -> dict[int, str]:
    return {start + i: c for i, c in enumerate(categories)}


# --- raw value -> harmonised category ------------------------------------------------
REGISTER_CODES: dict[str, dict] = {
    "MUNIC_CODE": _numbered(MUNICIPALITY_NAMES),
    "SEX": {1: "female", 2: "male"},
    "CITIZEN": _numbered(CITIZENSHIP),
    "HH_TYPE": _numbered(HOUSEHOLD_TYPE),
    "REL_HEAD": _numbered(RELATION),
}

SILC_CODES: dict[str, dict] = {
    "commune": {name.upper(): name for name in MUNICIPALITY_NAMES},
    "sexe": {"F": "female", "M": "male"},
    "nation": {"National": "national", "EU": "eu", "Non-EU": "non_eu"},
    "hhtype": dict(
        zip(["One person", "Couple without children", "Couple with children", "Single parent", "Other"], HOUSEHOLD_TYPE)
    ),
    "relhead": dict(zip(["Reference person", "Spouse/partner", "Child", "Other relative", "Not related"], RELATION)),
    "health": dict(zip(["Very good", "Good", "Fair", "Bad", "Very bad"], HEALTH)),
    "tenure": dict(zip(["Owner", "Tenant - market rent", "Tenant - social housing", "Free of charge"], TENURE)),
}

# Stata / SPSS: numeric code -> harmonised category, and numeric code -> value label.
HBS_CODES: dict[str, dict] = {
    "commune": _numbered(MUNICIPALITY_NAMES, 101),
    "sex": {1: "female", 2: "male"},
    "nation": _numbered(CITIZENSHIP),
    "hhtype": _numbered(HOUSEHOLD_TYPE),
    "rel": _numbered(RELATION),
}
HBS_LABELS: dict[str, dict[int, str]] = {
    "commune": _numbered(MUNICIPALITY_NAMES, 101),
    "sex": {1: "Female", 2: "Male"},
    "nation": {1: "National", 2: "EU citizen", 3: "Non-EU citizen"},
    "hhtype": _numbered(["Single person", "Couple, no children", "Couple with children", "Lone parent", "Other household"]),
    "rel": _numbered(["Head", "Partner", "Child", "Other relative", "Non-relative"]),
}

LFS_CODES: dict[str, dict] = {
    "REGION": _numbered(MUNICIPALITY_NAMES, 21001),
    "SEX": {1: "female", 2: "male"},
    "NATION": _numbered(CITIZENSHIP),
    "HHTYPE": _numbered(HOUSEHOLD_TYPE),
    "RELHH": _numbered(RELATION),
    "ISCO": {**_numbered(OCCUPATION[:9]), 99: "none"},
    "CONTRACT": _numbered(CONTRACT),
}
LFS_LABELS: dict[str, dict[int, str]] = {
    "REGION": _numbered([n.upper() for n in MUNICIPALITY_NAMES], 21001),
    "SEX": {1: "female", 2: "male"},
    "NATION": {1: "national", 2: "EU", 3: "non-EU"},
    "HHTYPE": _numbered(["one person", "couple without children", "couple with children", "lone parent", "other"]),
    "RELHH": _numbered(["reference person", "partner", "son/daughter", "other relative", "not related"]),
    "ISCO": {
        1: "Managers",
        2: "Professionals",
        3: "Technicians and associate professionals",
        4: "Clerical support workers",
        5: "Service and sales workers",
        6: "Skilled agricultural workers",
        7: "Craft and related trades workers",
        8: "Plant and machine operators",
        9: "Elementary occupations",
        99: "No occupation",
    },
    "CONTRACT": {1: "permanent", 2: "temporary", 3: "self-employed", 4: "not employed"},
}

HFCS_CODES: dict[str, dict] = {
    "SA0100": {f"MUN{i + 1:02d}": name for i, name in enumerate(MUNICIPALITY_NAMES)},
    "RA0200": {1: "male", 2: "female"},
    "RA0400": {"NAT": "national", "EU": "eu", "NONEU": "non_eu"},
    "DHHTYPE": dict(zip(["SGL", "CPL0", "CPLK", "LPAR", "OTH"], HOUSEHOLD_TYPE)),
    "RA0100": _numbered(RELATION),
}


def catalog_codes(codes: dict, labels: dict | None = None) -> dict:
    """Codes as written in the catalog: raw value (and its value label) -> category."""
    out = dict(codes)
    for raw, label in (labels or {}).items():
        out.setdefault(label, codes[raw])
    return out


def encode(series: pd.Series, codes: dict) -> np.ndarray:
    """Harmonised categorical series -> raw values (the first raw value of each category)."""
    inverse: dict = {}
    for raw, category in codes.items():
        inverse.setdefault(category, raw)
    values = [inverse[c] for c in series.cat.categories]
    lut = np.array(values, dtype=np.int64 if all(isinstance(v, int) for v in values) else object)
    return lut[series.cat.codes.to_numpy()]


# --- item non-response and measurement ------------------------------------------------
class _Mess:
    """Random mess for one source and wave (its own named stream)."""

    def __init__(self, seed: int, source: str, wave: int, sample: Sample):
        self.rng = streams.stream(seed, "mess", source, wave)
        self.n = sample.persons.shape[0]
        _, self.hh_index = np.unique(sample.household_id, return_inverse=True)
        self.n_hh = int(self.hh_index.max()) + 1 if self.n else 0

    def missing(self, rate: float, *, household: bool = False, boost: np.ndarray | None = None) -> np.ndarray:
        """Item non-response mask; ``boost`` (bool) doubles the rate (e.g. for high earners)."""
        if household:
            return np.asarray(self.rng.random(self.n_hh)[self.hh_index] < rate)
        r = rate * (1.0 + (boost if boost is not None else 0.0))
        return np.asarray(self.rng.random(self.n) < r)

    def report(self, x: np.ndarray, sigma: float) -> np.ndarray:
        """Survey-reported amount: multiplicative lognormal error, zeros stay zero."""
        return x * np.exp(sigma * self.rng.standard_normal(self.n) - sigma * sigma / 2)


def _high_earner(x: np.ndarray) -> np.ndarray:
    pos = x[x > 0]
    return x > (np.quantile(pos, 0.8) if pos.size else np.inf)


def register_table(truth: pd.DataFrame, wave: int) -> RawTable:
    c = REGISTER_CODES
    frame = pd.DataFrame(
        {
            "PERS_ID": truth["person_id"].to_numpy(),
            "HH_ID": truth["household_id"].to_numpy(),
            "REF_YEAR": np.full(len(truth), wave, dtype=np.int16),
            "MUNIC_CODE": encode(truth["municipality"], c["MUNIC_CODE"]).astype(np.int16),
            "AGE": truth["age"].to_numpy(),
            "SEX": encode(truth["sex"], c["SEX"]).astype(np.int8),
            "CITIZEN": encode(truth["citizenship"], c["CITIZEN"]).astype(np.int8),
            "HH_SIZE": truth["household_size"].to_numpy(),
            "HH_TYPE": encode(truth["household_type"], c["HH_TYPE"]).astype(np.int8),
            "REL_HEAD": encode(truth["relation"], c["REL_HEAD"]).astype(np.int8),
            "INC_LABOUR": truth["labour_income"].to_numpy(),
            "INC_SELF": truth["self_employment_income"].to_numpy(),
            "INC_PENSION": truth["pension_income"].to_numpy(),
            "INC_UNEMP": truth["unemployment_income"].to_numpy(),
            "INC_PROPERTY": truth["property_income"].to_numpy(),
        }
    )
    return RawTable(frame, "parquet")


def silc_table(t: pd.DataFrame, s: Sample, seed: int, wave: int) -> RawTable:
    m = _Mess(seed, "silc", wave, s)
    c = SILC_CODES
    lab = t["labour_income"].to_numpy()
    inc = np.round(m.report(lab, 0.12), 2)
    inc[m.missing(0.04, boost=_high_earner(lab))] = np.nan
    dep = pd.array(t["deprivation"].to_numpy(), dtype="Int64")
    dep[m.missing(0.03, household=True)] = pd.NA
    health = encode(t["health"], c["health"])
    health[m.missing(0.02)] = None
    rent = t["rent"].to_numpy().copy()
    rent[(rent >= 0) & m.missing(0.04, household=True)] = np.nan
    frame = pd.DataFrame(
        {
            "pid": s.person_id,
            "hid": s.household_id,
            "year": np.full(m.n, wave, dtype=np.int16),
            "pweight": np.round(s.weight, 4),
            "dweight": np.round(s.design_weight, 4),
            "commune": encode(t["municipality"], c["commune"]),
            "age": t["age"].to_numpy(),
            "sexe": encode(t["sex"], c["sexe"]),
            "nation": encode(t["citizenship"], c["nation"]),
            "hhsize": t["household_size"].to_numpy(),
            "hhtype": encode(t["household_type"], c["hhtype"]),
            "relhead": encode(t["relation"], c["relhead"]),
            "inc_work": inc,
            "deprivation": dep,
            "health": health,
            "tenure": encode(t["tenure"], c["tenure"]),
            "rent_month": rent,
        }
    )
    return RawTable(frame, "csv")


def hbs_table(t: pd.DataFrame, s: Sample, seed: int, wave: int) -> RawTable:
    m = _Mess(seed, "hbs", wave, s)
    c = HBS_CODES
    lab = t["labour_income"].to_numpy()
    inc = np.round(m.report(lab, 0.10), -2)
    inc[m.missing(0.04, boost=_high_earner(lab))] = MISSING
    frame = pd.DataFrame(
        {
            "numhh": s.household_id,
            "numind": s.person_id,
            "year": np.full(m.n, wave, dtype=np.int64),
            "wgt": np.round(s.weight, 4),
            "commune": encode(t["municipality"], c["commune"]),
            "age": t["age"].to_numpy().astype(np.int64),
            "sex": encode(t["sex"], c["sex"]),
            "nation": encode(t["citizenship"], c["nation"]),
            "hhsize": t["household_size"].to_numpy().astype(np.int64),
            "hhtype": encode(t["household_type"], c["hhtype"]),
            "rel": encode(t["relation"], c["rel"]),
            "inc_lab": inc,
        }
    )
    for raw, var, rate in (
        ("food_m", "spend_food", 0.02),
        ("housing_m", "spend_housing", 0.03),
        ("energy_m", "spend_energy", 0.03),
        ("transp_m", "spend_transport", 0.02),
    ):
        x = t[var].to_numpy().copy()
        x[m.missing(rate, household=True)] = MISSING
        frame[raw] = x
    labels = {
        "numhh": "Household number",
        "numind": "Person number",
        "year": "Survey year",
        "wgt": "Household weight (calibrated)",
        "commune": "Municipality",
        "age": "Age in completed years",
        "sex": "Sex",
        "nation": "Citizenship",
        "hhsize": "Household size",
        "hhtype": "Household type",
        "rel": "Relation to the head",
        "inc_lab": "Annual labour income, EUR",
        "food_m": "Food spending, EUR per month",
        "housing_m": "Housing spending, EUR per month",
        "energy_m": "Energy spending, EUR per month",
        "transp_m": "Transport spending, EUR per month",
    }
    return RawTable(frame, "stata", column_labels=labels, value_labels=HBS_LABELS)


def lfs_table(t: pd.DataFrame, s: Sample, seed: int, wave: int) -> RawTable:
    m = _Mess(seed, "lfs", wave, s)
    c = LFS_CODES
    lab = t["labour_income"].to_numpy()
    pay = np.round(m.report(lab / 12.0, 0.15), -1)
    pay[m.missing(0.05, boost=_high_earner(lab))] = MISSING
    hours = t["hours_worked"].to_numpy().astype(np.float64)
    hours[m.missing(0.03)] = MISSING
    isco = encode(t["occupation"], c["ISCO"]).astype(np.float64)
    isco[m.missing(0.02)] = MISSING
    contract = encode(t["contract"], c["CONTRACT"]).astype(np.float64)
    contract[m.missing(0.02)] = MISSING
    frame = pd.DataFrame(
        {
            "IDPERS": s.person_id,
            "IDHH": s.household_id,
            "YEAR": np.full(m.n, wave, dtype=np.int64),
            "COEFF": np.round(s.weight, 4),
            "REGION": encode(t["municipality"], c["REGION"]),
            "AGE": t["age"].to_numpy().astype(np.int64),
            "SEX": encode(t["sex"], c["SEX"]),
            "NATION": encode(t["citizenship"], c["NATION"]),
            "HHSIZE": t["household_size"].to_numpy().astype(np.int64),
            "HHTYPE": encode(t["household_type"], c["HHTYPE"]),
            "RELHH": encode(t["relation"], c["RELHH"]),
            "PAYMONTH": pay,
            "HOURS": hours,
            "ISCO": isco,
            "CONTRACT": contract,
        }
    )
    labels = {
        "IDPERS": "Person identifier",
        "IDHH": "Household identifier",
        "YEAR": "Survey year",
        "COEFF": "Calibrated weight",
        "REGION": "Municipality of residence",
        "AGE": "Age",
        "SEX": "Sex",
        "NATION": "Citizenship",
        "HHSIZE": "Number of household members",
        "HHTYPE": "Household type",
        "RELHH": "Relationship to reference person",
        "PAYMONTH": "Gross monthly pay from employment, EUR",
        "HOURS": "Usual weekly hours (-8 not in labour force)",
        "ISCO": "Occupation, ISCO-08 major group",
        "CONTRACT": "Type of contract",
    }
    missing = {col: [MISSING] for col in ("PAYMONTH", "HOURS", "ISCO", "CONTRACT")}
    return RawTable(frame, "spss", column_labels=labels, value_labels=LFS_LABELS, missing_ranges=missing)


def hfcs_table(t: pd.DataFrame, s: Sample, seed: int, wave: int) -> RawTable:
    m = _Mess(seed, "hfcs", wave, s)
    c = HFCS_CODES
    lab = t["labour_income"].to_numpy()
    inc = np.round(m.report(lab, 0.10) / 1000.0, 1)
    inc[m.missing(0.04, boost=_high_earner(lab))] = np.nan
    frame = pd.DataFrame(
        {
            "SA0010": s.household_id,
            "RA0010": s.person_id,
            "SURVEY_YEAR": np.full(m.n, wave, dtype=np.int16),
            "HW0010": np.round(s.weight, 4),
            "SA0100": encode(t["municipality"], c["SA0100"]),
            "RA0300": t["age"].to_numpy(),
            "RA0200": encode(t["sex"], c["RA0200"]).astype(np.int8),
            "RA0400": encode(t["citizenship"], c["RA0400"]),
            "DHHS": t["household_size"].to_numpy(),
            "DHHTYPE": encode(t["household_type"], c["DHHTYPE"]),
            "RA0100": encode(t["relation"], c["RA0100"]).astype(np.int8),
            "PG0110": inc,
        }
    )
    for raw, var, rate in (("HD1110", "deposits", 0.05), ("DA1110", "real_estate", 0.02), ("DL1000", "debt", 0.03)):
        x = np.round(t[var].to_numpy() / 1000.0, 2)
        x[m.missing(rate, household=True)] = np.nan
        frame[raw] = x
    return RawTable(frame, "parquet")


SURVEY_TABLES = {"silc": silc_table, "hbs": hbs_table, "lfs": lfs_table, "hfcs": hfcs_table}
FILE_NAMES = {"register": "register_{wave}.parquet", "silc": "silc_{wave}.csv", "hbs": "hbs_{wave}.dta", "lfs": "lfs_{wave}.sav", "hfcs": "hfcs_{wave}.parquet",
              "tus": "tus_{wave}.xpt", "mobility": "mobility_{wave}.csv"}
