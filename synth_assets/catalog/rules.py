"""Plausibility rules of the catalog: pandas queries that every record must satisfy.

A rule over a missing value holds: a null is 'not applicable' (no hours for a child outside
the labour force survey's universe), and the rule speaks only of records it applies to.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd


class RuleError(ValueError):
    """A rule cannot be evaluated on a table (a column it names is missing, say)."""


def referenced_columns(rule: str, columns: Sequence[str]) -> list[str]:
    return list(_referenced(rule, tuple(columns)))


@functools.lru_cache(maxsize=4096)
def _referenced(rule: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    # cached: the enforcement checks the same rules on frames of the same columns thousands of times
    return tuple(c for c in columns if re.search(rf"(?<![\w.]){re.escape(str(c))}(?!\w)", rule))


def evaluated(data: pd.DataFrame, expression: str) -> pd.Series:
    """A catalog expression (a rule, a derived variable, an aggregate's ``where``) on every row of ``data``.

    Evaluated by ``pandas.eval`` on the columns it names alone, handed over as they are:
    ``DataFrame.eval`` wraps every column of its frame in a Series at each call, which cost more than
    the expression itself on the release's 70 columns (a fifth of recomputing a city's diary
    aggregates), and a frame of the named columns still cost half of checking a chunk's 39 rules
    (bench/README.md, "Forty-third pass" and "Forty-fourth pass"). A column whose name is no Python
    name (written with backticks) goes through ``DataFrame.eval``, which knows how to quote it.
    """
    named = referenced_columns(expression, list(data.columns))
    if all(str(c).isidentifier() and not keyword.iskeyword(str(c)) for c in named):
        # what DataFrame.eval hands pandas.eval, less the frame's other columns and its index
        values = pd.eval(expression, engine="python", resolvers=[{c: data[c] for c in named}])
    else:
        values = data[named].eval(expression, engine="python")
    return pd.Series(values, index=data.index)


def broken_rows(data: pd.DataFrame, rules: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Rows breaking at least one rule, and how many rows break each rule."""
    broken = np.zeros(len(data), dtype=bool)
    counts: dict[str, int] = {}
    missing: dict[str, np.ndarray] = {}  # each column's nulls, found once for every rule naming it
    for rule in rules:
        named = referenced_columns(rule, list(data.columns))
        try:
            holds = evaluated(data, rule)
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise RuleError(f"rule `{rule}` cannot be evaluated: {exc}") from exc
        if not pd.api.types.is_bool_dtype(holds) and not holds.isna().any():
            raise RuleError(f"rule `{rule}` does not give one true/false per record")
        applicable = np.ones(len(data), dtype=bool)
        for column in named:
            if column not in missing:
                missing[column] = data[column].isna().to_numpy()
            applicable &= ~missing[column]
        bad = ~holds.fillna(True).astype(bool).to_numpy() & applicable
        counts[rule] = int(bad.sum())
        broken |= bad
    return broken, counts


def _empty_frame(variables: dict[str, tuple[str, list[str] | None]]) -> pd.DataFrame:
    dtypes = {"integer": "Int64", "number": "float64", "boolean": "boolean"}
    return pd.DataFrame(
        {
            name: pd.Series(pd.Categorical([], categories=categories or []))
            if kind == "category"
            else pd.Series([], dtype=dtypes.get(kind, "object"))
            for name, (kind, categories) in variables.items()
        }
    )


def rule_problems(rules: Sequence[str], variables: dict[str, tuple[str, list[str] | None]]) -> list[str]:
    """Problems of ``release.rules`` against the schema, each naming ``release.rules[i]``.

    A rule is evaluated on an empty table with every declared variable (type and categories),
    so a name no source defines (``age_typo > 3``) or text that does not parse fails here,
    with the catalog, rather than on the fictitious data.
    """
    frame = _empty_frame(variables)
    problems = []
    for i, rule in enumerate(rules):
        where = f"release.rules[{i}] `{rule}`"
        if not isinstance(rule, str) or not rule.strip():
            problems.append(f"{where}: empty rule")
            continue
        try:
            frame.eval(rule, engine="python")
        except Exception as exc:  # pandas raises many kinds: undefined names, syntax, types
            kind = "names no variable of the catalog" if "not defined" in str(exc) else "cannot be evaluated"
            problems.append(f"{where}: {kind}: {exc}")
    return problems
