"""Nearest-donor search that scales to millions of recipients.

Survey X variables are mostly discrete, so recipients and donors repeat the
same X profiles many times.  The search therefore runs on *unique* profiles:
donors sharing a profile form one weighted group (exact ties), recipients
sharing a profile share one KD-tree query.  Each recipient still gets its own
random draw, so ties are broken independently per recipient and with
probability proportional to donor weight.  Recipients are processed in chunks of
profiles, which bounds memory at ``chunk_size × (k + tie_candidates)`` per
chunk on top of the embedded inputs.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.neighbors import NearestNeighbors

from synth_assets.matching.sampling import WeightedGroups, row_profiles

logger = logging.getLogger("synth_assets.matching")

_RELATIVE_TIE_TOLERANCE = 1e-9
# Below this many queries, thread start-up costs more than the parallel queries save.
PARALLEL_MIN_QUERIES = 20_000


def neighbor_index(
    points: np.ndarray, n_neighbors: int, metric: str, n_jobs: int | None, n_queries: int
) -> NearestNeighbors:
    """A fitted KD tree (sklearn would pick brute force above 15 dimensions, far slower here)."""
    n_jobs = n_jobs if n_queries >= PARALLEL_MIN_QUERIES else None
    return NearestNeighbors(n_neighbors=n_neighbors, metric=metric, algorithm="kd_tree", n_jobs=n_jobs).fit(points)


def draw_nearest(
    recipients: np.ndarray,
    donors: np.ndarray,
    donor_weights: np.ndarray,
    rng: np.random.Generator,
    *,
    k: int = 1,
    metric: str = "manhattan",
    tie_candidates: int = 8,
    chunk_size: int = 65_536,
    n_jobs: int | None = -1,
    label: str = "",
    log_progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick a donor for every recipient row among its nearest donors.

    ``k == 1``: among the donors at the minimum distance.  ``k > 1``: among the
    k nearest donors, every donor tied with the k-th included.  Within that
    candidate set the draw is proportional to donor weight.  Ties between
    *different* donor profiles are seen among the ``k + tie_candidates`` nearest
    profiles; donors sharing a profile are always tied exactly.

    ``log_progress``: log every chunk's progress (off for a caller that reports its own).
    Returns (donor positions, distance to the chosen donor).
    """
    donor_points, donor_profile = row_profiles(donors)
    groups = WeightedGroups.from_labels(donor_profile, donor_weights, len(donor_points))
    rec_points, rec_profile = row_profiles(recipients)
    n_query = min(len(donor_points), k + tie_candidates)
    index = neighbor_index(donor_points, n_query, metric, n_jobs, min(len(rec_points), chunk_size))

    by_profile = np.argsort(rec_profile, kind="stable")
    bounds = np.searchsorted(rec_profile[by_profile], np.arange(len(rec_points) + 1))
    chosen = np.empty(len(recipients), dtype=np.int64)
    distance = np.empty(len(recipients))
    for first in range(0, len(rec_points), chunk_size):
        last = min(first + chunk_size, len(rec_points))
        dist, ind = index.kneighbors(rec_points[first:last])
        cum = np.cumsum(np.where(_candidates(dist, groups.size[ind], k), groups.weight[ind], 0.0), axis=1)
        rows = by_profile[bounds[first] : bounds[last]]
        local = rec_profile[rows] - first
        total = cum[local, -1]
        # Kept strictly below the total, so the first cum > u is a real candidate.
        u = np.minimum(rng.random(len(rows)) * total, np.nextafter(total, 0.0))
        col = (cum[local] <= u[:, None]).sum(axis=1)
        chosen[rows] = groups.draw(ind[local, col], rng)
        distance[rows] = dist[local, col]
        if log_progress:
            logger.info("%s%d of %d recipients matched", label, bounds[last], len(recipients))
    return chosen, distance


def _candidates(dist: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """Mask of the neighbour profiles that qualify as candidates (sorted ``dist``)."""
    if k == 1:
        reference = dist[:, 0]
    else:
        enough = np.cumsum(sizes, axis=1) >= k
        kth = np.where(enough.any(axis=1), enough.argmax(axis=1), dist.shape[1] - 1)
        reference = dist[np.arange(len(dist)), kth]
    return dist <= (reference + _RELATIVE_TIE_TOLERANCE * np.maximum(reference, 1.0))[:, None]
