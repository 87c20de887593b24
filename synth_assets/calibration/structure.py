"""The household structure table: households by a few household variables (size x type).

A microsimulation's taxes and benefits are computed per household, so a release whose table
of households by size and type drifts from the register's is wrong for the population
whatever its person margins say. Both tables are counted here from files sorted by
household, a row group at a time, so the count holds the table's cells, not the population.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pandas as pd

from synth_assets.common.distances import total_variation
from synth_assets.common.frames import ParquetTable


def household_cells(table: ParquetTable, household_id: str, columns: Sequence[str],
                    replicate: str = "replicate") -> dict[int, pd.Series]:
    """Households of each replicate (a table without ``replicate``: replicate 1) by the cells of
    ``columns``, read in parts of whole households a row group at a time (``ParquetTable.whole_parts``)."""
    by = [replicate] if replicate in table.columns else []
    counts: dict[int, pd.Series] = {}
    for part in table.whole_parts([*by, household_id], columns):
        heads = part.drop_duplicates([*by, household_id])
        for number, rows in heads.groupby(replicate, sort=False) if by else [(1, heads)]:
            cells = rows.groupby([rows[c].astype(str) for c in columns]).size()
            key = int(cast(int, number))
            counts[key] = counts[key].add(cells, fill_value=0) if key in counts else cells
    return counts


def household_structure_tvd(released: pd.Series, register: pd.Series, columns: Sequence[str]) -> tuple[float, str]:
    """TVD of the household table over ``columns`` (counts of households by cell, as
    :func:`household_cells` gives them) and its cell furthest from the register."""
    cells = register.index.union(released.index)
    released_shares = released.reindex(cells, fill_value=0) / released.sum()
    register_shares = register.reindex(cells, fill_value=0) / register.sum()
    gap = released_shares - register_shares
    worst: Any = gap.abs().idxmax()
    cell = ", ".join(f"{c}={v}" for c, v in zip(columns, worst if isinstance(worst, tuple) else (worst,)))
    return (total_variation(released_shares, register_shares),
            f"{cell}: {released_shares[worst]:.2%} released vs {register_shares[worst]:.2%} in the register")
