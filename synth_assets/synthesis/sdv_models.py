"""SDV 2.0 families (CTGAN, TVAE, Gaussian copula) behind the common interface.

* The model frame from the shared transform is complete before SDV sees it: continuous
  parts are filled where a point mass applies (the state column decides at the end), so
  SDV never adds null indicators of its own and zero-inflated incomes keep their zeros.
* Copula: continuous columns are handed over as normal scores (ranks through the inverse
  normal CDF) and mapped back through the training quantiles, so the fast 'norm' marginal
  is exact instead of a poor fit to skewed incomes (and 5x faster than 'beta').
* CTGAN/TVAE: ``epochs`` caps training and ``max_seconds`` bounds it. After every epoch the
  callback (see ``_sdv_backend``) compares the time left with the mean duration of recent
  epochs and stops before an epoch that would overrun; at least one epoch always runs.
  The budget counts from the start of SDV's fit, preprocessing included (ctgan's mixtures
  are fitted on at most 10,000 sampled rows to keep that part short). Per-epoch losses
  and progress go to ``training_log`` and the ``synth_assets.synthesis`` logger.
* Fitting runs with joblib's threading backend (ctgan's process workers kept Dagster steps
  alive for minutes), ``torch_threads`` torch threads (1 was measured fastest on 2 busy
  cores) and seeded numpy/torch generators, which are restored afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from synth_assets.synthesis.base import LOGGER
from synth_assets.synthesis.tabular import TabularSynthesizer

GAN_FAMILIES = ("ctgan", "tvae")
SDV_FAMILIES = ("ctgan", "tvae", "copula")


#: Libraries that log every fit and sample at INFO (detected metadata, one line per column).
CHATTY_LOGGERS = ("sdv", "rdt", "copulas", "ctgan", "SingleTableSynthesizer")


@contextlib.contextmanager
def training_environment(seed: int, torch_threads: int | None) -> Iterator[None]:
    """Seeded global generators, torch threads, joblib in the calling thread, quiet SDV logs; all restored after.

    joblib runs sequentially: ctgan transforms columns with ``Parallel(n_jobs=-1)``, and rdt
    swaps numpy's global random state around each transform, so threads made two fits with
    one seed differ (measured: TVAE k3 ±15 on eusilc); process workers kept a Dagster step
    process alive about 5 minutes after it finished (measured with ctgan 0.12.1 under
    Dagster 1.13: a 369 s run took 84 s with ``joblib.parallel_config(backend="threading")``).
    The columns' transforms are a small part of training.
    """
    import joblib
    import torch

    np_state = np.random.get_state()
    threads = torch.get_num_threads()
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with torch.random.fork_rng(devices=[]), joblib.parallel_config(backend="sequential"):
        np.random.seed(seed)
        torch.manual_seed(seed)
        if torch_threads:
            torch.set_num_threads(torch_threads)
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
            torch.set_num_threads(threads)
            np.random.set_state(np_state)


class EpochBudget:
    """Epoch-end bookkeeping: losses, progress logging and the stop decision."""

    def __init__(self, family: str, epochs: int, max_seconds: float | None) -> None:
        self.family = family
        self.epochs = epochs
        self.max_seconds = max_seconds
        self.started = time.perf_counter()
        self.training_started: float | None = None  # after SDV's and ctgan's preprocessing
        self.epoch_ends: list[float] = []
        self.losses: dict[str, list[float]] = {}
        self.stopped_early = False

    def __call__(self, frame: pd.DataFrame) -> None:
        from synth_assets.synthesis._sdv_backend import StopTraining

        now = time.perf_counter()
        if frame.empty:
            self.training_started = now
            LOGGER.info("%s: preprocessing took %.1f s", self.family, now - self.started)
            return
        self.epoch_ends.append(now)
        self.losses = epoch_losses(frame)
        done = len(self.epoch_ends)
        latest = ", ".join(f"{k} {v[-1]:.3f}" for k, v in self.losses.items())
        LOGGER.info("%s: epoch %d/%d  %s  (%.1f s)", self.family, done, self.epochs, latest, now - self.started)
        if self.max_seconds is None or done >= self.epochs:
            return
        if now + self._epoch_seconds(last=3) > self.started + self.max_seconds:
            self.stopped_early = True
            LOGGER.info("%s: time budget of %.0f s reached after %d epochs", self.family, self.max_seconds, done)
            raise StopTraining

    def _epoch_seconds(self, last: int | None = None) -> float:
        """Mean duration of the (last) epochs."""
        durations = np.diff([self.training_started or self.started] + self.epoch_ends)
        return float(durations[-last:].mean() if last else durations.mean())

    @property
    def preprocess_seconds(self) -> float | None:
        return None if self.training_started is None else self.training_started - self.started

    @property
    def seconds_per_epoch(self) -> float | None:
        return self._epoch_seconds() if self.epoch_ends else None


def epoch_losses(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Per-epoch losses from ctgan's loss frame (TVAE logs per batch: averaged per epoch)."""
    columns = [c for c in frame.columns if c not in ("Epoch", "Batch")]
    means = frame.groupby("Epoch", sort=True)[columns].mean()
    names = {"Generator Loss": "generator", "Discriminator Loss": "discriminator", "Loss": "loss"}
    return {names.get(c, c): means[c].astype(float).tolist() for c in columns}


