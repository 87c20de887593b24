"""Marginal calibration: a neural model's numbers put back on the training data's distributions.

CTGAN and TVAE get the dependence between columns roughly right long before they get each
column's own distribution right: on EU-SILC after 100 CTGAN epochs, the numeric columns'
1-way scores average 868/1000 while the holdout reaches 986, and every 2- and 3-way table
inherits those errors. Calibration keeps each generated record's *rank* within its column
and replaces its value by the training distribution's quantile at that rank (as Goldstein's
multivariate-normal approach does with its normal scores): the 1-way distribution becomes
the training one, the model's ordering of records, and so its dependence, is kept.

What is calibrated, per numeric column with more than ``min_distinct`` values: everything
but missing values and special codes (negative integer codes such as -8, and the codes the
caller declared), which keep their generated share; a point mass such as "exactly zero"
is part of the distribution, so a semi-continuous income gets the training share of zeros
(the records the model ranks lowest become the zeros). Values between quantiles are
interpolated unless the column's values repeat (fewer than 10% distinct), where they stay
on the training support. Ties are broken at random.

Measured on EU-SILC (CTGAN, 100 epochs): k1 873 → 957, k3 689 → 803, distance-to-closest-
record share 0.50 before and after. A record can now break a rule the model had learnt
(a zero that moved), which the pipeline's rule enforcement then replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Grid of the stored quantile functions: 1001 points, as the transformer's codecs keep.
GRID = np.linspace(0.0, 1.0, 1001)


@dataclass
class MarginalCalibrator:
    """Per calibrated column: training quantiles, the codes left alone, and value type."""

    quantiles: dict[str, np.ndarray] = field(default_factory=dict)
    codes: dict[str, list[float]] = field(default_factory=dict)
    interpolate: dict[str, bool] = field(default_factory=dict)
    integer: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, data: pd.DataFrame, special_codes: dict[str, list[float]] | None = None, min_distinct: int = 10,
        skip: tuple[str, ...] = (),
    ) -> MarginalCalibrator:
        calibrator = cls()
        for name in data.columns:
            series = data[name]
            if name in skip or not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
                continue
            x = series.to_numpy(dtype=float, na_value=np.nan)
            x = x[~np.isnan(x)]
            values, counts = np.unique(x, return_counts=True)
            codes = set((special_codes or {}).get(name, []))
            codes |= set(values[(values < 0) & (values == np.round(values)) & (counts / max(len(x), 1) >= 0.01)].tolist())
            kept = x[~np.isin(x, sorted(codes))]
            if np.unique(kept).size <= min_distinct:
                continue
            calibrator.quantiles[name] = np.quantile(kept, GRID, method="inverted_cdf")
            calibrator.codes[name] = sorted(float(c) for c in codes)
            calibrator.interpolate[name] = np.unique(kept).size >= 0.1 * kept.size
            calibrator.integer[name] = bool(np.all(kept == np.round(kept)))
        return calibrator

    def apply(self, sample: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """``sample`` with each calibrated column mapped, rank for rank, onto the training quantiles."""
        out = sample.copy()
        for name, quantiles in self.quantiles.items():
            if name not in out:
                continue
            x = out[name].to_numpy(dtype=float, na_value=np.nan)
            rows = np.flatnonzero(~np.isnan(x) & ~np.isin(x, self.codes[name]))
            if rows.size < 2:
                continue
            # Random tie-break: order by value, then by a random key.
            order = np.lexsort((rng.random(rows.size), x[rows]))
            u = np.empty(rows.size)
            u[order] = (np.arange(rows.size) + 0.5) / rows.size
            if self.interpolate[name]:
                mapped = np.interp(u, GRID, quantiles)
            else:
                mapped = quantiles[np.minimum(np.searchsorted(GRID, u), GRID.size - 1)]
            if self.integer[name]:
                mapped = np.round(mapped)
            x[rows] = mapped
            out[name] = pd.Series(x, index=out.index).astype(out[name].dtype, errors="ignore")
        return out
