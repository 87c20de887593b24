"""Sequential CART synthesis in the manner of R's synthpop (Nowok, Raab & Dibben 2016).

The joint distribution is factorised along a visiting order: the first variable is drawn
from its marginal (a bootstrap of the real values), each later variable from a tree fitted
on all earlier ones. For a synthetic row the tree gives a leaf, and the value is a real
value drawn at random from the training records in that leaf ("leaf sampling"), so the
conditional distribution is kept without assuming a shape. Continuous values get Gaussian
kernel noise with the leaf's own bandwidth (synthpop's ``smoothing="density"``), so they are
not copies of real values.

Trees split numbers, so label columns enter each tree as codes ordered by their relation
to that tree's target (:func:`level_ranks`); one split can then separate, say, the
"not applicable" hours of children from the rest.

Everything is vectorised: ``tree.apply`` gives the leaves of all synthetic rows at once and
donors are picked per leaf with sorted arrays and ``searchsorted``; there is no Python loop
over rows.

Privacy knobs (measured in ``bench/synthesis``): ``min_leaf`` (larger leaves mix more
records into each synthetic row; the default grows with the square root of the training
size), ``smoothing``, ``bootstrap`` (fit on a bootstrap resample) and the copy filter of
:class:`~synth_assets.synthesis.tabular.TabularSynthesizer`. :meth:`CARTSynthesizer.posterior_draw`
gives proper replicates for the combining rules, and :meth:`CARTSynthesizer.replicate_draw` one
given a replicate's own records: the fitted trees, their leaves filled with those records.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Self

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from synth_assets.common.parallel import ordered_map, resolved_jobs
from synth_assets.synthesis.base import LOGGER, NotFittedError
from synth_assets.synthesis.blocks import block_columns
from synth_assets.synthesis.equal_rows import batch_rows, match_rows
from synth_assets.synthesis.tabular import TabularSynthesizer, training_hashes
from synth_assets.synthesis.transform import VALUE_STATE, CategoricalCodec, SchemaError, allowed_codes

#: Continuous columns whose values repeat a lot (fewer distinct values than this share of
#: records: equivalence scales, calibrated weights) are not smoothed: such values identify
#: no one, and noise would put them off their support, which a classifier spots at once.
SMOOTH_MIN_DISTINCT = 0.1

#: Fewest records of one stratum value that form a donor cell of their own within a leaf
#: (synthpop's default ``minbucket``): a row never draws from fewer records than this.
MIN_STRATUM_RECORDS = 5


class _NoRecords(ValueError):
    """A replicate's records leave a step of the fitted model without any."""


def _nrd0(n: np.ndarray, sd: np.ndarray, iqr: np.ndarray) -> np.ndarray:
    """Silverman's rule of thumb as R's ``bw.nrd0`` (per group), 0 for constant groups."""
    spread = np.minimum(sd, iqr / 1.34)
    spread = np.where(spread > 0, spread, sd)
    return 0.9 * spread * np.maximum(n, 1) ** -0.2


def compact(values: np.ndarray) -> np.ndarray:
    """``values`` in the smallest integer type that holds them exactly when they are all whole
    numbers (category codes, ages, counts); else as they are. Read back as floats, the same numbers."""
    if values.dtype.kind != "f" or not len(values):
        return values
    low, high = float(np.min(values)), float(np.max(values))  # NaN: not whole, kept as floats
    if not (np.isfinite(low) and np.isfinite(high)) or not np.array_equal(values, np.round(values)):
        return values
    for kind in (np.int8, np.int16, np.int32):
        if np.iinfo(kind).min <= low and high <= np.iinfo(kind).max:
            return values.astype(kind)
    return values


def _fitted(steps: Sequence[Step | Callable[[], Step]], n_jobs: int, alone: Collection[int] = ()) -> list[Step]:
    """The steps, those still to fit (callables) fitted ``n_jobs`` at a time in threads, in order;
    those at the positions ``alone`` never two at once (each beside lighter ones).

    With threads, one of them fits the ``alone`` steps one after another, the last first (the most
    predictors), while the others fit the lighter steps, and every thread takes lighter steps once
    its own are done. In the visit order the blocks come last, and fitted there one at a time they
    left every other thread idle: at 1.2 million persons three block steps were 95 s of the fit's
    150 (bench/README.md, "Twenty-first pass"). Each step has its own seed, so the order changes
    nothing in the model.
    """
    pending = [k for k, step in enumerate(steps) if callable(step)]
    out = list(steps)

    def fit(k: int) -> None:
        out[k] = steps[k]()  # type: ignore[operator]
        LOGGER.debug("cart: fitted %s (%d/%d)", out[k].column, k + 1, len(steps))  # type: ignore[union-attr]

    workers = min(resolved_jobs(n_jobs), len(pending))
    if workers <= 1:
        for k in pending:
            fit(k)
        return out  # type: ignore[return-value]
    heavy = sorted((k for k in pending if k in alone), reverse=True)
    light = iter([k for k in pending if k not in alone])
    taking = threading.Lock()
    failed = threading.Event()

    def fit_light() -> None:
        while not failed.is_set():
            with taking:
                k = next(light, None)
            if k is None:
                return
            fit(k)

    def fit_heavy_then_light() -> None:
        for k in heavy:
            if failed.is_set():
                return
            fit(k)
        fit_light()

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException:
                failed.set()  # the other threads take no new step; the first error is raised below
                raise
        return run

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cart-fit") as pool:
        futures = [pool.submit(guarded(fit_heavy_then_light))]
        futures += [pool.submit(guarded(fit_light)) for _ in range(workers - 1)]
    for future in futures:
        future.result()
    return out  # type: ignore[return-value]


