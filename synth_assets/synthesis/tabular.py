"""Single-table synthesisers: shared preprocessing, copy filter and conditional sampling.

Subclasses only see the model frame of :class:`~synth_assets.synthesis.transform.TableTransformer`
and implement ``_fit_model`` and ``_sample_model``. On top of them this class

* removes exact copies of training records: rows equal to a training row (identifiers
  aside) are drawn again, up to ``max_copy_rounds`` times, because a released row identical
  to a real person is a disclosure even if the model is otherwise private;
* samples conditionally on some columns (``condition_columns``), which the household
  synthesiser uses to draw persons for given households. CART conditions natively; the
  other families draw a pool of unconditional rows and pick, for every requested row, a
  close pool row on the conditioning columns (see :func:`match_rows`).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from synth_assets.common.hashing import in_sorted, row_hashes
from synth_assets.synthesis.base import LOGGER, NotFittedError, Synthesizer
from synth_assets.synthesis.marginal_mapping import MarginalCalibrator
from synth_assets.synthesis.transform import TableTransformer


def _hashes(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
    """Row hashes of ``columns`` (default all) as the gate's copy test computes them (one definition
    of "the same record"), hashed a block of rows at a time: no copy of the frame."""
    return row_hashes([frame], list(frame.columns if columns is None else columns))[0]


def training_hashes(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
    """Sorted unique row hashes of ``frame``'s ``columns``: the training records a sample must not equal."""
    return np.unique(_hashes(frame, columns))


def _matching_matrix(frame: pd.DataFrame, labels: Mapping[str, list[str]]) -> np.ndarray:
    """Numeric matrix for nearest-row matching: one-hot labels, continuous values as ranks."""
    parts = []
    for col in frame.columns:
        if col in labels:
            codes = pd.Categorical(frame[col], categories=labels[col]).codes
            parts.append(np.eye(len(labels[col]) + 1)[codes])
        else:
            x = frame[col].to_numpy(dtype=float)
            ranks = pd.Series(x).rank(pct=True).fillna(-1.0).to_numpy()
            parts.append(ranks[:, None])
    return np.hstack(parts) if parts else np.zeros((len(frame), 0))


def match_rows(pool: np.ndarray, targets: np.ndarray, rng: np.random.Generator, k: int = 10) -> np.ndarray:
    """For every target row, the index of a close pool row, using each pool row once if possible.

    Targets are served in random order; each takes the nearest of its ``k`` nearest pool
    rows not yet taken, or its nearest one when all are taken.
    """
    k = min(k, len(pool))
    nearest = NearestNeighbors(n_neighbors=k).fit(pool).kneighbors(targets, return_distance=False)
    taken = np.zeros(len(pool), dtype=bool)
    chosen = np.empty(len(targets), dtype=np.int64)
    for t in rng.permutation(len(targets)):
        free = nearest[t][~taken[nearest[t]]]
        chosen[t] = free[0] if len(free) else nearest[t][0]
        taken[chosen[t]] = True
    return chosen


