"""Numeric encodings of the common variables X.

The key fact used here: Gower's distance with numerics scaled by range and
categoricals scored 0/1 is the Manhattan (L1) distance between suitably embedded
rows, divided by the number of variables p.  Embedding once lets a KD tree find
nearest donors for a million recipients instead of computing a full distance
matrix.

Missing values (both distances): a missing value is treated as a value of its
own, at distance 1 from every observed value and 0 from another missing one.
Unlike StatMatch's ``gower.dist``, which skips the variable and averages over
the rest, this keeps Gower a metric that can be embedded, and it prefers donors
whose missingness pattern matches the recipient's (missingness is often
informative in surveys, e.g. income blank for non-earners).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric


def as_float(column: pd.Series) -> np.ndarray:
    """Float view of a numeric column (nullable integers included), NA as NaN."""
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def joint_codes(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes of two categorical columns on one shared set of levels.

    Missing values get a level of their own.  Returns (codes of a, codes of b,
    number of levels).
    """
    both = pd.concat([a.astype(object), b.astype(object)], ignore_index=True)
    codes, uniques = pd.factorize(both, use_na_sentinel=False)
    return codes[: len(a)], codes[len(a) :], len(uniques)


def one_hot(codes: np.ndarray, n_levels: int, value: float = 1.0) -> np.ndarray:
    out = np.zeros((len(codes), n_levels))
    out[np.arange(len(codes)), codes] = value
    return out


def gower_embedding(recipient: pd.DataFrame, donor: pd.DataFrame, on: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Embed X so that L1 distance / len(on) equals the Gower distance.

    Numerics are scaled by the donor range; recipients outside it are clipped to
    it, which shifts their distance to every donor by the same amount and so
    leaves the neighbour ranking unchanged.  A numeric column with missing
    values takes two coordinates, (v/2, (1-v)/2) for observed v in [0, 1] and
    (-1/2, 0) for missing: L1 distance |v-w| between observed values, exactly 1
    between missing and observed.  Categoricals are one-hot scaled by 1/2, so
    two different levels are at distance 1.
    """
    rec_blocks: list[np.ndarray] = []
    don_blocks: list[np.ndarray] = []
    for col in on:
        if is_numeric(donor[col]):
            r, d = as_float(recipient[col]), as_float(donor[col])
            observed = d[~np.isnan(d)]
            lo, hi = (observed.min(), observed.max()) if observed.size else (0.0, 1.0)
            span = hi - lo if hi > lo else 1.0
            r, d = np.clip((r - lo) / span, 0.0, 1.0), np.clip((d - lo) / span, 0.0, 1.0)
            if np.isnan(r).any() or np.isnan(d).any():
                r, d = _missing_aware(r), _missing_aware(d)
            rec_blocks.append(r.reshape(len(r), -1))
            don_blocks.append(d.reshape(len(d), -1))
        else:
            rc, dc, n_levels = joint_codes(recipient[col], donor[col])
            rec_blocks.append(one_hot(rc, n_levels, 0.5))
            don_blocks.append(one_hot(dc, n_levels, 0.5))
    return np.hstack(rec_blocks), np.hstack(don_blocks)


def _missing_aware(v: np.ndarray) -> np.ndarray:
    out = np.column_stack([v / 2.0, (1.0 - v) / 2.0])
    out[np.isnan(v)] = (-0.5, 0.0)
    return out


def design_matrix(
    recipient: pd.DataFrame, donor: pd.DataFrame, columns: list[str], *, fill_missing: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Plain model matrix: numerics as they are, categoricals one-hot.

    With ``fill_missing`` (for linear models and Mahalanobis distance) a missing
    numeric becomes the donor mean plus a 0/1 missingness column; without it NaN
    is kept for learners that route missing values themselves (gradient boosting,
    forests).  Missing categoricals are a level of their own either way.
    """
    rec_blocks: list[np.ndarray] = []
    don_blocks: list[np.ndarray] = []
    for col in columns:
        if is_numeric(donor[col]) and is_numeric(recipient[col]):
            r, d = as_float(recipient[col]), as_float(donor[col])
            rm, dm = np.isnan(r), np.isnan(d)
            if fill_missing and (rm.any() or dm.any()):
                mean = float(np.nanmean(d)) if (~dm).any() else 0.0
                rec_blocks.append(np.column_stack([np.where(rm, mean, r), rm]))
                don_blocks.append(np.column_stack([np.where(dm, mean, d), dm]))
            else:
                rec_blocks.append(r[:, None])
                don_blocks.append(d[:, None])
        else:
            rc, dc, n_levels = joint_codes(recipient[col], donor[col])
            rec_blocks.append(one_hot(rc, n_levels))
            don_blocks.append(one_hot(dc, n_levels))
    return np.hstack(rec_blocks).astype(np.float64), np.hstack(don_blocks).astype(np.float64)


def mahalanobis_embedding(
    recipient: pd.DataFrame, donor: pd.DataFrame, on: list[str], donor_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Whiten X with the donors' weighted covariance: Euclidean distance is then Mahalanobis.

    One-hot blocks make the covariance singular (each block sums to one), so the
    pseudo-inverse is used: directions without donor variance are dropped.
    """
    rec, don = design_matrix(recipient, donor, on, fill_missing=True)
    if len(don) < 2:
        return np.zeros((len(rec), 1)), np.zeros((len(don), 1))
    mean = np.average(don, axis=0, weights=donor_weights)
    cov = np.atleast_2d(np.cov(don, rowvar=False, aweights=donor_weights))
    eigval, eigvec = np.linalg.eigh(cov)
    keep = eigval > 1e-10 * max(eigval.max(), 1e-300)
    if not keep.any():  # all donors share one X profile: every donor is equally near
        return np.zeros((len(rec), 1)), np.zeros((len(don), 1))
    whiten = eigvec[:, keep] / np.sqrt(eigval[keep])
    return (rec - mean) @ whiten, (don - mean) @ whiten
