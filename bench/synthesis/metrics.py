"""Small local fidelity and privacy metrics for the synthesis benchmark.

Used because ``synth_assets.validation.metrics`` did not exist when the benchmark was
written; definitions follow /work/shared/PEERS.md so the numbers read against the peers':

* k-marginal (NIST SDNist style): numbers with more than 10 distinct values cut at 10
  quantile bins of TRAIN (right-closed), other columns as levels, missing a level of its
  own; 1000 x (1 - mean TVD) over all 1- and 2-way and 200 random 3-way marginals.
* copies: share of synthetic rows identical to a train row.
* DCR share: share of (2,000 sampled) synthetic rows whose nearest record by Gower distance
  is in train rather than holdout (ties count one half); for the baseline, holdout rows
  are compared with the other holdout rows.
* propensity AUC: HistGradientBoosting telling synthetic from train, 5-fold CV (shuffled).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

from synth_assets.synthesis.tabular import row_hashes


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def discretise(train: pd.DataFrame, other: pd.DataFrame, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of both tables on levels defined by train (missing: its own level)."""
    a = np.empty(train.shape, dtype=np.int64)
    b = np.empty(other.shape, dtype=np.int64)
    for j, col in enumerate(train.columns):
        if _is_number(train[col]) and train[col].nunique() > bins:
            edges = np.unique(np.quantile(train[col].dropna(), np.arange(1, bins) / bins))
            for out, table in ((a, train), (b, other)):
                x = table[col].to_numpy(dtype=float)
                out[:, j] = np.where(np.isnan(x), edges.size + 1, np.searchsorted(edges, x, side="left"))
        else:
            codes, _ = pd.factorize(pd.concat([train[col], other[col]], ignore_index=True).astype(object))
            codes = np.where(codes < 0, codes.max() + 1, codes)
            a[:, j], b[:, j] = codes[: len(train)], codes[len(train) :]
    return a, b


def _tvd(a: np.ndarray, b: np.ndarray) -> float:
    _, inverse = np.unique(np.concatenate([a, b]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    size = inverse.max() + 1
    p = np.bincount(inverse[: len(a)], minlength=size) / len(a)
    q = np.bincount(inverse[len(a) :], minlength=size) / len(b)
    return 0.5 * float(np.abs(p - q).sum())


def kmarginal(train: pd.DataFrame, other: pd.DataFrame, n3: int = 200, seed: int = 0) -> dict[str, float]:
    """k1, k2, k3 scores (0 to 1000)."""
    a, b = discretise(train, other[train.columns])
    p = a.shape[1]
    rng = np.random.default_rng(seed)
    triples = list(itertools.combinations(range(p), 3))
    chosen = [triples[i] for i in rng.choice(len(triples), min(n3, len(triples)), replace=False)]
    subsets = {
        "k1": [(j,) for j in range(p)],
        "k2": list(itertools.combinations(range(p), 2)),
        "k3": chosen,
    }
    return {k: 1000 * (1 - np.mean([_tvd(a[:, list(s)], b[:, list(s)]) for s in ss])) for k, ss in subsets.items()}


def copy_rate(train: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    return float(np.isin(row_hashes(synthetic[train.columns]), row_hashes(train)).mean())


class Gower:
    """Gower distances: |a-b| / range(train) for numbers, mismatch for the rest; missing: 0 if both."""

    def __init__(self, train: pd.DataFrame) -> None:
        self.columns = list(train.columns)
        self.numeric = [c for c in self.columns if _is_number(train[c])]
        self.categorical = [c for c in self.columns if c not in self.numeric]
        spans = train[self.numeric].max() - train[self.numeric].min()
        self.spans = spans.replace(0, 1).to_numpy(dtype=float)
        self.levels = {c: {v: i for i, v in enumerate(pd.unique(train[c].astype(object)))} for c in self.categorical}

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        num = df[self.numeric].to_numpy(dtype=float) / self.spans
        cat = np.column_stack(
            [df[c].astype(object).map(lambda v, m=self.levels[c]: m.get(v, -2 if pd.notna(v) else -1)).to_numpy(dtype=float)
             for c in self.categorical]
        ) if self.categorical else np.zeros((len(df), 0))
        return num.astype(np.float32), cat.astype(np.float32)

    def nearest(self, query: pd.DataFrame, pool: pd.DataFrame, exclude: np.ndarray | None = None) -> np.ndarray:
        """Distance from every query row to its nearest pool row (skipping pool row ``exclude[i]``)."""
        qn, qc = self.encode(query)
        pn, pc = self.encode(pool)
        out = np.empty(len(query))
        for start in range(0, len(query), 100):
            sl = slice(start, start + 100)
            qnan, pnan = np.isnan(qn[sl, None, :]), np.isnan(pn[None, :, :])
            dn = np.where(qnan & pnan, 0.0, np.where(qnan | pnan, 1.0, np.abs(qn[sl, None, :] - pn[None, :, :])))
            dist = (dn.sum(axis=2) + (qc[sl, None, :] != pc[None, :, :]).sum(axis=2)) / len(self.columns)
            if exclude is not None:
                dist[np.arange(dist.shape[0]), exclude[sl]] = np.inf
            out[sl] = dist.min(axis=1)
        return out


def dcr_share(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, *, n: int = 2000, seed: int = 0,
    synthetic_is_holdout: bool = False,
) -> float:
    """Share of synthetic rows nearer to train than to holdout (ties count one half).

    With ``synthetic_is_holdout`` (the baseline) each row is compared with the other
    holdout rows, not with itself.
    """
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(synthetic), min(n, len(synthetic)), replace=False))
    query = synthetic.iloc[rows][train.columns]
    gower = Gower(train)
    to_train = gower.nearest(query, train)
    to_holdout = gower.nearest(query, holdout[train.columns], exclude=rows if synthetic_is_holdout else None)
    return float(np.mean((to_train < to_holdout) + 0.5 * (to_train == to_holdout)))


def propensity_auc(train: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0) -> float:
    """Mean 5-fold AUC of a gradient-boosting classifier telling synthetic from train."""
    both = pd.concat([train, synthetic[train.columns]], ignore_index=True)
    for col in both.columns:
        if not _is_number(both[col]):
            both[col] = both[col].astype(str).astype("category")
    labels = np.r_[np.zeros(len(train)), np.ones(len(synthetic))]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(model, both, labels, cv=folds, scoring="roc_auc").mean())
