"""Linked tables for synthetic persons: diary days and trips generated from their aggregates.

A release's persons carry a record survey's aggregates (minutes per activity per average day;
trips, kilometres by mode, share of car trips), drawn whole from one training record. These
generators give each synthetic person the records behind them, never copied from a real
diary: a weekday and a weekend day whose episodes tile 24 hours, or a travel day's trips, such
that the catalog's own aggregation (:func:`synth_assets.harmonise.records.aggregate_records`)
gives back the person's values. What is learnt from the survey's records is only weekday and
weekend contrasts per activity, the order of activities in a day, speeds, purposes by mode and
departure times by trip rank; :func:`copied_days` checks no generated day equals a real one.

The generators read the catalog's aggregates (``how``, ``of``, ``where``), so they follow its
declarations; they handle the two shapes of the demo: episodes summed by one activity variable
per average day (``covers_day``), and trips counted, summed by mode groups and shared.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.catalog.model import RecordAggregate, Records, Source
from synth_assets.harmonise.records import failed_days, with_derived

_WHERE = re.compile(r"^\s*(?P<variable>\w+)\s*(?P<op>==|in)\s*(?P<value>.+?)\s*$")


def _selection(aggregate: RecordAggregate) -> tuple[str, list[str]] | None:
    """The variable and categories a ``where`` selects (``x == 'a'`` or ``x in ['a', 'b']``)."""
    if aggregate.where is None:
        return None
    match = _WHERE.match(aggregate.where)
    if match is None:
        raise ValueError(f"where {aggregate.where!r}: linked tables need `variable == 'a'` or `variable in [...]`")
    value = ast.literal_eval(match["value"])
    return match["variable"], [value] if isinstance(value, str) else list(value)


def _records_of(source: Source) -> Records:
    if source.records is None:
        raise ValueError("not a record source: the catalog declares no 'records'")
    return source.records


def clean_days(rows: pd.DataFrame, source: Source) -> pd.DataFrame:
    """The records of days passing the catalog's checks (what generators learn from)."""
    rows = rows if all(name in rows for name in _records_of(source).derived) else with_derived(rows, source)
    failed = failed_days(rows, source)
    person = source.id_column or "person_id"
    bad = pd.MultiIndex.from_frame(failed[[person, "day_id"]]) if len(failed) else None
    if bad is None:
        return rows
    return rows.loc[~pd.MultiIndex.from_frame(rows[[person, "day_id"]]).isin(bad)]


def _real(rows: pd.DataFrame) -> pd.DataFrame:
    number = pd.to_numeric(rows["record_id"], errors="coerce")
    return rows.loc[number.notna() & number.gt(0)]


