"""SDV 2.0 synthesisers whose CTGAN/TVAE training can stop on a time budget.

Imported lazily (SDV and torch take seconds to import). ``ctgan``'s ``fit`` cannot be
continued (every call rebuilds the networks and optimisers) and offers no callback, but in
ctgan 0.12 both CTGAN and TVAE assign ``self.loss_values`` exactly once at the end of every
epoch. :class:`_EpochHook` turns that assignment into an epoch-end callback; the callback
may raise :class:`StopTraining`, which ends ``fit`` cleanly after a complete epoch (the
generator/decoder, transformer and data sampler are all in place by then). The budget test
in ``synth_assets_tests/synthesis`` fails if a ctgan upgrade breaks the hook.

``_fit`` of the SDV classes is overridden only to build the hooked model instead of the
plain one; its body mirrors SDV 2.0.0's.

ctgan fits a Bayesian Gaussian mixture per continuous column on every row: 290 s for the
21 continuous columns of EU-SILC resampled to 100,000 rows (62 s on 20,000), more than a
typical time budget before the first epoch. The mixtures only describe the shape of each
distribution, so :class:`SampledDataTransformer` fits them on at most
``MIXTURE_ROWS`` sampled rows (then transforms every row as before).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any
from unittest import mock

import pandas as pd
from ctgan import CTGAN, TVAE
from ctgan.data_transformer import DataTransformer
from ctgan.synthesizers import ctgan as ctgan_module
from ctgan.synthesizers import tvae as tvae_module
from sdv.metadata import Metadata
from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer
from sdv.single_table.ctgan import _validate_no_category_dtype
from sdv.single_table.utils import detect_discrete_columns

EpochCallback = Callable[[pd.DataFrame], None]
TABLE = "data"
MIXTURE_ROWS = 10_000


class SampledDataTransformer(DataTransformer):
    """ctgan's transformer with each continuous column's mixture fitted on sampled rows."""

    def _fit_continuous(self, data: pd.DataFrame):
        if len(data) > MIXTURE_ROWS:
            data = data.sample(MIXTURE_ROWS, random_state=0)
        return super()._fit_continuous(data)


class StopTraining(Exception):
    """Raised by an epoch callback to end training after the current epoch."""


class _EpochHook:
    """Calls ``_epoch_callback(loss_frame)`` whenever ctgan stores its losses (empty: training starts)."""

    _epoch_callback: EpochCallback | None = None

    @property
    def loss_values(self) -> pd.DataFrame | None:
        return self.__dict__.get("_loss_frame")

    @loss_values.setter
    def loss_values(self, frame: pd.DataFrame | None) -> None:
        self.__dict__["_loss_frame"] = frame
        if self._epoch_callback is not None and frame is not None:
            self._epoch_callback(frame)

    def fit(self, train_data: pd.DataFrame, discrete_columns=()) -> None:
        with contextlib.suppress(StopTraining):
            # Mixed into ctgan's CTGAN and TVAE (below), which define fit.
            super().fit(train_data, discrete_columns)  # type: ignore[misc]


class HookedCTGAN(_EpochHook, CTGAN):
    """ctgan's CTGAN with an epoch-end callback."""


class HookedTVAE(_EpochHook, TVAE):
    """ctgan's TVAE with an epoch-end callback."""


class _BudgetedMixin:
    """SDV synthesiser building a hooked model; ``epoch_callback`` and ``seed`` set before fit."""

    hooked_class: type
    epoch_callback: EpochCallback | None = None
    training_seed: int = 0
    # Set by the SDV synthesiser this is mixed into (below).
    _data_processor: Any
    _model_kwargs: dict[str, Any]
    metadata: Metadata

    def _fit(self, processed_data: pd.DataFrame) -> None:
        _validate_no_category_dtype(processed_data)
        transformers = self._data_processor._hyper_transformer.field_transformers
        discrete_columns = detect_discrete_columns(self.metadata, processed_data, transformers)
        self._model = self.hooked_class(**self._model_kwargs)
        self._model.set_random_state(self.training_seed)
        self._model._epoch_callback = self.epoch_callback
        try:
            with (
                warnings.catch_warnings(),
                mock.patch.object(ctgan_module, "DataTransformer", SampledDataTransformer),
                mock.patch.object(tvae_module, "DataTransformer", SampledDataTransformer),
            ):
                warnings.filterwarnings("ignore", message=".*Attempting to run cuBLAS.*")
                self._model.fit(processed_data, discrete_columns=discrete_columns)
        finally:
            self._model._epoch_callback = None
            self.epoch_callback = None


class BudgetedCTGANSynthesizer(_BudgetedMixin, CTGANSynthesizer):
    hooked_class = HookedCTGAN


class BudgetedTVAESynthesizer(_BudgetedMixin, TVAESynthesizer):
    hooked_class = HookedTVAE


def build_metadata(frame: pd.DataFrame, categorical: list[str]) -> Metadata:
    """Detect metadata, then set every sdtype ourselves: labels categorical, the rest numerical.

    Detection alone would call some label columns ids or numbers; the transform already knows.
    """
    metadata = Metadata.detect_from_dataframes({TABLE: frame})
    for column in frame.columns:
        sdtype = "categorical" if column in categorical else "numerical"
        metadata.update_column(column, sdtype=sdtype, table_name=TABLE)
    return metadata


def make_sdv(family: str, metadata: Metadata, categorical: list[str], **kwargs):
    """The SDV synthesiser of a family, with rounding and range enforcement left to our transform."""
    common = {"enforce_min_max_values": False, "enforce_rounding": False}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*saving the metadata.*")
        if family == "ctgan":
            return BudgetedCTGANSynthesizer(metadata, **common, **kwargs)
        if family == "tvae":
            return BudgetedTVAESynthesizer(metadata, **common, **kwargs)
        if family == "copula":
            # label columns arrive uniformly encoded, continuous ones as normal scores: the
            # 'uniform' and 'norm' marginals are then exact, and fitting them is fast
            return GaussianCopulaSynthesizer(
                metadata,
                **common,
                default_distribution="norm",
                numerical_distributions={c: "uniform" for c in categorical},
                **kwargs,
            )
    raise ValueError(f"unknown SDV family {family!r}")
