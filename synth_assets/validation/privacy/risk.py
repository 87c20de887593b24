"""Success rates and residual risk as anonymeter defines them (Giomi et al. 2023).

An attack is run against training records and, identically, against control (holdout)
records the generator never saw. Success on the control is what the attacker gets from
the population-level patterns the synthetic data are meant to share; only the excess
over it is privacy risk:

    risk = (success_train − success_control) / (1 − success_control).

Rates are Wilson-score estimates with their 95% half-widths; the risk's interval comes
from first-order error propagation, as in anonymeter's ``residual_success``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtri


@dataclass(frozen=True)
class SuccessRate:
    """Wilson-centred success rate of ``n_success`` out of ``n_total`` attacks, ± ``error``."""

    value: float
    error: float
    n_total: int
    n_success: int


def success_rate(n_total: int, n_success: int, confidence: float = 0.95) -> SuccessRate:
    """Wilson score interval centre and half-width (anonymeter's ``success_rate``)."""
    if n_total <= 0:
        return SuccessRate(float("nan"), float("nan"), 0, 0)
    z = ndtri(0.5 + confidence / 2)
    denominator = n_total + z**2
    value = (n_success + 0.5 * z**2) / denominator
    error = z / denominator * np.sqrt(n_success * (n_total - n_success) / n_total + z**2 / 4)
    return SuccessRate(float(value), float(error), n_total, n_success)


@dataclass(frozen=True)
class AttackRisk:
    """Residual risk of one attack (negative: attack did worse than on the control) with its
    confidence interval clipped to [0, 1]."""

    risk: float
    ci_low: float
    ci_high: float
    attack: SuccessRate
    control: SuccessRate

    def to_dict(self) -> dict:
        return asdict(self)


def residual_risk(attack: SuccessRate, control: SuccessRate) -> AttackRisk:
    """(attack − control) / (1 − control), with the propagated error as interval."""
    if not (np.isfinite(attack.value) and np.isfinite(control.value)) or control.value >= 1:
        return AttackRisk(float("nan"), float("nan"), float("nan"), attack, control)
    gap = 1 - control.value
    risk = (attack.value - control.value) / gap
    error = np.sqrt((attack.error / gap) ** 2 + (control.error * (attack.value - 1) / gap**2) ** 2)
    low, high = np.clip([risk - error, risk + error], 0.0, 1.0)
    return AttackRisk(float(risk), float(low), float(high), attack, control)


def attack_risk(train_successes: np.ndarray, control_successes: np.ndarray) -> AttackRisk:
    """Residual risk from boolean success vectors on train and control targets."""
    attack = success_rate(len(train_successes), int(np.sum(train_successes)))
    control = success_rate(len(control_successes), int(np.sum(control_successes)))
    return residual_risk(attack, control)