class TabularSynthesizer(Synthesizer):
    """A synthesiser for one flat table; see the module docstring for what it adds."""

    pool_factor = 3  # unconditional rows drawn per requested row when matching
    match_block = 2000

    def __init__(
        self,
        *,
        seed: int = 0,
        special_codes: Mapping[str, Sequence[float]] | None = None,
        id_columns: Sequence[str] = (),
        condition_columns: Sequence[str] = (),
        avoid_copies: bool = True,
        max_copy_rounds: int = 5,
    ) -> None:
        super().__init__(seed=seed)
        self.special_codes = special_codes
        self.id_columns = id_columns
        self.condition_columns = condition_columns
        self.avoid_copies = avoid_copies
        self.max_copy_rounds = max_copy_rounds
        self._transformer: TableTransformer | None = None
        self._train_hashes: np.ndarray | None = None
        self._calibrator: MarginalCalibrator | None = None

    #: Whether generated numbers are mapped onto the training marginals (``calibration.py``).
    calibrates_marginals = False

    @property
    def transformer(self) -> TableTransformer:
        """The fitted column transformer; :class:`NotFittedError` before :meth:`fit`."""
        if self._transformer is None:
            raise NotFittedError(f"{type(self).__name__} has not been fitted")
        return self._transformer

    # ------------------------------------------------------------- subclasses
    @abstractmethod
    def _fit_model(self, frame: Any, rng: np.random.Generator) -> None:
        """Fit the model on :meth:`_model_input` of the model frame; may add entries to ``training_log``."""

    def _model_input(self, data: pd.DataFrame) -> Any:
        """What :meth:`_fit_model` fits on, from the training data: the model frame, or a family's own
        encoding of it (CART: a matrix of codes, filled a column at a time with no frame made)."""
        return self.transformer.transform(data)

    @abstractmethod
    def _sample_model(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``n`` rows of the model frame."""

    def _sample_model_given(self, known: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Draw model-frame rows whose conditioning columns equal ``known``'s (by matching).

        Blocks of ``match_block`` requested rows each get their own pool, which keeps the
        brute-force neighbour search linear in the number of rows.
        """
        labels = self.transformer.categorical_labels
        parts = []
        for start in range(0, len(known), self.match_block):
            block = known.iloc[start : start + self.match_block]
            pool = self._sample_model(max(self.pool_factor * len(block), 50), rng)
            both = _matching_matrix(pd.concat([pool[block.columns], block], ignore_index=True), labels)
            chosen = match_rows(both[: len(pool)], both[len(pool) :], rng)
            parts.append(pool.iloc[chosen])
        out = pd.concat(parts, ignore_index=True)
        for col in known.columns:
            out[col] = known[col].to_numpy()
        return out

    # ----------------------------------------------------------------- fitting
    def fit(self, data: pd.DataFrame) -> TabularSynthesizer:
        started = time.perf_counter()
        transformer = TableTransformer(special_codes=self.special_codes, id_columns=self.id_columns)
        transformer.fit(data)
        self.check_training_rows(data)  # after the schema, whose errors say more
        unknown = set(self.condition_columns) - set(transformer.fitted_schema.columns)
        if unknown:
            raise ValueError(f"condition_columns not in the data: {sorted(unknown)}")
        self._transformer = transformer
        self.training_log = {"family": self.family, "rows": len(data), "columns": data.shape[1]}
        self._fit_model(self._model_input(data), np.random.default_rng(self.seed))
        if self.avoid_copies:
            self._train_hashes = training_hashes(data, self._copy_columns(data))
        self._calibrator = None
        if self.calibrates_marginals:
            self._calibrator = MarginalCalibrator.fit(
                data[self._copy_columns(data)], transformer.special_codes, skip=tuple(self.condition_columns))
        self.schema = transformer.schema
        self.training_log["seconds"] = round(time.perf_counter() - started, 3)
        self.training_log["params"] = self.get_params()
        LOGGER.info("%s: fitted on %d rows in %.1f s", self.family, len(data), self.training_log["seconds"])
        return self

    def _copy_columns(self, data: pd.DataFrame) -> list[str]:
        """The columns a copy of a training record is judged on: all but the ids."""
        ids = set(self.transformer.id_column_names)
        return [c for c in data.columns if c not in ids]

    # ----------------------------------------------------------------- sampling
    def _generate(self, n: int, rng: np.random.Generator, offset: int) -> pd.DataFrame:
        out = self.transformer.inverse(self._sample_model(n, rng), rng, offset)
        calibrator = getattr(self, "_calibrator", None)  # None in models saved before calibration
        if calibrator is not None:
            out = calibrator.apply(out, rng)
        return self._redraw_copies(out, lambda idx: self._sample_model(len(idx), rng), rng, offset)

    def sample_conditional(self, known: pd.DataFrame, *, seed: int | None = None) -> pd.DataFrame:
        """One synthetic row per row of ``known``, equal to it on ``condition_columns``."""
        self._check_fitted()
        rng = np.random.default_rng(self.seed if seed is None else seed)
        columns = list(self.condition_columns)
        known = known[columns].reset_index(drop=True)
        known_frame = self.transformer.transform(known, columns)
        out = self.transformer.inverse(self._sample_model_given(known_frame, rng), rng)

        def redraw(idx: np.ndarray) -> pd.DataFrame:
            return self._sample_model_given(known_frame.iloc[idx].reset_index(drop=True), rng)

        out = self._redraw_copies(out, redraw, rng, 0)
        out[columns] = known  # exact known values (decoding could round or clip them)
        return self.fitted_schema.enforce(out)

    def _redraw_copies(
        self,
        out: pd.DataFrame,
        redraw: Callable[[np.ndarray], pd.DataFrame],
        rng: np.random.Generator,
        offset: int,
    ) -> pd.DataFrame:
        """Draw rows equal to a training record again, up to ``max_copy_rounds`` times."""
        if self._train_hashes is None or out.empty:
            return out
        keep_ids = self.transformer.id_column_names
        for attempt in range(self.max_copy_rounds + 1):
            copies = np.flatnonzero(in_sorted(_hashes(out, self._copy_columns(out)), self._train_hashes))
            if len(copies) == 0:
                break
            if attempt == self.max_copy_rounds:
                LOGGER.warning("%s: %d rows still equal a training record", self.family, len(copies))
                break
            fresh = self.transformer.inverse(redraw(copies), rng, offset)
            for col in out.columns:
                if col not in keep_ids:
                    out.loc[copies, col] = fresh[col].to_numpy()
        return self.fitted_schema.enforce(out)
