"""Outcome-specific utility: do analysts get the same regression answers?

Each model is fitted on the real data and on every synthetic replicate; replicate
estimates are combined with the fully-synthetic rules (``combining``) and compared with
the real ones by the confidence-interval overlap of Karr et al. (2006):

    J = ½ [ (U ∧ − L ∨) / (U_real − L_real) + (U ∧ − L ∨) / (U_syn − L_syn) ]

where ∧/∨ are the min of the upper and max of the lower bounds. J = 1 for identical
intervals, 0 when they just touch, negative when they are apart (kept, as in synthpop,
because "how far apart" is informative).

A degenerate interval would make J meaningless: a logit term separated in the data gets
an interval like [-1.9e28, 1.9e28], and J then credits it with 0.5 whatever the estimate.
So a term that is not estimable in the real data (aliased, separated, non-finite) is
excluded, with the reason; a term estimable in the real data but degenerate in a
synthetic replicate scores 0 (the synthetic data cannot estimate what the real data can).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from synth_assets.common.columns import is_numeric
from synth_assets.inference.combining import combine_estimates
from synth_assets.inference.glm import Fit, fit_logit, fit_ols


@dataclass(frozen=True)
class RegressionSpec:
    """``outcome ~ predictors``, fitted by OLS or logit.

    ``outcome`` is a column or a pandas expression (``"pl030 == 3"`` for a logit);
    predictors are columns, numeric ones enter linearly, the others as dummies with the
    first real level (sorted) as reference, as R does.
    """

    kind: Literal["ols", "logit"]
    outcome: str
    predictors: Sequence[str]
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}: {self.outcome} ~ {' + '.join(self.predictors)}"


# A standard error this many times the coefficient's size (at least 1) only comes from a
# (quasi-)separated or aliased term: no sample of a survey's size estimates so loosely.
DEGENERATE_SE_RATIO = 1e4


@dataclass(frozen=True)
class RegressionComparison:
    """Side-by-side coefficients of one model: real vs combined synthetic replicates.

    ``excluded`` maps a term left out of ``table`` to why (not estimable in the real data).
    """

    spec: RegressionSpec
    table: pd.DataFrame
    replicate_coefficients: pd.DataFrame = field(repr=False)
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def mean_ci_overlap(self) -> float:
        return float(self.table["ci_overlap"].mean())


def ci_overlap(lower_a: np.ndarray, upper_a: np.ndarray, lower_b: np.ndarray, upper_b: np.ndarray) -> np.ndarray:
    """Karr et al. (2006) interval overlap; negative when the intervals are disjoint."""
    inner = np.minimum(upper_a, upper_b) - np.maximum(lower_a, lower_b)
    return 0.5 * (inner / (upper_a - lower_a) + inner / (upper_b - lower_b))


def degenerate_terms(fit: Fit, X: np.ndarray, kind: str) -> dict[int, str]:
    """Terms whose interval means nothing, by index, with the reason."""
    reasons: dict[int, str] = {}
    rank = np.linalg.matrix_rank(X)
    if kind == "logit":
        # Separation: every record the term touches is predicted with certainty, so the data
        # hold no information on it (Fisher information ~0 against its maximum, p = 1/2).
        squares = X**2
        information = squares.T @ (fit.fitted * (1 - fit.fitted)) / np.maximum(squares.sum(axis=0) / 4, 1e-300)
    for j in range(X.shape[1]):
        if kind == "logit" and X[:, j].any() and information[j] < 1e-6:
            reasons[j] = "separation: the outcome is certain wherever this term applies"
            continue
        if not (np.isfinite(fit.coef[j]) and np.isfinite(fit.se[j])):
            reasons[j] = "non-finite estimate"
        elif not X[:, j].any():
            reasons[j] = "no record has this level"
        elif rank < X.shape[1] and np.linalg.matrix_rank(np.delete(X, j, axis=1)) == rank:
            reasons[j] = "aliased with other terms"
        elif fit.se[j] > DEGENERATE_SE_RATIO * max(1.0, abs(float(fit.coef[j]))):
            reasons[j] = f"degenerate interval (se {fit.se[j]:.3g}: separation or near-aliasing)"
        elif fit.se[j] == 0:
            reasons[j] = "zero-width interval (the outcome is exact in this term)"
    return reasons


def _levels(real: pd.DataFrame, predictors: Sequence[str]) -> dict[str, list]:
    return {p: sorted(real[p].dropna().unique().tolist(), key=str) for p in predictors if not is_numeric(real[p])}


def _design(
    frame: pd.DataFrame, spec: RegressionSpec, levels: dict[str, list]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Response, design matrix (with intercept) and term names; incomplete rows dropped."""
    missing = [c for c in spec.predictors if c not in frame.columns]
    if missing:
        raise ValueError(f"{spec.label}: predictor(s) {', '.join(missing)} missing in a replicate")
    if spec.outcome in frame.columns:
        y = frame[spec.outcome]
    else:
        try:
            y = pd.Series(frame.eval(spec.outcome, engine="python"), index=frame.index)
        except Exception as error:  # pandas raises many kinds here
            raise ValueError(f"{spec.label}: outcome {spec.outcome!r} cannot be evaluated: {error}") from error
    y = pd.Series(y, index=frame.index)
    if pd.api.types.is_bool_dtype(y):
        y = y.astype(float)
    if not is_numeric(y):
        raise ValueError(f"{spec.label}: outcome {spec.outcome!r} is not numeric or true/false")
    columns, names = [np.ones(len(frame))], ["(Intercept)"]
    complete = y.notna().to_numpy()
    for predictor in spec.predictors:
        values = frame[predictor]
        complete &= values.notna().to_numpy()
        if predictor in levels:
            # values unseen in the real data fall outside every dummy: drop those rows
            complete &= values.isin(levels[predictor]).to_numpy() | values.isna().to_numpy()
            for level in levels[predictor][1:]:
                columns.append((values == level).to_numpy(dtype=float))
                names.append(f"{predictor}[{level}]")
        else:
            columns.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
            names.append(predictor)
    X = np.column_stack(columns)[complete]
    response = y.to_numpy()[complete]
    if spec.kind == "logit" and not np.isin(response, (0.0, 1.0)).all():
        raise ValueError(f"{spec.label}: a logit outcome must be 0/1 or true/false")
    return response, X, names


