"""Plausibility rules of the catalog: pandas queries that every record must satisfy.

A rule over a missing value holds: a null is 'not applicable' (no hours for a child outside
the labour force survey's universe), and the rule speaks only of records it applies to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd


class RuleError(ValueError):
    """A rule cannot be evaluated on a table (a column it names is missing, say)."""


def referenced_columns(rule: str, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if re.search(rf"(?<![\w.]){re.escape(str(c))}(?!\w)", rule)]


def broken_rows(data: pd.DataFrame, rules: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Rows breaking at least one rule, and how many rows break each rule."""
    broken = np.zeros(len(data), dtype=bool)
    counts: dict[str, int] = {}
    for rule in rules:
        try:
            holds = pd.Series(data.eval(rule, engine="python"), index=data.index)
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise RuleError(f"rule `{rule}` cannot be evaluated: {exc}") from exc
        if not pd.api.types.is_bool_dtype(holds) and not holds.isna().any():
            raise RuleError(f"rule `{rule}` does not give one true/false per record")
        applicable = ~data[referenced_columns(rule, list(data.columns))].isna().any(axis=1)
        bad = (~holds.fillna(True).astype(bool) & applicable).to_numpy()
        counts[rule] = int(bad.sum())
        broken |= bad
    return broken, counts
