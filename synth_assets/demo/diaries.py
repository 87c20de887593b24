"""Time use and travel: everyone's diary days and trips, and the two diary surveys' files.

The truth holds, for every person, the time spent per activity group on one weekday and one
weekend day (HETUS-like groups, whole 10-minute slots summing to 24 hours) and the trips of
one travel day; the person-level variables of the truth are their aggregates, computed the
way the catalog declares them (minutes per average day = 5/7 weekday + 2/7 weekend day; trips
per day, kilometres by mode, share of car trips). The surveys observe the days of their
sampled persons as episodes and trips, with the mess real diaries have: overlapping or
gapped episodes, mistyped distances (implausible speeds), travel days without trips.

========================  =======================================================
variable (survey)          drivers
========================  =======================================================
minutes per activity       status (work, study), part time, work attachment (hidden),
(tus)                      children in the household (care), frailty (hidden: sleep,
                           leisure), sex (domestic work, care), age
trips, kilometres,         status, age, frailty (hidden: days without trips),
car share (mobility)       household cars (income, size, municipality centrality,
                           thrift), municipality centrality (public transport)
========================  =======================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import streams
from .city import (
    HT_COUPLE_CH,
    HT_SINGLE_PARENT,
    M_CENTRAL,
    NOT_APPLICABLE,
    ST_EMPLOYED,
    ST_RETIRED,
    ST_SELF,
    ST_STUDENT,
    ST_UNEMPLOYED,
)
from .incomes import WaveIncomes
from .mess import REGISTER_CODES, RawTable, _high_earner, _Mess, encode
from .population import Population
from .surveys import Sample

ACTIVITIES = ["sleep", "paid_work", "study", "domestic", "care", "leisure", "travel"]
# HETUS-like main activity codes in the diary file: several leisure codes share one group.
ACTIVITY_CODES: dict[int, str] = {
    1: "sleep", 10: "paid_work", 21: "study", 30: "domestic", 38: "care",
    50: "leisure", 60: "leisure", 80: "leisure", 90: "travel",
}
DAY_TYPES = ["weekday", "weekend"]
DAY_SHARES = np.array([5.0, 2.0]) / 7.0  # an average day: five weekdays, two weekend days
MODES = ["car_driver", "car_passenger", "public_transport", "bicycle", "walking", "other"]
MODE_CODES: dict[int, str] = {i + 1: m for i, m in enumerate(MODES)}
PURPOSES = ["work", "education", "shopping", "escort", "leisure", "home", "other"]
PURPOSE_CODES: dict[str, str] = {p.upper(): p for p in PURPOSES}
MAX_CARS = 3
TUS_AGE_MIN, MOBILITY_AGE_MIN = 10, 6
SLOT = 10  # minutes: diaries are kept in 10-minute slots
# Speed by mode (km/h, door to door) and the share of trips whose distance is mistyped.
_SPEED = np.array([32.0, 32.0, 20.0, 14.0, 4.5, 25.0])


@dataclass
class Diaries:
    """Everyone's diary days and travel day of one wave (index = population person index)."""

    minutes: np.ndarray  # (persons, 2 day types, activities), whole slots, each day sums to 1440
    cars: np.ndarray  # per household
    trip_person: np.ndarray  # per trip: person index (sorted)
    trip_purpose: np.ndarray
    trip_mode: np.ndarray
    trip_km: np.ndarray
    trip_minutes: np.ndarray
    trip_departure: np.ndarray  # minutes after midnight

    def person_variables(self, age: np.ndarray) -> dict[str, np.ndarray]:
        """The truth's person-level aggregates (-8 outside each survey's age range)."""
        n = self.minutes.shape[0]
        out: dict[str, np.ndarray] = {}
        average = (self.minutes * DAY_SHARES[None, :, None]).sum(axis=1)
        for k, activity in enumerate(ACTIVITIES):
            out[f"minutes_{activity}"] = np.where(age >= TUS_AGE_MIN, np.round(average[:, k], 2), NOT_APPLICABLE)
        trips = np.bincount(self.trip_person, minlength=n).astype(np.float64)
        car = self.trip_mode <= 1
        by_mode = {
            "km_car": car, "km_public_transport": self.trip_mode == 2,
            "km_bicycle": self.trip_mode == 3, "km_walking": self.trip_mode == 4,
        }
        mobile = age >= MOBILITY_AGE_MIN
        out["trips_per_day"] = np.where(mobile, trips, NOT_APPLICABLE)
        for name, mask in by_mode.items():
            km = np.bincount(self.trip_person, weights=np.where(mask, self.trip_km, 0.0), minlength=n)
            out[name] = np.where(mobile, np.round(km, 1), NOT_APPLICABLE)
        car_trips = np.bincount(self.trip_person, weights=car.astype(np.float64), minlength=n)
        share = np.divide(car_trips, trips, out=np.zeros(n), where=trips > 0)
        out["car_trip_share"] = np.where(mobile, np.round(share, 4), NOT_APPLICABLE)
        return out


