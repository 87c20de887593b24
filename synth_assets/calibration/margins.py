"""Calibration margins: what the register says about the population, as safe targets.

The register is the whole population, so its margins are known exactly: persons by
municipality x sex x age band, households by municipality x type x size, the total and
the number of non-zero values of every income. A margin is a table over a few variables
(numbers cut into declared bands). Its cells holding fewer than ``min_cell`` units of the
register are merged with a neighbour before use, so no small count of the register is
ever reproduced by a release (Eurostat's and most offices' threshold rule for tables).

Merging goes along the last variable of the margin first, where bands are ordered (an age
band joins the next one), then the next-to-last, and so on: a cell only merges across a
municipality when the whole municipality's sub-table is too small.

A control is one merged cell (a count) or one total: every control has a target from the
register. :class:`Targets` holds them as a flat table, which is what the pipeline stores,
shows and hands to the calibration and to the gate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, cast

import numpy as np
import pandas as pd

from synth_assets.calibration.tails import top_code
from synth_assets.common.frames import ParquetTable

Unit = Literal["person", "household"]
Kind = Literal["count", "total", "nonzero"]

#: Joins the labels of a cell's variables into one key (a character no label contains).
KEY_SEPARATOR = "\x1f"
MISSING_LABEL = "<missing>"


#: Cells of the first household margin are met exactly by construction (the selection is
#: stratified by them). Other count cells may stay a little off, because whole households
#: move together and merged cells do not fix every finer count: a count cell passes when
#: it is within ``persons``/``households`` units or ``count_share`` of its target, whichever
#: is larger. Measured on the 50,000-person demo with the default margins before these
#: limits were written: at most 1 person off (in about 30 of 228 person cells). Income
#: totals and their non-zero counts landed within 0.002%, so 0.1% is a safe promise. The
#: catalog's second household margin (type x size over the whole city) leaves up to 10
#: units off in its large cells (the neural model's 50,000-person make run), within their
#: count_share: the candidates then lack the composition some cells need.
DEFAULT_TOLERANCES = {"persons": 2.0, "households": 2.0, "count_share": 0.005, "total": 0.001, "nonzero": 0.001}


class CalibrationError(ValueError):
    """A margin cannot be built or met: names the margin, variable or cell."""


@dataclass(frozen=True)
class Margin:
    """A table of the register to reproduce: ``unit`` counted over ``variables``.

    ``bands`` (variable, edges) cut a numeric variable for this margin alone, instead of the
    spec's bands: ages by single year nationally beside wide bands by municipality.
    """

    unit: Unit
    variables: tuple[str, ...]
    bands: tuple[tuple[str, tuple[float, ...]], ...] = ()

    @property
    def name(self) -> str:
        own = "".join(f" ({v} {_edges_text(edges)})" for v, edges in self.bands)
        return f"{self.unit}s by {' x '.join(self.variables)}{own}"

    def cut(self, bands: Mapping[str, Sequence[float]]) -> Mapping[str, Sequence[float]]:
        """The bands this margin's cells are made with: ``bands`` (the spec's), its own first."""
        return {**bands, **dict(self.bands)} if self.bands else bands


def _edges_text(edges: Sequence[float]) -> str:
    """Band edges as a reader wants them: single years spelled as a range, not 91 numbers."""
    if len(edges) >= 3 and all(b - a == 1 for a, b in zip(edges, edges[1:])):
        return f"in single units from {edges[0]:g} to {edges[-2]:g}, then {edges[-1]:g}+"
    return f"cut at {', '.join(f'{e:g}' for e in edges)}"


@dataclass(frozen=True)
class CalibrationSpec:
    """Which margins a release must meet and how cells are made.

    ``bands`` cuts numeric variables: ``[0, 15, 25]`` gives the bands 0-14, 15-24 and 25+.
    ``quantiles`` cuts a variable at the register's own k-quantiles of its non-zero values,
    zero and negative values being bands of their own (incomes: a tenth of the earners a
    band, whatever the currency).
    ``totals`` are numeric person variables whose sum and number of non-zero values are
    controls. ``tolerances`` bound the residual of each control for the gate: a count cell
    within ``persons``/``households`` units or ``count_share`` of its target, whichever is
    larger; ``total`` and ``nonzero`` as a share of the target. ``weight_bounds``: every
    calibration weight between them (the logit distance), or unbounded raking (``None``).
    """

    margins: tuple[Margin, ...]
    totals: tuple[str, ...] = ()
    bands: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    quantiles: Mapping[str, int] = field(default_factory=dict)
    min_cell: int = 10
    tolerances: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    weight_bounds: tuple[float, float] | None = (0.5, 2.0)

    @property
    def household_margins(self) -> tuple[Margin, ...]:
        return tuple(m for m in self.margins if m.unit == "household")

    @property
    def variables(self) -> list[str]:
        seen: dict[str, None] = {}
        for margin in self.margins:
            seen.update(dict.fromkeys(margin.variables))
        seen.update(dict.fromkeys(self.totals))
        return list(seen)


# ----------------------------------------------------------------------- cells
def band_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the bands cut at ``edges``: integers read as '0-14', ..., '80+'."""
    labels = []
    for low, high in zip(edges, list(edges[1:]) + [None]):
        if high is not None and low == 0 and 0 < float(high) < 1e-300:
            labels.append("0")  # the band of exact zeros
        elif high is not None and not np.isfinite(float(low)):
            labels.append(f"<{high:g}")
        elif high is None:
            labels.append(f"{low:g}+")
        elif float(high) - float(low) == 1 and float(low).is_integer():
            labels.append(f"{low:g}")
        elif float(low).is_integer() and float(high).is_integer() and float(high) - float(low) < 1000:
            labels.append(f"{low:g}-{float(high) - 1:g}")
        else:
            labels.append(f"{low:.6g}-<{high:.6g}")
    return labels


