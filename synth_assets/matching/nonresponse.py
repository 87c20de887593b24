"""Item non-response in a donor survey, imputed from the survey's own respondents before fusion.

A respondent who skipped one question is still a donor for the others, but a missing item
must not be copied into the population: everyone there has a value.  So each survey is
completed first, then fused.

Why a nearest-neighbour hot deck (``nnd_hotdeck`` of :func:`synth_assets.matching.fuse`)
rather than a model: the imputed value is a real respondent's answer, so it is a valid
code, inside the range, and may be a special value (-8 "not applicable") exactly as often
as among similar respondents; a record missing several items takes them all from one
respondent, which keeps skip patterns (no hours, no occupation) coherent; and the donor is
the nearest on the common variables *and* on the record's own observed items, so the
imputation respects how the missing item relates to what the person did answer.  Drawing
among the ``k`` nearest (∝ weight) rather than always the single nearest keeps some of
the spread the non-respondents would have had.  Surveys are small (hundreds to a few
thousand records): no model to fit or tune, and the same machinery as the fusion itself.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger("synth_assets.matching")


def impute_item_nonresponse(
    table: pd.DataFrame,
    *,
    on: list[str],
    impute: list[str],
    weight: str | None = None,
    seed: int = 0,
    k: int = 5,
    what: str = "survey",
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fill the missing values of ``impute`` from the records of ``table`` that answered them.

    Records are grouped by which of ``impute`` they miss; a group takes all its missing items
    from one respondent to all of them, drawn (∝ ``weight``) among the ``k`` nearest in Gower
    distance on ``on`` plus the group's observed items.  Only original answers are donated,
    never values imputed here.  When nobody answered a group's items jointly, each item is
    taken from its own respondents.  Returns the completed table (same rows, index and
    dtypes) and the number of values imputed per variable; ``what`` names the table in errors.
    """
    from synth_assets.matching.api import fuse

    missing = table[impute].isna()
    counts = {z: int(missing[z].sum()) for z in impute}
    if not any(counts.values()):
        return table, counts
    nobody = [z for z in impute if counts[z] == len(table)]
    if nobody:
        raise ValueError(f"{what}: no record answered {nobody[0]!r}; its item non-response cannot be imputed")

    flags = missing.to_numpy()
    out = table.copy()
    draw = 0
    for pattern in np.unique(flags[flags.any(axis=1)], axis=0):
        rows = (flags == pattern).all(axis=1)
        absent = [z for z, m in zip(impute, pattern, strict=True) if m]
        present = [z for z, m in zip(impute, pattern, strict=True) if not m]
        jointly = ~missing[absent].any(axis=1).to_numpy()
        for items in [absent] if jointly.any() else [[z] for z in absent]:
            respondents = table.loc[~missing[items].any(axis=1).to_numpy()]
            result = fuse(
                table.loc[rows, on + present], respondents, on=on + present, impute=items,
                donor_weight=weight, method="nnd_hotdeck", seed=seed + draw, k=k,
            )
            draw += 1
            for z in items:
                column = out[z].copy()
                column.iloc[np.flatnonzero(rows)] = result.data[z].array  # positional: the index may repeat
                out[z] = column
    log.info("%s: item non-response imputed from respondents: %s", what,
             {z: n for z, n in counts.items() if n})
    return out, counts