@dataclass
class EpisodeDays:
    """Diary days (one per day type) from minutes per activity per average day.

    Fit on the survey's harmonised episodes; sample for persons holding the aggregates.
    """

    source: Source
    seed: int = 0

    def fit(self, rows: pd.DataFrame) -> EpisodeDays:
        records = _records_of(self.source)
        cover = records.covers_day
        if cover is None or records.day_type is None:
            raise ValueError("episode days need the records' 'covers_day' and 'day_type'")
        self.activity_of: dict[str, str] = {}  # aggregate -> activity category
        activity_variable = None
        for name, aggregate in self.source.aggregates.items():
            selected = _selection(aggregate)
            if aggregate.how != "sum" or selected is None or len(selected[1]) != 1:
                raise ValueError(f"{name}: episode days need sums of one activity each")
            activity_variable = selected[0]
            self.activity_of[name] = selected[1][0]
        assert activity_variable is not None, "the source declares aggregates"
        self.activity_variable = activity_variable
        self.day_weights = {k: float(v) for k, v in records.day_weights.items()}
        real = _real(clean_days(rows, self.source)).dropna(subset=[cover.start, cover.end, activity_variable])
        duration = real[cover.end].astype(float) - real[cover.start].astype(float)
        person = self.source.id_column
        days = real.groupby([person, "day_id"]).ngroups
        by = pd.DataFrame({"activity": real[activity_variable].astype(str), "type": real[records.day_type].astype(str),
                           "minutes": duration, "mid": (real[cover.start] + real[cover.end]) / 2})
        per_type: pd.DataFrame = by.groupby(["type", "activity"])["minutes"].sum().unstack().fillna(0.0)
        day_counts = real.drop_duplicates([person, "day_id"])[records.day_type].astype(str).value_counts()
        per_type = per_type.div(day_counts.reindex(per_type.index), axis=0)
        types = [t for t in self.day_weights if t in per_type.index]
        shares = np.array([self.day_weights[t] for t in types]) / sum(self.day_weights.values())
        table = per_type.loc[types].to_numpy(dtype=float)  # day types x activities
        average = shares @ table
        relative = np.divide(table - average, average, out=np.zeros_like(table), where=average > 0)
        # per activity: how much each day type departs from the average day, relative to it
        self.contrast: dict[str, dict[str, float]] = {
            t: {str(a): float(v) for a, v in zip(per_type.columns, relative[i], strict=True)}
            for i, t in enumerate(types)}
        # the day opens and closes with the activity real days start with (sleep); the others
        # in the order their episodes' midpoints fall
        firsts = real.loc[real[cover.start].astype(float) == 0, activity_variable].astype(str)
        self.opening = firsts.mode().iloc[0] if len(firsts) else None
        middle = by.loc[by["activity"] != self.opening].groupby("activity")["mid"].mean().sort_values()
        self.order = ([self.opening] if self.opening else []) + middle.index.tolist()
        self.minutes = cover.minutes
        self.days_fitted = days
        return self

    def day_minutes(self, persons: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Per day type, the minutes per aggregate: weighted by day type they give the person's."""
        names = list(self.activity_of)
        average = persons[names].astype(float)
        out: dict[str, pd.DataFrame] = {}
        shift = pd.DataFrame({t: [self.contrast[t].get(self.activity_of[n], 0.0) for n in names]
                              for t in self.contrast}, index=names)
        # the contrasts must cancel over each person's day (every day type lasts the whole day) ...
        raw = {t: average * shift[t].to_numpy() for t in shift}
        weights = {t: self.day_weights[str(t)] / sum(self.day_weights.values()) for t in raw}
        for t in raw:
            excess = raw[t].sum(axis=1) / average.sum(axis=1).where(average.sum(axis=1) > 0, 1.0)
            raw[t] = raw[t].sub(average.mul(excess, axis=0))
        # ... and between day types, weighted (the average day is kept exactly) ...
        mean_shift = sum(raw[t] * weights[t] for t in raw)
        for t in raw:
            raw[t] = raw[t] - mean_shift
        # ... never making an activity negative on a day: shrink a person's contrasts to fit
        scale = pd.Series(1.0, index=average.index)
        for t in raw:
            need = (-raw[t]).where(raw[t] < 0)
            room = (average / need).min(axis=1).fillna(np.inf)
            scale = scale.clip(upper=room.clip(upper=1.0))
        for t in raw:
            out[str(t)] = average + raw[t].mul(scale, axis=0)
        return out

    def sample(self, persons: pd.DataFrame, person_id: str = "person_id") -> pd.DataFrame:
        """Episodes for every person with the aggregates (not-applicable persons get none)."""
        names = list(self.activity_of)
        inside = persons[names].ge(0).all(axis=1)
        chosen = persons.loc[inside]
        days = self.day_minutes(chosen)
        position = {a: i for i, a in enumerate(self.order)}
        sleep = self.opening
        frames = []
        for number, (day_type, minutes) in enumerate(days.items(), start=1):
            for pid, row in zip(chosen[person_id].to_numpy(), minutes.to_numpy(), strict=True):
                frames.append(self._episodes(pid, number, day_type, row, names, position, sleep))
        if not frames:
            return pd.DataFrame(columns=[person_id, "day_id", "day_type", "record_id", "start", "end", "activity"])
        out = pd.concat(frames, ignore_index=True).rename(columns={"person": person_id})
        return out

    def _episodes(self, pid: object, day: int, day_type: str, row: np.ndarray, names: list[str],
                  position: dict[str, int], sleep: str | None) -> pd.DataFrame:
        blocks: list[tuple[str, float]] = []
        for name in sorted(names, key=lambda n: position.get(self.activity_of[n], len(position))):
            activity = self.activity_of[name]
            blocks.append((activity, float(row[names.index(name)])))
        if sleep is not None and blocks and blocks[0][0] == sleep:  # night sleep: before and after the day
            first = blocks[0][1] * 0.7
            blocks = [(sleep, first), *blocks[1:], (sleep, blocks[0][1] - first)]
        blocks = [(a, m) for a, m in blocks if m > 0]
        ends = np.cumsum([m for _, m in blocks])
        if abs(ends[-1] - self.minutes) < 0.01:  # the day's length, not its float sum's rounding error
            ends[-1] = self.minutes
        starts = np.concatenate([[0.0], ends[:-1]])
        return pd.DataFrame({"person": pid, "day_id": day, "day_type": day_type,
                             "record_id": np.arange(1, len(blocks) + 1), "start": starts, "end": ends,
                             "activity": [a for a, _ in blocks]})


@dataclass
class TripDays:
    """A travel day's trips from trips per day, kilometres by mode group and a share."""

    source: Source
    seed: int = 0

    def fit(self, rows: pd.DataFrame) -> TripDays:
        self.count: str | None = None
        self.km: dict[str, list[str]] = {}  # aggregate -> modes it sums
        self.share: tuple[str, list[str]] | None = None
        mode_variable = distance = None
        for name, aggregate in self.source.aggregates.items():
            selected = _selection(aggregate)
            if aggregate.how == "count" and selected is None:
                self.count = name
            elif aggregate.how == "sum" and selected is not None:
                mode_variable, distance = selected[0], aggregate.of
                self.km[name] = selected[1]
            elif aggregate.how == "share" and selected is not None:
                self.share = (name, selected[1])
            else:
                raise ValueError(f"{name}: trips need a count, sums by mode and a share")
        if self.count is None or mode_variable is None or distance is None:
            raise ValueError("trips need a count of trips and kilometres by mode")
        self.mode_variable, self.distance = mode_variable, distance
        real = _real(clean_days(rows, self.source)).dropna(subset=[mode_variable, distance])
        modes = real[mode_variable].astype(str)
        self.modes = list(_records_of(self.source).variables[mode_variable].categories or [])
        duration = next((v for v in ("duration",) if v in real), None)
        speed = (real[distance] / (real[duration] / 60)).replace([np.inf, -np.inf], np.nan) if duration else None
        self.speed = (speed.groupby(modes).median().to_dict() if speed is not None else {})
        self.duration_variable = duration
        self.other_km = real.groupby(modes)[distance].median().to_dict()
        # mode shares for minors and adults apart: a child is driven, never drives
        minor = (real["age"] < 18).to_numpy() if "age" in real else np.zeros(len(real), bool)
        self.mode_share = {bool(k): g.value_counts(normalize=True).to_dict() for k, g in modes.groupby(minor)}
        self.purposes = {m: g.astype(str).value_counts(normalize=True) for m, g in real["purpose"].groupby(modes)} \
            if "purpose" in real else {}
        rank = real.groupby([self.source.id_column, "day_id"]).cumcount().clip(upper=4)
        self.departures = {int(r): np.sort(g.to_numpy(dtype=float)) for r, g in real["departure"].groupby(rank)} \
            if "departure" in real else {}
        return self

    def sample(self, persons: pd.DataFrame, person_id: str = "person_id") -> pd.DataFrame:
        rng = np.random.default_rng(self.seed)
        assert self.count is not None, "fitted"
        inside = persons[self.count].ge(0)
        rows: list[dict[str, object]] = []
        car_modes = self.share[1] if self.share else []
        for _, person in persons.loc[inside].iterrows():
            n = int(round(float(person[self.count])))
            if n == 0:
                rows.append({person_id: person[person_id], "day_id": 1, "record_id": 0})
                continue
            km = {name: float(person[name]) for name in self.km}
            shares = self.mode_share.get(bool("age" in person and person["age"] < 18), {})
            shared = int(round(float(person[self.share[0]]) * n)) if self.share else 0
            groups: list[tuple[list[str], float]] = []  # (modes, km) per trip to make
            share_group = next((g for g, modes in self.km.items() if set(modes) == set(car_modes)), None)
            for _ in range(shared):
                groups.append((car_modes, 0.0))
            others = [g for g in self.km if g != share_group and km[g] > 0]
            for g in others[: max(n - shared, 0)]:
                groups.append((self.km[g], 0.0))
            # further trips: by a mode with kilometres, or a mode no aggregate sums, as often as in the survey
            unsummed = [m for m in self.modes if not any(m in modes for modes in self.km.values())]
            candidates = [self.km[g] for g in others] + [[m] for m in unsummed]
            weights = np.array([sum(shares.get(m, 0.0) for m in modes) for modes in candidates]) + 1e-9
            while len(groups) < n and candidates:
                groups.append((candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))], 0.0))
            while len(groups) < n:
                groups.append((car_modes, 0.0))
            trips = []
            for modes, _ in groups:
                weights = np.array([shares.get(m, 0.0) for m in modes]) + 1e-9
                trips.append(str(rng.choice(modes, p=weights / weights.sum())))
            distance = np.zeros(n)
            for name, modes in self.km.items():
                at = [i for i, m in enumerate(trips) if m in modes]
                if at:
                    distance[at] = km[name] * rng.dirichlet(np.ones(len(at)))
            for i, m in enumerate(trips):
                if not any(m in modes for modes in self.km.values()):
                    distance[i] = float(self.other_km.get(m, 1.0))
            departures = np.sort([self._departure(min(i, 4), rng) for i in range(n)])
            for i in range(n):
                speed = float(self.speed.get(trips[i], 20.0) or 20.0)
                row = {person_id: person[person_id], "day_id": 1, "record_id": i + 1, self.mode_variable: trips[i],
                       self.distance: distance[i], "departure": int(departures[i])}
                if self.duration_variable:
                    row[self.duration_variable] = max(distance[i] / speed * 60, 1.0)
                if self.purposes:
                    options = self.purposes.get(trips[i])
                    row["purpose"] = (str(rng.choice(options.index.to_numpy(), p=options.to_numpy()))
                                      if options is not None else "other")
                rows.append(row)
        return pd.DataFrame(rows)

    def _departure(self, rank: int, rng: np.random.Generator) -> float:
        pool = self.departures.get(rank)
        if pool is None or not len(pool):
            return float(rng.integers(360, 1320))
        return float(np.clip(pool[int(rng.integers(len(pool)))] + rng.normal(0, 15), 0, 1439))