def _slots(minutes: np.ndarray) -> np.ndarray:
    """Whole 10-minute slots per activity, each row summing to 1440 (largest remainders)."""
    target = minutes / minutes.sum(axis=-1, keepdims=True) * (1440 // SLOT)
    whole = np.floor(target)
    short = (1440 // SLOT - whole.sum(axis=-1)).astype(np.int64)
    order = np.argsort(-(target - whole), axis=-1)
    rank = np.argsort(order, axis=-1)
    whole += rank < short[..., None]
    return whole * SLOT


def generate_diaries(pop: Population, inc: WaveIncomes, seed: int, wave: int) -> Diaries:
    n = pop.n_persons
    age = inc.age.astype(np.float64)
    status = inc.status
    working = (status == ST_EMPLOYED) | (status == ST_SELF)
    studying = (status == ST_STUDENT) | ((age >= 6) & (age < 16))
    female = pop.sex == 0
    kids = ((pop.hh_type == HT_COUPLE_CH) | (pop.hh_type == HT_SINGLE_PARENT))[pop.hh] & (age >= 18)
    home = (status == ST_RETIRED) | (status == ST_UNEMPLOYED) | (~working & ~studying & (age >= 18))
    central = M_CENTRAL[pop.hh_munic][pop.hh]
    frailty, attach = pop.frailty, pop.work_attachment

    # time use: mean minutes per activity and day type, then day-to-day noise
    base = np.zeros((n, 2, len(ACTIVITIES)))
    base[:, :, 0] = (490 + 50 * (age < 18) + 25 * frailty)[:, None]
    base[:, 1, 0] += 45
    work = np.where(inc.part_time, 270.0, 470.0) * np.exp(0.08 * attach)
    base[:, 0, 1] = np.where(working, work, np.where(inc.side_job, 60.0, 0.0))
    base[:, 1, 1] = np.where(working, 0.12 * work, 0.0)
    base[:, 0, 2] = np.where(studying, 330.0, 0.0)
    base[:, 1, 2] = np.where(studying, 70.0, 0.0)
    base[:, :, 3] = (40 + 55 * female + 70 * home + 25 * pop.hh_size[pop.hh].clip(max=5))[:, None] * np.array([1.0, 1.3])
    base[:, :, 4] = (np.where(kids, 70 + 50 * female, 8.0))[:, None] * np.array([1.0, 1.4])
    base[:, :, 6] = (45 + 35 * (working | studying) - 10 * central - 8 * frailty)[:, None].clip(min=10) * np.array([1.0, 0.8])
    noise = np.exp(0.25 * streams.stream(seed, "tus", "day", wave).standard_normal(base.shape))
    minutes = base * noise
    busy = minutes.sum(axis=-1)
    leisure = np.maximum(1440 - busy, 90 + 30 * frailty.clip(min=0)[:, None])
    minutes[:, :, 5] = leisure
    minutes = _slots(minutes)

    # cars per household: income, size, centrality, thrift (hidden)
    hh_income = pop.hh_sum(np.maximum(inc.labour_income + inc.self_employment_income + inc.pension_income, 0.0))
    adults = pop.hh_sum((age >= 18).astype(np.float64))
    score = (0.9 * np.log1p(hh_income / 20_000) + 0.5 * np.minimum(adults, 3) - 1.6 * M_CENTRAL[pop.hh_munic]
             - 0.3 * pop.hh_mean(pop.thrift) - 0.4 + 0.8 * streams.normal(seed, pop.n_households, "cars", "persistent"))
    cars = np.clip(np.floor(score), 0, MAX_CARS).astype(np.int64)
    cars = np.where(adults > 0, cars, 0)

    # trips of one travel day
    rng = streams.stream(seed, "mobility", "trips", wave)
    immobile = 1 / (1 + np.exp(-(-2.4 + 0.9 * frailty + 0.03 * np.maximum(age - 65, 0) - 0.6 * working)))
    rate = 2.4 + 0.8 * working + 0.4 * studying + 0.5 * kids + 0.2 * (cars[pop.hh] > 0)
    counts = np.where(rng.random(n) < immobile, 0, np.maximum(rng.poisson(rate), 1))
    counts = np.where(age >= MOBILITY_AGE_MIN, counts, 0)
    person = np.repeat(np.arange(n), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order_in_day = np.arange(person.shape[0]) - first[person]
    last = order_in_day == counts[person] - 1
    m = person.shape[0]
    out_purpose = np.select(
        [working[person] & (order_in_day == 0), studying[person] & (order_in_day == 0), kids[person] & (rng.random(m) < 0.3)],
        [0, 1, 3],
        rng.choice([2, 4, 6], size=m, p=[0.5, 0.4, 0.1]),
    )
    purpose = np.where(last & (counts[person] > 1), 5, out_purpose)
    log_km = np.select([purpose == 0, purpose == 1], [np.log(9.0), np.log(3.5)], np.log(3.0))
    km = np.exp(log_km + 0.2 * (1 - M_CENTRAL[pop.hh_munic][pop.hh][person]) + 0.8 * rng.standard_normal(m)).clip(0.2, 150)
    has_car = cars[pop.hh][person] > 0
    adult = age[person] >= 18
    util = np.zeros((m, len(MODES)))
    util[:, 0] = np.where(has_car & adult, 0.8 + 0.5 * np.log(km), -np.inf)
    util[:, 1] = np.where(has_car, -1.2 + 0.3 * np.log(km) + 0.8 * (~adult), -2.5)
    util[:, 2] = -0.6 + 0.4 * np.log(km) + 1.2 * central[person] + 0.4 * ~adult
    util[:, 3] = 0.2 - 0.4 * np.abs(np.log(km) - 1.0) - 0.4 * frailty[person]
    util[:, 4] = 1.5 - 1.6 * np.log(km) - 0.3 * frailty[person]
    util[:, 5] = -3.5
    mode = (util - np.log(-np.log(rng.random((m, len(MODES)))))).argmax(axis=1)
    km = np.round(np.where(mode == 4, np.minimum(km, 6.0), km), 1).clip(min=0.1)
    duration = np.maximum(np.round(km / _SPEED[mode] * 60 + 3 + 8 * (mode == 2)), 2)
    peak = np.select([purpose <= 1], [7.5 * 60], 10 * 60 + 6 * 60 * rng.random(m))
    departure = np.clip(peak + 30 * rng.standard_normal(m) + 150 * order_in_day, 0, 1439)
    departure = np.round(departure).astype(np.int64)
    return Diaries(minutes, cars, person, purpose, mode, km, duration, departure)


# --- the delivered files --------------------------------------------------------------


def _common_columns(t: pd.DataFrame, names: dict[str, str]) -> dict[str, np.ndarray]:
    r = REGISTER_CODES
    return {
        names["municipality"]: encode(t["municipality"], r["MUNIC_CODE"]),
        names["age"]: t["age"].to_numpy().astype(np.int64),
        names["sex"]: encode(t["sex"], r["SEX"]),
        names["citizenship"]: encode(t["citizenship"], r["CITIZEN"]),
        names["household_size"]: t["household_size"].to_numpy().astype(np.int64),
        names["household_type"]: encode(t["household_type"], r["HH_TYPE"]),
        names["relation"]: encode(t["relation"], r["REL_HEAD"]),
    }


TUS_COLUMNS = {"municipality": "MUNIC", "age": "AGE", "sex": "SEX", "citizenship": "NATION",
               "household_size": "HHSIZE", "household_type": "HHTYPE", "relation": "RELHH"}
MOBILITY_COLUMNS = {"municipality": "munic", "age": "age", "sex": "sex", "citizenship": "citizen",
                    "household_size": "hh_size", "household_type": "hh_type", "relation": "relation"}
_LEISURE_CODES = np.array([50, 60, 80])
_GROUP_CODE = np.array([1, 10, 21, 30, 38, 50, 90])


def _day_episodes(minutes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One day's episodes (start, end, code) from its minutes per activity, in a plausible order."""
    sleep, work, study, domestic, care, leisure, travel = minutes
    morning = SLOT * np.round(sleep * 0.72 / SLOT)
    half = SLOT * np.round(travel / 2 / SLOT)
    blocks = [(1, morning), (38, care / 2), (90, half), (10, work), (21, study), (90, travel - half),
              (30, domestic), (38, care - care / 2), (50, leisure), (1, sleep - morning)]
    codes, lengths = [], []
    for code, length in blocks:
        if length <= 0:
            continue
        if code == 50 and length >= 60:  # leisure reported as several activities
            split = SLOT * np.round(length * rng.uniform(0.3, 0.7) / SLOT)
            parts = [(int(rng.choice(_LEISURE_CODES)), split), (int(rng.choice(_LEISURE_CODES)), length - split)]
        else:
            parts = [(code, length)]
        for c, part in parts:
            if part > 0:
                codes.append(c)
                lengths.append(part)
    ends = SLOT * np.round(np.cumsum(lengths) / SLOT)
    ends[-1] = 1440
    starts = np.concatenate([[0.0], ends[:-1]])
    keep = ends > starts
    return starts[keep], ends[keep], np.asarray(codes)[keep]


def tus_table(t: pd.DataFrame, s: Sample, diaries: Diaries, seed: int, wave: int) -> RawTable:
    """The time-use survey: one row per episode, two diary days per person (SAS transport)."""
    m = _Mess(seed, "tus", wave, s)
    rng = streams.stream(seed, "mess", "tus", "episodes", wave)
    lab = t["labour_income"].to_numpy()
    income = np.round(m.report(lab, 0.12), -2)
    income[m.missing(0.05, boost=_high_earner(lab))] = np.nan
    common = _common_columns(t, TUS_COLUMNS)
    rows: list[dict[str, object]] = []
    for i, person in enumerate(s.persons):
        for day, share in enumerate(DAY_SHARES):
            starts, ends, codes = _day_episodes(diaries.minutes[person, day], rng)
            if rng.random() < 0.04:  # a misrecorded episode: overlaps the next or leaves a gap
                k = int(rng.integers(0, max(len(ends) - 1, 1)))
                ends = ends.copy()
                ends[k] += rng.choice([-30, 30])
            for e in range(len(starts)):
                rows.append({"PERSID": s.person_id[i], "HHID": s.household_id[i], "PWGT": round(float(s.weight[i]), 4),
                             "DAYNO": day + 1, "DAYTYPE": day + 1, "DAYWGT": round(float(s.weight[i] * share), 4),
                             "EPNO": e + 1, "EPSTART": starts[e], "EPEND": ends[e], "ACTCODE": codes[e], "_row": i})
    frame = pd.DataFrame(rows)
    at = frame.pop("_row").to_numpy()
    for column, values in common.items():
        frame[column] = np.asarray(values)[at].astype(np.float64)
    frame["INCLAB"] = income[at]
    return RawTable(frame, "sas")


def mobility_table(t: pd.DataFrame, s: Sample, diaries: Diaries, seed: int, wave: int) -> RawTable:
    """The mobility survey: one row per trip; a person without trips has one row with trip 0."""
    m = _Mess(seed, "mobility", wave, s)
    rng = streams.stream(seed, "mess", "mobility", "trips", wave)
    lab = t["labour_income"].to_numpy()
    income = np.round(m.report(lab, 0.15), -2)
    income[m.missing(0.06, boost=_high_earner(lab))] = np.nan
    common = _common_columns(t, MOBILITY_COLUMNS)
    starts = np.searchsorted(diaries.trip_person, s.persons, side="left")
    stops = np.searchsorted(diaries.trip_person, s.persons, side="right")
    at, trip, tripno = [], [], []
    for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
        if b == a:
            at.append(i)
            trip.append(-1)
            tripno.append(0)
        for k in range(a, b):
            at.append(i)
            trip.append(k)
            tripno.append(k - a + 1)
    at_arr, trip_arr = np.asarray(at), np.asarray(trip)
    has = trip_arr >= 0
    idx = np.where(has, trip_arr, 0)
    km = np.where(has, diaries.trip_km[idx], np.nan)
    typo = has & (rng.random(len(at_arr)) < 0.02)  # distance keyed in metres or with the comma lost
    km = np.where(typo, km * 100, km)
    frame = pd.DataFrame({
        "hh_id": s.household_id[at_arr], "pers_id": s.person_id[at_arr], "weight": np.round(s.weight[at_arr], 4),
        **{c: np.asarray(v)[at_arr] for c, v in common.items()},
        "income": income[at_arr],
        "hh_cars": diaries.cars[np.asarray(t["household_id"].to_numpy() - 1)[at_arr]],
        "travel_day": 1,
        "trip_no": np.asarray(tripno),
        "purpose": np.where(has, np.asarray([p.upper() for p in PURPOSES], dtype=object)[diaries.trip_purpose[idx]], ""),
        "mode": np.where(has, diaries.trip_mode[idx] + 1, np.nan),
        "dist_km": km,
        "dur_min": np.where(has, diaries.trip_minutes[idx], np.nan),
        "dep_min": np.where(has, diaries.trip_departure[idx], np.nan),
    })
    return RawTable(frame, "csv")


DIARY_TABLES = {"tus": tus_table, "mobility": mobility_table}
