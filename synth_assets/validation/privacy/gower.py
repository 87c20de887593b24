"""Chunked Gower nearest neighbours for mixed numeric/categorical records.

Gower distance = mean over columns of a per-column distance in [0, 1]: for numbers
|a − b| / range (range of the TRAINING data, capped at 1 so that one out-of-range
value cannot dominate); for categories 0 if equal else 1. Missing: 0 if both are
missing, 1 if only one is (a missing income is a real difference from an observed one).

Distances are computed block by block: a block of query rows against every reference row,
about :data:`BLOCK_CELLS` float32 cells (1 MB), so that each column's passes over it run in the
processor's cache, and never more than ``max_cells`` cells (10M = 40 MB) whatever the table sizes.
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

#: Cells of one block of distances. Each column makes a few passes over the block, so a block that
#: stays in the cache (1 MB a buffer; this machine has 512 KB of L2 a core and 32 MB of L3) is read
#: from there: 5,000 query rows against 20,000 (40 columns) took 3.7 s in blocks of 262,144 cells
#: against 7.3 s in blocks of 10 million, the same neighbours (bench/README.md, "Forty-fifth pass").
BLOCK_CELLS = 262_144


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


def _missing_filled(query: GowerTable, reference: GowerTable) -> tuple[GowerTable, GowerTable]:
    """Both tables with each numeric column's missing values set to one value far from every
    number of the column (twice the largest magnitude, plus 2): ``min(|a - b|, 1)`` is then 0
    where both are missing and 1 where one is, Gower's rule, without a test for missing values
    in every block; every other distance is computed as before."""
    if query.numeric.shape[0] == 0:
        return query, reference
    both = np.concatenate([query.numeric, reference.numeric], axis=1)
    magnitude = np.abs(np.where(np.isfinite(both), both, 0)).max(axis=1, initial=0)
    far = (2 * magnitude + 2).astype(np.float32)[:, None]
    return (GowerTable(np.where(np.isnan(query.numeric), far, query.numeric), query.categorical),
            GowerTable(np.where(np.isnan(reference.numeric), far, reference.numeric), reference.categorical))


def _distance_block(query: GowerTable, reference: GowerTable) -> np.ndarray:
    """Full Gower distance matrix between a (small) query block and the reference (both with
    their missing numbers filled: :func:`_missing_filled`)."""
    n_q, n_r = query.n_rows, reference.n_rows
    total = np.zeros((n_q, n_r), dtype=np.float32)
    buffer = np.empty((n_q, n_r), dtype=np.float32)
    for q, r in zip(query.numeric, reference.numeric):
        np.subtract(q[:, None], r[None, :], out=buffer)
        np.abs(buffer, out=buffer)
        np.minimum(buffer, 1.0, out=buffer)
        total += buffer
    unequal = np.empty((n_q, n_r), dtype=bool)
    for q, r in zip(query.categorical, reference.categorical):
        np.not_equal(q[:, None], r[None, :], out=unequal)
        total += unequal
    total /= max(query.n_columns, 1)
    return total


def nearest_neighbours(
    query: GowerTable, reference: GowerTable, k: int = 1, max_cells: int = DEFAULT_MAX_CELLS,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest reference rows of every query row.

    Returns two ``(n_query, k)`` arrays sorted by distance. Ties are broken by the lower
    reference index (deterministic, so that repeated runs agree). ``n_jobs`` blocks of query
    rows are measured at a time on threads (``common.parallel``): blocks of about
    :data:`BLOCK_CELLS` distances, at most ``max_cells`` in memory whatever ``n_jobs``, and the
    same answer whatever the blocks.
    """
    if reference.n_rows < k:
        raise ValueError(f"need at least {k} reference records, got {reference.n_rows}")
    workers = resolved_jobs(n_jobs)
    step = max(1, min(BLOCK_CELLS, max_cells // workers) // max(reference.n_rows, 1))
    query, reference = _missing_filled(query, reference)
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
