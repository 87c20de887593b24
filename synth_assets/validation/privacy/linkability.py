"""Linkability attack, after anonymeter's ``LinkabilityEvaluator``.

The attacker holds two separate files about the same people, one with columns A and
one with columns B. For a target, they look up the synthetic records nearest on A and
nearest on B; if the two searches land on the same synthetic record, the synthetic data
have linked the files. Success on train targets beyond control targets is the risk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from synth_assets.validation.preparation import align_columns, sample_rows
from synth_assets.validation.privacy.gower import gower_encode, nearest_neighbours
from synth_assets.validation.privacy.risk import AttackRisk, attack_risk


def default_split(columns: Sequence[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """Two random halves of the columns (anonymeter's examples split all columns so)."""
    shuffled = list(np.random.default_rng(seed).permutation(list(columns)))
    half = len(shuffled) // 2
    return shuffled[:half], shuffled[half:]


def _links(
    targets: pd.DataFrame, synthetic: pd.DataFrame, train: pd.DataFrame, sets: tuple[Sequence[str], ...], k: int
) -> np.ndarray:
    neighbours = []
    for columns in sets:
        syn_e, tgt_e = gower_encode([synthetic, targets], train, columns)
        neighbours.append(nearest_neighbours(tgt_e, syn_e, k=k)[1])
    a, b = neighbours
    return (a[:, :, None] == b[:, None, :]).any(axis=(1, 2))


def linkability_risk(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    aux_columns: tuple[Sequence[str], Sequence[str]] | None = None,
    n_attacks: int = 2000,
    n_neighbors: int = 1,
    seed: int = 0,
) -> AttackRisk:
    """Linkability risk: same-record links via A and B, train vs control targets."""
    synthetic = align_columns(train, synthetic)
    holdout = align_columns(train, holdout, names=("train", "holdout"))
    sets = aux_columns if aux_columns is not None else default_split(list(train.columns), seed)
    if len(sets) != 2 or not sets[0] or not sets[1] or set(sets[0]) & set(sets[1]):
        raise ValueError("linkability needs two non-empty, disjoint column sets")
    rng = np.random.default_rng(seed)
    n = min(n_attacks, len(train), len(holdout))
    targets, controls = sample_rows(train, n, rng), sample_rows(holdout, n, rng)
    return attack_risk(
        _links(targets, synthetic, train, sets, n_neighbors),
        _links(controls, synthetic, train, sets, n_neighbors),
    )
