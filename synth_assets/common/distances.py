"""Distances between distributions and associations between variables: one implementation each.

The matching diagnostics, the validation metrics and the gate's calibration check all
measure with these, so a number called "TVD" or "Cramér's V" means the same everywhere.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def total_variation(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Total variation distance ``0.5 * sum |p - q|`` between two distributions on the same levels.

    ``p`` and ``q`` are shares (each summing to 1) of the same cells in the same order,
    of any shape.
    """
    return float(0.5 * np.abs(np.asarray(p, dtype=float) - np.asarray(q, dtype=float)).sum())


def code_shares(codes: np.ndarray, n_levels: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Shares of each level ``0..n_levels-1`` among integer ``codes`` (zeros when there is no weight)."""
    counts = np.bincount(codes, weights=weights, minlength=n_levels).astype(float)
    total = counts.sum()
    return counts / total if total > 0 else counts


def codes_total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between the empirical distributions of two integer code vectors."""
    size = int(max(a.max(initial=-1), b.max(initial=-1))) + 1
    return total_variation(code_shares(a, size), code_shares(b, size))


def cramers_v(table: npt.ArrayLike) -> float:
    """Cramér's V of a (weighted) contingency table, without bias correction.

    Scale-free, so shares work as well as counts. Empty rows and columns are dropped;
    a table with fewer than two non-empty rows or columns has V = 0.
    """
    p = np.asarray(table, dtype=float)
    p = p[p.sum(axis=1) > 0][:, p.sum(axis=0) > 0]
    if min(p.shape) < 2:
        return 0.0
    p = p / p.sum()
    expected = np.outer(p.sum(axis=1), p.sum(axis=0))
    phi2 = ((p - expected) ** 2 / expected).sum()
    return float(np.sqrt(phi2 / (min(p.shape) - 1)))


def codes_cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V between two integer code vectors of the same records."""
    _, ra = np.unique(a, return_inverse=True)
    _, rb = np.unique(b, return_inverse=True)
    r, c = int(ra.max(initial=-1)) + 1, int(rb.max(initial=-1)) + 1
    if min(r, c) < 2:
        return 0.0
    return cramers_v(np.bincount(ra * c + rb, minlength=r * c).reshape(r, c))
