"""Exact copies of real records in the synthetic data.

Rows are compared on their shared columns through :func:`synth_assets.common.hashing.row_hashes`:
numbers rounded to 6 significant digits, missing equals missing, categories compared as
text, each normalised row hashed (64 bits), so the comparison is linear in the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from synth_assets.common.disclosure import DisclosureIndex, disclosive_rows, judge_all
from synth_assets.common.hashing import block_row_hashes, in_sorted, numeric_in_all
from synth_assets.common.parallel import forked_imap
from synth_assets.validation.preparation import Table, table_blocks, table_empty, table_rows


def _shared_columns(synthetic: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    columns = [c for c in synthetic.columns if c in reference.columns]
    if not columns:
        raise ValueError("synthetic and reference data share no column")
    return columns


def _hashes(table: Table, columns: Sequence[str], numeric: set[str]) -> np.ndarray:
    """Row hashes of ``table`` on ``columns``, a row group at a time from a file."""
    return block_row_hashes((block[list(columns)] for block in table_blocks(table)), columns, numeric)


def exact_copy_rate(synthetic: Table, reference: Table) -> float:
    """Share of synthetic rows identical (on all shared columns) to some reference row.

    Either table may be on disk (``ParquetTable``): hashed a row group at a time, so the step
    holds 8 bytes a row of each, not the tables (a streaming hash join).
    """
    rows = table_rows(synthetic)
    if rows == 0:
        return float("nan")
    empties = [table_empty(synthetic), table_empty(reference)]
    columns = _shared_columns(*empties)
    numeric = numeric_in_all(empties, columns)
    ref = np.unique(_hashes(reference, columns, numeric))
    copies = sum(int(in_sorted(block_row_hashes([block[columns]], columns, numeric), ref).sum())
                 for block in table_blocks(synthetic))
    return copies / rows


def replicated_uniques(
    synthetic: Table, reference: Table, quasi_identifiers: Sequence[str] | None = None
) -> dict[str, float]:
    """Reference records unique on the quasi-identifiers and replicated in the synthetic data.

    synthpop's ``replicated.uniques``: a record unique in the real data on its key
    (here the quasi-identifiers; all shared columns when None) is "replicated" when a
    synthetic record has the same key AND the same values on every other shared column,
    i.e. the one person who could be recognised has been copied whole. Tables on disk are
    hashed a row group at a time (as :func:`exact_copy_rate`).
    """
    empties = [table_empty(reference), table_empty(synthetic)]
    columns = _shared_columns(empties[1], empties[0])
    keys = list(columns if quasi_identifiers is None else quasi_identifiers)
    unknown = [k for k in keys if k not in columns]
    if unknown:
        raise ValueError(f"quasi-identifier(s) not in both tables: {', '.join(unknown)}")
    ref_keys = _hashes(reference, keys, numeric_in_all(empties, keys))
    numeric = numeric_in_all(empties, columns)
    ref_rows = _hashes(reference, columns, numeric)
    syn_rows = np.unique(_hashes(synthetic, columns, numeric))
    key_counts = pd.Series(ref_keys).map(pd.Series(ref_keys).value_counts()).to_numpy()
    unique = key_counts == 1
    replicated = unique & in_sorted(ref_rows, syn_rows)
    n_unique, n_replicated = int(unique.sum()), int(replicated.sum())
    rows = len(ref_keys)
    return {
        "n_unique": n_unique,
        "n_replicated": n_replicated,
        "share_of_records": n_replicated / rows if rows else float("nan"),
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


def disclosive_copies_by_blocks(
    blocks: Iterable[pd.DataFrame], references: Mapping[str, Table], columns: Sequence[str],
    quasi_identifiers: Sequence[str] | None, k: int, processes: int | None = None,
) -> dict[str, dict[str, int]]:
    """:func:`disclosive_copies` of a table given a block of rows at a time (a release's row groups),
    against each of ``references`` (by name): the same counts, each reference hashed once and one
    block of the release in memory. ``processes`` (``n_jobs`` convention): blocks judged side by side,
    each in a child forked once the references are hashed (which the children share), the same counts."""
    indexes = {name: DisclosureIndex(reference, columns, quasi_identifiers=quasi_identifiers, k=k)
               for name, reference in references.items()}

    def judged(block: pd.DataFrame) -> dict[str, dict[str, int]]:
        return {name: {kind: int(mask.sum()) for kind, mask in masks.items()}
                for name, masks in judge_all(indexes, block).items()}

    found: dict[str, dict[str, int]] = {name: {} for name in indexes}
    # judging is three quarters of the check at 1.2 million persons (10 of 13 s, bench/README.md
    # "Thirty-sixth pass"): blocks side by side
    for counts in forked_imap(judged, blocks, processes):
        for name, kinds in counts.items():
            for kind, n in kinds.items():
                found[name][kind] = found[name].get(kind, 0) + n
    return found
