"""Early stopping's held-out rows for the families trained by epochs (``neural``, ``gan``).

Why whole units: the members of a household share its household-level values. Held out row
by row, a held-out member's household values are in training through the other members, so
a held-out score rewards memorising households (``neural.py`` gives the measurement).
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from synth_assets.synthesis.tabular import TabularSynthesizer


class HeldOutUnitsSynthesizer(TabularSynthesizer):
    """A table model that keeps ``holdout_share`` of the rows aside, whole ``holdout_groups`` units when named.

    Subclasses set ``holdout_share`` and ``holdout_groups`` in ``__init__`` and call
    :meth:`_holdout_split` in their ``_fit_model``.
    """

    holdout_share: float
    holdout_groups: list[str]
    _units: np.ndarray | None = None  # unit of each training row, during fit only

    def fit(self, data: pd.DataFrame) -> Self:
        missing = [c for c in self.holdout_groups if c not in data.columns]
        if missing:
            raise ValueError(f"holdout_groups not in the data: {missing}")
        if self.holdout_groups:
            self._units = data.groupby(self.holdout_groups, sort=False, dropna=False, observed=True).ngroup().to_numpy()
        try:
            super().fit(data)
        finally:
            self._units = None
        return self

    def _holdout_split(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(held-out rows, training rows) for early stopping: whole units when known."""
        if n < 200:
            return np.array([], dtype=np.int64), np.arange(n)
        if self._units is None:
            order = rng.permutation(n)
            n_hold = int(round(self.holdout_share * n))
            return order[:n_hold], order[n_hold:]
        units = rng.permutation(self._units.max() + 1)
        held = np.isin(self._units, units[: int(round(self.holdout_share * len(units)))])
        return np.flatnonzero(held), np.flatnonzero(~held)
