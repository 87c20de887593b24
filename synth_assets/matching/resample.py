"""Design-respecting bootstrap draws of a donor survey, for replicates of the whole chain.

A release's replicates must carry the sampling uncertainty of the surveys its variables
come from (issue 12; Rässler 2002 treats statistical matching as multiple imputation for
this reason). Replicate r therefore fuses a bootstrap draw of every donor survey, not the
survey itself: :func:`resample_survey` is the rescaling bootstrap of Rao & Wu (1988) for a
(stratified) cluster sample:

* the resampling unit is the primary sampling unit (``psu``), by default the household:
  members of a household are never split, so within-household relations and the
  clustering of persons in households are kept;
* within each stratum h (one stratum when the survey declares none) ``n_h − 1`` of its
  ``n_h`` units are drawn with replacement, each kept as many times as it is drawn;
* every drawn unit keeps its design weight times ``n_h / (n_h − 1)``, so the weighted
  totals stay unbiased and the bootstrap variance of a linear estimator is the usual
  with-replacement design variance (the naive ``n_h`` draw underestimates it by
  ``(n_h − 1) / n_h``).

A unit drawn twice becomes two distinct units (fresh household and person ids), so the
matching sees two donors, with the weight of each. Item non-response is imputed after the
draw (:func:`synth_assets.matching.sources.fuse_sources` does it), so its uncertainty is
redrawn too.

With ``copies_column`` each row also names the delivered row it copies. A method that holds
donors out to judge itself (``neural_draw``'s early stopping) must hold out a record with all
its copies: a copy left on the training side makes the held-out loss a training loss, and the
network trains on as it memorises (bench/README.md, "Fortieth pass").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The column :func:`resample_survey` names the copied row in (``copies_column``): the row's position in
#: the survey as delivered, the same for every copy of it.
COPIES_COLUMN = "__copy_of_row"


def resample_survey(
    table: pd.DataFrame,
    rng: np.random.Generator,
    *,
    weight: str | None,
    household_id: str | None = None,
    person_id: str | None = None,
    psu: str | None = None,
    strata: str | None = None,
    copies_column: str | None = None,
) -> pd.DataFrame:
    """One Rao–Wu bootstrap draw of ``table`` (a survey, one row per person).

    ``psu`` (default ``household_id``, else every row its own unit) is resampled within
    ``strata``. Returns a new table with the drawn units, their ids renumbered 1, 2, ...
    (``household_id``; ``person_id`` too) and ``weight`` rescaled; with ``copies_column``, that column
    holds each row's position in ``table`` (the row it copies).
    """
    if len(table) == 0:
        return table.assign(**{copies_column: np.empty(0, np.int64)}) if copies_column else table.copy()
    unit = psu or household_id
    data = table.reset_index(drop=True)
    unit_codes = (pd.factorize(data[unit])[0] if unit else np.arange(len(data))).astype(np.int64)
    if (unit_codes < 0).any():
        raise ValueError(f"resample_survey: missing values in the sampling unit column {unit!r}")
    n_units = int(unit_codes.max()) + 1
    if strata:
        stratum_of_unit = np.zeros(n_units, dtype=np.int64)
        stratum_of_unit[unit_codes] = pd.factorize(data[strata])[0]
    else:
        stratum_of_unit = np.zeros(n_units, dtype=np.int64)
    times = np.zeros(n_units, dtype=np.int64)  # how often each unit is drawn
    scale = np.ones(n_units)
    for h in np.unique(stratum_of_unit):
        members = np.flatnonzero(stratum_of_unit == h)
        n_h = len(members)
        if n_h == 1:  # a lone unit cannot be resampled: kept as it is
            times[members] = 1
            continue
        drawn = rng.choice(members, n_h - 1, replace=True)
        np.add.at(times, drawn, 1)
        scale[members] = n_h / (n_h - 1)
    # rows of every drawn unit, repeated as often as it was drawn, one copy after another
    order = np.argsort(unit_codes, kind="stable")
    starts = np.searchsorted(unit_codes[order], np.arange(n_units))
    ends = np.searchsorted(unit_codes[order], np.arange(n_units), side="right")
    copies = np.repeat(np.arange(n_units), times)  # one entry per drawn copy
    rows = np.concatenate([order[starts[u]:ends[u]] for u in copies]) if len(copies) else np.empty(0, np.int64)
    copy_of_row = np.repeat(np.arange(len(copies)), (ends - starts)[copies])
    out = data.iloc[rows].reset_index(drop=True)
    if weight:
        out[weight] = out[weight].to_numpy(dtype=float) * scale[unit_codes[rows]]
    if household_id:
        out[household_id] = _ids_like(out[household_id], copy_of_row + 1)
    if person_id:
        out[person_id] = _ids_like(out[person_id], np.arange(1, len(out) + 1))
    if copies_column:
        if copies_column in out.columns:
            raise ValueError(f"resample_survey: the table already has a column {copies_column!r}")
        out[copies_column] = rows
    return out


def _ids_like(column: pd.Series, values: np.ndarray) -> pd.Series:
    """New ids in the column's own kind: numbers stay numbers, anything else becomes text."""
    if pd.api.types.is_numeric_dtype(column):
        return pd.Series(values, dtype=column.dtype if pd.api.types.is_integer_dtype(column) else "int64")
    return pd.Series([f"b{v}" for v in values], dtype=column.dtype if column.dtype != object else object)
