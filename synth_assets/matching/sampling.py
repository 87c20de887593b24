"""Weighted random draws shared by every hot-deck method.

Donor weights are survey weights: a donor standing for ten persons should be
drawn ten times as often as one standing for one.  All draws therefore go
through cumulative weights and ``searchsorted``, which is exact, vectorised and
needs no per-recipient Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def draw_proportional(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``size`` positions in ``weights`` with replacement, with probability ∝ weight."""
    cum = np.cumsum(weights, dtype=np.float64)
    pos = np.searchsorted(cum, rng.random(size) * cum[-1], side="right")
    return np.minimum(pos, len(weights) - 1)


@dataclass(frozen=True)
class WeightedGroups:
    """Items partitioned into groups, ready for "one item of group g, ∝ weight" draws.

    Used for donors sharing one X profile (ties), one tree leaf, or one rank.
    """

    order: np.ndarray  # item positions sorted by group
    start: np.ndarray  # first slot in ``order`` of each group
    size: np.ndarray  # number of items in each group
    weight: np.ndarray  # total weight of each group
    cum: np.ndarray  # cumulative weight along ``order``

    @classmethod
    def from_labels(cls, labels: np.ndarray, weights: np.ndarray, n_groups: int | None = None) -> WeightedGroups:
        """Group items by integer ``labels`` in ``0..n_groups-1``."""
        n_groups = int(labels.max()) + 1 if n_groups is None else n_groups
        order = np.argsort(labels, kind="stable")
        size = np.bincount(labels, minlength=n_groups)
        start = np.concatenate([[0], np.cumsum(size)[:-1]])
        weight = np.bincount(labels, weights=weights, minlength=n_groups)
        return cls(order, start, size, weight, np.cumsum(weights[order], dtype=np.float64))

    def draw(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For each entry of ``groups`` return one item of that group, drawn ∝ weight."""
        start = self.start[groups]
        base = np.where(start > 0, self.cum[np.maximum(start - 1, 0)], 0.0)
        target = base + rng.random(len(groups)) * self.weight[groups]
        pos = np.searchsorted(self.cum, target, side="right")
        # Rounding in the cumulative sum may step one slot outside the group.
        pos = np.clip(pos, start, start + self.size[groups] - 1)
        return self.order[pos]


def row_profiles(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deduplicate the rows of ``matrix``: returns (unique rows, profile id of each row).

    Exact (no hashing), and fast because each column is factorised and the codes
    are combined and re-factorised column by column, so they never overflow.
    """
    n = matrix.shape[0]
    combined = np.zeros(n, dtype=np.int64)
    for j in range(matrix.shape[1]):
        codes, uniques = pd.factorize(matrix[:, j], use_na_sentinel=False)
        combined, _ = pd.factorize(combined * len(uniques) + codes)
    first = np.unique(combined, return_index=True)[1] if n else np.empty(0, dtype=np.int64)
    return matrix[first], combined.astype(np.int64)
