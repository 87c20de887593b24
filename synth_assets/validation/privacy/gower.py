"""Chunked Gower nearest neighbours for mixed numeric/categorical records.

Gower distance = mean over columns of a per-column distance in [0, 1]: for numbers
|a − b| / range (range of the TRAINING data, capped at 1 so that one out-of-range
value cannot dominate); for categories 0 if equal else 1. Missing: 0 if both are
missing, 1 if only one is (a missing income is a real difference from an observed one).

Distances are computed block by block so that no block holds more than ``max_cells``
float32 cells (10M cells = 40 MB), whatever the table sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.common.parallel import ordered_map, resolved_jobs
from synth_assets.validation.preparation import factorize_together

DEFAULT_MAX_CELLS = 10_000_000


@dataclass(frozen=True)
class GowerTable:
    """A table encoded for Gower distances: column-major for fast broadcasting.

    ``numeric``: (p_num, n) float32, scaled by the training range, NaN where missing;
    ``categorical``: (p_cat, n) int64 codes shared across the encoded tables, -1 missing.
    """

    numeric: np.ndarray
    categorical: np.ndarray

    @property
    def n_rows(self) -> int:
        return max(self.numeric.shape[1], self.categorical.shape[1])

    @property
    def n_columns(self) -> int:
        return self.numeric.shape[0] + self.categorical.shape[0]

    def rows(self, index: np.ndarray | slice) -> GowerTable:
        return GowerTable(self.numeric[:, index], self.categorical[:, index])


def gower_encode(
    tables: Sequence[pd.DataFrame], range_from: pd.DataFrame, columns: Sequence[str] | None = None
) -> list[GowerTable]:
    """Encode several tables on common scales (numeric ranges from ``range_from``)."""
    columns = list(range_from.columns if columns is None else columns)
    numeric_cols = [c for c in columns if is_numeric(range_from[c])]
    categorical_cols = [c for c in columns if c not in numeric_cols]
    numeric_blocks: list[list[np.ndarray]] = [[] for _ in tables]
    for column in numeric_cols:
        reference = range_from[column].to_numpy(dtype=float)
        spread = np.nanmax(reference) - np.nanmin(reference) if np.isfinite(reference).any() else 0.0
        scale = spread if spread > 0 else 1.0
        for block, table in zip(numeric_blocks, tables):
            block.append(table[column].to_numpy(dtype=float) / scale)
    categorical_blocks: list[list[np.ndarray]] = [[] for _ in tables]
    for column in categorical_cols:
        codes, _ = factorize_together([table[column] for table in tables])
        for block, code in zip(categorical_blocks, codes):
            block.append(code)
    encoded = []
    for table, numbers, categories in zip(tables, numeric_blocks, categorical_blocks):
        n = len(table)
        encoded.append(
            GowerTable(
                np.array(numbers, dtype=np.float32).reshape(len(numbers), n),
                np.array(categories, dtype=np.int64).reshape(len(categories), n),
            )
        )
    return encoded


def _distance_block(query: GowerTable, reference: GowerTable) -> np.ndarray:
    """Full Gower distance matrix between a (small) query block and the reference."""
    n_q, n_r = query.n_rows, reference.n_rows
    total = np.zeros((n_q, n_r), dtype=np.float32)
    buffer = np.empty((n_q, n_r), dtype=np.float32)
    for q, r in zip(query.numeric, reference.numeric):
        np.subtract(q[:, None], r[None, :], out=buffer)
        np.abs(buffer, out=buffer)
        np.minimum(buffer, 1.0, out=buffer)
        q_missing, r_missing = np.isnan(q), np.isnan(r)
        if q_missing.any() or r_missing.any():
            np.nan_to_num(buffer, copy=False, nan=1.0)
            if q_missing.any() and r_missing.any():
                buffer[np.ix_(q_missing, r_missing)] = 0.0
        total += buffer
    for q, r in zip(query.categorical, reference.categorical):
        total += q[:, None] != r[None, :]
    total /= max(query.n_columns, 1)
    return total


def nearest_neighbours(
    query: GowerTable, reference: GowerTable, k: int = 1, max_cells: int = DEFAULT_MAX_CELLS,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest reference rows of every query row.

    Returns two ``(n_query, k)`` arrays sorted by distance. Ties are broken by the lower
    reference index (deterministic, so that repeated runs agree). ``n_jobs`` blocks of query
    rows are measured at a time on threads (``common.parallel``), the blocks that much smaller:
    about ``max_cells`` distances in memory whatever ``n_jobs``, and the same answer.
    """
    if reference.n_rows < k:
        raise ValueError(f"need at least {k} reference records, got {reference.n_rows}")
    workers = resolved_jobs(n_jobs)
    step = max(1, max_cells // (max(reference.n_rows, 1) * workers))
    distances = np.empty((query.n_rows, k), dtype=np.float64)
    indices = np.empty((query.n_rows, k), dtype=np.int64)

    def nearest(start: int) -> None:
        block = _distance_block(query.rows(slice(start, start + step)), reference)
        if k < reference.n_rows:
            candidates = np.argpartition(block, k - 1, axis=1)[:, :k]
        else:
            candidates = np.broadcast_to(np.arange(reference.n_rows), (block.shape[0], k))
        candidate_d = np.take_along_axis(block, candidates, axis=1)
        order = np.lexsort((candidates, candidate_d), axis=1)
        indices[start : start + step] = np.take_along_axis(candidates, order, axis=1)
        distances[start : start + step] = np.take_along_axis(candidate_d, order, axis=1)

    ordered_map(nearest, range(0, query.n_rows, step), workers, name="gower")
    return distances, indices
