"""Item non-response in a donor survey, imputed from the survey's own respondents before fusion.

A respondent who skipped one question is still a donor for the others, but a missing item
must not be copied into the population: everyone there has a value.  So each survey is
completed first, then fused.

Why a nearest-neighbour hot deck (``nnd_hotdeck`` of :func:`synth_assets.matching.fuse`)
rather than a model: the imputed value is a real respondent's answer, so it is a valid
code, inside the range, and may be a special value (-8 "not applicable") exactly as often
as among similar respondents; a record missing several items takes them all from one
respondent, which keeps skip patterns (no hours, no occupation) coherent; and the donor
shares the record's observed items (their categories, the sign of numbers) and is the
nearest on the common variables and those items, so the imputation respects how the
missing item relates to what the person did answer.  Drawing among the ``k`` nearest
(∝ weight) rather than always the single nearest keeps some of the spread the
non-respondents would have had.  Surveys are small (hundreds to a few thousand records):
no model to fit or tune, and the same machinery as the fusion itself.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.matching.api import fuse
from synth_assets.matching.encoding import as_float

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
    distance on ``on`` plus the group's observed items, among respondents sharing the observed
    items' categories and the signs of its numbers.  Only original answers are donated,
    never values imputed here.  When nobody answered a group's items jointly, each item is
    taken from its own respondents.  Returns the completed table (same rows, index and
    dtypes) and the number of values imputed per variable; ``what`` names the table in errors.
    """
    missing = table[impute].isna()
    counts = {z: int(missing[z].sum()) for z in impute}
    if not any(counts.values()):
        return table, counts
    nobody = [z for z in impute if counts[z] == len(table)]
    if nobody:
        raise ValueError(f"{what}: no record answered {nobody[0]!r}; its item non-response cannot be imputed")

    index = table.index  # worked on positionally, given back as it came
    table, missing = table.reset_index(drop=True), missing.reset_index(drop=True)
    flags = missing.to_numpy()
    out = table.copy()
    draw = 0
    for pattern in np.unique(flags[flags.any(axis=1)], axis=0):
        rows = (flags == pattern).all(axis=1)
        absent = [z for z, m in zip(impute, pattern, strict=True) if m]
        present = [z for z, m in zip(impute, pattern, strict=True) if not m]
        jointly = ~missing[absent].any(axis=1).to_numpy()
        classes = _item_classes(table, present)
        for items in [absent] if jointly.any() else [[z] for z in absent]:
            answered = ~missing[items].any(axis=1).to_numpy()
            result = fuse(
                pd.concat([table.loc[rows, on + present], classes.loc[rows]], axis=1),
                pd.concat([table.loc[answered], classes.loc[answered]], axis=1),
                on=on + present, impute=items, donor_weight=weight, donation_classes=list(classes.columns),
                method="nnd_hotdeck", seed=seed + draw, k=k,
                # a few non-respondents may live where no respondent of the item does (a
                # municipality absent from a survey bootstrap): a class without donors
                one_table=True,
            )
            draw += 1
            for z in items:
                column = out[z].copy()
                column.iloc[np.flatnonzero(rows)] = result.data[z].array
                out[z] = column
    log.info("%s: item non-response imputed from respondents: %s", what,
             {z: n for z, n in counts.items() if n})
    out.index = index
    return out, counts


def _item_classes(table: pd.DataFrame, items: list[str]) -> pd.DataFrame:
    """Donation classes from a record's observed items: categories as they are, numbers by sign.

    In Gower distance a numeric item weighs at most as much as one category of a common
    variable, too little to keep skip patterns: a person working 40 hours could take
    "no occupation" from a respondent of the same sex and town.  Matching the observed items'
    category, and the sign of numbers (negative special codes such as -8 "not applicable",
    zero for "none", positive amounts), within a class makes them decisive; a class without
    respondents falls back to all of them (logged by the matching).
    """
    classes = {}
    for z in items:
        column = table[z]
        if is_numeric(column):
            column = pd.Series(np.sign(as_float(column)), index=table.index)
        classes[f"__class_{z}"] = column
    return pd.DataFrame(classes, index=table.index)