def fit_spec(
    frame: pd.DataFrame, spec: RegressionSpec, levels: dict[str, list]
) -> tuple[Fit, list[str], dict[int, str]]:
    """The fit, its term names and its degenerate terms (:func:`degenerate_terms`)."""
    y, X, names = _design(frame, spec, levels)
    if len(y) <= X.shape[1]:
        raise ValueError(f"{spec.label}: {len(y)} complete records for {X.shape[1]} parameters")
    if spec.kind == "ols":
        fit = fit_ols(X, y)
    elif spec.kind == "logit":
        fit = fit_logit(X, y)
    else:
        raise ValueError(f"{spec.label}: unknown kind {spec.kind!r} (use 'ols' or 'logit')")
    return fit, names, degenerate_terms(fit, X, spec.kind)


def compare_regression(
    real: pd.DataFrame, replicates: Sequence[pd.DataFrame], spec: RegressionSpec, level: float = 0.95
) -> RegressionComparison:
    """Fit ``spec`` on real and every replicate; combine; compare coefficient by coefficient."""
    if not replicates:
        raise ValueError("at least one synthetic replicate is needed")
    missing = [c for c in spec.predictors if c not in real.columns]
    if missing:
        raise ValueError(f"{spec.label}: unknown predictor(s) {', '.join(missing)}")
    levels = _levels(real, spec.predictors)
    real_fit, names, real_degenerate = fit_spec(real, spec, levels)
    replicate_fits = [fit_spec(replicate, spec, levels) for replicate in replicates]
    fits = [fit for fit, _, _ in replicate_fits]
    synthetic_degenerate = np.zeros(len(names), dtype=bool)
    for _, _, degenerate in replicate_fits:
        synthetic_degenerate[list(degenerate)] = True
    combined = combine_estimates(np.array([f.coef for f in fits]), np.array([f.se**2 for f in fits]),
                                 n_real=len(real), n_syn=float(np.mean([len(r) for r in replicates])))
    quantile = stdtrit(real_fit.df_resid if real_fit.df_resid else np.inf, 0.5 + level / 2)
    real_lower, real_upper = real_fit.coef - quantile * real_fit.se, real_fit.coef + quantile * real_fit.se
    syn_lower, syn_upper = combined.interval(level)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        overlap = ci_overlap(real_lower, real_upper, syn_lower, syn_upper)
    overlap = np.where(synthetic_degenerate | ~np.isfinite(overlap), 0.0, overlap)
    table = pd.DataFrame(
        {
            "term": names,
            "real_coef": real_fit.coef,
            "real_se": real_fit.se,
            "real_lower": real_lower,
            "real_upper": real_upper,
            "synthetic_coef": combined.estimate,
            "synthetic_se": combined.se,
            "synthetic_lower": syn_lower,
            "synthetic_upper": syn_upper,
            "ci_overlap": overlap,
            "std_diff": (combined.estimate - real_fit.coef) / real_fit.se,
            "variance_fallback": combined.fallback,
            "synthetic_degenerate": synthetic_degenerate,
        }
    )
    kept = [j for j in range(len(names)) if j not in real_degenerate]
    excluded = {names[j]: f"not estimable in the real data: {reason}" for j, reason in real_degenerate.items()}
    replicate_coefficients = pd.DataFrame([f.coef for f in fits], columns=names)
    return RegressionComparison(spec, table.iloc[kept].reset_index(drop=True), replicate_coefficients, excluded)


def compare_regressions(
    real: pd.DataFrame, synthetic_replicates: Sequence[pd.DataFrame], specs: Sequence[RegressionSpec]
) -> list[RegressionComparison]:
    """``compare_regression`` for every spec."""
    return [compare_regression(real, synthetic_replicates, spec) for spec in specs]
