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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.catalog.model import RecordAggregate, Records, Source
from synth_assets.common.frames import ParquetTable, parts_side_by_side
from synth_assets.harmonise.records import aggregate_records, failed_days, with_derived

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


def label_dtype(source: Source, variable: str, labels: Iterable[str] = ()) -> pd.CategoricalDtype:
    """The categories of a generated label column: the catalog's for ``variable``, then any other of
    ``labels`` (what the generator learnt) in their order.

    Generated labels are categoricals of these, not text: a city's diaries are 29 million rows, and
    text made every later reading, comparison and grouping of them a string operation (the check of
    their aggregates 38.8 -> 28.7 s at 1.2 million persons, bench/README.md "Forty-fifth pass"). They
    are stored as Parquet dictionaries, as the release's persons' categories are.
    """
    declared = _records_of(source).variables.get(variable)
    categories = [str(c) for c in (declared.categories or [])] if declared is not None else []
    categories += [str(label) for label in dict.fromkeys(labels) if str(label) not in categories]
    return pd.CategoricalDtype(categories)


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
        """Episodes for every person with the aggregates (not-applicable persons get none).

        Each day holds one episode per activity with minutes, in the fitted order; the opening
        activity (night sleep) is split, 70% before the day and 30% after it.
        """
        names = list(self.activity_of)
        inside = persons[names].ge(0).all(axis=1)
        chosen = persons.loc[inside]
        days = self.day_minutes(chosen)
        position = {a: i for i, a in enumerate(self.order)}
        ordered = sorted(names, key=lambda n: position.get(self.activity_of[n], len(position)))
        activities = [self.activity_of[n] for n in ordered]
        ids = chosen[person_id].to_numpy()
        records = _records_of(self.source)
        activity_dtype = label_dtype(self.source, self.activity_variable, self.order)
        assert records.day_type is not None, "fitted"
        type_dtype = label_dtype(self.source, records.day_type, days)
        frames = []
        for number, (day_type, minutes) in enumerate(days.items(), start=1):
            blocks = minutes[ordered].to_numpy(dtype=float)  # persons x activities
            labels = activities
            if self.opening is not None and activities and activities[0] == self.opening:
                first = blocks[:, 0] * 0.7
                blocks = np.column_stack([first, blocks[:, 1:], blocks[:, 0] - first])
                labels = [self.opening, *activities[1:], self.opening]
            ends = np.cumsum(blocks, axis=1)
            last = ends[:, -1:]
            # the day's length, not its float sum's rounding error (the last episode's end, and
            # the equal ends of the empty blocks after it)
            ends = np.where((np.abs(last - self.minutes) < 0.01) & (ends == last), self.minutes, ends)
            starts = np.column_stack([np.zeros(len(blocks)), ends[:, :-1]])
            keep = blocks > 0
            rows = int(keep.sum())
            frames.append(pd.DataFrame({
                "person": np.repeat(ids, keep.sum(axis=1)), "day_id": number,
                "day_type": pd.Categorical.from_codes(np.full(rows, type_dtype.categories.get_loc(day_type)),
                                                      categories=type_dtype.categories),
                "record_id": np.cumsum(keep, axis=1)[keep], "start": starts[keep], "end": ends[keep],
                "activity": pd.Categorical.from_codes(activity_dtype.categories.get_indexer(pd.Index(labels))[
                    np.nonzero(keep)[1]], categories=activity_dtype.categories)}))
        if not frames or not len(chosen):
            empty = pd.DataFrame(columns=[person_id, "day_id", "day_type", "record_id", "start", "end", "activity"])
            return empty.astype({"day_type": type_dtype, "activity": activity_dtype})
        return pd.concat(frames, ignore_index=True).rename(columns={"person": person_id})


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
        """Trips for every person with the aggregates (a person without trips: one row, record 0).

        A person's ``n`` trips are, in order: the shared ones (``round(share * n)``, by a mode
        of the share's), one by each other mode group the person has kilometres by, then draws
        among those groups and the modes no aggregate sums, as often as in the survey (minors
        and adults apart). Each group's kilometres are split among its trips (Dirichlet);
        departures are drawn by trip rank from the survey's, jittered by 15 minutes, and sorted.
        """
        rng = np.random.default_rng(self.seed)
        assert self.count is not None, "fitted"
        chosen = persons.loc[persons[self.count].ge(0)]
        ids = chosen[person_id].to_numpy()
        n = np.rint(chosen[self.count].to_numpy(dtype=float)).astype(int)
        width = int(n.max()) if len(n) else 0
        minor = (chosen["age"] < 18).to_numpy(dtype=bool) if "age" in chosen else np.zeros(len(chosen), bool)
        car_modes = self.share[1] if self.share else []
        share_group = next((g for g, modes in self.km.items() if set(modes) == set(car_modes)), None)
        unsummed = [m for m in self.modes if not any(m in modes for modes in self.km.values())]
        groups = [*self.km.values(), *[[m] for m in unsummed]]  # group codes: km groups, then unsummed modes
        names = list(self.km)
        km = chosen[names].to_numpy(dtype=float) if names else np.zeros((len(chosen), 0))

        def mode_share(mode: str) -> np.ndarray:  # per person: the survey's share of the mode
            return np.where(minor, self.mode_share.get(True, {}).get(mode, 0.0),
                            self.mode_share.get(False, {}).get(mode, 0.0))

        slot = np.arange(width)[None, :]
        group = np.full((len(chosen), width), -1)
        shared = np.rint(chosen[self.share[0]].to_numpy(dtype=float) * n).astype(int) if self.share else np.zeros_like(n)
        share_code = names.index(share_group) if share_group is not None else None
        if share_code is not None:
            group[slot < shared[:, None]] = share_code
        filled = shared.copy()
        others = [i for i, g in enumerate(names) if g != share_group]
        for i in others:  # one trip by each other group with kilometres, while trips remain
            take = (km[:, i] > 0) & (filled < n)
            group[take, filled[take]] = i
            filled += take
        # further trips: a group with kilometres, or a mode no aggregate sums, as often as in the survey
        weights = np.column_stack(
            [np.where(km[:, i] > 0, sum(mode_share(m) for m in self.km[names[i]]), 0.0) + 1e-9 * (km[:, i] > 0)
             if i in others else np.zeros(len(chosen)) for i in range(len(names))]
            + [mode_share(m) + 1e-9 for m in unsummed]) if groups else np.zeros((len(chosen), 0))
        rest = (slot >= filled[:, None]) & (slot < n[:, None])
        if rest.any():
            rows, columns = np.nonzero(rest)
            cumulative = np.cumsum(weights[rows], axis=1)
            draw = rng.random(len(rows)) * cumulative[:, -1]
            picked = (cumulative <= draw[:, None]).sum(axis=1).clip(max=len(groups) - 1)
            fallback = share_code if share_code is not None else 0
            group[rows, columns] = np.where(cumulative[:, -1] > 0, picked, fallback)
        valid = group >= 0
        rows, columns = np.nonzero(valid)
        codes = group[rows, columns]
        # each trip's mode within its group, by the survey's shares
        mode = np.empty(len(rows), dtype=object)
        for code, modes in enumerate(groups):
            at = np.nonzero(codes == code)[0]
            if not len(at):
                continue
            shares = np.column_stack([mode_share(m)[rows[at]] for m in modes]) + 1e-9
            cumulative = np.cumsum(shares, axis=1)
            pick = (cumulative <= (rng.random(len(at)) * cumulative[:, -1])[:, None]).sum(axis=1).clip(max=len(modes) - 1)
            mode[at] = np.asarray(modes, dtype=object)[pick]
        distance = np.zeros(len(rows))
        for i, modes in enumerate(self.km.values()):  # the group's kilometres split among its trips
            at = np.nonzero(np.isin(mode.astype(str), modes))[0]
            if len(at):
                parts = rng.standard_exponential(len(at))
                totals = np.bincount(rows[at], weights=parts, minlength=len(chosen))
                distance[at] = km[rows[at], i] * parts / totals[rows[at]]
        for m in unsummed:
            distance[mode == m] = float(self.other_km.get(m, 1.0))
        departure = np.full((len(chosen), width), np.inf)
        departure[rows, columns] = self._departures(np.minimum(columns, 4), rng)
        departure = np.sort(departure, axis=1)[rows, columns]  # in time order, as the trips are listed
        labels = {self.mode_variable: label_dtype(self.source, self.mode_variable,
                                                  [m for modes in groups for m in modes])}
        trip_modes = pd.Categorical(mode, dtype=labels[self.mode_variable])
        trips = {person_id: ids[rows], "day_id": 1, "record_id": columns + 1, self.mode_variable: trip_modes,
                 self.distance: distance, "departure": pd.array(departure.astype(np.int64), dtype="Int64")}
        if self.duration_variable:  # each mode's speed, looked up by its code
            speeds = np.array([float(self.speed.get(m, 20.0) or 20.0) for m in trip_modes.categories] + [20.0],
                              dtype=float)
            speed = speeds[trip_modes.codes]
            trips[self.duration_variable] = np.maximum(distance / np.where(speed > 0, speed, 20.0) * 60, 1.0)
        if self.purposes:
            purpose = np.full(len(rows), "other", dtype=object)
            for m, options in self.purposes.items():
                at = np.nonzero(mode == m)[0]
                if len(at):
                    purpose[at] = rng.choice(options.index.to_numpy(), size=len(at), p=options.to_numpy())
            labels["purpose"] = label_dtype(self.source, "purpose", [
                "other", *(p for options in self.purposes.values() for p in options.index)])
            trips["purpose"] = pd.Categorical(purpose, dtype=labels["purpose"])
        out = pd.DataFrame(trips)
        home = pd.DataFrame({person_id: ids[n == 0], "day_id": 1, "record_id": 0})
        # a person without trips has no mode nor purpose: missing values of the same categoricals
        out = pd.concat([out, home], ignore_index=True).astype(labels) if len(home) else out
        return out.sort_values([person_id, "record_id"], kind="stable", ignore_index=True)

    def _departures(self, ranks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.empty(len(ranks))
        for rank in np.unique(ranks):
            at = np.nonzero(ranks == rank)[0]
            pool = self.departures.get(int(rank))
            if pool is None or not len(pool):
                out[at] = rng.integers(360, 1320, size=len(at))
            else:
                out[at] = np.clip(pool[rng.integers(len(pool), size=len(at))] + rng.normal(0, 15, len(at)), 0, 1439)
        return out


def generator_for(source: Source, seed: int = 0) -> EpisodeDays | TripDays:
    """The generator for a record source: episodes covering days, or trips."""
    records = _records_of(source)
    return EpisodeDays(source, seed) if records.covers_day is not None else TripDays(source, seed)


def copy_columns(source: Source) -> dict[str, int]:
    """What a day's sequence is, column -> decimals: (activity, start, end) of each episode, to
    the minute; (purpose, mode, departure, distance) of each trip, to the minute and 100 m."""
    records = _records_of(source)
    selected = [(selection[0], a.of) for a in source.aggregates.values() if (selection := _selection(a))]
    if not selected:
        raise ValueError("linked days need aggregates selecting records by a category (`where`)")
    category, amount = selected[0]
    if records.covers_day is not None:
        return {category: 0, records.covers_day.start: 0, records.covers_day.end: 0}
    distance = next((of for _, of in selected if of is not None), amount)
    wanted = {category: 0, "purpose": 0, "departure": 0, **({distance: 1} if distance else {})}
    return {c: d for c, d in wanted.items() if c in records.variables or c in records.derived}


def day_hashes(frame: pd.DataFrame, columns: dict[str, int], day: list[str]) -> pd.Series:
    """One 64-bit hash per day (``day``: its key columns) of its records' sequence, in record order.

    Each record's rounded ``columns`` and rank within the day are hashed, and a day's hash is
    the wrapping sum of its records' (the rank makes it a sequence, not a set). Days without
    records have none.
    """
    real = _real(frame).dropna(subset=day).sort_values([*day, "record_id"], kind="stable")
    values = pd.DataFrame({
        c: (real[c].astype(float).round(d) if pd.api.types.is_numeric_dtype(real[c]) else _as_text(real[c]))
        for c, d in columns.items()})
    # the days' boundaries in the sorted rows (a day starts where a key changes): ranks, lengths and
    # sums without three groupings of the keys
    n = len(real)
    changed = np.zeros(n, dtype=bool)
    changed[:1] = True
    for c in day:
        key = real[c].to_numpy()
        changed[1:] |= key[1:] != key[:-1]
    starts = np.flatnonzero(changed)
    lengths = np.diff(np.append(starts, n))
    values["_rank"] = np.arange(n) - np.repeat(starts, lengths)
    values["_length"] = np.repeat(lengths, lengths)
    rows = pd.util.hash_pandas_object(values, index=False).to_numpy()
    sums = np.add.reduceat(rows, starts) if n else rows  # wrapping, as a uint64 sum does
    return pd.Series(sums, index=pd.MultiIndex.from_frame(real[day].iloc[starts]) if len(day) > 1
                     else pd.Index(real[day[0]].to_numpy()[starts], name=day[0]))


def _as_text(column: pd.Series) -> pd.Series:
    """Labels as text, missing ones (None or NaN) as 'nan', whatever the dtype, so that the survey's
    text and the generated categoricals hash alike: a categorical's categories made text, not each of
    its rows (a city's diaries are 29 million)."""
    names = column.cat.categories.astype(str) if isinstance(column.dtype, pd.CategoricalDtype) else None
    if names is None or not names.is_unique:  # text, or categories alike as text (1 and '1'): row by row
        return column.astype(object).where(column.notna(), "nan").astype(str)
    text = column.cat.rename_categories(list(names))
    if text.isna().any():
        text = (text if "nan" in text.cat.categories else text.cat.add_categories(["nan"])).fillna("nan")
    return text


def copied_days(generated: pd.DataFrame | ParquetTable, real: pd.DataFrame, person_id: str,
                columns: list[str] | dict[str, int], generated_day: list[str] | None = None,
                replicate: str = "replicate") -> int:
    """How many generated days equal a real day record for record: a hash join of the days'
    sequences (:func:`day_hashes`; ``columns`` a list: numbers to the unit, e.g. the minute).

    ``generated_day``: the generated tables' day key (default person and ``day_id``; a release's
    adds ``replicate``). A table on disk whose day key holds ``replicate`` is joined one
    replicate at a time (its days are whole within one), the same count.
    """
    decimals = columns if isinstance(columns, dict) else dict.fromkeys(columns, 0)
    real_days = np.unique(day_hashes(real, decimals, [person_id, "day_id"]).to_numpy())
    day = generated_day or [person_id, "day_id"]
    if isinstance(generated, ParquetTable):
        wanted = [c for c in (*day, "record_id", *decimals) if c in generated.columns]
        parts = generated.whole_parts(day, list(dict.fromkeys(wanted)), replicate)
    else:
        parts = iter([generated])
    return sum(int(day_hashes(part, decimals, day).isin(real_days).sum()) for part in parts)


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


#: How far a person's aggregate recomputed from its linked records may lie from the person's
#: value: the records are float64 and the catalog's own aggregation adds them up again, so only
#: the summation's rounding separates the two (1e-6 minute, kilometre or share).
AGGREGATE_ROUNDING = 1e-6


def block_seed(seed: int, replicate: int, block: int) -> int:
    """The seed of block ``block`` (0, 1, ...) of a replicate's persons: ``seed + replicate`` for the
    first (a replicate given whole draws as it always did), a stream of its own for each next one."""
    if block == 0:
        return seed + replicate
    return int(np.random.SeedSequence((seed, replicate, block)).generate_state(1)[0])


def linked_records(persons: Iterable[pd.DataFrame], rows: pd.DataFrame, source: Source, *, person_id: str,
                   household_id: str | None = None, replicate: str = "replicate", seed: int = 0,
                   copy_rounds: int = 5) -> Iterator[pd.DataFrame]:
    """The diary days or trips of every person of a release, keyed by replicate, person and household:
    one frame per frame of ``persons``, in their order.

    ``persons``: the release a replicate at a time, or a block of a replicate's persons at a time
    (its column ``replicate`` holds the number; without it, the frame is replicate 1), so that
    only one block and its records are in memory (a replicate of a city's diaries is tens of
    millions of rows). The generator is fitted once on the survey's harmonised ``rows``, then
    samples each block's persons, the first block of replicate r with seed ``seed + r`` and the
    next ones with seeds of their own (:func:`block_seed`): replicates are independent, so
    generating them one at a time gives the same records as all at once. A person one of whose
    days equals a real day (:func:`copied_days`) is drawn again with another seed, up to
    ``copy_rounds`` times (episode days follow from the aggregates alone and are not redrawn).
    Derived variables are left out: they follow from the published ones.
    """
    generator = generator_for(source, seed=seed).fit(rows)
    columns = copy_columns(source)
    day = [person_id, "day_id"]
    derived = set(_records_of(source).derived)
    first = [c for c in (replicate, person_id, household_id, "day_id", "record_id") if c]
    real_days = None if isinstance(generator, EpisodeDays) else np.unique(day_hashes(rows, columns, day).to_numpy())
    blocks: dict[int, int] = {}  # blocks of each replicate seen so far
    for group in persons:
        numbers = group[replicate].unique() if replicate in group else [1]
        if len(numbers) != 1:
            raise ValueError(f"persons of {len(numbers)} replicates given as one: give one replicate at a time")
        number = int(numbers[0])
        block = blocks[number] = blocks.get(number, -1) + 1
        generator.seed = block_seed(seed, number, block)
        records = generator.sample(group, person_id=person_id)
        for round_ in range(1, copy_rounds + 1):
            if isinstance(generator, EpisodeDays):
                break
            hashes = day_hashes(records, columns, day)
            assert real_days is not None, "trips: the survey's days hashed"
            copied = hashes.index[hashes.isin(real_days)]
            again = {p for p, _ in copied}
            if not again:
                break
            generator.seed = block_seed(seed, number, block) + 1000 * round_
            redrawn = generator.sample(group.loc[group[person_id].isin(again)], person_id=person_id)
            records = pd.concat([records.loc[~records[person_id].isin(again)], redrawn], ignore_index=True)
        records = records.sort_values([person_id, "day_id", "record_id"], kind="stable")
        keys: dict[str, Any] = {replicate: number}
        if household_id is not None:
            keys[household_id] = records[person_id].map(group.set_index(person_id)[household_id])
        out = records.assign(**keys).reset_index(drop=True)
        del records
        yield out[[*first, *(c for c in out.columns if c not in first and c not in derived)]]
        del out, group  # not held while the next replicate is read and generated


#: Linked records whose aggregates :func:`aggregate_differences` recomputes at a time: row groups of
#: whole persons joined up to about this many rows. A part costs about 70 ms of pandas' set-up (the
#: catalog's expressions, the groupings, the frames) whatever its rows, which in row groups of 97,000
#: diary rows was a third of a city's check: joined, 54.1 -> 45.9 s at 1.2 million persons, for 160 MB
#: more at its peak. The copy and distribution checks hash or count a part in little more than its
#: rows' time: joined, no faster (bench/README.md, "Forty-third pass").
AGGREGATE_PART_ROWS = 400_000


def aggregate_differences(linked: pd.DataFrame | ParquetTable, persons: pd.DataFrame | ParquetTable, source: Source,
                          *, person_id: str, replicate: str = "replicate") -> pd.DataFrame:
    """Per aggregate: persons compared, persons whose value recomputed from their linked records
    differs from theirs by more than :data:`AGGREGATE_ROUNDING` (or who have no records), the
    largest difference.

    The persons compared are those inside the source's universe (no aggregate negative). Tables on
    disk both sorted by person (as the release and ``linked_<survey>`` are written) are read side by
    side in parts of whole persons (``ParquetTable.whole_parts``), a row group of persons and about
    :data:`AGGREGATE_PART_ROWS` linked records at a time: the step holds those, whatever the population's
    size. Otherwise the persons' aggregates are read whole and the linked table in parts of whole
    persons where it can be.
    """
    names = list(source.aggregates)
    keys = [replicate, person_id] if replicate in persons.columns else [person_id]
    columns = [*keys, *names]
    pairs: Iterable[tuple[pd.DataFrame, pd.DataFrame]]
    if isinstance(linked, ParquetTable) and isinstance(persons, ParquetTable) and persons.rows_in_order(keys) \
            and linked.rows_in_order(keys):
        pairs = parts_side_by_side(persons.whole_parts(keys, columns),
                                   _recomputed(linked.whole_parts(keys, None, replicate, part_rows=AGGREGATE_PART_ROWS),
                                               source, keys, person_id), keys)
    else:
        parts = linked.whole_parts(keys, None, replicate, part_rows=AGGREGATE_PART_ROWS) \
            if isinstance(linked, ParquetTable) else [linked]
        found = list(_recomputed(parts, source, keys, person_id))
        pairs = [(persons.read(columns) if isinstance(persons, ParquetTable) else persons[columns],
                  pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=columns))]
    compared, off, largest = 0, np.zeros(len(names), dtype=int), np.zeros(len(names))
    for people, recomputed in pairs:
        want = people.loc[people[names].ge(0).all(axis=1)].set_index(keys)[names].astype(float)
        difference = recomputed.set_index(keys).reindex(want.index)[names].astype(float).to_numpy() - want.to_numpy()
        compared += len(want)
        off += (~(np.abs(difference) <= AGGREGATE_ROUNDING)).sum(axis=0).astype(int)  # no records: NaN, off too
        largest = np.fmax(largest, np.nanmax(np.abs(difference), axis=0, initial=0.0))
    return pd.DataFrame({"aggregate": names, "persons": compared, "persons_off": off.tolist(),
                         "max_difference": largest.astype(float).tolist()})


