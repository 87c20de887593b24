"""Exact copies of real records in the synthetic data.

Rows are compared on their shared columns through :func:`synth_assets.common.hashing.row_hashes`:
numbers rounded to 6 significant digits, missing equals missing, categories compared as
text, each normalised row hashed (64 bits), so the comparison is linear in the number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from synth_assets.common.disclosure import disclosive_rows
from synth_assets.common.hashing import row_hashes


def _shared_columns(synthetic: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    columns = [c for c in synthetic.columns if c in reference.columns]
    if not columns:
        raise ValueError("synthetic and reference data share no column")
    return columns


def exact_copy_rate(synthetic: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Share of synthetic rows identical (on all shared columns) to some reference row."""
    if len(synthetic) == 0:
        return float("nan")
    syn, ref = row_hashes([synthetic, reference], _shared_columns(synthetic, reference))
    return float(np.isin(syn, ref).mean())


def replicated_uniques(
    synthetic: pd.DataFrame, reference: pd.DataFrame, quasi_identifiers: Sequence[str] | None = None
) -> dict[str, float]:
    """Reference records unique on the quasi-identifiers and replicated in the synthetic data.

    synthpop's ``replicated.uniques``: a record unique in the real data on its key
    (here the quasi-identifiers; all shared columns when None) is "replicated" when a
    synthetic record has the same key AND the same values on every other shared column,
    i.e. the one person who could be recognised has been copied whole.
    """
    columns = _shared_columns(synthetic, reference)
    keys = list(columns if quasi_identifiers is None else quasi_identifiers)
    unknown = [k for k in keys if k not in columns]
    if unknown:
        raise ValueError(f"quasi-identifier(s) not in both tables: {', '.join(unknown)}")
    ref_keys, _ = row_hashes([reference, synthetic], keys)
    ref_rows, syn_rows = row_hashes([reference, synthetic], columns)
    key_counts = pd.Series(ref_keys).map(pd.Series(ref_keys).value_counts()).to_numpy()
    unique = key_counts == 1
    replicated = unique & np.isin(ref_rows, syn_rows)
    n_unique, n_replicated = int(unique.sum()), int(replicated.sum())
    return {
        "n_unique": n_unique,
        "n_replicated": n_replicated,
        "share_of_records": n_replicated / len(reference) if len(reference) else float("nan"),
        "share_of_uniques": n_replicated / n_unique if n_unique else 0.0,
    }


def disclosive_copies(
    synthetic: pd.DataFrame, reference: pd.DataFrame, columns: Sequence[str],
    quasi_identifiers: Sequence[str] | None, k: int,
) -> dict[str, int]:
    """Synthetic records that disclose a reference record, per filter (the release's copy filters).

    ``replicated rare record``: equal, on the columns both have, to a reference record fewer
    than ``k`` reference records share the quasi-identifiers with; ``full copy``: equal on
    every one of ``columns`` (counted only when the reference has them all). See
    :mod:`synth_assets.common.disclosure`.
    """
    masks = disclosive_rows(synthetic, reference, columns, quasi_identifiers=quasi_identifiers, k=k)
    return {kind: int(mask.sum()) for kind, mask in masks.items()}