class SDVSynthesizer(TabularSynthesizer):
    """CTGAN, TVAE or Gaussian copula from SDV 2.0; see the module docstring.

    ``model_params`` go to the SDV class unchanged (e.g. ``{"embedding_dim": 64}``).
    ``enable_gpu=None`` uses the GPU when torch sees one. ``calibrate_marginals`` (default:
    on for CTGAN and TVAE) maps generated numbers onto the training marginals, rank for rank
    (``synth_assets.synthesis.marginal_mapping``).
    """

    def __init__(
        self,
        family: str = "ctgan",
        *,
        seed: int = 0,
        epochs: int = 300,
        max_seconds: float | None = None,
        batch_size: int = 500,
        enable_gpu: bool | None = None,
        torch_threads: int | None = 1,
        model_params: Mapping[str, Any] | None = None,
        calibrate_marginals: bool | None = None,
        special_codes: Mapping[str, Sequence[float]] | None = None,
        id_columns: Sequence[str] = (),
        condition_columns: Sequence[str] = (),
        avoid_copies: bool = True,
        max_copy_rounds: int = 5,
    ) -> None:
        if family not in SDV_FAMILIES:
            raise ValueError(f"family must be one of {SDV_FAMILIES}, got {family!r}")
        super().__init__(
            seed=seed,
            special_codes=special_codes,
            id_columns=id_columns,
            condition_columns=condition_columns,
            avoid_copies=avoid_copies,
            max_copy_rounds=max_copy_rounds,
        )
        self.family = family
        self.epochs = int(epochs)  # configuration layers may hand over 300.0
        self.max_seconds = max_seconds
        self.batch_size = int(batch_size)
        self.enable_gpu = enable_gpu
        self.torch_threads = torch_threads
        self.model_params = dict(model_params or {})
        # Default: on for the neural families; the copula's normal scores already keep the
        # training marginals (calibration.py).
        self.calibrate_marginals = calibrate_marginals
        # The fitted SDV single-table synthesiser (sdv ships no type information).
        self._sdv: Any = None

    @property
    def calibrates_marginals(self) -> bool:  # type: ignore[override]
        if self.calibrate_marginals is None:
            return self.family in GAN_FAMILIES
        return bool(self.calibrate_marginals)

    def _sdv_kwargs(self) -> dict[str, Any]:
        import torch

        if self.family == "copula":
            return dict(self.model_params)
        gpu = torch.cuda.is_available() if self.enable_gpu is None else self.enable_gpu
        return {"epochs": self.epochs, "batch_size": self.batch_size, "enable_gpu": gpu, **self.model_params}

    # ------------------------------------------------------------- fitting
    def _fit_model(self, frame: pd.DataFrame, rng: np.random.Generator) -> None:
        from synth_assets.synthesis import _sdv_backend

        frame = self.transformer.fill_continuous_gaps(frame, rng)
        if self.family == "copula":
            frame = self._to_normal_scores(frame)
        categorical = list(self.transformer.categorical_labels)
        metadata = _sdv_backend.build_metadata(frame, categorical)
        kwargs = self._sdv_kwargs()
        synth = _sdv_backend.make_sdv(self.family, metadata, categorical, **kwargs)
        budget = None
        if self.family in GAN_FAMILIES:
            budget = EpochBudget(self.family, self.epochs, self.max_seconds)
            synth.epoch_callback = budget
            synth.training_seed = self.seed
        with training_environment(self.seed, self.torch_threads):
            synth.fit({_sdv_backend.TABLE: frame})
        self._sdv = synth
        self.training_log["device"] = "cuda" if kwargs.get("enable_gpu") else "cpu"
        if budget is not None:
            self.training_log.update(
                epochs=len(budget.epoch_ends),
                epochs_requested=self.epochs,
                max_seconds=self.max_seconds,
                stopped_by_budget=budget.stopped_early,
                preprocess_seconds=budget.preprocess_seconds,
                seconds_per_epoch=budget.seconds_per_epoch,
                losses=budget.losses,
            )

    # ------------------------------------------------------------ sampling
    def _sample_model(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        from synth_assets.synthesis._sdv_backend import TABLE

        seed = int(rng.integers(2**31))
        with training_environment(seed, self.torch_threads):
            self._sdv._set_random_state(seed)
            out = self._sdv.sample(n)[TABLE].reset_index(drop=True)
        if self.family == "copula":
            out = self._from_normal_scores(out)
        return out

    # ------------------------------------------------- copula normal scores
    def _to_normal_scores(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for name in self.transformer.continuous_columns:
            ranks = frame[name].rank(method="average").to_numpy()
            frame[name] = ndtri((ranks - 0.5) / len(frame))
        return frame

    def _from_normal_scores(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for name, codec in self.transformer.continuous_columns.items():
            grid = np.linspace(0.0, 1.0, len(codec.quantiles))
            frame[name] = np.interp(ndtr(frame[name].to_numpy(dtype=float)), grid, codec.quantiles)
        return frame
