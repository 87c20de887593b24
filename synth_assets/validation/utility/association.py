"""Do the synthetic data keep the relations between variables?

Two complementary summaries: rank correlations between numbers and Cramér's V between
all variables (numbers cut into the real data's quantile bins, as in the k-marginal
score), each as the mean absolute difference real − synthetic; and a PCA comparison of
the joint structure of the standardised, one-hot encoded table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from synth_assets.common.columns import is_numeric
from synth_assets.common.distances import codes_cramers_v
from synth_assets.validation.preparation import align_columns, discretise, factorize_together


@dataclass(frozen=True)
class AssociationComparison:
    """Association matrices of both tables and their mean absolute differences."""

    correlation_real: pd.DataFrame
    correlation_synthetic: pd.DataFrame
    cramers_v_real: pd.DataFrame
    cramers_v_synthetic: pd.DataFrame

    @property
    def correlation_diff(self) -> float:
        return _mean_upper_abs_diff(self.correlation_real, self.correlation_synthetic)

    @property
    def cramers_v_diff(self) -> float:
        return _mean_upper_abs_diff(self.cramers_v_real, self.cramers_v_synthetic)


def _mean_upper_abs_diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
    if a.shape[0] < 2:
        return float("nan")
    upper = np.triu_indices(a.shape[0], k=1)
    diffs = np.abs(a.to_numpy() - b.to_numpy())[upper]
    return float(np.nanmean(diffs)) if np.isfinite(diffs).any() else float("nan")


def association_differences(real: pd.DataFrame, synthetic: pd.DataFrame, bins: int = 10) -> AssociationComparison:
    """Spearman correlations (numeric pairs) and Cramér's V (all pairs) of both tables.

    Spearman rather than Pearson: incomes are skewed with a few huge values, and a
    single extreme synthetic record should not decide whether a relation is "kept".
    """
    synthetic = align_columns(real, synthetic)
    numeric = [c for c in real.columns if is_numeric(real[c])]
    corr_real = real[numeric].corr(method="spearman")
    corr_syn = synthetic[numeric].corr(method="spearman")
    coded = discretise(real, [synthetic], bins=bins)
    p = len(coded.columns)
    v = np.eye(p), np.eye(p)
    for i in range(p):
        for j in range(i + 1, p):
            for matrix, codes in zip(v, coded.codes):
                matrix[i, j] = matrix[j, i] = codes_cramers_v(codes[:, i], codes[:, j])
    return AssociationComparison(
        corr_real,
        corr_syn,
        pd.DataFrame(v[0], index=coded.columns, columns=coded.columns),
        pd.DataFrame(v[1], index=coded.columns, columns=coded.columns),
    )


def _standardised_design(real: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One-hot categories (missing a level), numbers with missing set to the real median
    plus a missingness dummy; every column centred and scaled by the REAL data, so that
    both tables are expressed in the same units."""
    real_blocks, syn_blocks = [], []
    for column in real.columns:
        if is_numeric(real[column]):
            r, s = real[column].to_numpy(dtype=float), synthetic[column].to_numpy(dtype=float)
            fill = np.nanmedian(r) if np.isfinite(r).any() else 0.0
            real_blocks.append(np.where(np.isnan(r), fill, r)[:, None])
            syn_blocks.append(np.where(np.isnan(s), fill, s)[:, None])
            if np.isnan(r).any() or np.isnan(s).any():
                real_blocks.append(np.isnan(r)[:, None].astype(float))
                syn_blocks.append(np.isnan(s)[:, None].astype(float))
        else:
            (cr, cs), n_values = factorize_together([real[column], synthetic[column]])
            eye = np.eye(n_values + 1)
            real_blocks.append(eye[np.where(cr < 0, n_values, cr)])
            syn_blocks.append(eye[np.where(cs < 0, n_values, cs)])
    r, s = np.hstack(real_blocks), np.hstack(syn_blocks)
    mean, sd = r.mean(axis=0), r.std(axis=0)
    keep = sd > 0
    return (r[:, keep] - mean[keep]) / sd[keep], (s[:, keep] - mean[keep]) / sd[keep]


def pca_alignment(real: pd.DataFrame, synthetic: pd.DataFrame, n_components: int = 5) -> dict[str, float]:
    """Compare principal components of real and synthetic data in the real data's units.

    - ``pca_pc1_cosine``: |cos| of the angle between the first components (1 = same axis);
    - ``pca_subspace_cosine``: mean cosine of the principal angles between the spans of
      the first ``n_components`` components (robust to components swapping order);
    - ``pca_variance_diff``: sum over those components of |explained-variance share
      real − synthetic|, both shares relative to the real total variance.
    """
    synthetic = align_columns(real, synthetic)
    r, s = _standardised_design(real, synthetic)
    q = min(n_components, r.shape[1])
    # One BLAS thread: these SVDs take ~0.05 s, but two spinning OpenBLAS threads on a
    # busy 2-core machine made them take 3 s.
    with threadpool_limits(limits=1, user_api="blas"):
        _, sv_r, vt_r = np.linalg.svd(r - r.mean(axis=0), full_matrices=False)
        _, sv_s, vt_s = np.linalg.svd(s - s.mean(axis=0), full_matrices=False)
    total = (sv_r**2).sum() / len(r)
    share_r = (sv_r[:q] ** 2 / len(r)) / total
    share_s = (sv_s[:q] ** 2 / len(s)) / total
    principal_cosines = np.linalg.svd(vt_r[:q] @ vt_s[:q].T, compute_uv=False)
    return {
        "pca_pc1_cosine": float(abs(vt_r[0] @ vt_s[0])),
        "pca_subspace_cosine": float(np.clip(principal_cosines, 0, 1).mean()),
        "pca_variance_diff": float(np.abs(share_r - share_s).sum()),
    }