def _recomputed(parts: Iterable[pd.DataFrame], source: Source, keys: list[str],
                person_id: str) -> Iterator[pd.DataFrame]:
    """The persons' aggregates recomputed from each part of their linked records (columns: ``keys``
    and the aggregates), in the parts' order."""
    survey_id = source.id_column or "person_id"
    for rows in parts:
        # a part may hold the end of one replicate and the start of the next
        groups = rows.groupby(keys[0], sort=False) if len(keys) == 2 else [(None, rows)]
        for number, group in groups:
            aggregates = aggregate_records(with_derived(group.rename(columns={person_id: survey_id}), source), source)
            out = aggregates[list(source.aggregates)].reset_index(drop=True)
            out.insert(0, person_id, aggregates.index.to_numpy())
            if number is not None:
                out.insert(0, keys[0], number)
            yield out


@dataclass
class _DayCounts:
    """What :func:`linked_distributions` reports, as counts and sums that add over parts of days."""

    days: int = 0
    records: int = 0
    per_day: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # days by records held: 0 .. 5+
    categories: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # records by category
    minutes: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # minutes by category
    slots: pd.Series | None = None  # records by 3-hour departure slot (None: no departure column)

    def __add__(self, other: _DayCounts) -> _DayCounts:
        def plus(a: pd.Series, b: pd.Series) -> pd.Series:
            return b if a.empty else a if b.empty else a.add(b, fill_value=0)
        slots = self.slots if other.slots is None else other.slots if self.slots is None else \
            plus(self.slots, other.slots)
        return _DayCounts(self.days + other.days, self.records + other.records, plus(self.per_day, other.per_day),
                          plus(self.categories, other.categories), plus(self.minutes, other.minutes), slots)


