"""Donation classes: recipients only take donors from their own class.

Classes (e.g. region × sex) make the X-by-Z relation exact for the class
variables and cut the search space.  A recipient class that no donor shares
cannot be matched inside its class; rather than failing a long pipeline run,
its recipients are matched over *all* donors and a warning is logged (the
diagnostics count such classes as ``fallback_classes``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_assets.matching.encoding import joint_codes

logger = logging.getLogger("synth_assets.matching")


@dataclass(frozen=True)
class ClassBlock:
    """One donation class: positions of its recipients and of the donors they may use."""

    key: tuple
    recipients: np.ndarray
    donors: np.ndarray
    fallback: bool


def class_codes(recipient: pd.DataFrame, donor: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One integer per row identifying its cross-classification of ``columns`` (missing = a level)."""
    rec = np.zeros(len(recipient), dtype=np.int64)
    don = np.zeros(len(donor), dtype=np.int64)
    for col in columns:
        rc, dc, n_levels = joint_codes(recipient[col], donor[col])
        codes, _ = pd.factorize(np.concatenate([rec * n_levels + rc, don * n_levels + dc]))
        rec, don = codes[: len(recipient)], codes[len(recipient) :]
    return rec, don


def donation_blocks(recipient: pd.DataFrame, donor: pd.DataFrame, columns: list[str]) -> list[ClassBlock]:
    """Split the problem into donation classes (a single block when there are none)."""
    if not columns:
        return [ClassBlock((), np.arange(len(recipient)), np.arange(len(donor)), False)]
    rec_code, don_code = class_codes(recipient, donor, columns)
    rec_order = np.argsort(rec_code, kind="stable")
    don_order = np.argsort(don_code, kind="stable")
    n_codes = int(max(rec_code.max(initial=-1), don_code.max(initial=-1))) + 1
    rec_bounds = np.searchsorted(rec_code[rec_order], np.arange(n_codes + 1))
    don_bounds = np.searchsorted(don_code[don_order], np.arange(n_codes + 1))
    blocks = []
    for code in np.unique(rec_code):
        recipients = rec_order[rec_bounds[code] : rec_bounds[code + 1]]
        donors = don_order[don_bounds[code] : don_bounds[code + 1]]
        key = tuple(recipient[columns].iloc[recipients[0]])
        fallback = donors.size == 0
        if fallback:
            logger.warning(
                "donation class %s: no donor; its %d recipients are matched over all donors",
                dict(zip(columns, key, strict=True)),
                recipients.size,
            )
            donors = np.arange(len(donor))
        blocks.append(ClassBlock(key, recipients, donors, fallback))
    return blocks
