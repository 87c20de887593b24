"""Attribute inference attack, after anonymeter's ``InferenceEvaluator``.

The attacker knows a target's quasi-identifiers, finds the synthetic record closest to
them (Gower distance on the quasi-identifiers) and guesses that record's sensitive
value. Guessing right for training targets more often than for control targets means
the synthetic data carry person-level, not just population-level, information.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.validation.preparation import align_columns, sample_rows
from synth_assets.validation.privacy.gower import gower_encode, nearest_neighbours
from synth_assets.validation.privacy.risk import AttackRisk, attack_risk


def guesses_correct(guess: pd.Series, truth: pd.Series, numeric: bool, tolerance: float) -> np.ndarray:
    """Exact match for categories; for numbers |guess − truth| <= tolerance × |truth|.

    (anonymeter divides by the guess; dividing by the truth is what "within 5% of the
    real income" means.) Missing matches missing.
    """
    g, t = guess.to_numpy(), truth.to_numpy()
    both_missing = pd.isna(g) & pd.isna(t)
    if numeric:
        g, t = g.astype(float), t.astype(float)
        with np.errstate(invalid="ignore"):
            close = np.abs(g - t) <= tolerance * np.abs(t)
        return close | both_missing
    return (g == t) | both_missing


def attribute_inference(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    sensitive: Sequence[str],
    n_attacks: int = 2000,
    tolerance: float = 0.05,
    seed: int = 0,
) -> dict[str, AttackRisk]:
    """Inference risk for each sensitive variable (train targets vs control targets)."""
    synthetic = align_columns(train, synthetic)
    holdout = align_columns(train, holdout, names=("train", "holdout"))
    unknown = [c for c in [*quasi_identifiers, *sensitive] if c not in train.columns]
    if unknown or not quasi_identifiers or not sensitive:
        raise ValueError(f"need known quasi-identifiers and sensitive columns (unknown: {unknown})")
    rng = np.random.default_rng(seed)
    n = min(n_attacks, len(train), len(holdout))
    targets, controls = sample_rows(train, n, rng), sample_rows(holdout, n, rng)
    syn_e, tgt_e, ctl_e = gower_encode([synthetic, targets, controls], train, quasi_identifiers)
    _, tgt_idx = nearest_neighbours(tgt_e, syn_e, k=1)
    _, ctl_idx = nearest_neighbours(ctl_e, syn_e, k=1)
    risks = {}
    for secret in sensitive:
        numeric = is_numeric(train[secret])
        source = synthetic[secret].reset_index(drop=True)
        risks[secret] = attack_risk(
            guesses_correct(source.iloc[tgt_idx[:, 0]], targets[secret], numeric, tolerance),
            guesses_correct(source.iloc[ctl_idx[:, 0]], controls[secret], numeric, tolerance),
        )
    return risks