def _day_counts(frame: pd.DataFrame, keys: list[str], source: Source) -> _DayCounts:
    counts = pd.Series(_has(frame), index=frame.index).groupby([frame[k] for k in keys]).sum()
    out = _DayCounts(days=len(counts), records=int(counts.sum()))
    # counted first, then the six counts named (not each of millions of days)
    per_day = counts.clip(upper=5).value_counts()
    out.per_day = per_day.set_axis(["5+" if n >= 5 else str(int(n)) for n in per_day.index])
    real = _real(frame)
    category = next(iter(copy_columns(source)))
    cover = _records_of(source).covers_day
    if cover is not None:
        minutes = real[cover.end].astype(float) - real[cover.start].astype(float)
        out.minutes = _text_index(minutes.groupby(_as_text(real[category]), observed=True).sum())
    else:
        out.categories = _text_index(_as_text(real[category]).value_counts().loc[lambda n: n > 0])
        if "departure" in real:
            hour = (real["departure"].astype(float) // 180 * 3).astype(int)
            out.slots = hour.map(lambda h: f"{h:02d}-{h + 3:02d}h").value_counts()
    return out


def _text_index(sums: pd.Series) -> pd.Series:
    """``sums`` by label as text (a categorical's groups come on a CategoricalIndex)."""
    return sums.set_axis(sums.index.astype(str))


def distribution_columns(source: Source, *, person_id: str, replicate: str = "replicate") -> list[str]:
    """The columns of a linked table that :func:`linked_distributions` reads (to read no others)."""
    return list(dict.fromkeys([replicate, person_id, "day_id", "record_id", *copy_columns(source), "departure"]))


def linked_distributions(linked: pd.DataFrame | Iterable[pd.DataFrame], real: pd.DataFrame, source: Source, *,
                         person_id: str, replicate: str = "replicate") -> pd.DataFrame:
    """The linked tables beside the survey's days that pass the catalog's checks (unweighted).

    Rows (variable, statistic, generated, survey): diary days: episodes per day (mean) and
    minutes per activity group per day; travel days: trips per day (share of days with 0 ... 5+),
    mode shares and the departure time profile (share of trips per 3-hour slot).
    ``linked``: the table, or its parts one after another, each holding whole days (one replicate
    each, read from disk one at a time): the figures are counts and sums added over the parts.
    """
    survey = clean_days(real, source)
    survey_id = source.id_column or "person_id"
    generated = _DayCounts()
    for part in [linked] if isinstance(linked, pd.DataFrame) else linked:
        day = [replicate, person_id, "day_id"] if replicate in part else [person_id, "day_id"]
        generated = generated + _day_counts(part, day, source)
    observed = _day_counts(survey, [survey_id, "day_id"], source)
    out = []

    def add(variable: str, generated: pd.Series, observed: pd.Series) -> None:
        for statistic in sorted(set(generated.index) | set(observed.index), key=str):
            out.append({"variable": variable, "statistic": str(statistic),
                        "generated": float(generated.get(statistic, 0.0)), "survey": float(observed.get(statistic, 0.0))})

    def shares(counts: pd.Series) -> pd.Series:
        return counts / counts.sum() if len(counts) else counts

    unit = _records_of(source).unit
    category = next(iter(copy_columns(source)))
    if _records_of(source).covers_day is not None:  # a diary day holds many episodes: their mean
        def mean(counts: _DayCounts) -> pd.Series:
            return pd.Series({"mean": counts.records / counts.days if counts.days else 0.0})
        add(f"{unit}s per day", mean(generated), mean(observed))
        add("minutes per day", generated.minutes / max(generated.days, 1), observed.minutes / max(observed.days, 1))
    else:
        add(f"{unit}s per day (share of days)", shares(generated.per_day), shares(observed.per_day))
        add(f"{category} (share of trips)", shares(generated.categories), shares(observed.categories))
        if generated.slots is not None and observed.slots is not None:
            add("departure (share of trips)", shares(generated.slots), shares(observed.slots))
    return pd.DataFrame(out, columns=["variable", "statistic", "generated", "survey"])


def _has(frame: pd.DataFrame) -> np.ndarray:
    number = pd.to_numeric(frame["record_id"], errors="coerce")
    return (number.notna() & number.gt(0)).to_numpy()


def distributions_plot(table: pd.DataFrame, title: str) -> bytes:
    """One panel per variable of :func:`linked_distributions`, generated beside survey (PNG)."""
    import io

    import matplotlib  # here only: plotting costs import time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variables = list(dict.fromkeys(table["variable"]))
    fig, axes = plt.subplots(1, len(variables), figsize=(4.5 * len(variables), 3.6), squeeze=False)
    for ax, variable in zip(axes[0], variables, strict=True):
        part = table.loc[table["variable"] == variable]
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["generated"], width=0.4, label="generated")
        ax.bar(x + 0.2, part["survey"], width=0.4, label="survey")
        ax.set_xticks(x, part["statistic"], rotation=60, fontsize=7)
        ax.set_title(variable, fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