def _codes_of(values: pd.Series, variable: str, bands: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, list[str]]:
    """Each value's cell as a position into the returned labels (the variable's labels, then those
    only seen here), ``MISSING_LABEL`` last: integers per row, not one string per row."""
    if variable in bands:
        edges = np.asarray(bands[variable], dtype=float)
        labels = band_labels(list(bands[variable]))
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        position = np.searchsorted(edges, x, side="right") - 1
        below = np.isfinite(x) & (position < 0)
        if below.any():
            raise CalibrationError(
                f"{variable}: value {x[below][0]:g} below the first band edge {edges[0]:g}"
            )
        return np.where(np.isfinite(x), position, len(labels)), [*labels, MISSING_LABEL]
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, seen = values.cat.codes.to_numpy(dtype=np.int64), [str(c) for c in values.dtype.categories]
    else:
        codes, uniques = pd.factorize(values)
        # each distinct value's label as str() of its Python value (two values may share one label)
        seen = pd.Series(uniques).astype(object).astype(str).tolist()
        codes = codes.astype(np.int64)
    return np.where(codes < 0, len(seen), codes), [*seen, MISSING_LABEL]


def _labels_of(values: pd.Series, variable: str, bands: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, list[str]]:
    """Each value's cell label and the ordered list of every label the variable can take."""
    codes, labels = _codes_of(values, variable, bands)
    if variable in bands:
        return np.asarray(labels, dtype=object)[codes], labels[:-1]
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = labels[:-1]
    else:
        levels = sorted(str(v) for v in values.dropna().unique())
    return np.asarray(labels, dtype=object)[codes], levels


