"""Nearest-neighbour distance hot deck (StatMatch ``NND.hotdeck``, ``RANDwNND.hotdeck`` with k > 1).

Each recipient takes the *whole* Z block of one donor, the nearest on X within
its donation class, so relations inside the donor survey (z2 = f(z1), skip
patterns, zero incomes) survive untouched.  Ties, and the k nearest when
``k > 1``, are resolved by a draw proportional to donor weight.
"""

from __future__ import annotations

import numpy as np

from synth_assets.matching.encoding import gower_embedding, mahalanobis_embedding
from synth_assets.matching.methods.base import MethodOutput
from synth_assets.matching.neighbors import draw_nearest
from synth_assets.matching.problem import FusionProblem


def embed(problem: FusionProblem) -> tuple[np.ndarray, np.ndarray, str, float]:
    """Embedded X of recipients and donors, the tree metric, and the factor turning it into the distance."""
    if problem.distance == "mahalanobis":
        rec, don = mahalanobis_embedding(problem.recipient, problem.donor, problem.on, problem.donor_weights)
        return rec, don, "euclidean", 1.0
    rec, don = gower_embedding(problem.recipient, problem.donor, problem.on)
    return rec, don, "manhattan", 1.0 / len(problem.on)


def run(
    problem: FusionProblem,
    rng: np.random.Generator,
    *,
    k: int = 1,
    tie_candidates: int = 8,
    chunk_size: int = 65_536,
    n_jobs: int | None = -1,
) -> MethodOutput:
    """Options: ``k`` nearest donors to draw from (∝ weight), ``tie_candidates`` extra
    profiles scanned for distance ties, ``chunk_size`` recipient profiles per query
    batch, ``n_jobs`` threads for the KD-tree queries."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rec, don, metric, scale = embed(problem)
    chosen = np.empty(len(rec), dtype=np.int64)
    distance = np.empty(len(rec))
    for block in problem.blocks:
        local, dist = draw_nearest(
            rec[block.recipients],
            don[block.donors],
            problem.donor_weights[block.donors],
            rng,
            k=k,
            metric=metric,
            tie_candidates=tie_candidates,
            chunk_size=chunk_size,
            n_jobs=n_jobs,
            label=f"nnd_hotdeck {_describe(problem, block.key)}",
        )
        chosen[block.recipients] = block.donors[local]
        distance[block.recipients] = dist * scale
    return MethodOutput(donor_index=chosen, extra={"mean_match_distance": problem.recipient_mean(distance)})


def _describe(problem: FusionProblem, key: tuple) -> str:
    return f"class {dict(zip(problem.donation_classes, key, strict=True))}: " if problem.donation_classes else ""
