"""Propensity-score utility: pMSE (Snoke et al. 2018, as synthpop's ``utility.gen``) and AUC.

A classifier is asked to tell synthetic from real records. If it cannot, the synthetic
data are distributionally indistinguishable for that model class. pMSE measures the
spread of the predicted propensities around the share ``c`` of synthetic records; its
value under the null (both samples from one distribution) depends on the model, hence
the ratio ``s_pmse`` = pMSE / E[pMSE | null], 1 being "as good as it can be".
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from synth_assets.common.columns import is_numeric
from synth_assets.common.parallel import ordered_map
from synth_assets.inference.glm import fit_logit
from synth_assets.validation.preparation import align_columns, factorize_together
from synth_assets.validation.utility.cart import rpart_propensities

#: HistGradientBoosting accepts at most this many categories per feature.
_MAX_HGB_CATEGORIES = 255


def _stack_labels(real: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[np.ndarray, float]:
    y = np.concatenate([np.zeros(len(real)), np.ones(len(synthetic))])
    return y, len(synthetic) / len(y)


def _one_hot(codes: np.ndarray, n_values: int, drop_first: bool) -> np.ndarray:
    """Dummy columns of integer codes, missing (-1) as a level of its own."""
    levels = np.where(codes < 0, n_values, codes)
    dummies = np.eye(n_values + 1)[levels]
    dummies = dummies[:, dummies.any(axis=0)]
    return dummies[:, 1:] if drop_first else dummies


def logit_design(real: pd.DataFrame, synthetic: pd.DataFrame) -> np.ndarray:
    """Main-effects design with intercept: synthpop's logit with ``maxorder = 0``.

    Numbers are standardised (pooled mean and sd, for a well-conditioned Newton step)
    with missing values set to 0 plus a missingness dummy; categories are dummies with
    the first level as reference and missing as a level.
    """
    blocks = [np.ones((len(real) + len(synthetic), 1))]
    for column in real.columns:
        values = pd.concat([real[column], synthetic[column]], ignore_index=True)
        if is_numeric(values):
            x = values.to_numpy(dtype=float)
            missing = np.isnan(x)
            sd = np.nanstd(x)
            z = (x - np.nanmean(x)) / (sd if sd > 0 else 1.0)
            blocks.append(np.where(missing, 0.0, z)[:, None])
            if missing.any():
                blocks.append(missing[:, None].astype(float))
        else:
            (codes,), n_values = factorize_together([values])
            blocks.append(_one_hot(codes, n_values, drop_first=True))
    return np.hstack(blocks)


def tree_design(real: pd.DataFrame, synthetic: pd.DataFrame) -> np.ndarray:
    """Numbers as they are (sklearn trees route NaN themselves), categories one-hot."""
    blocks = []
    for column in real.columns:
        if is_numeric(real[column]):
            values = pd.concat([real[column], synthetic[column]], ignore_index=True)
            blocks.append(values.to_numpy(dtype=float)[:, None])
        else:
            codes, n_values = factorize_together([real[column], synthetic[column]])
            blocks.append(_one_hot(np.concatenate(codes), n_values, drop_first=False))
    return np.hstack(blocks)


def pmse(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    model: Literal["cart", "logit"] = "cart",
    seed: int = 0,
    n_permutations: int = 10,
    cp: float = 1e-3,
    minbucket: int = 5,
    with_auc: bool = True,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """pMSE, its null expectation, the ratio ``s_pmse`` (synthpop's S_pMSE) and, unless
    ``with_auc`` is False, ``propensity_auc`` (see that function).

    CART: the null is estimated by refitting the same tree on randomly permuted
    real/synthetic labels ``n_permutations`` times (synthpop's ``resamp.method="perm"``).
    Logit: the analytic null (k − 1)(1 − c)² c / N, k the number of parameters,
    c the synthetic share, N all records (Snoke et al. 2018), exactly as synthpop
    computes it, so that our numbers compare with synthpop's. Beware: simulation (and
    the delta method) give an exact null mean of (k − 1) c (1 − c) / N, so this logit
    S_pMSE averages 1 / (1 − c), i.e. 2 for equal sample sizes, on data from one
    distribution. The CART ratio, used by ``evaluate``, has no such bias.

    ``n_jobs``: CART's trees (the real labels' and the permutations') fitted that many at a
    time on threads (``common.parallel``); the figures are the same whatever it is.
    """
    synthetic = align_columns(real, synthetic)
    y, c = _stack_labels(real, synthetic)
    n = len(y)
    if model == "logit":
        X = logit_design(real, synthetic)
        fit = fit_logit(X, y)
        value = float(np.mean((fit.fitted - c) ** 2))
        null = (fit.rank - 1) * (1 - c) ** 2 * c / n
        null_sd = np.sqrt(2 * (fit.rank - 1)) * (1 - c) ** 2 * c / n
    elif model == "cart":
        X = tree_design(real, synthetic)
        rng = np.random.default_rng(seed)
        labels = [y, *(rng.permutation(y) for _ in range(n_permutations))]
        value, *perms = ordered_map(
            lambda labels: float(np.mean((rpart_propensities(X, labels, cp, minbucket, seed) - c) ** 2)),
            labels, n_jobs, name="propensity")
        null = float(np.mean(perms))
        null_sd = float(np.std(perms, ddof=1)) if n_permutations > 1 else float("nan")
    else:
        raise ValueError(f"unknown propensity model {model!r} (use 'cart' or 'logit')")
    result = {
        "pmse": value,
        "pmse_null": float(null),
        "pmse_null_sd": float(null_sd),
        "s_pmse": value / null if null > 0 else float("inf"),
    }
    if with_auc:
        result["propensity_auc"] = propensity_auc(real, synthetic, seed=seed, n_jobs=n_jobs)
    return result


def hgb_frame(real: pd.DataFrame, synthetic: pd.DataFrame) -> pd.DataFrame:
    """Stacked features for HistGradientBoosting: categories as pandas categoricals.

    Categories with more levels than the model accepts are passed as their codes.
    """
    columns: dict[str, Any] = {}
    for column in real.columns:
        if is_numeric(real[column]):
            columns[column] = pd.concat([real[column], synthetic[column]], ignore_index=True).astype(float)
            continue
        codes, n_values = factorize_together([real[column], synthetic[column]])
        stacked = np.concatenate(codes)
        if n_values > _MAX_HGB_CATEGORIES:
            columns[column] = np.where(stacked < 0, np.nan, stacked).astype(float)
        else:
            columns[column] = pd.Categorical.from_codes(stacked, categories=pd.Index(range(n_values)))
    return pd.DataFrame(columns)


def propensity_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0, folds: int = 5, n_threads: int = 1,
    n_jobs: int | None = None,
) -> float:
    """Out-of-fold ROC AUC of a gradient-boosting classifier telling synthetic from real.

    0.5: cannot tell them apart; 1.0: perfectly separable. Pooled out-of-fold
    predictions of a stratified k-fold, so every record is scored by a model that
    did not see it. Well BELOW 0.5 is a warning too: when synthetic records duplicate
    real ones, each record's twin sits in the training folds with the opposite label
    (a copy of the training data scores about 0.3 on EU-SILC).

    OpenMP is held to ``n_threads``: boosting opens one tiny parallel region per split
    (15,000 for 5 folds), and on a busy 2-core machine two spinning threads made a
    0.5 s fit take 10-90 s. ``n_jobs`` folds are fitted at a time instead, on threads
    (``common.parallel.ordered_map``: no process started from a Dagster step); the same AUC.
    Each fold sets the limit in its own thread: OpenMP keeps the thread count per thread, so a
    limit set by the caller left each fold's thread at one OpenMP thread per core, and two folds
    at a time spun four threads on two cores (40,000 rows: 8.9 s of wall and 12.4 s of CPU against
    4.0 and 6.3, the same AUC; bench/README.md, "Forty-second pass").
    """
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    synthetic = align_columns(real, synthetic)
    y, _ = _stack_labels(real, synthetic)
    features = hgb_frame(real, synthetic)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)

    def out_of_fold(split: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        train, test = split
        with threadpool_limits(limits=n_threads, user_api="openmp"):  # this thread's own OpenMP
            fitted = clone(model).fit(features.iloc[train], y[train])
            return test, fitted.predict_proba(features.iloc[test])[:, 1]

    proba = np.empty(len(y))
    for test, fold_proba in ordered_map(out_of_fold, cv.split(features, y), n_jobs, name="propensity-auc"):
        proba[test] = fold_proba
    return float(roc_auc_score(y, proba))
