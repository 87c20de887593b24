"""k-marginal fidelity score in the manner of NIST's SDNist (0 to 1000).

The score is 1000 × (1 − mean total variation distance) over k-way marginal tables. It
is easy to explain to a data owner ("on average the synthetic tables differ from the
real ones by x% of the records") and the reference runs of synthpop and SDV in
bench/README.md are scored with it, so our numbers can be read against theirs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from synth_assets.common.distances import codes_total_variation
from synth_assets.validation.preparation import align_columns, discretise, joint_codes

#: Above this many k-subsets we draw random ones by rejection instead of enumerating.
_ENUMERATION_LIMIT = 200_000


def column_combinations(
    n_columns: int, k: int, n_combinations: int, rng: np.random.Generator
) -> list[tuple[int, ...]]:
    """All k-subsets of the columns, or ``n_combinations`` distinct random ones if more."""
    total = math.comb(n_columns, k)
    if total <= n_combinations:
        return list(itertools.combinations(range(n_columns), k))
    if total <= _ENUMERATION_LIMIT:
        everything = list(itertools.combinations(range(n_columns), k))
        chosen = rng.choice(total, size=n_combinations, replace=False)
        return [everything[i] for i in sorted(chosen)]
    drawn: set[tuple[int, ...]] = set()
    while len(drawn) < n_combinations:
        drawn.add(tuple(sorted(rng.choice(n_columns, size=k, replace=False).tolist())))
    return sorted(drawn)


def kmarginal_scores(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    ks: Iterable[int] = (1, 2, 3),
    n_combinations: int = 200,
    bins: int = 10,
    seed: int = 0,
) -> dict[int, float]:
    """k-marginal scores for several k at once (the discretisation is shared).

    Numbers are cut into ``bins`` quantile bins of the REAL data, the same edges are
    applied to the synthetic data, missing values are a level of their own.
    """
    synthetic = align_columns(real, synthetic)
    coded = discretise(real, [synthetic], bins=bins)
    real_codes, syn_codes = coded.codes
    scores: dict[int, float] = {}
    for k in ks:
        if not 1 <= k <= real.shape[1]:
            raise ValueError(f"k={k} needs between 1 and {real.shape[1]} columns")
        rng = np.random.default_rng([seed, k])
        distances = []
        for combo in column_combinations(real.shape[1], k, n_combinations, rng):
            cols = list(combo)
            a, b = joint_codes([real_codes[:, cols], syn_codes[:, cols]], coded.levels[cols])
            distances.append(codes_total_variation(a, b))
        scores[k] = 1000.0 * (1.0 - float(np.mean(distances)))
    return scores


def kmarginal_score(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    k: int,
    n_combinations: int = 200,
    bins: int = 10,
    seed: int = 0,
) -> float:
    """1000 × (1 − mean TVD) over all k-way marginals, or ``n_combinations`` random ones."""
    return kmarginal_scores(real, synthetic, (k,), n_combinations, bins, seed)[k]