def cell_codes(frame: pd.DataFrame, variables: Sequence[str], bands: Mapping[str, Sequence[float]]
               ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct cell keys of ``frame`` on ``variables`` and each row's position among them.

    ``keys[positions]`` is :func:`cell_keys`; built from integer codes, so a row costs a few
    integers instead of a string (3.6 million candidates at 1.2 million persons).
    """
    missing = [v for v in variables if v not in frame.columns]
    if missing:
        raise CalibrationError(f"margin variable(s) {missing} not in the data")
    combined = np.zeros(len(frame), dtype=np.int64)
    size = 1
    parts = []
    for variable in variables:
        codes, labels = _codes_of(frame[variable], variable, bands)
        if size * len(labels) >= 2**62:  # renumber the cells seen so far before the product overflows
            combined, uniques = pd.factorize(combined)
            size = len(uniques)
        combined = combined * len(labels) + codes
        size *= len(labels)
        parts.append((codes, labels))
    distinct, first, positions = np.unique(combined, return_index=True, return_inverse=True)
    keys = np.array([KEY_SEPARATOR.join(labels[codes[row]] for codes, labels in parts) for row in first], dtype=object)
    return keys, positions.reshape(-1)


def cell_keys(frame: pd.DataFrame, variables: Sequence[str], bands: Mapping[str, Sequence[float]]) -> np.ndarray:
    """The cell key of every row of ``frame`` on ``variables``."""
    keys, positions = cell_codes(frame, variables, bands)
    return keys[positions]


def rows_of_cells(cells: Sequence[str], variables: Sequence[str], template: pd.DataFrame,
                  bands: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """One row per cell key of ``cells`` on ``variables``, of ``template``'s dtypes: the cell's
    values written back from its labels (the inverse of :func:`cell_keys`).

    A cell that has no single row (a band of a banded variable, the missing label, a label that is
    no value of the column's dtype) is left out: each row returned has exactly its cell's key.
    """
    if any(v in bands for v in variables) or not len(cells):
        return template.loc[:, list(variables)].iloc[:0]
    split = [str(c).split(KEY_SEPARATOR) for c in cells]
    usable = [i for i, labels in enumerate(split) if len(labels) == len(variables) and MISSING_LABEL not in labels]
    valid = np.ones(len(usable), dtype=bool)
    values: dict[str, pd.Series] = {}
    for j, variable in enumerate(variables):
        labels = pd.Series([split[i][j] for i in usable], dtype=object)
        dtype = template[variable].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            values[variable] = labels.map({str(c): c for c in dtype.categories})
            valid &= values[variable].notna().to_numpy()
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            values[variable] = pd.to_numeric(labels, errors="coerce")
            ok = values[variable].notna()
            if pd.api.types.is_integer_dtype(dtype):  # "2.5" is no value of an integer column
                ok &= values[variable] == values[variable].round()
            valid &= ok.to_numpy()
        else:
            values[variable] = labels
    # astype to a categorical dtype maps each value to its category (its code), as to any dtype
    columns = {v: x[valid].reset_index(drop=True).astype(template[v].dtype) for v, x in values.items()}
    usable = [i for i, ok in zip(usable, valid) if ok]
    rows = pd.DataFrame(columns)
    exact = cell_keys(rows, variables, bands) == np.asarray([cells[i] for i in usable], dtype=object)
    return rows.loc[exact].reset_index(drop=True)


def merge_small_cells(counts: pd.Series, min_cell: int) -> pd.Series:
    """Group label of every cell, so that each group holds at least ``min_cell`` units.

    ``counts`` is indexed by a MultiIndex (or Index) over the full cross product of the
    margin's labels, in order. Along the last level first, inside each combination of the
    other levels, the smallest group below ``min_cell`` joins its smaller neighbour in
    label order; a sub-table too small as a whole then merges along the level before.
    """
    frame = counts.rename("n").reset_index()
    levels = list(frame.columns[:-1])
    position = {lvl: {v: i for i, v in enumerate(pd.unique(frame[lvl]))} for lvl in levels}
    group = np.arange(len(frame))
    n = frame["n"].to_numpy(dtype=float)
    for depth in range(len(levels), 0, -1):
        outer = levels[: depth - 1]
        order_key = [frame[lvl].map(position[lvl]).to_numpy() for lvl in levels[depth - 1 :]]
        outer_codes = (
            pd.MultiIndex.from_frame(frame[outer]).factorize()[0] if outer else np.zeros(len(frame), dtype=np.int64)
        )
        for block in np.unique(outer_codes):
            rows = np.flatnonzero(outer_codes == block)
            # the groups of this block, in label order of their first cell
            first_row: dict[int, int] = {}
            for r in rows[np.lexsort(tuple(k[rows] for k in reversed(order_key)))]:
                first_row.setdefault(int(group[r]), int(r))
            ordered = list(first_row)
            sizes = {g: n[group == g].sum() for g in ordered}
            while len(ordered) > 1:
                small = [g for g in ordered if sizes[g] < min_cell]
                if not small:
                    break
                g = min(small, key=lambda k: (sizes[k], ordered.index(k)))
                i = ordered.index(g)
                neighbours = [ordered[j] for j in (i - 1, i + 1) if 0 <= j < len(ordered)]
                into = min(neighbours, key=lambda k: (sizes[k], ordered.index(k)))
                group[group == g] = into
                sizes[into] += sizes.pop(g)
                ordered.remove(g)
    return pd.Series(pd.factorize(group)[0], index=counts.index, name="group")


# --------------------------------------------------------------------- targets
@dataclass
class Targets:
    """Every control of a release: its margin, kind, the cells it covers and its target.

    ``controls`` has one row per control: ``control`` (id), ``margin`` (name), ``unit``,
    ``kind`` (count, total or nonzero), ``variable`` (for totals), ``label`` (readable
    cell), ``cells`` (JSON list of the cell keys it covers) and ``target``.
    """

    spec: CalibrationSpec
    controls: pd.DataFrame

    @property
    def persons(self) -> int:
        """Persons in the population: the sum of the first person margin."""
        person = [m for m in self.spec.margins if m.unit == "person"]
        if person:
            rows = self.controls[self.controls["margin"] == person[0].name]
            return int(round(rows["target"].sum()))
        raise CalibrationError("no person margin declared: the population size is unknown")

    @property
    def households(self) -> int:
        household = self.spec.household_margins
        if household:
            rows = self.controls[self.controls["margin"] == household[0].name]
            return int(round(rows["target"].sum()))
        raise CalibrationError("no household margin declared: the number of households is unknown")

    def cell_to_control(self, margin: Margin) -> dict[str, str]:
        rows = self.controls[self.controls["margin"] == margin.name]
        return {key: control for control, cells in zip(rows["control"], rows["cells"]) for key in json.loads(cells)}

    def controls_of(self, margin: Margin, keys: np.ndarray, what: str = "cell") -> np.ndarray:
        """The control of each cell key of ``margin``; a key the targets lack is an error naming the cell."""
        controls = pd.Series(keys, dtype=object).map(self.cell_to_control(margin))
        unknown = controls.isna().to_numpy()
        if unknown.any():
            raise CalibrationError(f"{margin.name}: {what} {readable(keys[unknown][0], margin)} is not in the targets")
        return controls.to_numpy(dtype=object)

    def achieved(self, persons: pd.DataFrame, household_id: str, weights: np.ndarray | None = None) -> pd.Series:
        """Each control's value in ``persons`` (one row a person), optionally weighted per person."""
        w = np.ones(len(persons)) if weights is None else np.asarray(weights, dtype=float)
        values: dict[str, float] = {}
        heads = _first_rows(persons, household_id)
        for margin in self.spec.margins:
            # the margin's columns only, before taking the heads' rows (not a copy of every column)
            table = persons[list(margin.variables)]
            table, unit_w = (table, w) if margin.unit == "person" else (table.iloc[heads], w[heads])
            keys, positions = cell_codes(table, margin.variables, margin.cut(self.spec.bands))
            controls = self.controls_of(margin, keys)
            sums = pd.Series(np.bincount(positions, weights=unit_w, minlength=len(keys))).groupby(controls).sum()
            values.update({str(k): float(v) for k, v in sums.items()})
        for variable in self.spec.totals:
            x = pd.to_numeric(persons[variable], errors="coerce").to_numpy(dtype=float)
            values[f"total:{variable}"] = float(np.nansum(w * x))
            values[f"nonzero:{variable}"] = float(np.sum(w * ((x != 0) & np.isfinite(x))))
        return pd.Series(values).reindex(self.controls["control"]).fillna(0.0)

    def tolerances(self) -> np.ndarray:
        """The gate's tolerance of each control: counts in units (or their share of the
        target, the larger), totals and non-zero counts as a share of the target."""
        tolerances = self.spec.tolerances
        controls = self.controls
        count = (controls["kind"] == "count").to_numpy()
        units = controls["unit"].map(lambda u: float(tolerances.get(f"{u}s", 0.0))).to_numpy()
        share = float(tolerances.get("count_share", 0.0)) * controls["target"].abs().to_numpy(dtype=float)
        relative = controls["kind"].map(lambda k: float(tolerances.get(k, 0.0))).to_numpy(dtype=float)
        return np.where(count, np.maximum(units, share), relative)

    def residuals(self, persons: pd.DataFrame, household_id: str, weights: np.ndarray | None = None) -> pd.DataFrame:
        """Per control: target, released value, difference, relative difference, tolerance, within."""
        return self.residuals_of(self.achieved(persons, household_id, weights))

    def replicate_residuals(self, release: pd.DataFrame | ParquetTable, household_id: str,
                            replicate: str = "replicate") -> dict[int, pd.DataFrame]:
        """:meth:`residuals` of each replicate of ``release`` at unit weights, by replicate number (a
        table without ``replicate`` is replicate 1).

        A table on disk is read in parts of whole households, the controls' columns only
        (``ParquetTable.whole_parts``: a row group at a time, as the release is written sorted by
        household): a control's value is a sum, so it adds over parts, and the reader holds a row
        group whatever the population's size, not a replicate.
        """
        by = [replicate] if replicate in release.columns else []
        columns = [c for c in dict.fromkeys([*by, household_id, *self.spec.variables]) if c in release.columns]
        parts = (release.whole_parts([*by, household_id], columns) if isinstance(release, ParquetTable)
                 else iter([release[columns]]))
        released: dict[int, pd.Series] = {}
        for part in parts:
            for number, rows in part.groupby(replicate, sort=False) if by else [(1, part)]:
                value = self.achieved(rows, household_id)
                key = int(cast(int, number))
                released[key] = released[key] + value if key in released else value
        return {number: self.residuals_of(released[number]) for number in sorted(released)}

    def residuals_of(self, released: pd.Series) -> pd.DataFrame:
        """:meth:`residuals` of each control's released value (``released``, as :meth:`achieved` gives it)."""
        out = self.controls[["control", "margin", "unit", "kind", "label", "target"]].copy()
        out["released"] = released.to_numpy()
        out["difference"] = out["released"] - out["target"]
        out["relative"] = out["difference"] / out["target"].abs().where(out["target"] != 0, 1.0)
        count = (out["kind"] == "count").to_numpy()
        out["tolerance"] = self.tolerances()
        measure = np.where(count, out["difference"].abs(), out["relative"].abs())
        out["within"] = measure <= out["tolerance"].to_numpy() + 1e-9
        return out

    def to_frame(self) -> pd.DataFrame:
        return self.controls.copy()

    @classmethod
    def from_frame(cls, spec: CalibrationSpec, controls: pd.DataFrame) -> Targets:
        expected = {"control", "margin", "unit", "kind", "variable", "label", "cells", "target"}
        missing = expected - set(controls.columns)
        if missing:
            raise CalibrationError(f"calibration targets lack columns {sorted(missing)}")
        declared = {m.name for m in spec.margins} | {f"{k}: {v}" for v in spec.totals for k in ("total", "nonzero")}
        stored = set(controls["margin"])
        if stored != declared:
            raise CalibrationError(
                f"calibration targets were computed for other margins ({sorted(stored ^ declared)}); recompute them"
            )
        stored = json.loads(controls["edges"].iloc[0]) if "edges" in controls and len(controls) else {}
        if set(stored) != set(spec.quantiles):
            raise CalibrationError(
                f"calibration targets have quantile bands for {sorted(stored)}, the catalog asks for "
                f"{sorted(spec.quantiles)}; recompute them")
        spec = replace(spec, bands={**spec.bands, **{v: tuple(e) for v, e in stored.items()}})
        return cls(spec, controls.reset_index(drop=True))


def readable(key: str, margin: Margin) -> str:
    return ", ".join(f"{v}={label}" for v, label in zip(margin.variables, str(key).split(KEY_SEPARATOR)))


def _first_rows(persons: pd.DataFrame, household_id: str) -> np.ndarray:
    """Row positions of one member per household (household variables are constant within it)."""
    return np.flatnonzero(~persons[household_id].duplicated().to_numpy())


def check_household_level(persons: pd.DataFrame, household_id: str, variables: Sequence[str], where: str) -> None:
    """Household margins need variables constant within every household."""
    for variable in variables:
        varying = persons.groupby(household_id, sort=False, observed=True)[variable].nunique(dropna=False) > 1
        if varying.any():
            raise CalibrationError(
                f"{where}: {variable!r} differs between members of {int(varying.sum())} households "
                f"(e.g. household {varying[varying].index[0]}); a household margin needs household-level variables"
            )


def quantile_edges(values: pd.Series, k: int) -> tuple[float, ...]:
    """Band edges: negatives, exact zero, then the k-quantiles of the positive values."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    positive = x[x > 0]
    cuts = np.unique(np.quantile(positive, np.linspace(0, 1, k + 1)[1:-1])) if len(positive) else np.array([])
    edges = ([-np.inf] if (x < 0).any() else []) + [0.0, float(np.nextafter(0.0, 1.0))] + [float(c) for c in cuts]
    return tuple(edges)


def register_targets(register: pd.DataFrame | ParquetTable, spec: CalibrationSpec, household_id: str,
                     top_coding: Mapping[str, float] | None = None) -> Targets:
    """The controls of ``spec`` with the register's values as targets, small cells merged.

    Quantile bands are computed here, from the register, and kept with the targets. A register
    on disk is read in parts of whole households (``ParquetTable.whole_parts``: a row group at a
    time when it is sorted by household, as delivered registers and the demo's are), the margins'
    columns only: a cell's count and a total add up over parts, so the step holds a row group, not
    the population; a quantile band reads its one column. ``top_coding``: thresholds applied to
    the amounts first (``tails.top_code``), as the release is top-coded.
    """
    def coded(frame: pd.DataFrame) -> pd.DataFrame:
        return top_code(frame, top_coding)[0] if top_coding else frame

    for what, variables in (("quantile band", spec.quantiles), ("calibration total", spec.totals)):
        absent = [v for v in variables if v not in register.columns]
        if absent:
            raise CalibrationError(f"{what} {absent[0]!r} not in the register")
    def column(variable: str) -> pd.DataFrame:
        return register[[variable]] if isinstance(register, pd.DataFrame) else register.read([variable])

    computed = {v: quantile_edges(coded(column(v))[v], k) for v, k in spec.quantiles.items()}
    spec = replace(spec, bands={**spec.bands, **computed})
    columns = [c for c in dict.fromkeys([household_id, *spec.variables, *spec.totals]) if c in register.columns]
    parts: Iterator[pd.DataFrame] = (iter([register]) if isinstance(register, pd.DataFrame)
                                     else register.whole_parts([household_id], columns))
    counts: dict[str, pd.Series] = {}  # per margin, units by cell key
    levels: dict[str, list[set[str] | list[str]]] = {}  # per margin, each variable's labels (a set: values seen)
    sums = dict.fromkeys(spec.totals, 0.0)
    nonzeros = dict.fromkeys(spec.totals, 0)
    for part in parts:
        part = coded(part)
        heads = _first_rows(part, household_id)
        for margin in spec.margins:
            table = part if margin.unit == "person" else part.iloc[heads]
            if margin.unit == "household":
                check_household_level(part, household_id, margin.variables, margin.name)
            bands = margin.cut(spec.bands)
            keys = cell_keys(table, margin.variables, bands)
            if any(MISSING_LABEL in str(k).split(KEY_SEPARATOR) for k in keys):
                raise CalibrationError(f"{margin.name}: the register has missing values in a margin variable")
            found = pd.Series(keys, dtype=object).value_counts()
            counts[margin.name] = found if margin.name not in counts else counts[margin.name].add(found, fill_value=0)
            seen = levels.setdefault(margin.name, [set() for _ in margin.variables])
            for j, variable in enumerate(margin.variables):
                labels = _labels_of(table[variable], variable, bands)[1]
                seen[j] = labels if variable in bands or isinstance(table[variable].dtype, pd.CategoricalDtype) \
                    else set(seen[j]) | set(labels)
        for variable in spec.totals:
            x = pd.to_numeric(part[variable], errors="coerce").to_numpy(dtype=float)
            nonzeros[variable] += int(((x != 0) & np.isfinite(x)).sum())
            sums[variable] += float(np.nansum(x))
    rows: list[dict] = []
    for margin in spec.margins:
        labels_of = [sorted(v) if isinstance(v, set) else v for v in levels.get(margin.name, [])]
        full = pd.MultiIndex.from_product(labels_of, names=list(margin.variables))
        flat = pd.Index([KEY_SEPARATOR.join(map(str, t if isinstance(t, tuple) else (t,))) for t in full])
        margin_counts = counts.get(margin.name, pd.Series(dtype=float)).reindex(flat, fill_value=0)
        margin_counts.index = full
        groups = merge_small_cells(margin_counts, spec.min_cell)
        groups.index = flat
        margin_counts.index = flat
        for g, group in groups.groupby(groups).groups.items():
            members = list(group)
            label = readable(members[0], margin) if len(members) == 1 else (
                f"{readable(members[0], margin)} (+{len(members) - 1} merged cells)")
            own = "".join(f"[{v}:{'/'.join(f'{e:g}' for e in edges)}]" for v, edges in margin.bands)
            rows.append({
                "control": f"{margin.unit}:{'x'.join(margin.variables)}{own}:{g}",
                "margin": margin.name, "unit": margin.unit, "kind": "count", "variable": "",
                "label": label, "cells": json.dumps(members), "target": float(margin_counts[members].sum()),
            })
    for variable in spec.totals:
        nonzero = nonzeros[variable]
        if 0 < nonzero < spec.min_cell:
            raise CalibrationError(
                f"calibration total {variable!r}: {nonzero} non-zero values in the register, fewer than "
                f"min_cell {spec.min_cell}; drop it from the totals"
            )
        rows.append({"control": f"total:{variable}", "margin": f"total: {variable}", "unit": "person",
                     "kind": "total", "variable": variable, "label": f"sum of {variable}", "cells": "[]",
                     "target": sums[variable]})
        rows.append({"control": f"nonzero:{variable}", "margin": f"nonzero: {variable}", "unit": "person",
                     "kind": "nonzero", "variable": variable, "label": f"persons with {variable} != 0",
                     "cells": "[]", "target": float(nonzero)})
    controls = pd.DataFrame(rows)
    controls["edges"] = json.dumps({v: [float(e) for e in edges] for v, edges in computed.items()})
    return Targets(spec, controls)


def spec_from_catalog(catalog) -> CalibrationSpec:
    """The calibration declared in ``catalog.release.calibration``, defaults filled in.

    Default totals: every numeric (non-integer) register variable (the incomes), since a
    microsimulation's tax base is their sum and their number of earners.
    """
    settings = catalog.release.calibration
    margins = catalog.calibration_margins()
    totals = catalog.register_amounts() if settings.totals is None else list(settings.totals)
    return CalibrationSpec(
        margins=tuple(Margin(m.unit, tuple(m.variables), tuple((v, tuple(e)) for v, e in m.bands.items()))
                      for m in margins),
        totals=tuple(totals),
        bands={k: tuple(v) for k, v in settings.bands.items()},
        quantiles=dict(settings.quantiles),
        min_cell=settings.min_cell,
        tolerances={**DEFAULT_TOLERANCES, **settings.tolerances},
        weight_bounds=settings.weight_bounds,
    )
