"""The validated inputs of one fusion, shared by every method.

Validation happens once, here, with messages that name the offending column:
a matching run is usually one step of a long pipeline and "KeyError: 'x'" deep
inside a KD tree helps nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.matching.classes import ClassBlock, donation_blocks

DISTANCES = ("gower", "mahalanobis")


@dataclass
class FusionProblem:
    """Recipient A (X, Y), donor B (X, Z) and everything a method needs to impute Z into A."""

    recipient: pd.DataFrame
    donor: pd.DataFrame
    on: list[str]
    impute: list[str]
    recipient_weights: np.ndarray
    donor_weights: np.ndarray
    donation_classes: list[str] = field(default_factory=list)
    distance: str = "gower"
    auxiliary: pd.DataFrame | None = None
    recipient_weight: str | None = None
    donor_weight: str | None = None
    #: For each donor row, the record it copies (codes 0..); None: every row a record of its own
    donor_copies: np.ndarray | None = None

    @cached_property
    def blocks(self) -> list[ClassBlock]:
        return donation_blocks(self.recipient, self.donor, self.donation_classes)

    @property
    def predictors(self) -> list[str]:
        """X for model-based methods: ``on`` plus the donation class variables not already in it."""
        return self.on + [c for c in self.donation_classes if c not in self.on]

    def recipient_mean(self, values: np.ndarray) -> float | None:
        """Mean of a per-recipient quantity with recipient weights (None if they sum to 0)."""
        total = self.recipient_weights.sum()
        return float(np.dot(values, self.recipient_weights) / total) if total > 0 else None


def describe_columns(frame: pd.DataFrame, limit: int = 30) -> str:
    names = [str(c) for c in frame.columns]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    """Raise ``ValueError`` naming the first column of ``columns`` that ``frame`` lacks."""
    for col in columns:
        if col not in frame.columns:
            raise ValueError(f"{what} has no column {col!r} (columns: {describe_columns(frame)})")


def check_weights(frame: pd.DataFrame, column: str, what: str, *, allow_zero: bool) -> np.ndarray:
    """Weights as floats; missing, non-numeric, negative (or zero) values are errors."""
    values = frame[column]
    if not is_numeric(values):
        raise ValueError(f"{what} weight column {column!r} is not numeric (dtype {values.dtype})")
    weights = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(weights) | (weights < 0 if allow_zero else weights <= 0)
    if bad.any():
        first = frame.index[np.flatnonzero(bad)[0]]
        rule = "non-negative" if allow_zero else "positive"
        raise ValueError(
            f"{what} weight column {column!r} must be finite and {rule}: "
            f"{int(bad.sum())} bad value(s), first at index {first!r} ({values.loc[first]!r})"
        )
    return weights


def build_problem(
    recipient: pd.DataFrame,
    donor: pd.DataFrame,
    *,
    on: list[str],
    impute: list[str],
    recipient_weight: str | None,
    donor_weight: str | None,
    donation_classes: list[str] | None,
    distance: str,
    auxiliary: pd.DataFrame | None,
    one_table: bool = False,
    donor_copies: str | None = None,
) -> FusionProblem:
    """Check the inputs of :func:`synth_assets.matching.fuse` and bundle them."""
    if not isinstance(recipient, pd.DataFrame) or not isinstance(donor, pd.DataFrame):
        raise ValueError("recipient and donor must be pandas DataFrames")
    on, impute, classes = list(on), list(impute), list(donation_classes or [])
    if not on:
        raise ValueError("'on' must name at least one common (X) variable")
    if not impute:
        raise ValueError("'impute' must name at least one donor (Z) variable")
    for name, cols in (("on", on), ("impute", impute), ("donation_classes", classes)):
        duplicated = sorted({c for c in cols if cols.count(c) > 1})
        if duplicated:
            raise ValueError(f"{name!r} lists {duplicated[0]!r} more than once")
    overlap = [c for c in impute if c in on or c in classes]
    if overlap:
        raise ValueError(f"column {overlap[0]!r} cannot be both imputed and matched on")
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r} (choose from {', '.join(DISTANCES)})")
    if donor.empty:
        raise ValueError("donor has no rows")

    require_columns(recipient, on + classes + ([recipient_weight] if recipient_weight else []), "recipient")
    require_columns(donor, on + impute + classes + ([donor_weight] if donor_weight else []), "donor")
    clash = [c for c in impute if c in recipient.columns]
    if clash:
        raise ValueError(f"recipient already has column {clash[0]!r}; drop or rename it before imputing it")
    for col in on + classes:
        if is_numeric(recipient[col]) != is_numeric(donor[col]) and not _all_missing(recipient[col], donor[col]):
            kinds = {True: "numeric", False: "categorical"}
            raise ValueError(
                f"column {col!r} is {kinds[is_numeric(recipient[col])]} ({recipient[col].dtype}) in the recipient "
                f"but {kinds[is_numeric(donor[col])]} ({donor[col].dtype}) in the donor; harmonise its type first"
            )

    if not one_table:  # rows of one table share its coding: no mismatch to catch
        check_label_overlap(recipient, donor, on + classes)

    recipient_weights = (
        check_weights(recipient, recipient_weight, "recipient", allow_zero=True)
        if recipient_weight
        else np.ones(len(recipient))
    )
    donor_weights = (
        check_weights(donor, donor_weight, "donor", allow_zero=False) if donor_weight else np.ones(len(donor))
    )
    copies = None
    if donor_copies is not None:
        require_columns(donor, [donor_copies], "donor")
        copies, _ = pd.factorize(donor[donor_copies])
        if (copies < 0).any():
            raise ValueError(f"donor column {donor_copies!r} (the record each row copies) has missing values")
    return FusionProblem(
        recipient=recipient,
        donor=donor,
        on=on,
        impute=impute,
        recipient_weights=recipient_weights,
        donor_weights=donor_weights,
        donation_classes=classes,
        distance=distance,
        auxiliary=auxiliary,
        recipient_weight=recipient_weight,
        donor_weight=donor_weight,
        donor_copies=copies,
    )


def check_label_overlap(recipient: pd.DataFrame, donor: pd.DataFrame, columns: list[str]) -> None:
    """Refuse a categorical matching or class variable whose recipient labels match no donor label.

    Without this, F/M against female/male sends every donation class to the all-donors
    fallback and makes every categorical distance maximal: the fusion runs and means nothing.
    A single class missing among the donors is still the documented fallback.
    """
    for col in columns:
        if is_numeric(recipient[col]) or is_numeric(donor[col]):
            continue
        rec = sorted({str(v) for v in recipient[col].dropna().unique()})
        don = sorted({str(v) for v in donor[col].dropna().unique()})
        if rec and don and not set(rec) & set(don):
            raise ValueError(
                f"column {col!r}: no recipient label matches a donor label "
                f"(recipient {rec[:10]}, donor {don[:10]}); harmonise its coding first"
            )


def _all_missing(*columns: pd.Series) -> bool:
    """A column entirely empty on one side carries no type to disagree with."""
    return any(c.isna().all() for c in columns)
