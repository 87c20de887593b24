"""A release drawn by region: each region's register margins, and the regions' draws joined.

A country's register is too large for one step to draw and calibrate at once (every replicate
chooses from a surplus of three times the population). Split by a household-level variable
(the municipality) into regions, each region is a population of its own: its households are
drawn from the national model given that they fall in the region, and chosen to meet the
region's register margins. Municipal margins are wholly inside one region, so they are met as
before; national margins (household type x size, income bands) become the sum of the regions'
margins, which the whole release then meets within the sum of the regions' tolerances.
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


#: Count tolerances given in units (persons, households): a region's share of the national one.
UNIT_TOLERANCES = ("persons", "households")


def regional_targets(register: pd.DataFrame, national: Targets, household_id: str, variable: str,
                     values: Sequence[Any], regions: int) -> Targets:
    """The controls of ``national``'s margins on the register's households of one of ``regions``.

    Quantile bands stay the national ones (an income decile means the same in every region);
    small cells are merged within the region. The region's categories alone are kept, so no
    empty cell of another region is merged into one of this region's. A national cell is the
    sum of the regions' cells, and so is its residual: the count tolerances in units are the
    national ones divided among the regions (shares of a target add up by themselves), so the
    joined release meets the national tolerance that the gate holds it to.
    """
    rows = register.loc[in_region(register, variable, values)].copy()
    if rows.empty:
        raise CalibrationError(f"region of {variable} {list(values)}: no household of the register is there")
    rows[variable] = pd.Categorical(rows[variable].astype(str), categories=[str(v) for v in values])
    tolerances = {k: (v / regions if k in UNIT_TOLERANCES else v) for k, v in national.spec.tolerances.items()}
    return register_targets(rows, replace(national.spec, quantiles={}, tolerances=tolerances), household_id)


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
