"""Constrained distance hot deck: donors used in proportion to their weights.

StatMatch's ``NND.hotdeck(constrdist=TRUE)`` solves a transport problem (each
donor used at most once) with lpSolve, which is exact but cubic-ish.  Here each
donor gets an integer *capacity* proportional to its weight, and recipients
are assigned to the nearest donor with capacity left, in rounds:

1. capacities: donor j expects ``n_A × w_j / Σw`` uses; systematic (PPS)
   rounding over a random donor order turns these into integers summing exactly
   to the class's recipient count, each the floor or ceiling of its
   expectation (so the Z marginal follows the donor weights, not just in
   expectation, and a donor with expectation 0.3 is used at most once);
2. every unassigned recipient proposes to its nearest donors with capacity,
   first choices first; a donor accepts its closest proposals up to its
   remaining capacity (random order among equal distances);
3. recipients still unassigned re-query the donors that have capacity left,
   with twice as many candidates, until all are placed.

This is the greedy approximation of the transport solution; it runs in
seconds on 50k × 5k because every round is a vectorised sort.
"""

from __future__ import annotations

import logging

import numpy as np

from synth_assets.matching.methods.base import MethodOutput
from synth_assets.matching.methods.nnd import embed
from synth_assets.matching.neighbors import neighbor_index
from synth_assets.matching.problem import FusionProblem

logger = logging.getLogger("synth_assets.matching")


def integer_capacities(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Integers summing to ``n``, each floor or ceil of ``n × w / Σw`` (systematic PPS rounding)."""
    perm = rng.permutation(len(weights))
    cum = np.concatenate([[0.0], np.cumsum(weights[perm])])
    cum = cum / cum[-1] * n
    cum[-1] = n  # exact, so the counts sum to n despite rounding
    counts = np.diff(np.floor(cum + rng.random())).astype(np.int64)
    capacities = np.empty(len(weights), dtype=np.int64)
    capacities[perm] = counts
    return capacities


def assign(
    recipients: np.ndarray,
    donors: np.ndarray,
    capacity: np.ndarray,
    rng: np.random.Generator,
    *,
    metric: str,
    candidates: int,
    n_jobs: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Assign each recipient row a donor row without exceeding ``capacity``; returns (donor, distance)."""
    remaining = capacity.copy()
    chosen = np.full(len(recipients), -1, dtype=np.int64)
    distance = np.zeros(len(recipients))
    open_rows = np.arange(len(recipients))
    while open_rows.size:
        available = np.flatnonzero(remaining > 0)
        n_query = min(candidates, available.size)
        # Shuffled so that donors with identical X do not fill up in file order.
        available = rng.permutation(available)
        index = neighbor_index(donors[available], n_query, metric, n_jobs, open_rows.size)
        dist, ind = index.kneighbors(recipients[open_rows])
        ind = available[ind]
        for col in range(n_query):
            pending = chosen[open_rows] < 0
            rows, want, d = open_rows[pending], ind[pending, col], dist[pending, col]
            order = np.lexsort((rng.random(rows.size), d, want))
            rows, want, d = rows[order], want[order], d[order]
            first = np.searchsorted(want, want, side="left")
            accept = (np.arange(want.size) - first) < remaining[want]
            chosen[rows[accept]], distance[rows[accept]] = want[accept], d[accept]
            remaining -= np.bincount(want[accept], minlength=len(remaining))
        open_rows = open_rows[chosen[open_rows] < 0]
        candidates *= 2
    return chosen, distance


def run(
    problem: FusionProblem,
    rng: np.random.Generator,
    *,
    slack: float = 0.0,
    candidates: int = 10,
    n_jobs: int | None = -1,
) -> MethodOutput:
    """Options: ``slack`` extra capacity as a share of the recipients (0: uses exactly
    proportional to weight; 0.5: capacities sum to 1.5 × recipients, so donors near many
    recipients can be used up to 50% more than their weight share and matches get closer),
    ``candidates`` nearest donors each recipient proposes to per round (doubled every
    round), ``n_jobs`` threads for the KD-tree queries."""
    if slack < 0:
        raise ValueError(f"slack must be non-negative, got {slack}")
    rec, don, metric, scale = embed(problem)
    chosen = np.empty(len(rec), dtype=np.int64)
    distance = np.empty(len(rec))
    for block in problem.blocks:
        total = int(np.ceil(block.recipients.size * (1.0 + slack)))
        capacity = integer_capacities(problem.donor_weights[block.donors], total, rng)
        local, dist = assign(
            rec[block.recipients], don[block.donors], capacity, rng, metric=metric, candidates=candidates, n_jobs=n_jobs
        )
        chosen[block.recipients] = block.donors[local]
        distance[block.recipients] = dist * scale
        logger.info("nnd_constrained: class %s: %d recipients assigned", block.key, block.recipients.size)
    return MethodOutput(donor_index=chosen, extra={"mean_match_distance": problem.recipient_mean(distance)})
