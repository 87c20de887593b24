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

from collections.abc import Sequence

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.common.frames import ParquetTable
from synth_assets.common.hashing import block_row_hashes, in_sorted, numeric_in_all, row_hashes

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

    def judge(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per filter (:data:`RARE`, :data:`FULL`), which rows of ``data`` disclose a reference record."""
        if not self.shared:
            return {}
        frame = data[self.shared].copy()
        for column in self.shared:  # compared as numbers where the reference has numbers, else as text
            if column in self.numeric and not is_numeric(frame[column]):
                frame[column] = pd.to_numeric(frame[column].astype("string"), errors="coerce")
            elif column not in self.numeric and is_numeric(frame[column]):
                frame[column] = frame[column].astype(object)
        generated = row_hashes([frame], self.shared)[0]
        out = {RARE: in_sorted(generated, self.rare)}
        if self.full_copies:
            out[FULL] = in_sorted(generated, self.every)
        return out


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