def generator_for(source: Source, seed: int = 0) -> EpisodeDays | TripDays:
    """The generator for a record source: episodes covering days, or trips."""
    records = _records_of(source)
    return EpisodeDays(source, seed) if records.covers_day is not None else TripDays(source, seed)


def copied_days(generated: pd.DataFrame, real: pd.DataFrame, person_id: str, columns: list[str]) -> int:
    """How many generated days equal a real day record for record (``columns``, rounded to the minute)."""
    def signatures(frame: pd.DataFrame) -> set[tuple]:
        frame = _real(frame)
        rounded = frame[columns].apply(lambda c: c.round(0) if pd.api.types.is_float_dtype(c) else c.astype(str))
        keyed = rounded.assign(_p=frame[person_id].to_numpy(), _d=frame["day_id"].to_numpy())
        return {tuple(map(tuple, g[columns].to_numpy().tolist())) for _, g in keyed.groupby(["_p", "_d"], sort=False)}

    real_days = signatures(real)
    return sum(day in real_days for day in signatures(generated))


def compare_distributions(generated: pd.DataFrame, real: pd.DataFrame, person_id: str,
                          variables: list[str], per_day: tuple[str, str] | None = None) -> pd.DataFrame:
    """Per variable of the records (category shares, or number quantiles), generated beside real.

    ``per_day`` (category, amount), e.g. ("activity", "duration"): the mean amount per day of
    each category (minutes per activity group).
    """
    out = []
    g, r = _real(generated), _real(real)
    if per_day is not None:
        category, amount = per_day
        means = {}
        for label, frame, whole in (("generated", g, generated), ("survey", r, real)):
            days = whole.groupby([person_id, "day_id"]).ngroups
            means[label] = frame.groupby(frame[category].astype(str))[amount].sum() / max(days, 1)
        for value in sorted(set(means["generated"].index) | set(means["survey"].index)):
            out.append({"variable": f"{amount} per day", "statistic": str(value),
                        **{k: float(v.get(value, 0.0)) for k, v in means.items()}})
    per_person = {"generated": g.groupby([person_id, "day_id"]).size(), "survey": r.groupby([person_id, "day_id"]).size()}
    out.append({"variable": "records per day", "statistic": "mean",
                **{k: float(v.mean()) for k, v in per_person.items()}})
    for variable in variables:
        if variable not in g or variable not in r:
            continue
        if isinstance(r[variable].dtype, pd.CategoricalDtype) or r[variable].dtype == object:
            shares = {k: f[variable].astype(str).value_counts(normalize=True) for k, f in (("generated", g), ("survey", r))}
            for category in sorted(set(shares["generated"].index) | set(shares["survey"].index)):
                out.append({"variable": variable, "statistic": f"share {category}",
                            **{k: float(v.get(category, 0.0)) for k, v in shares.items()}})
        else:
            for q in (0.25, 0.5, 0.75):
                out.append({"variable": variable, "statistic": f"q{int(q * 100)}",
                            "generated": float(g[variable].astype(float).quantile(q)),
                            "survey": float(r[variable].astype(float).quantile(q))})
    return pd.DataFrame(out)
