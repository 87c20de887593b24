"""Fit a model on every replicate of a release and combine: the analyst's entry point.

    from synth_assets.inference import load_release, ols_on_replicates

    release = load_release("data/public/LATEST")        # or a release folder
    fit = ols_on_replicates(release.replicates, "log(labour_income)",
                            ["age", "age ** 2", "sex", "citizenship"],
                            where="labour_income > 0", n_real=release.n_real(["labour_income"]))
    print(fit.table())                                   # estimate, se, df, 95% interval

Any estimator works through :func:`fit_replicates`: give it a function returning estimates
and their variances for one data frame. The rule is the fully synthetic one
(:mod:`synth_assets.inference.combining`, which says what a replicate is and the floor).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.inference.combining import CombinedEstimate, combine_estimates
from synth_assets.inference.models import fit_logit, fit_ols

REPLICATE_FILE = re.compile(r"fictitious_population_r(\d+)\.parquet$")


@dataclass(frozen=True)
class CombinedFit:
    """A model combined over replicates: per-term estimate, se, df and interval."""

    names: list[str]
    combined: CombinedEstimate
    per_replicate: pd.DataFrame = field(repr=False)  # estimates, one row per replicate
    per_replicate_variance: pd.DataFrame | None = field(default=None, repr=False)  # their variances, alike

    @property
    def estimate(self) -> np.ndarray:
        return np.atleast_1d(self.combined.estimate)

    @property
    def se(self) -> np.ndarray:
        return np.atleast_1d(self.combined.se)

    @property
    def df(self) -> np.ndarray:
        return np.atleast_1d(self.combined.df)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        low, high = self.combined.interval(level)
        return np.atleast_1d(low), np.atleast_1d(high)

    def table(self, level: float = 0.95) -> pd.DataFrame:
        low, high = self.interval(level)
        return pd.DataFrame(
            {"estimate": self.estimate, "se": self.se, "df": self.df, "lower": low, "upper": high,
             "floor_used": np.atleast_1d(self.combined.fallback)},
            index=pd.Index(self.names, name="term"),
        )


Fit = Callable[[pd.DataFrame], tuple[Any, Any]]


def fit_replicates(
    replicates: Sequence[pd.DataFrame],
    fit: Fit,
    *,
    names: Sequence[str] | None = None,
    n_real: float | None = None,
) -> CombinedFit:
    """Apply ``fit`` (frame -> (estimates, variances)) to every replicate and combine.

    ``n_real``: the size of the real data the estimate rests on (see the floor in
    :mod:`~synth_assets.inference.combining`); n_syn is the replicates' mean size.
    """
    if not replicates:
        raise ValueError("fit_replicates: no replicate given")
    estimates, variances = [], []
    for frame in replicates:
        q, u = fit(frame)
        estimates.append(np.atleast_1d(np.asarray(q, float)))
        variances.append(np.atleast_1d(np.asarray(u, float)))
    q, u = np.vstack(estimates), np.vstack(variances)
    names = list(names) if names is not None else [f"q{i}" for i in range(q.shape[1])]
    n_syn = float(np.mean([len(f) for f in replicates]))
    combined = combine_estimates(q, u, n_real=n_real, n_syn=n_syn if n_real else None)
    return CombinedFit(names, combined, pd.DataFrame(q, columns=names), pd.DataFrame(u, columns=names))


def _model_on_replicates(kind: str, replicates: Sequence[pd.DataFrame], outcome: str,
                         predictors: Sequence[str], where: str | None, cov: str,
                         n_real: float | None, levels: dict[str, list] | None = None) -> CombinedFit:
    fitter = fit_ols if kind == "ols" else fit_logit
    levels = levels if levels is not None else {}  # fixed by the first replicate, the same for all
    names: list[str] = []

    def fit(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        data = frame.query(where, engine="python") if where else frame
        result = fitter(data, outcome, predictors, cov=cov, levels=levels)
        if names and result.names != names:
            raise ValueError(f"replicates give different terms: {result.names} vs {names}")
        names[:] = result.names
        return result.coef, result.variance

    out = fit_replicates(replicates, fit, n_real=n_real)
    variance = out.per_replicate_variance
    return CombinedFit(names, out.combined, out.per_replicate.set_axis(names, axis=1),
                       None if variance is None else variance.set_axis(names, axis=1))


def ols_on_replicates(replicates: Sequence[pd.DataFrame], outcome: str, predictors: Sequence[str], *,
                      where: str | None = None, cov: str = "model", n_real: float | None = None) -> CombinedFit:
    """OLS of ``outcome`` on ``predictors`` (columns or expressions) on every replicate, combined.

    ``where``: a pandas query selecting the records (e.g. ``"labour_income > 0"``).
    """
    return _model_on_replicates("ols", replicates, outcome, predictors, where, cov, n_real)


def logit_on_replicates(replicates: Sequence[pd.DataFrame], outcome: str, predictors: Sequence[str], *,
                        where: str | None = None, cov: str = "model", n_real: float | None = None) -> CombinedFit:
    """Logit of a 0/1 or true/false ``outcome`` (e.g. ``"tenure == 'owner'"``), combined."""
    return _model_on_replicates("logit", replicates, outcome, predictors, where, cov, n_real)


@dataclass
class Release:
    """A published release: its replicates (in order) and its data card."""

    path: Path
    replicates: list[pd.DataFrame]
    card: dict[str, Any]

    @property
    def sources(self) -> dict[str, Any]:
        """Per source: its role and real size (``inference.sources`` of the card), when recorded."""
        return dict(self.card.get("inference", {}).get("sources", {}))

    def n_real(self, columns: Sequence[str]) -> float | None:
        """Real size behind an estimate on ``columns``: the smallest source of any of them.

        Register columns count the register's persons, survey columns their survey's
        respondents (persons). None when the card does not say (releases before issue 12).
        """
        sizes = [info.get("persons") for info in self.sources.values()
                 if set(info.get("columns", [])) & set(columns) and info.get("persons")]
        register = [info.get("persons") for info in self.sources.values() if info.get("kind") == "register"]
        if sizes:
            return float(min(sizes))
        return float(register[0]) if register and register[0] else None


def load_release(path: str | Path, *, columns: Sequence[str] | None = None) -> Release:
    """The replicates and data card of a release folder (``data/public/<release>``).

    ``path`` may also be a public folder: its ``LATEST`` release is read.
    """
    path = Path(path)
    if (path / "LATEST").is_file() and not (path / "data_card.json").is_file():
        path = path / (path / "LATEST").read_text().strip()
    if path.name == "LATEST" and path.is_file():
        path = path.parent / path.read_text().strip()
    files = sorted((int(m.group(1)), p) for p in path.glob("fictitious_population_r*.parquet")
                   if (m := REPLICATE_FILE.search(p.name)))
    if not files:
        raise FileNotFoundError(f"{path}: no fictitious_population_r<k>.parquet in this folder")
    card_file = path / "data_card.json"
    card = json.loads(card_file.read_text()) if card_file.is_file() else {}
    replicates = [pd.read_parquet(p, columns=list(columns) if columns else None) for _, p in files]
    return Release(path, replicates, card)
