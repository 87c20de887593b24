"""Disclosure risk of generated records against a real table: what the copy filters and the gate judge.

Equality on a few coarse columns is no risk: many real people share a profile such as
(region, size 2, no income). A generated record discloses a real person when

* it **reproduces a rare record**: it equals, on every column the two tables share, a real
  record whose combination of quasi-identifiers is held by fewer than ``k`` records of that
  table (``k = 2``: replicated uniques, as synthpop counts them); or
* it is a **full copy**: it equals a real record on every variable it has, continuous ones
  included (only a table holding all of the record's variables can be copied whole), unless
  at least ``k`` real records are that very record (a common profile: a child of a given
  age with no income, say, which discloses nobody).

Rows are compared through :func:`synth_assets.common.hashing.row_hashes` (numbers rounded to
6 significant digits, missing equals missing, categories as text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.common.frames import ParquetTable
from synth_assets.common.hashing import ColumnHashes, block_row_hashes, in_sorted, numeric_in_all, row_hashes

RARE = "replicated rare record"
FULL = "full copy"


def filter_label(kind: str, reference: str) -> str:
    """The name of a disclosure filter, as rejection reasons and failure messages show it."""
    return f"disclosure filter: {kind} of a {reference} record"


def reference_hashes(reference: pd.DataFrame | ParquetTable, columns: Sequence[str]) -> np.ndarray:
    """:func:`~synth_assets.common.hashing.row_hashes` of a real table on ``columns``; a ``ParquetTable``
    a row group at a time (its schema's dtypes decide what compares as numbers), the same hashes."""
    if not isinstance(reference, ParquetTable):
        return row_hashes([reference], columns)[0]
    return block_row_hashes(reference.frames(columns), columns, numeric_in_all([reference.empty()], columns))


class DisclosureIndex:
    """One reference table's hashed records, ready to judge many generated tables (the redraw rounds).

    ``columns`` are the generated records' variables (identifiers excluded); the comparison is
    on those the reference has. The full-copy filter applies only where it has all of them.
    ``reference``: a DataFrame, or a ``ParquetTable`` (a view of it: a region's rows) hashed a row
    group at a time, so only its hashes (16 bytes a record) are ever held, whatever its size.
    """

    def __init__(self, reference: pd.DataFrame | ParquetTable, columns: Sequence[str], *,
                 quasi_identifiers: Sequence[str] | None, k: int, full_copies: bool = True) -> None:
        # the reference's dtypes decide what is compared as numbers: a table's from its schema
        dtypes = reference.empty() if isinstance(reference, ParquetTable) else reference
        self.shared = [c for c in columns if c in dtypes.columns]
        self.full_copies = full_copies and bool(self.shared) and len(self.shared) == len(columns)
        if not self.shared:
            self.rare = self.every = np.empty(0, np.uint64)
            return
        self.numeric = [c for c in self.shared if is_numeric(dtypes[c])]
        # rare on the quasi-identifiers the reference has; with none, the whole row is the key
        keys = [c for c in (quasi_identifiers or []) if c in self.shared] or list(self.shared)
        every = reference_hashes(reference, self.shared)
        key_hashes = pd.Series(reference_hashes(reference, keys))
        rare = key_hashes.map(key_hashes.value_counts()).to_numpy() < k
        self.rare = np.unique(every[rare])
        if self.full_copies:  # records fewer than k real records share whole
            counts = pd.Series(every).map(pd.Series(every).value_counts()).to_numpy()
            self.every = np.unique(every[counts < k])
        else:
            self.every = np.empty(0, np.uint64)

    def judge(self, data: pd.DataFrame | ColumnHashes) -> dict[str, np.ndarray]:
        """Per filter (:data:`RARE`, :data:`FULL`), which rows of ``data`` disclose a reference record
        (``data``'s :class:`ColumnHashes` when other indexes judge it too: :func:`judge_all`)."""
        if not self.shared:
            return {}
        hashes = data if isinstance(data, ColumnHashes) else ColumnHashes(data)
        # compared as numbers where the reference has numbers, else as text
        generated = hashes.rows(self.shared, self.numeric)
        out = {RARE: in_sorted(generated, self.rare)}
        if self.full_copies:
            out[FULL] = in_sorted(generated, self.every)
        return out


#: Generated rows judged at a time by :func:`judge_all`: their columns' hashes, kept for every index,
#: are 8 to 16 bytes a cell (27 MB at 50,000 rows of the release's 40-odd columns).
JUDGED_ROWS = 50_000


def judge_all(indexes: Mapping[str, DisclosureIndex], data: pd.DataFrame,
              rows: int = JUDGED_ROWS) -> dict[str, dict[str, np.ndarray]]:
    """Each index's :meth:`DisclosureIndex.judge` of ``data`` (by name), every column hashed once for
    all of them, ``rows`` rows at a time: the same masks."""
    parts: list[dict[str, dict[str, np.ndarray]]] = []
    for start in range(0, max(len(data), 1), max(rows, 1)):
        hashes = ColumnHashes(data.iloc[start:start + rows] if len(data) > rows else data)
        parts.append({name: index.judge(hashes) for name, index in indexes.items()})
    if len(parts) == 1:
        return parts[0]
    return {name: {kind: np.concatenate([part[name][kind] for part in parts]) for kind in parts[0][name]}
            for name in indexes}


def disclosive_rows(
    data: pd.DataFrame,
    reference: pd.DataFrame,
    columns: Sequence[str],
    *,
    quasi_identifiers: Sequence[str] | None,
    k: int,
    full_copies: bool = True,
) -> dict[str, np.ndarray]:
    """Per filter (:data:`RARE`, :data:`FULL`), which rows of ``data`` disclose a ``reference`` record."""
    return DisclosureIndex(reference, columns, quasi_identifiers=quasi_identifiers, k=k,
                           full_copies=full_copies).judge(data)
