"""The truth table of one wave: every person, every variable, harmonised.

Register variables, every survey-specific variable (household-level ones
repeated for the members) and the hidden traits, with the harmonised names and
categories of ``data/catalog.yaml``.  Special values are those the catalog
keeps (``rent == -8`` for non-tenants, ``hours_worked == -8`` for inactive
persons); there are no missing values and no measurement error: the survey
files are samples of this table with mess added (see :mod:`.mess`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .city import (
    CITIZENSHIP,
    CONTRACT,
    EMPLOYMENT_STATUS,
    HEALTH,
    HOUSEHOLD_TYPE,
    MUNICIPALITY_NAMES,
    OCCUPATION,
    RELATION,
    SEX,
    TENURE,
)
from .diaries import ACTIVITIES, Diaries
from .incomes import WaveIncomes
from .population import Population

REGISTER_COLUMNS = [
    "person_id",
    "household_id",
    "municipality",
    "age",
    "sex",
    "citizenship",
    "household_size",
    "household_type",
    "relation",
    "labour_income",
    "self_employment_income",
    "pension_income",
    "unemployment_income",
    "property_income",
]
SURVEY_COLUMNS = {
    "silc": ["deprivation", "health", "tenure", "rent"],
    "hbs": ["spend_food", "spend_housing", "spend_energy", "spend_transport"],
    "lfs": ["hours_worked", "occupation", "contract"],
    "hfcs": ["deposits", "real_estate", "debt"],
    "tus": [f"minutes_{a}" for a in ACTIVITIES],
    "mobility": ["household_cars", "trips_per_day", "km_car", "km_public_transport", "km_bicycle", "km_walking",
                 "car_trip_share"],
}
TRAIT_COLUMNS = ["trait_frailty", "trait_thrift", "trait_work_attachment"]


def _cat(codes: np.ndarray, categories: list[str]) -> pd.Categorical[str]:
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=pd.Index(categories))


def build_truth(
    pop: Population, inc: WaveIncomes, household: dict, person: dict, wave: int, diaries: Diaries
) -> pd.DataFrame:
    """Assemble the person-level truth frame of one wave."""
    hh = pop.hh
    cols: dict[str, object] = {
        "wave": np.full(pop.n_persons, wave, dtype=np.int16),
        "person_id": np.arange(1, pop.n_persons + 1, dtype=np.int64),
        "household_id": (hh + 1).astype(np.int64),
        "municipality": _cat(pop.hh_munic[hh], MUNICIPALITY_NAMES),
        "age": inc.age,
        "sex": _cat(pop.sex, SEX),
        "citizenship": _cat(pop.citizenship, CITIZENSHIP),
        "household_size": pop.hh_size[hh].astype(np.int16),
        "household_type": _cat(pop.hh_type[hh], HOUSEHOLD_TYPE),
        "relation": _cat(pop.relation, RELATION),
        "labour_income": inc.labour_income,
        "self_employment_income": inc.self_employment_income,
        "pension_income": inc.pension_income,
        "unemployment_income": inc.unemployment_income,
        "property_income": inc.property_income,
        "employment_status": _cat(inc.status, EMPLOYMENT_STATUS),
        # silc
        "deprivation": household["deprivation"][hh].astype(np.int16),
        "health": _cat(person["health"], HEALTH),
        "tenure": _cat(household["tenure"][hh], TENURE),
        "rent": household["rent"][hh],
        # hbs
        "spend_food": household["spend_food"][hh],
        "spend_housing": household["spend_housing"][hh],
        "spend_energy": household["spend_energy"][hh],
        "spend_transport": household["spend_transport"][hh],
        # lfs
        "hours_worked": person["hours_worked"],
        "occupation": _cat(person["occupation"], OCCUPATION),
        "contract": _cat(person["contract"], CONTRACT),
        # hfcs
        "deposits": household["deposits"][hh],
        "real_estate": household["real_estate"][hh],
        "debt": household["debt"][hh],
        # tus, mobility: aggregates of everyone's diary days and travel day
        **diaries.person_variables(inc.age),
        "household_cars": diaries.cars[hh].astype(np.int16),
        # hidden traits
        "trait_frailty": pop.frailty,
        "trait_thrift": pop.thrift,
        "trait_work_attachment": pop.work_attachment,
    }
    return pd.DataFrame(cols)
