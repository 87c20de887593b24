"""Model-based imputation that *draws* from the predicted conditional distribution.

Plugging in a prediction (argmax class, conditional mean) collapses the
imputed distribution onto the mode or the mean: the Z marginal and every Z
relation come out wrong even when the model is right.  So:

* categorical Z: a gradient-boosting classifier (donor-weighted) gives
  P(Z | X); each recipient's class is *sampled* from it;
* numeric Z: a random forest is grown on the donors; each recipient picks a
  random tree, falls into one of its leaves, and takes the observed Z of a
  donor in that leaf drawn ∝ weight.  Averaged over trees this is the
  conditional distribution of a quantile regression forest (Meinshausen
  2006), so spikes (zero incomes) and skew survive.  If Z has missing values,
  missingness is drawn first from a classifier.

Variables are imputed one after the other, each model also conditioning on the
variables imputed before it (donor values when fitting, imputed values when
predicting), so the relations between the Z of one survey are kept.  Donation
class variables are used as predictors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from threadpoolctl import threadpool_limits

from synth_assets.common.columns import is_numeric
from synth_assets.matching.encoding import as_float, design_matrix
from synth_assets.matching.methods.base import MethodOutput
from synth_assets.matching.problem import FusionProblem
from synth_assets.matching.sampling import WeightedGroups

_SMALL_FIT = 50_000  # donors below which boosting runs single-threaded


def sample_rows(proba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One column index per row of a probability matrix, drawn from that row."""
    cum = np.cumsum(proba, axis=1)
    total = cum[:, -1]
    # Kept strictly below the row total, so the first cum > u is a column of positive probability.
    u = np.minimum(rng.random(len(proba)) * total, np.nextafter(total, 0.0))
    return (cum <= u[:, None]).sum(axis=1)


def draw_categorical(
    x_rec: np.ndarray, x_don: np.ndarray, y: pd.Series, weights: np.ndarray, rng: np.random.Generator, max_iter: int
) -> np.ndarray:
    """Sample a level of ``y`` for every recipient from a classifier's predicted probabilities."""
    codes, uniques = pd.factorize(y.astype(object), use_na_sentinel=False)
    levels = np.asarray(uniques, dtype=object)
    if len(levels) == 1:
        return np.repeat(levels, len(x_rec))
    with openmp_threads(len(x_don)):
        model = fit_classifier(x_don, codes, weights, rng, max_iter)
        return levels[model.classes_[sample_rows(model.predict_proba(x_rec), rng)]]


def openmp_threads(n_donors: int) -> threadpool_limits:
    """Context limiting OpenMP (gradient boosting) to one thread for survey-sized donor files.

    With thousands of donors the threads cost more than they save, and on a
    busy machine they slowed fits and predictions tenfold in our measurements.
    """
    return threadpool_limits(limits=1 if n_donors < _SMALL_FIT else None, user_api="openmp")


def fit_classifier(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, rng: np.random.Generator, max_iter: int
) -> HistGradientBoostingClassifier:
    """Donor-weighted gradient boosting (missing X routed natively)."""
    model = HistGradientBoostingClassifier(max_iter=max_iter, random_state=int(rng.integers(2**31)))
    return model.fit(x, y, sample_weight=weights)


def draw_numeric(
    x_rec: np.ndarray,
    x_don: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    rng: np.random.Generator,
    *,
    max_iter: int,
    n_trees: int,
    min_samples_leaf: int,
    n_jobs: int | None,
) -> np.ndarray:
    """Draw observed donor values from forest leaves (missingness drawn first)."""
    out = np.full(len(x_rec), np.nan)
    missing = np.isnan(y)
    if missing.all():
        return out
    to_fill = np.ones(len(x_rec), dtype=bool)
    if missing.any():
        to_fill = ~draw_categorical(x_rec, x_don, pd.Series(missing), weights, rng, max_iter).astype(bool)
    x_obs, y_obs, w_obs = x_don[~missing], y[~missing], weights[~missing]
    forest = RandomForestRegressor(
        n_estimators=n_trees, min_samples_leaf=min_samples_leaf, n_jobs=n_jobs, random_state=int(rng.integers(2**31))
    ).fit(x_obs, y_obs, sample_weight=w_obs)
    fill_rows = np.flatnonzero(to_fill)
    tree_of_row = rng.integers(n_trees, size=fill_rows.size)
    for t, tree in enumerate(forest.estimators_):
        rows = fill_rows[tree_of_row == t]
        if rows.size:
            leaves = WeightedGroups.from_labels(tree.apply(x_obs), w_obs, tree.tree_.node_count)
            out[rows] = y_obs[leaves.draw(tree.apply(x_rec[rows]), rng)]
    return out


def run(
    problem: FusionProblem,
    rng: np.random.Generator,
    *,
    categorical: str | list[str] | None = None,
    n_trees: int = 50,
    min_samples_leaf: int = 10,
    max_iter: int = 100,
    n_jobs: int | None = -1,
) -> MethodOutput:
    """Options: ``categorical`` numeric-coded Z to treat as classes, ``n_trees`` and
    ``min_samples_leaf`` of the forest, ``max_iter`` boosting rounds, ``n_jobs`` threads."""
    categorical = [categorical] if isinstance(categorical, str) else list(categorical or [])
    unknown = [c for c in categorical if c not in problem.impute]
    if unknown:
        raise ValueError(f"model_draw: categorical variable {unknown[0]!r} is not imputed")
    predictors = problem.predictors
    rec_frame = problem.recipient[predictors].copy()
    don_frame = problem.donor[predictors].copy()
    imputed = pd.DataFrame(index=problem.recipient.index)
    for z in problem.impute:
        x_rec, x_don = design_matrix(rec_frame, don_frame, predictors, fill_missing=False)
        donor_column = problem.donor[z]
        if is_numeric(donor_column) and z not in categorical:
            values = draw_numeric(
                x_rec,
                x_don,
                as_float(donor_column),
                problem.donor_weights,
                rng,
                max_iter=max_iter,
                n_trees=n_trees,
                min_samples_leaf=min_samples_leaf,
                n_jobs=n_jobs,
            )
        else:
            values = draw_categorical(x_rec, x_don, donor_column, problem.donor_weights, rng, max_iter)
        imputed[z] = pd.Series(values, index=imputed.index).astype(donor_column.dtype).array
        rec_frame[z], don_frame[z] = imputed[z].array, donor_column.array
        predictors = predictors + [z]
    return MethodOutput(imputed=imputed)
