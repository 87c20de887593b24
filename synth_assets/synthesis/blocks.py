"""Blocks: groups of columns that come together from one real record.

A block is a survey's variables, fused into the register from one donor record by the
statistical matching: within a block the relations are those of a respondent, some of them
exact (a travel diary's kilometres by mode, trips and share of car trips, from which a
person's trips are generated; minutes per activity that tile a day). A model that draws
column by column approximates a block's joint distribution, and an approximation breaks
exact relations. CART draws a block whole from one record of its leaf
(:class:`~synth_assets.synthesis.cart.CARTSynthesizer`); the families that draw column by
column use :class:`BlockDonors`, predictive mean matching on the whole block (Little 1988,
"Missing-data adjustments in large surveys"; mice's ``pmm``): the model draws the block given
the rest of the row, and the row takes the block of the training record nearest to that draw
with the same labels. Every block in the output is then one a respondent gave, chosen by the
model given the row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from synth_assets.synthesis.transform import TableTransformer


def block_columns(
    transformer: TableTransformer, blocks: Sequence[Sequence[str]], exclude: Sequence[str] = (),
) -> list[list[str]]:
    """Model-frame columns of each block with more than one of them (labels and states first).

    ``exclude`` names model-frame columns left out (a model's conditioning columns, given).
    """
    labels = transformer.categorical_labels
    out = []
    for block in blocks:
        columns = [c for c in transformer.model_columns_of([b for b in block if b in transformer.codecs])
                   if c not in exclude]
        columns = sorted(columns, key=lambda c: c not in labels)  # a state before its value
        if len(columns) > 1:
            out.append(columns)
    return out


class _Block:
    """One block's training records, grouped by their labels, with a k-d tree on the amounts' ranks."""

    def __init__(self, labels: list[str], numbers: list[str]) -> None:
        self.labels = labels
        self.numbers = numbers
        self.levels: dict[str, list[str]] = {}
        self.sorted_values: dict[str, np.ndarray] = {}
        self.values = pd.DataFrame()
        self.group_codes = np.zeros((0, len(labels)), dtype=np.int64)  # labels of each group
        self.members: list[np.ndarray] = []  # record positions of each group
        self.trees: list[cKDTree | None] = []

    def label_codes(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([pd.Categorical(frame[c], categories=self.levels[c]).codes for c in self.labels]
                               ).astype(np.int64) if self.labels else np.zeros((len(frame), 0), np.int64)

    def ranks(self, frame: pd.DataFrame) -> np.ndarray:
        """Each amount's mid-rank among the training values, in [0, 1] (-1 where missing)."""
        out = np.empty((len(frame), len(self.numbers)))
        for j, c in enumerate(self.numbers):
            x = frame[c].to_numpy(dtype=float)
            s = self.sorted_values[c]
            r = (np.searchsorted(s, x, "left") + np.searchsorted(s, x, "right")) / (2.0 * max(len(s), 1))
            out[:, j] = np.where(np.isnan(x), -1.0, r)
        return out

    def _jittered_ranks(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Ranks moved at random by far less than a rank's step (records and draws alike): the
        nearest of equal records is then any of them, not always the first."""
        n = np.array([max(len(self.sorted_values[c]), 1) for c in self.numbers])
        return self.ranks(frame) + (rng.random((len(frame), len(self.numbers))) - 0.5) * 1e-3 / n

    def fit(self, frame: pd.DataFrame, labels: Mapping[str, list[str]], rng: np.random.Generator) -> _Block:
        self.levels = {c: list(labels[c]) for c in self.labels}
        self.values = frame[self.labels + self.numbers].reset_index(drop=True)
        for c in self.numbers:
            x = frame[c].to_numpy(dtype=float)
            self.sorted_values[c] = np.sort(x[~np.isnan(x)])
        codes = self.label_codes(frame)
        self.group_codes, group = np.unique(codes, axis=0, return_inverse=True)
        group = group.reshape(-1)
        points = self._jittered_ranks(frame, rng)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(self.group_codes) + 1))
        self.members = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.trees = [cKDTree(points[m]) if self.numbers else None for m in self.members]
        return self

    def donors(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """The training record each row of ``frame`` takes the block of."""
        codes = self.label_codes(frame)
        if self.labels:
            groups = pd.MultiIndex.from_arrays(list(self.group_codes.T))
            group = groups.get_indexer(pd.MultiIndex.from_arrays(list(codes.T)))
        else:
            group = np.zeros(len(frame), dtype=np.int64)
        # a label combination no record has takes a group with the fewest other labels
        for at in np.array_split(np.flatnonzero(group < 0), max(1, int(np.sum(group < 0)) // 2048)):
            if not len(at):
                continue
            mismatches = (codes[at, None, :] != self.group_codes[None, :, :]).sum(axis=2)
            best = mismatches == mismatches.min(axis=1, keepdims=True)
            group[at] = np.argmax(best * rng.random(best.shape), axis=1)  # a random one of the closest
        points = self._jittered_ranks(frame, rng)
        out = np.empty(len(frame), dtype=np.int64)
        for g in np.unique(group):
            rows = np.flatnonzero(group == g)
            members, tree = self.members[g], self.trees[g]
            if tree is None:
                out[rows] = members[rng.integers(len(members), size=len(rows))]
            else:
                out[rows] = members[tree.query(points[rows])[1]]
        return out


class BlockDonors:
    """Each block of a drawn row replaced by the nearest training record's (see the module docstring).

    ``blocks`` are model-frame columns (:func:`block_columns`); :meth:`fit` takes the training
    model frame and the transformer's labels, :meth:`take` a drawn model frame.
    """

    def __init__(self, blocks: Sequence[Sequence[str]], seed: int = 0) -> None:
        self.blocks = [list(b) for b in blocks]
        self.seed = seed
        self._fitted: list[_Block] = []

    def fit(self, frame: pd.DataFrame, labels: Mapping[str, list[str]]) -> Self:
        rng = np.random.default_rng(self.seed)
        self._fitted = [
            _Block([c for c in b if c in labels], [c for c in b if c not in labels]).fit(frame, labels, rng)
            for b in self.blocks
        ]
        return self

    def donor_records(self, frame: pd.DataFrame, rng: np.random.Generator) -> list[np.ndarray]:
        """For each block, the training record (position) each row of ``frame`` takes it from."""
        return [block.donors(frame, rng) for block in self._fitted]

    def take(self, frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """``frame`` with each block replaced by its donor record's."""
        if not self._fitted or not len(frame):
            return frame
        out = frame.copy()
        for block, donors in zip(self._fitted, self.donor_records(frame, rng), strict=True):
            for c in block.labels + block.numbers:
                out[c] = block.values[c].to_numpy()[donors]
        return out


def fit_block_donors(
    transformer: TableTransformer, blocks: Sequence[Sequence[str]], frame: pd.DataFrame,
    given: Sequence[str] = (), seed: int = 0,
) -> BlockDonors | None:
    """The donors of ``blocks`` (original column names) in the training model frame ``frame``;
    None without a block of two columns or more. ``given`` columns (conditioning) stay as given."""
    columns = block_columns(transformer, blocks, transformer.model_columns_of(given))
    return BlockDonors(columns, seed=seed).fit(frame, transformer.categorical_labels) if columns else None