def _rows_of(matrix: np.ndarray, records: np.ndarray) -> np.ndarray:
    """``matrix[records]``, held by column as the training matrix is, or ``matrix`` itself when
    ``records`` are all its rows in order (no bootstrap, no gate): a step then does not copy the
    whole training matrix (540 MB at 1.2 million persons)."""
    if len(records) == len(matrix) and (len(records) == 0 or (records[0] == 0 and np.all(np.diff(records) == 1))):
        return matrix
    rows = np.empty((len(records), matrix.shape[1]), dtype=matrix.dtype, order="F")
    for k in range(matrix.shape[1]):  # numpy's matrix[records] would be held by row
        rows[:, k] = matrix[records, k]
    return rows


def _rows_for_empty_leaves(tree: DecisionTreeClassifier | DecisionTreeRegressor, leaf_ids: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(leaf, row) pairs giving every leaf of ``tree`` that no row reaches (``leaf_ids``: each row's
    leaf) the rows of its nearest ancestor's subtree that some row reaches: the records most alike
    on the tree's own splits."""
    nodes = tree.tree_
    left, right = nodes.children_left, nodes.children_right
    inner = np.flatnonzero(left != -1)
    reached = np.bincount(leaf_ids, minlength=nodes.node_count) > 0
    empty = np.flatnonzero((left == -1) & ~reached)
    if len(empty) == 0 or not reached.any():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    parent = np.full(nodes.node_count, -1)
    parent[left[inner]], parent[right[inner]] = inner, inner

    def leaves_under(node: int) -> list[int]:
        stack, out = [node], []
        while stack:
            k = stack.pop()
            if left[k] == -1:
                out.append(k)
            else:
                stack += [left[k], right[k]]
        return out

    leaves, rows = [], []
    for leaf in empty:
        ancestor = parent[leaf]
        while not reached[leaves_under(ancestor)].any():
            ancestor = parent[ancestor]
        taken = np.flatnonzero(np.isin(leaf_ids, leaves_under(ancestor)))
        leaves.append(np.full(len(taken), leaf))
        rows.append(taken)
    return np.concatenate(leaves), np.concatenate(rows)


@dataclass
class LeafDonors:
    """The training values of a variable grouped by leaf, ready for vectorised draws.

    ``records`` holds the training row of every donor value, so one set of record weights
    (a posterior draw) applies consistently to every variable.
    """

    leaves: np.ndarray  # sorted distinct leaf ids
    starts: np.ndarray  # first position of each leaf in ``values``
    counts: np.ndarray
    values: np.ndarray  # training values, grouped by leaf (sorted within a leaf)
    records: np.ndarray  # training row of each value
    bandwidth: np.ndarray | None  # kernel bandwidth per leaf, when smoothing
    cumulative_weight: np.ndarray | None = None  # 0 then running sum of record weights

    @classmethod
    def build(cls, leaf_ids: np.ndarray, values: np.ndarray, records: np.ndarray, smoothing: bool) -> LeafDonors:
        order = np.lexsort((values, leaf_ids))
        leaf_ids, values, records = leaf_ids[order], values[order], records[order]
        leaves, starts, counts = np.unique(leaf_ids, return_index=True, return_counts=True)
        bandwidth = None
        if smoothing:
            sums = np.add.reduceat(values, starts)
            squares = np.add.reduceat(values * values, starts)
            mean = sums / counts
            var = np.maximum(squares / counts - mean**2, 0.0) * counts / np.maximum(counts - 1, 1)

            def quantile(q: float) -> np.ndarray:
                pos = starts + q * (counts - 1)
                low = np.floor(pos).astype(np.int64)
                high = np.minimum(low + 1, starts + counts - 1)
                return values[low] + (pos - low) * (values[high] - values[low])

            bandwidth = _nrd0(counts, np.sqrt(var), quantile(0.75) - quantile(0.25))
        # a record's row fits in 32 bits, and most values are category codes or whole numbers: stored
        # small, exactly (the donors are the training data again, one value and record per step)
        return cls(leaves, starts, counts, compact(values),
                   records.astype(np.int32 if len(records) < 2**31 else np.int64), bandwidth)

    def emptied(self) -> LeafDonors:
        """No donor, smoothed as these are: a step's donors once its leaves are to be filled again."""
        none = np.empty(0, dtype=np.int64)
        return LeafDonors(none, none, none, np.empty(0), none.astype(np.int32),
                          None if self.bandwidth is None else np.empty(0))

    def reweighted(self, record_weights: np.ndarray) -> LeafDonors:
        """The same donors drawn with probability proportional to their record's weight."""
        cumulative = np.concatenate([[0.0], np.cumsum(record_weights[self.records])])
        return replace(self, cumulative_weight=cumulative)

    def draw(self, leaf_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.draw_with_records(leaf_ids, rng)[0]

    def draw_with_records(self, leaf_ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Drawn values and the training record each came from."""
        pos = np.searchsorted(self.leaves, leaf_ids)
        starts, counts = self.starts[pos], self.counts[pos]
        u = rng.random(len(leaf_ids))
        if self.cumulative_weight is None:
            picks = starts + (u * counts).astype(np.int64)
        else:
            low, high = self.cumulative_weight[starts], self.cumulative_weight[starts + counts]
            targets = low + u * (high - low)
            # searched in increasing order, the same picks: memory is then read forward, not at random
            # (100,000 searches in 960,000 donors about 3 times faster, sort included: bench/scale/donor_search.py)
            order = np.argsort(targets)
            picks = np.empty(len(targets), dtype=np.int64)
            picks[order] = np.searchsorted(self.cumulative_weight, targets[order], side="right") - 1
            picks = np.clip(picks, starts, starts + counts - 1)
        drawn = self.values[picks]
        if self.bandwidth is not None:
            drawn = drawn + rng.standard_normal(len(drawn)) * self.bandwidth[pos]
        return drawn, self.records[picks]


@dataclass
class Stratum:
    """Leaves refined by the value of one earlier column (e.g. the household size).

    A tree's leaf mixes records whose stratum values differ when a value is rare or the
    split criterion prefers other predictors: a household of eight then takes its spending
    from a household of five. Within each leaf, the records of a stratum value with at least
    ``min_records`` of them form a donor cell of their own; a row whose value has no such cell
    draws from the whole leaf, as without a stratum.
    """

    position: int  # the stratum column's position in the visiting order
    values: np.ndarray  # its distinct training values, sorted; code len(values) = whole leaf

    def codes(self, column: np.ndarray) -> np.ndarray:
        """The code of every row's value of the stratum column (``len(values)``: none of the training's)."""
        pos = np.clip(np.searchsorted(self.values, column), 0, len(self.values) - 1)
        return np.where(self.values[pos] == column, pos, len(self.values)).astype(np.int64)

    def cells(self, leaf_ids: np.ndarray, column: np.ndarray) -> np.ndarray:
        """Cell id of every row: its leaf and its stratum value (``column``: the rows' stratum values)."""
        return leaf_ids.astype(np.int64) * (len(self.values) + 1) + self.codes(column)

    def whole_leaf(self, leaf_ids: np.ndarray) -> np.ndarray:
        return leaf_ids.astype(np.int64) * (len(self.values) + 1) + len(self.values)

    def donor_cells(
        self, leaf_ids: np.ndarray, column: np.ndarray, min_records: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(cell id, row) of every donor: each row in its leaf's whole cell, and in its
        stratum cell where that cell holds at least ``min_records`` rows."""
        cells = self.cells(leaf_ids, column)
        distinct, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
        own = np.flatnonzero(counts[inverse] >= min_records)
        rows = np.arange(len(cells))
        return np.concatenate([cells[own], self.whole_leaf(leaf_ids)]), np.concatenate([own, rows])

    def draw_cells(self, leaf_ids: np.ndarray, column: np.ndarray, donors: LeafDonors) -> np.ndarray:
        """The cell each row draws from: its stratum cell where it exists, else its whole leaf."""
        cells = self.cells(leaf_ids, column)
        pos = np.clip(np.searchsorted(donors.leaves, cells), 0, len(donors.leaves) - 1)
        return np.where(donors.leaves[pos] == cells, cells, self.whole_leaf(leaf_ids))


@dataclass
class Step:
    """One variable of the visiting order: its tree (None: drawn from the marginal) and donors."""

    column: str
    tree: DecisionTreeClassifier | DecisionTreeRegressor | None
    donors: LeafDonors | None  # None for conditioning columns, which are given
    gate: tuple[int, float] | None  # (state column position, code of "value"): draw only there
    remap: dict[int, np.ndarray] = field(default_factory=dict)  # predictor position -> rank of each code
    leader: int | None = None  # block member: copies the record drawn for this earlier step
    record_values: np.ndarray | None = None  # block member: its value in every training record
    stratum: Stratum | None = None  # donors share the row's stratum value where the leaf has enough

    def features(self, matrix: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The predictors of this step (of ``rows`` only, when given), category codes replaced by
        their ranks for its target; ``rows`` filled a column at a time, never a float64 copy of them."""
        if rows is None:
            features = matrix.astype(np.float32)
            for k, ranks in self.remap.items():
                features[:, k] = ranks[matrix[:, k].astype(np.int64)]
            return features
        features = np.empty((len(rows), matrix.shape[1]), dtype=np.float32)
        for k in range(matrix.shape[1]):
            column = matrix[rows, k]
            features[:, k] = self.remap[k][column.astype(np.int64)] if k in self.remap else column
        return features


def level_ranks(codes: np.ndarray, n_levels: int, y: np.ndarray, continuous: bool, n_classes: int) -> np.ndarray:
    """Rank of every level of a categorical predictor, ordered by its relation to the target.

    Trees split numbers, so a category needs an order in which the levels that behave
    alike are neighbours. Ordering by the target's mean makes one split find the best
    two-way partition for a numeric or binary target (Breiman et al. 1984); for a target
    with more classes the levels are ordered along the first principal component of their
    class distributions (Coppersmith, Hong & Hosking 1999). Unseen levels go last.
    """
    counts = np.bincount(codes, minlength=n_levels).astype(float)
    seen = counts > 0
    if continuous:
        score = np.bincount(codes, weights=y, minlength=n_levels) / np.maximum(counts, 1)
    else:
        table = np.zeros((n_levels, n_classes))
        np.add.at(table, (codes, y.astype(np.int64)), 1.0)
        shares = table / np.maximum(counts, 1)[:, None]
        centred = shares[seen] - np.average(shares[seen], axis=0, weights=counts[seen])
        covariance = (centred * counts[seen][:, None]).T @ centred
        score = shares @ np.linalg.eigh(covariance)[1][:, -1]
    score = np.where(seen, score, np.inf)
    ranks = np.empty(n_levels, dtype=np.float32)
    ranks[np.argsort(score, kind="stable")] = np.arange(n_levels)
    return ranks


class CARTSynthesizer(TabularSynthesizer):
    """Sequential CART synthesiser (synthpop's default method), with leaf sampling.

    Parameters
    ----------
    min_leaf:
        Minimum number of training records per leaf (synthpop's ``minbucket``, 5 there).
        Default: ``max(5, ceil(sqrt(n)))`` for n training rows (86 at 7,400 rows, 317 at
        100,000): larger leaves mix more records into every synthetic row. On the EU-SILC
        benchmark this (with smoothing) moved the share of synthetic rows nearer to train
        than to holdout from 0.70 (synthpop's settings) to 0.54, for 2% of the 3-way
        k-marginal score (bench/synthesis/results.md).
    smoothing:
        Add kernel noise to continuous values (synthpop's ``smoothing="density"``), except
        to columns with few distinct values (see ``SMOOTH_MIN_DISTINCT``).
    bootstrap:
        Fit on a bootstrap resample of the training rows.
    visit_sequence:
        Input columns in the order to synthesise; default: categorical columns by
        increasing number of levels, then continuous ones in input order.
    max_depth:
        Optional depth limit of every tree.
    stratum:
        A column (e.g. the household size) that every later variable's donors share with the
        synthetic row wherever its leaf holds at least :data:`MIN_STRATUM_RECORDS` records of
        that value (see :class:`Stratum`). On the demo's household table, spending of households
        of seven and eight persons came out 9-13% too low without it.
    n_jobs:
        Trees fitted at once, in threads (sklearn's convention; its tree building releases the
        GIL). Every tree is fitted on the training data, not on the draws of earlier steps, so the
        steps are independent and the model is the same whatever ``n_jobs``. Each tree being fitted
        holds its own predictor matrix (4 bytes per training row and earlier column), so memory
        grows with ``n_jobs``; the default, 1, keeps the release's measured peaks.
    tree_rows:
        Most training records a tree chooses its splits on: above it, a seeded sample of that
        many, with ``min_leaf`` scaled to the sample. Every training record still fills the
        leaves, so draws come from all of them and a leaf holds about as many records as without
        the sample (at least ``min_leaf * tree_rows / n``; more where the sample's node is pure). A tree's cost
        grows as n log n with its records. The default, 500,000, changes nothing below it (the demo,
        a city's households); at 959,044 training persons it fitted the model 1.35 times as fast
        with the draws' TVD on every variable and pair unchanged within the spread of two draws
        (``bench/synthesis/results_tree_rows.md``; 250,000: 1.9 times, the survey variables' TVD
        6% higher). ``None``: every record (synthpop's way).
    """

    family = "cart"
    n_jobs = 1  # models saved before the option fit one tree at a time when refitted
    tree_rows: int | None = None  # and chose every tree's splits on all their records

    def __init__(
        self,
        *,
        seed: int = 0,
        min_leaf: int | None = None,
        smoothing: bool = True,
        bootstrap: bool = False,
        visit_sequence: Sequence[str] | None = None,
        max_depth: int | None = None,
        stratum: str | None = None,
        blocks: Sequence[Sequence[str]] = (),
        special_codes: Mapping[str, Sequence[float]] | None = None,
        id_columns: Sequence[str] = (),
        condition_columns: Sequence[str] = (),
        avoid_copies: bool = True,
        max_copy_rounds: int = 5,
        n_jobs: Annotated[int, Field(ge=1)] = 1,  # the bound checked with the run's settings too
        tree_rows: Annotated[int, Field(ge=1000)] | None = 500_000,
    ) -> None:
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
        super().__init__(
            seed=seed,
            special_codes=special_codes,
            id_columns=id_columns,
            condition_columns=condition_columns,
            avoid_copies=avoid_copies,
            max_copy_rounds=max_copy_rounds,
        )
        self.min_leaf = None if min_leaf is None else int(min_leaf)  # 20.0 would be a fraction to sklearn
        self.smoothing = smoothing
        self.bootstrap = bootstrap
        self.visit_sequence = visit_sequence
        self.max_depth = max_depth
        self.stratum = stratum
        self.blocks = [list(b) for b in blocks]
        self.n_jobs = int(n_jobs)
        if tree_rows is not None and tree_rows < 1000:
            raise ValueError(f"tree_rows must be at least 1,000, got {tree_rows}")
        self.tree_rows = None if tree_rows is None else int(tree_rows)
        self._steps: list[Step] = []
        self._n_given = 0  # leading steps that are conditioning columns
        self._levels: dict[int, int] = {}  # position of each label column -> number of labels
        self._leaf_size = 0
        self._stratum: Stratum | None = None
        self._n_records = 0

    # --------------------------------------------------------------- ordering
    def _visit_order(self) -> list[str]:
        """Model-frame columns in visiting order: conditioning columns first, state before value."""
        t = self.transformer
        given = t.model_columns_of(self.condition_columns)
        if self.visit_sequence is not None:
            missing = set(t.fitted_schema.columns) - set(self.visit_sequence) - set(t.id_column_names)
            if missing:
                raise ValueError(f"visit_sequence lacks columns: {sorted(missing)}")
            rest = [c for c in t.model_columns_of(self.visit_sequence) if c not in given]
            # blocks still last, each in its own order (a member's draw follows its leader's record)
            return given + self._blocks_together(self._state_first(rest))
        labels = t.categorical_labels
        state_of = {v: c for v, c in self._states().items() if c not in given}
        states = set(state_of.values())
        categorical = sorted((c for c in labels if c not in given and c not in states), key=lambda c: len(labels[c]))
        continuous = [c for c in t.continuous_columns if c not in given]
        # a state (zero, special code, value) is drawn just before its value, after every
        # earlier continuous column: whether someone has a labour income depends on age
        # (drawn before age, the state lost most of the age gradient of incomes: issue 12)
        order: list[str] = []
        for column in categorical + continuous:
            if column in state_of:
                order.append(state_of[column])
            order.append(column)
        return given + self._blocks_together(order)

    def _block_members(self) -> list[list[str]]:
        """Model-frame columns of each block present in the data (labels and states first)."""
        t = self.transformer
        return block_columns(t, self.blocks, t.model_columns_of(self.condition_columns))

    def _blocks_together(self, order: list[str]) -> list[str]:
        """Blocks after every other column, each drawn given all of them (as matching imputed it)."""
        blocks = self._block_members()
        inside = {c for members in blocks for c in members}
        return [c for c in order if c not in inside] + [c for members in blocks for c in members]

    def _states(self) -> dict[str, str]:
        """State column of every gated continuous column."""
        return {n: c.state_column for n, c in self.transformer.continuous_columns.items() if c.state_column}

    def _state_first(self, order: list[str]) -> list[str]:
        states = self._states()
        out: list[str] = []
        for col in order:
            if col in out:
                continue
            if col in states and states[col] not in out and states[col] in order:
                out.append(states[col])
            out.append(col)
        return out

    # ------------------------------------------------------------ encoding
    def _encode(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Model-frame columns as floats: label codes in level order, continuous values as is."""
        out = np.empty((len(frame), len(columns)))
        for j, col in enumerate(columns):
            out[:, j] = self._codes(col, frame[col])
        return out

    def _codes(self, column: str, values: pd.Series | np.ndarray) -> np.ndarray:
        labels = self.transformer.categorical_labels
        if column in labels:
            return pd.Categorical(values, categories=labels[column]).codes
        return np.asarray(values, dtype=float)

    def _decode(self, matrix: np.ndarray) -> pd.DataFrame:
        """The model frame of ``matrix``: label columns as categoricals of their labels, by code (the
        transformer's ``inverse`` takes their codes as they are: ``transform.label_codes``)."""
        labels = self.transformer.categorical_labels
        out: dict[str, Any] = {}
        for j, step in enumerate(self._steps):
            if step.column in labels:
                out[step.column] = pd.Categorical.from_codes(
                    matrix[:, j].astype(np.int64), dtype=pd.CategoricalDtype(labels[step.column]))
            else:
                out[step.column] = matrix[:, j]
        return pd.DataFrame(out, copy=False)  # the matrix's columns (held by column), not a merged copy

    # ------------------------------------------------------------- fitting
    def _model_input(self, data: pd.DataFrame) -> np.ndarray:
        # the matrix filled a model column at a time: the model frame (as large again) is never made.
        # Held by column: the fit reads it a column at a time (targets, ranks, predictors)
        position = {column: j for j, column in enumerate(self._visit_order())}
        matrix = np.empty((len(data), len(position)), order="F")
        for column, values in self.transformer.encoded_codes(data):
            matrix[:, position[column]] = values
        return matrix

    def _fit_model(self, matrix: np.ndarray, rng: np.random.Generator) -> None:
        order = self._visit_order()
        n = len(matrix)
        rows = rng.integers(0, n, n) if self.bootstrap else np.arange(n)
        self._leaf_size = self.min_leaf or max(5, math.ceil(math.sqrt(n)))
        labels = self.transformer.categorical_labels
        states = self._states()
        self._n_given = len(self.transformer.model_columns_of(self.condition_columns))
        self._levels = {k: len(labels[c]) for k, c in enumerate(order) if c in labels}
        leaders, block_of = {}, {}
        for members in self._block_members():
            block_of[members[0]] = [order.index(c) for c in members]
            for follower in members[1:]:
                leaders[follower] = order.index(members[0])
        self._stratum = self._stratum_of(order, matrix)
        # a seed per step, drawn up front: a step's tree is then the same fitted in any order, or at once
        seeds = rng.integers(2**31, size=len(order))
        steps: list[Step | Callable[[], Step]] = []
        for j, col in enumerate(order):
            if j < self._n_given:
                steps.append(Step(col, None, None, None))
                continue
            if col in leaders:
                gate = None
                if col in states:
                    gate = (order.index(states[col]), float(labels[states[col]].index(VALUE_STATE)))
                steps.append(Step(col, None, None, gate, leader=leaders[col], record_values=compact(matrix[:, j].copy())))
                continue
            gate = None
            if col in states:
                gate = (order.index(states[col]), float(labels[states[col]].index(VALUE_STATE)))
            # the step's rows are taken when it is fitted: a gated step's (an array the size of the
            # training data) would otherwise be held for every step until the last one is fitted
            steps.append(functools.partial(self._fit_step_on_rows, col, j, matrix, rows, gate, block_of.get(col),
                                            order, np.random.default_rng(seeds[j])))
        # a block's step is the largest (its targets, one column per category of every member: 37 wide
        # and 280 MB at 960,000 persons): two of them at once added 0.6 GB to the fit's peak at 1.2
        # million persons (bench/README.md, "Fifteenth pass")
        blocks = [j for j, col in enumerate(order) if j >= self._n_given and col in block_of and col not in leaders]
        self._steps = _fitted(steps, self.n_jobs, alone=blocks)
        self.training_log["visit_sequence"] = order
        self.training_log["min_leaf"] = self._leaf_size
        self._n_records = n

    def _fit_step_on_rows(
        self, column: str, j: int, matrix: np.ndarray, rows: np.ndarray, gate: tuple[int, float] | None,
        block: list[int] | None, order: list[str], rng: np.random.Generator,
    ) -> Step:
        """Step ``j`` fitted on the training ``rows`` where its gate (a state column) says "value"."""
        fit_rows = rows
        if gate is not None:
            fit_rows = rows[matrix[rows, gate[0]] == gate[1]]
            if len(fit_rows) == 0:  # the bootstrap missed every continuous value
                fit_rows = np.flatnonzero(matrix[:, gate[0]] == gate[1])
        if block is not None:
            return self._fit_block_step(column, j, matrix, fit_rows, block, order, rng)
        return self._fit_step(column, j, matrix, fit_rows, gate, column not in self.transformer.categorical_labels, rng)

    def _stratum_of(self, order: list[str], matrix: np.ndarray) -> Stratum | None:
        if self.stratum is None:
            return None
        if self.stratum not in self.transformer.fitted_schema.columns:
            raise ValueError(f"stratum column {self.stratum!r} is not in the data")
        columns = [c for c in self.transformer.model_columns_of([self.stratum]) if c not in self._states().values()]
        if not columns:
            raise ValueError(f"stratum column {self.stratum!r} is not in the data")
        position = order.index(columns[0])
        values = matrix[:, position]
        return Stratum(position, np.unique(values[np.isfinite(values)]))

    def _stratum_values(self, j: int, matrix: np.ndarray) -> np.ndarray | None:
        """The stratum column of ``matrix``'s rows when step ``j``'s donors share the row's stratum
        (steps after the stratum column's), else None."""
        if self._stratum is None or j <= self._stratum.position:
            return None
        return matrix[:, self._stratum.position]

    def _donors(
        self, leaf_ids: np.ndarray, stratum_values: np.ndarray | None, values: np.ndarray, records: np.ndarray,
        smoothing: bool,
    ) -> tuple[LeafDonors, Stratum | None]:
        """A step's donors, grouped by leaf, or by leaf and stratum (``stratum_values``: the donors'
        values of the stratum column, see :meth:`_stratum_values`)."""
        if stratum_values is None or self._stratum is None:
            return LeafDonors.build(leaf_ids, values, records, smoothing=smoothing), None
        cells, rows = self._stratum.donor_cells(leaf_ids, stratum_values, MIN_STRATUM_RECORDS)
        return LeafDonors.build(cells, values[rows], records[rows], smoothing=smoothing), self._stratum

    # ------------------------------------------------------- posterior draw
    @property
    def has_posterior_draw(self) -> bool:
        return True

    def posterior_draw(self, seed: int) -> Self:
        """A copy drawing donors with Bayesian-bootstrap weights on the training records.

        One Dirichlet(1, ..., 1) weight per training record, shared by every tree's leaves,
        as if the leaf distributions had been estimated on a bootstrap sample (the trees
        themselves are kept).
        """
        self._check_fitted()
        weights = np.random.default_rng(seed).standard_exponential(self._n_records)
        draw = copy.copy(self)
        draw._steps = [
            replace(step, donors=step.donors.reweighted(weights)) if step.donors else step
            for step in self._steps
        ]
        return draw

    warm_replicates = True  # a replicate keeps the fitted trees (replicate_draw)

    def replicate_draw(self, data: pd.DataFrame, seed: int) -> Self:
        """A posterior draw given a replicate's own records: this model's trees, their leaves
        filled with ``data``'s records.

        Every record of ``data`` goes down each tree to its leaf, the leaves' donors are those
        records' values, and :meth:`posterior_draw` weighs them. The trees are kept, as the
        posterior draw keeps them; the values drawn, hence every survey variable given the
        register, are the replicate's own. A refit would cost a whole fit per replicate (7 to 8
        minutes at 1.2 million persons, bench/README.md "Fourteenth pass") for trees that differ
        little, the register being the same. A leaf none of ``data``'s records reaches draws from
        the records of its nearest ancestor's subtree; records the fitted coding cannot take (a
        category the training data lacked) make it a refit instead.
        """
        if not self.is_fitted:  # nothing to keep: fitted on data
            return super().replicate_draw(data, seed)
        self.check_training_rows(data, "replicate's training table")
        try:
            matrix = self._model_input(data)
            # each step's leaves refilled on its own (tree.apply and the donors' sorts release the GIL):
            # n_jobs at a time, in threads, the same steps in the same order
            steps = ordered_map(lambda j: self._refilled(self._steps[j], j, matrix), range(len(self._steps)),
                                self.n_jobs, name="cart-refill")
        except (SchemaError, _NoRecords) as exc:
            LOGGER.info("cart: replicate refitted: %s", exc)
            return super().replicate_draw(data, seed)
        draw = copy.copy(self)
        draw._steps = steps
        draw._n_records = len(matrix)
        if self.avoid_copies:  # a copy is judged against the replicate's records
            draw._train_hashes = training_hashes(data, self._copy_columns(data))
        draw.training_log = {**self.training_log, "replicate_draw": {"rows": len(data), "trees": "kept"}}
        return draw.posterior_draw(seed)

    def replicate_template(self) -> Self:
        """A copy with the trees and the coding but no donor (the leaves hold the training records:
        as large again as the data, 0.45 GB at 1.2 million persons): what :meth:`replicate_draw`
        needs. It draws nothing itself. Unfitted: itself (a replicate draw then fits)."""
        if not self.is_fitted:
            return self
        template = copy.copy(self)
        template._steps = [replace(step, donors=None if step.donors is None else step.donors.emptied(),
                                   record_values=None) for step in self._steps]
        template._train_hashes = None
        template._n_records = 0
        return template

    def _refilled(self, step: Step, j: int, matrix: np.ndarray) -> Step:
        """``step`` with the donors of the records of ``matrix`` (the training matrix of other records)."""
        if step.leader is not None:  # a block member: the value of the record its leader draws
            return replace(step, record_values=compact(matrix[:, j].copy()))
        if step.donors is None:  # a given column
            return step
        records = np.arange(len(matrix))
        if step.gate is not None:
            records = records[matrix[:, step.gate[0]] == step.gate[1]]
            if len(records) == 0:
                raise _NoRecords(f"no record has a value of {step.column!r}")
        # the columns up to j only, as the fit takes them: a gated step copies its rows (the whole
        # matrix was 0.5 GB a step at 1.2 million persons, two at once with threads)
        rows = _rows_of(matrix[:, : j + 1], records)
        if step.tree is None:
            leaf_ids = np.zeros(len(rows), dtype=np.int64)
            taken = np.arange(len(rows))
        else:
            leaf_ids = step.tree.apply(step.features(rows[:, :j]))
            extra_leaves, extra_rows = _rows_for_empty_leaves(step.tree, leaf_ids)
            leaf_ids = np.concatenate([leaf_ids, extra_leaves])
            taken = np.concatenate([np.arange(len(rows)), extra_rows])
        stratum = self._stratum_values(j, rows)
        # smoothed as the fit smoothed this step (blocks and repeated values are not)
        donors, step_stratum = self._donors(leaf_ids, None if stratum is None else stratum[taken], rows[taken, j],
                                            records[taken], smoothing=step.donors.bandwidth is not None)
        return replace(step, donors=donors, stratum=step_stratum)

    def _fit_step(
        self,
        column: str,
        j: int,
        matrix: np.ndarray,
        records: np.ndarray,
        gate: tuple[int, float] | None,
        continuous: bool,
        rng: np.random.Generator,
    ) -> Step:
        # the columns up to j only (the stratum's among them when it counts): a gated step copies
        # its rows, and with n_jobs steps at once each copy is a step's working set
        matrix = _rows_of(matrix[:, : j + 1], records)
        y = matrix[:, j]
        step = Step(column, None, None, gate)
        leaf_ids = np.zeros(len(y), dtype=np.int64)
        distinct = np.unique(y).size  # once: a sort of the step's records (960,000 at 1.2 million persons)
        if j > 0 and distinct > 1:
            model = DecisionTreeRegressor if continuous else DecisionTreeClassifier
            leaf_ids = self._grow(step, model, j, matrix, y, y, rng)
        smooth = self.smoothing and continuous and distinct >= SMOOTH_MIN_DISTINCT * y.size
        step.donors, step.stratum = self._donors(leaf_ids, self._stratum_values(j, matrix), y, records, smooth)
        return step

    def _grow(
        self, step: Step, model: type, j: int, matrix: np.ndarray, target: np.ndarray, y: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Fit ``step``'s tree on the columns before ``j`` (label predictors ranked by ``y``); leaves."""
        random_state = int(rng.integers(2**31))
        n = len(target)
        split_rows: np.ndarray | None = None
        min_leaf = self._leaf_size
        if self.tree_rows is not None and n > self.tree_rows:
            # the splits chosen on a sample, the leaves as large in all records as without it
            split_rows = np.sort(rng.choice(n, self.tree_rows, replace=False))
            min_leaf = max(1, math.ceil(self._leaf_size * self.tree_rows / n))
        step.tree = model(min_samples_leaf=min_leaf, max_depth=self.max_depth, random_state=random_state)
        labels = self.transformer.categorical_labels
        continuous = step.column not in labels
        n_classes = 0 if continuous else len(labels[step.column])
        step.remap = {
            k: level_ranks(matrix[:, k].astype(np.int64), n_levels, y, continuous, n_classes)
            for k, n_levels in self._levels.items()
            if k < j
        }
        if split_rows is not None:
            # the sample's predictors gone before all rows' are made: the step's peak is the unsampled one's
            step.tree.fit(step.features(matrix[:, :j], split_rows), target[split_rows])
            return step.tree.apply(step.features(matrix[:, :j]))
        features = step.features(matrix[:, :j])
        step.tree.fit(features, target)
        return step.tree.apply(features)

    def _fit_block_step(
        self, column: str, j: int, matrix: np.ndarray, records: np.ndarray, members: list[int],
        order: list[str], rng: np.random.Generator,
    ) -> Step:
        """One tree for a whole block: a multi-output regression on all its columns.

        The leaves then group records alike on the block as a whole, not on its first column
        only, and a synthetic row takes every block value from one record of its leaf.
        """
        matrix = _rows_of(matrix[:, : max(j, *members) + 1], records)
        labels = self.transformer.categorical_labels
        widths = [len(labels[order[k]]) if order[k] in labels else 1 for k in members]
        # the targets filled in place, one matrix (not one per member and their join): a block of
        # survey variables with many categories is as wide as their levels
        block = np.zeros((len(matrix), sum(widths)))
        offset = 0
        for k, width in zip(members, widths, strict=True):
            y = matrix[:, k]
            if order[k] in labels:
                dummies = block[:, offset:offset + width]
                rows = np.flatnonzero(np.isfinite(y))  # a missing value is no category: a row of zeros
                dummies[rows, y[rows].astype(np.int64)] = 1.0
                # unit variance, like the numbers: a rare category weighs as much as an amount
                dummies /= np.maximum(dummies.std(axis=0), 1e-9)
            else:
                finite = np.isfinite(y)
                mean = float(y[finite].mean()) if finite.any() else 0.0
                sd = float(y[finite].std()) if finite.any() else 0.0
                block[:, offset] = (np.where(finite, y, mean) - mean) / (sd or 1.0)
            offset += width
        step = Step(column, None, None, None)
        leaf_ids = np.zeros(len(matrix), dtype=np.int64)
        # a tree only where some target differs: each column's range, not the distinct rows (np.unique
        # with axis=0 sorted the rows, 4 to 8 s a block at 960,000 persons; bench/README.md,
        # "Thirty-fifth pass"); the block holds no NaN (a missing number is its mean, a category a row of zeros)
        if j > 0 and bool((block.max(axis=0) > block.min(axis=0)).any()):
            leaf_ids = self._grow(step, DecisionTreeRegressor, j, matrix, block, matrix[:, j], rng)
        # exact record values: the block's other columns copy the same record's
        step.donors, step.stratum = self._donors(leaf_ids, self._stratum_values(j, matrix), matrix[:, j], records, False)
        return step

    # ------------------------------------------------------------ sampling
    def _sample_model(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        return self._fill(np.full((n, len(self._steps)), np.nan, order="F"), rng)

    def _sample_model_given(self, known: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        matrix = np.full((len(known), len(self._steps)), np.nan, order="F")
        given = [step.column for step in self._steps[: self._n_given]]
        matrix[:, : self._n_given] = self._encode(known, given)
        return self._fill(matrix, rng)

    def _fill(self, matrix: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Draw every non-given column in visiting order, all rows at once."""
        return self._decode(self._fill_steps(matrix, rng, self._n_given, len(self._steps)))

    def sample_matching(
        self, wanted: pd.DataFrame, *, seed: int, max_rounds: int = 8, offset: int = 0,
        within: tuple[str, Collection[str]] | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray] | None:
        """Rows drawn from the model given ``wanted``'s columns: one per wanted row that was drawn.

        Returns the rows (for the wanted rows found, in their order) and those rows' positions in
        ``wanted``; None when a wanted column is not a label column drawn by this model, or the
        model calibrates its draws (the caller then draws whole rows and matches them). Only the
        columns up to the last wanted one in the visiting order are drawn, in growing batches
        (``max_rounds``), and the first equal to a wanted row kept: an exact draw of that prefix
        given the wanted values, since each column is drawn given those before it; the other
        columns are then drawn given the prefix. On the demo's household model the household's
        size, type and municipality are among its first four columns of thirty, so a redrawn
        household's structure costs draws of four columns instead of whole households (the
        redraws were most of a release's drawing time, bench/README.md). ``within``: a label
        column and the values (as text) its rows must have, drawn in the prefix too (a region's
        model: ``HouseholdSynthesizer.restricted_to``).
        """
        self._check_fitted()
        position = {step.column: j for j, step in enumerate(self._steps)}
        labels = self.transformer.categorical_labels
        names = list(wanted.columns)
        if (getattr(self, "_calibrator", None) is not None or self._n_given or not names or any(
                self.transformer.model_columns_of([n]) != [n] or n not in position or n not in labels for n in names)):
            return None
        at = [position[n] for n in names]
        inside = allowed_codes(self.transformer.codecs.get(within[0]), labels.get(within[0]), within[1]) \
            if within is not None else None
        if within is not None and (inside is None or within[0] not in position):
            return None
        stop = max(at + ([position[within[0]]] if within is not None else [])) + 1
        if any(step.leader is not None and step.leader < stop for step in self._steps[stop:]):
            return None  # a block split by the prefix: its members need their leader's records
        codecs = [codec for n in names if isinstance(codec := self.transformer.codecs.get(n), CategoricalCodec)]
        if len(codecs) < len(names):
            return None
        # a value the model never saw is never drawn: its rows match nothing (code -1)
        wanted = wanted.reset_index(drop=True)
        seen = np.logical_and.reduce([
            (wanted[n].isin(list(codec.levels)) | (wanted[n].isna() & (codec.missing_label is not None))).to_numpy()
            for n, codec in zip(names, codecs, strict=True)])
        target = pd.DataFrame(-1, index=range(len(wanted)), columns=names, dtype=np.int64)
        if seen.any():
            target.loc[seen, names] = self._encode(
                self.transformer.transform(wanted[seen].reset_index(drop=True), names), names).astype(np.int64)
        rng = np.random.default_rng(seed)
        found = np.full(len(wanted), -1, dtype=np.int64)
        prefixes: list[np.ndarray] = []
        kept = 0
        for round_ in range(max_rounds):
            missing = np.flatnonzero(found < 0)
            if not len(missing):
                break
            k = batch_rows(len(missing), round_)
            drawn = self._fill_steps(np.full((k, len(self._steps)), np.nan, order="F"), rng, 0, stop)
            if within is not None and inside is not None:
                drawn = drawn[np.isin(drawn[:, position[within[0]]], inside)]
            taken = match_rows(target.iloc[missing].reset_index(drop=True),
                               pd.DataFrame(drawn[:, at].astype(np.int64), columns=names))
            hit = taken >= 0
            found[missing[hit]] = kept + np.arange(int(hit.sum()))
            prefixes.append(drawn[taken[hit], :stop])
            kept += int(hit.sum())
        rows = np.flatnonzero(found >= 0)
        prefix = np.concatenate(prefixes)[found[rows]] if kept else np.empty((0, stop))

        def rest(idx: np.ndarray) -> pd.DataFrame:
            """The columns after the prefix drawn (again) for rows ``idx``, given their prefix."""
            matrix = np.full((len(idx), len(self._steps)), np.nan, order="F")
            matrix[:, :stop] = prefix[idx]
            return self._decode(self._fill_steps(matrix, rng, stop, len(self._steps)))

        out = self.transformer.inverse(rest(np.arange(len(rows))), rng, offset)
        # a row equal to a training record is drawn again, its prefix (the wanted values) kept
        out = self._redraw_copies(out, rest, rng, offset)
        return self.fitted_schema.enforce(out), rows

    def _fill_steps(self, matrix: np.ndarray, rng: np.random.Generator, start: int, stop: int) -> np.ndarray:
        """Draw the columns of steps ``start`` to ``stop`` (excluded) in visiting order, all rows at
        once, into ``matrix`` (those before ``start`` already in it); returns it."""
        if self._n_records == 0:
            raise NotFittedError("a replicate template has no donors: draw from its replicate_draw")
        picked: dict[int, np.ndarray] = {}  # step -> training record drawn for each row (-1: none)
        # a column at a time, read and written: held by column, each is contiguous (the predictors'
        # ranks, the draws, the decoding; bench/README.md, "Thirty-fifth pass")
        matrix = np.asfortranarray(matrix)
        every = np.arange(len(matrix))
        for j in range(start, stop):
            step = self._steps[j]
            rows = every
            if step.gate is not None:
                rows = np.flatnonzero(matrix[:, step.gate[0]] == step.gate[1])
            if step.leader is not None:  # a block member takes the value of the leader's record
                assert step.record_values is not None, "a block member keeps its training values"
                records = picked[step.leader][rows]
                rows, records = rows[records >= 0], records[records >= 0]
                matrix[rows, j] = step.record_values[records]
                continue
            leads = any(s.leader == j for s in self._steps)
            if leads:  # set before any row is drawn: with none (no rows, a gate none passes) members take none
                picked[j] = np.full(len(matrix), -1, dtype=np.int64)
            if len(rows) == 0:
                continue
            if step.tree is None:
                leaf_ids = np.zeros(len(rows), dtype=np.int64)
            else:
                leaf_ids = step.tree.apply(step.features(matrix[:, :j] if rows is every else matrix[rows, :j]))
            assert step.donors is not None, "only given columns have no donors"
            if step.stratum is not None:
                leaf_ids = step.stratum.draw_cells(leaf_ids, matrix[rows, step.stratum.position], step.donors)
            matrix[rows, j], records = step.donors.draw_with_records(leaf_ids, rng)
            if leads:
                picked[j][rows] = records
        return matrix
