"""Distance-based privacy: distance to closest record (DCR) and membership inference.

Both ask whether synthetic records sit closer to the people they were trained on than
to comparable people they never saw (the holdout). An honest generator produces records
no closer to train than to holdout: DCR share 0.5, membership AUC 0.5.

Train and holdout are first subsampled to the same size: with a train twice as large
as the holdout, a random record is closer to train twice as often, whatever the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth_assets.validation.preparation import align_columns, sample_rows
from synth_assets.validation.privacy.gower import gower_encode, nearest_neighbours


def _balanced(
    train: pd.DataFrame, holdout: pd.DataFrame, rng: np.random.Generator, cap: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = min(len(train), len(holdout), cap if cap is not None else len(train))
    if n == 0:
        raise ValueError("train and holdout must both have records")
    return sample_rows(train, n, rng), sample_rows(holdout, n, rng)


def _nndr(distances: np.ndarray) -> np.ndarray:
    """Nearest / second-nearest distance; 1 where both are 0 (duplicated, not distinctive)."""
    first, second = distances[:, 0], distances[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(second > 0, first / second, 1.0)


@dataclass(frozen=True)
class DCRResult:
    """DCR summary plus the distances, kept for the report's histogram."""

    dcr_share: float
    dcr_p5_synthetic: float
    dcr_p5_holdout: float
    nndr_p5_synthetic: float
    nndr_p5_holdout: float
    synthetic_to_train: np.ndarray = field(repr=False)
    holdout_to_train: np.ndarray = field(repr=False)

    def metrics(self) -> dict[str, float]:
        return {
            "dcr_share": self.dcr_share,
            "dcr_p5_synthetic": self.dcr_p5_synthetic,
            "dcr_p5_holdout": self.dcr_p5_holdout,
            "nndr_p5_synthetic": self.nndr_p5_synthetic,
            "nndr_p5_holdout": self.nndr_p5_holdout,
        }


def dcr(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, sample: int = 5000, seed: int = 0,
    n_jobs: int | None = None,
) -> DCRResult:
    """Gower DCR of synthetic records to train vs holdout, and its holdout baseline.

    - ``dcr_share``: share of synthetic records whose closest record is in train rather
      than in the (equally large) holdout; ties count half.
    - ``dcr_p5_*``: 5th percentile of the distance to the closest train record, for
      synthetic records and, as the yardstick, for holdout records.
    - ``nndr_p5_*``: the same for the nearest/second-nearest distance ratio (small: the
      record matches one train record much better than any other).

    ``n_jobs``: threads for the nearest-neighbour searches (the same figures).
    """
    rng = np.random.default_rng(seed)
    synthetic = align_columns(train, synthetic)
    holdout = align_columns(train, holdout, names=("train", "holdout"))
    train_s, holdout_s = _balanced(train, holdout, rng)
    syn_s = sample_rows(synthetic, sample, rng)
    probe_holdout = sample_rows(holdout_s, sample, rng)
    syn_e, train_e, hold_e, probe_e = gower_encode([syn_s, train_s, holdout_s, probe_holdout], train)
    to_train, _ = nearest_neighbours(syn_e, train_e, k=2, n_jobs=n_jobs)
    to_holdout, _ = nearest_neighbours(syn_e, hold_e, k=1, n_jobs=n_jobs)
    baseline, _ = nearest_neighbours(probe_e, train_e, k=2, n_jobs=n_jobs)
    closer = to_train[:, 0] < to_holdout[:, 0]
    tied = to_train[:, 0] == to_holdout[:, 0]
    return DCRResult(
        dcr_share=float(closer.mean() + 0.5 * tied.mean()),
        dcr_p5_synthetic=float(np.percentile(to_train[:, 0], 5)),
        dcr_p5_holdout=float(np.percentile(baseline[:, 0], 5)),
        nndr_p5_synthetic=float(np.percentile(_nndr(to_train), 5)),
        nndr_p5_holdout=float(np.percentile(_nndr(baseline), 5)),
        synthetic_to_train=to_train[:, 0],
        holdout_to_train=baseline[:, 0],
    )


def membership_inference_auc(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, sample: int = 2000, seed: int = 0,
    n_jobs: int | None = None,
) -> float:
    """AUC of a distance attack telling training members from non-members.

    The attacker scores each candidate record by its Gower distance to the closest
    synthetic record (closer = more likely a member). Members are train records,
    non-members holdout records, equally many of each. 0.5: membership does not show;
    1.0: every member is recognisable. ``n_jobs``: threads for the searches (the same AUC).
    """
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    synthetic = align_columns(train, synthetic)
    holdout = align_columns(train, holdout, names=("train", "holdout"))
    members, non_members = _balanced(train, holdout, rng, cap=sample)
    syn_e, mem_e, non_e = gower_encode([synthetic, members, non_members], train)
    d_members, _ = nearest_neighbours(mem_e, syn_e, k=1, n_jobs=n_jobs)
    d_non, _ = nearest_neighbours(non_e, syn_e, k=1, n_jobs=n_jobs)
    labels = np.r_[np.ones(len(d_members)), np.zeros(len(d_non))]
    return float(roc_auc_score(labels, -np.r_[d_members[:, 0], d_non[:, 0]]))
