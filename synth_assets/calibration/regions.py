"""A release drawn by region: each region's register counts, and the regions' draws joined.

A country's register is too large for one step to draw the surplus every replicate chooses
from (three times the population). Split by a household-level variable (the municipality) into
regions, each region's households are drawn by a step of its own, from the national model given
that they fall in the region, until every calibration stratum of the region has at least its
register count of candidates (:func:`regional_targets` gives those counts). The households are
then chosen from all regions' candidates at once against the national margins
(:func:`region_rows` gives them, households renumbered), as for a release drawn in one step:
choosing per region instead would make each national margin without the municipality a sum of
regional selections, each merging small cells its own way (on the 40,000-person demo split in
two, two national cells of household type x size ended beyond the gate's tolerance).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.calibration.margins import CalibrationError, Targets, register_targets
from synth_assets.common.frames import ParquetStack, ParquetTable, StagedTable


def in_region(frame: pd.DataFrame, variable: str, values: Sequence[Any]) -> np.ndarray:
    """Which rows of ``frame`` have ``variable`` among ``values`` (compared as text)."""
    return frame[variable].astype(str).isin([str(v) for v in values]).to_numpy()


def region_table(table: ParquetTable, variable: str, values: Sequence[Any]) -> ParquetTable:
    """The view of ``table``'s rows in the region (``variable`` among ``values``, compared as text as
    :func:`in_region` does), read a row group at a time; the whole table where it lacks ``variable``."""
    if variable not in table.columns:
        return table
    wanted = {str(v) for v in values}
    stored = table.select([variable]).values(variable)
    return table.where(variable, [v for v in stored if str(v) in wanted])


def regional_targets(register: pd.DataFrame, national: Targets, household_id: str, variable: str,
                     values: Sequence[Any]) -> Targets:
    """The controls of ``national``'s margins on the register's households of one region: how many
    candidate households each of its strata needs.

    Quantile bands stay the national ones; small cells are merged within the region. The region's
    categories alone are kept, so no empty cell of another region is merged into one of its own.
    With the region's variable in the first household margin (the municipality, by default) its
    strata are the national ones; otherwise a national stratum may straddle regions, and a region
    short in it shows in the join's selection, which names the stratum.
    """
    rows = register.loc[in_region(register, variable, values)].copy()
    if rows.empty:
        raise CalibrationError(f"region of {variable} {list(values)}: no household of the register is there")
    rows[variable] = pd.Categorical(rows[variable].astype(str), categories=[str(v) for v in values])
    return register_targets(rows, replace(national.spec, quantiles={}), household_id)


def _renumbering(part: ParquetTable, replicate: str, value: Any, household_id: str, region: str, last_id: Any
                  ) -> tuple[Callable[[pd.Series], pd.Series], Any]:
    """How a region's household ids of one replicate follow the earlier regions' (``last_id``: their
    largest; None for the first region, whose ids stay), and the largest id after it."""
    ids = part.where(replicate, [value]).read([household_id])[household_id]
    if last_id is None or ids.empty:
        top = ids.max() if len(ids) else last_id
        return (lambda s: s), top if last_id is None else last_id
    if pd.api.types.is_integer_dtype(ids.dtype) and isinstance(last_id, (int, np.integer)):
        shift = int(last_id) + 1 - int(ids.min())  # generated integer ids start above every real id: kept so
        return (lambda s: s + shift), int(ids.max()) + shift
    return (lambda s: s.astype(str) + f"~{region}"), last_id


def region_rows(parts: Sequence[tuple[str, ParquetTable]], value: Any, household_id: str,
                replicate: str = "replicate") -> Iterator[pd.DataFrame]:
    """The regions' rows of one replicate, a row group at a time, households of a later region
    renumbered after the earlier ones' (without the ``replicate`` column)."""
    last_id: Any = None
    for region, part in parts:
        renumber, last_id = _renumbering(part, replicate, value, household_id, region, last_id)
        for frame in part.where(replicate, [value]).frames():
            frame = frame.drop(columns=[replicate])
            frame[household_id] = renumber(frame[household_id])
            yield frame


def join_regions(parts: Sequence[tuple[str, ParquetTable]], household_id: str, person_id: str | None,
                 replicate: str = "replicate") -> StagedTable:
    """The regions' draws as one table, replicate by replicate (regions in the order given).

    Within each replicate, households of a later region are renumbered after the earlier ones'
    (ids stay synthetic) and persons numbered 1..n across regions, as in a release drawn in one
    step; one region's table comes back with the same rows. A row group is in memory at a time.
    """
    stack = ParquetStack()
    for value in sorted({v for _, part in parts for v in part.values(replicate)}):
        persons = 0
        for frame in region_rows(parts, value, household_id, replicate):
            if person_id and person_id in frame.columns:
                frame[person_id] = pd.array(np.arange(persons + 1, persons + len(frame) + 1), dtype="Int64")
            persons += len(frame)
            frame[replicate] = value
            stack.append(frame)
    return stack.finish()
