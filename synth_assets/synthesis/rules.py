"""Declarative edit rules: checked on any table, applied to synthetic output after sampling.

Models learn relations only approximately; rules restore the ones that hold by definition
(a total is the sum of its parts, children have no labour income, codes lie in their code
list). ``check_rules`` reports the share of records breaking each rule, so the same rules
serve as a validation report on real or synthetic data; ``apply_rules`` repairs the breaks,
in the order given (put :class:`Derived` totals after the rules that change components).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd


class Rule(Protocol):
    """A rule knows which records break it and how to repair them."""

    @property
    def name(self) -> str: ...

    def violations(self, df: pd.DataFrame) -> pd.Series: ...

    def apply(self, df: pd.DataFrame) -> pd.DataFrame: ...


def _cast_like(values: pd.Series, like: pd.Series) -> pd.Series:
    """Cast repaired values back to the column's dtype (integer totals stay integers)."""
    if pd.api.types.is_integer_dtype(like.dtype) and values.isna().any():
        return values
    if pd.api.types.is_integer_dtype(like.dtype):
        return values.round().astype(like.dtype)
    return values.astype(like.dtype)


@dataclass(frozen=True)
class Derived:
    """``target`` equals the sum of ``expr_sum`` (missing components count as 0; all missing → missing)."""

    target: str
    expr_sum: tuple[str, ...]
    rtol: float = 1e-6
    atol: float = 0.01

    def __post_init__(self) -> None:
        object.__setattr__(self, "expr_sum", tuple(self.expr_sum))

    @property
    def name(self) -> str:
        return f"{self.target} = {' + '.join(self.expr_sum)}"

    def _total(self, df: pd.DataFrame) -> pd.Series:
        return df[list(self.expr_sum)].astype(float).sum(axis=1, min_count=1)

    def violations(self, df: pd.DataFrame) -> pd.Series:
        total = self._total(df).to_numpy()
        target = df[self.target].astype(float).to_numpy()
        both_missing = np.isnan(total) & np.isnan(target)
        close = np.isclose(target, total, rtol=self.rtol, atol=self.atol)
        return pd.Series(~(close | both_missing), index=df.index)

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out[self.target] = _cast_like(self._total(df), df[self.target])
        return out


@dataclass(frozen=True)
class ZeroWhen:
    """``column`` is 0 (or missing, i.e. not applicable) where ``condition`` holds, e.g. ``"age < 16"``."""

    column: str
    condition: str

    @property
    def name(self) -> str:
        return f"{self.column} == 0 when {self.condition}"

    def violations(self, df: pd.DataFrame) -> pd.Series:
        applies = df.eval(self.condition).fillna(False).astype(bool)
        values = pd.to_numeric(df[self.column], errors="coerce")
        return applies & values.notna() & (values != 0)

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out.loc[self.violations(df), self.column] = 0
        return out


@dataclass(frozen=True)
class InCategories:
    """Values of ``column`` lie in ``allowed`` (missing allowed); breaks become ``fallback``.

    Without a ``fallback`` the most frequent allowed value in the table is used, or missing
    when no record holds an allowed value.
    """

    column: str
    allowed: frozenset[Any]
    fallback: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", frozenset(self.allowed))

    @property
    def name(self) -> str:
        return f"{self.column} in {sorted(self.allowed, key=str)}"

    def violations(self, df: pd.DataFrame) -> pd.Series:
        values = df[self.column]
        return values.notna() & ~values.isin(self.allowed)

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        bad = self.violations(df)
        if not bad.any():
            return df
        fallback = self.fallback
        if fallback is None:
            ok = df.loc[~bad, self.column].dropna()
            fallback = ok.mode().iloc[0] if len(ok) else None
        out = df.copy()
        out.loc[bad, self.column] = fallback
        return out


def check_rules(df: pd.DataFrame, rules: Sequence[Rule]) -> dict[str, float]:
    """Share of records breaking each rule, keyed by the rule's readable name."""
    return {rule.name: float(rule.violations(df).mean()) if len(df) else 0.0 for rule in rules}


def apply_rules(df: pd.DataFrame, rules: Sequence[Rule]) -> pd.DataFrame:
    """Repair every rule in order and return the repaired copy."""
    for rule in rules:
        df = rule.apply(df)
    return df
