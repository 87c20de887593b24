"""A conditional Wasserstein GAN of our own for survey microdata ("gan"), in torch (Apache-2.0).

The GAN family of the Beamm seed, with the parts of CTGAN (Xu et al. 2019) that make GANs
work on tables, written here so the model carries no BUSL-1.1 licence. It models the model
frame of :class:`~synth_assets.synthesis.transform.TableTransformer`, so semi-continuous
amounts, special codes and missing values are label columns (``<col>#state``) like any
category, and a continuous part is only modelled where its state says "value".

* **Mode-specific normalisation**: every continuous part gets a variational Gaussian
  mixture (scikit-learn's ``BayesianGaussianMixture``, at most ``max_modes`` modes, the
  modes under 0.5% weight dropped); a value is coded as the one-hot of a mode drawn from its
  posterior plus a scalar ``(x - mean) / (4 sd)`` within that mode. Where the state is not
  "value", the part is filled with draws from its marginal, which decoding discards.
* **Training by sampling**: each training row of a batch comes with a condition, one label
  column chosen at random and one of its labels drawn with probability proportional to the
  log of its frequency (rare labels are seen often enough to be learnt); the real rows the
  critic sees carry the label of their condition. The generator gets the condition's
  one-hot beside its noise and pays the cross-entropy of the label it generated.
* **WGAN-GP with PacGAN packing**: the critic scores ``pac`` rows at once (mode collapse
  shows in a pack), with a gradient penalty of weight ``gradient_penalty``.
* Generator: CTGAN's residual layers (each layer's output concatenated to its input),
  normalised by LayerNorm rather than BatchNorm: with BatchNorm a batch drawn under one
  fixed condition (:meth:`sample_conditional`) normalises the condition away, and
  evaluation-mode running statistics are not the statistics training saw.

**Early stopping on a held-out fidelity score**, not a fixed epoch count: ``holdout_share``
of the rows are kept aside (whole units where ``holdout_groups`` names them, as the neural
family does: household members share household values). Every ``check_every`` epochs the
generator draws ``max(held-out rows, 1000)`` rows and the score is the mean total-variation
distance of the 1- and 2-way tables of binned columns (labels as they are, continuous parts
in ``FIDELITY_BINS`` training-quantile bins, "no value" a bin of its own; at most
``MAX_PAIRS`` pairs, chosen at fit) between them and the held-out rows; 0 is perfect. The
best checked generator is kept; training stops after ``patience`` checks without a better
score, at ``epochs``, or before an epoch that would end after ``max_seconds``. A GAN's losses
say little about sample quality (the critic's moves with the critic), hence this score.

Generated numbers are mapped onto the training marginals (``calibrate_marginals``,
:mod:`~synth_assets.synthesis.marginal_mapping`), as for SDV's GANs.

:meth:`GANSynthesizer.posterior_draw` and :meth:`~GANSynthesizer.replicate_draw` fine-tune
the fitted generator and critic ``posterior_epochs`` epochs on a Bayesian-bootstrap
resample of the records (rows drawn with Exponential(1) weights), as the neural family
fine-tunes on weighted records: the parameters move by the sampling variability of the data
at a few epochs' cost, so replicates are proper draws for the combining rules.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from synth_assets.synthesis.base import LOGGER
from synth_assets.synthesis.holdout import HeldOutUnitsSynthesizer
from synth_assets.synthesis.neural import torch_environment
from synth_assets.synthesis.tabular import training_hashes
from synth_assets.synthesis.transform import VALUE_STATE

#: Bins of a continuous part in the held-out fidelity score (training-quantile edges).
FIDELITY_BINS = 10
#: Most 2-way tables in the held-out fidelity score (random pairs, fixed at fit).
MAX_PAIRS = 300
#: Fewest generated rows scored per check: fewer make the 2-way tables too noisy to rank epochs.
MIN_CHECK_ROWS = 1000
#: Values a mixture is fitted on at most (a random subset): the modes of 20,000 values are
#: those of 100,000, at a fifth of the cost.
MIXTURE_MAX_ROWS = 20_000
#: Modes lighter than this are dropped (CTGAN's threshold).
MODE_MIN_WEIGHT = 0.005
#: Gumbel-softmax temperature of the generator's one-hot outputs while training (CTGAN's).
GUMBEL_TAU = 0.2
#: Rounds of rejection when sampling given a label: rows whose generated label differs are drawn again.
CONDITION_ROUNDS = 10


@dataclass
class LabelBlock:
    """A label column of the model frame: one-hot in the data vector, and a condition block."""

    name: str
    labels: list[str]

    @property
    def width(self) -> int:
        return len(self.labels)


@dataclass
class ContinuousBlock:
    """A continuous part: scalar within mode, then the mode's one-hot; its state column, if any."""

    name: str
    mixture: Any  # fitted BayesianGaussianMixture
    modes: np.ndarray  # indices of the kept mixture components
    means: np.ndarray
    stds: np.ndarray
    edges: np.ndarray  # interior training-quantile edges for the fidelity score
    state: int | None  # index of its state column among the label blocks
    value_code: int  # code of "value" in that state column

    @property
    def width(self) -> int:
        return 1 + len(self.modes)


def _categorical_draw(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row, drawn from each row's probabilities (inverse CDF, ``rng``'s uniforms)."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities)) * cumulative[:, -1]
    return np.minimum((cumulative < u[:, None]).sum(axis=1), probabilities.shape[1] - 1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _build_networks(noise: int, cond: int, data: int, generator_dims: Sequence[int],
                    critic_dims: Sequence[int], pac: int) -> tuple[Any, Any]:
    """(generator, critic) torch modules; defined here so torch is imported only when used."""
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, i: int, o: int) -> None:
            super().__init__()
            self.fc = nn.Linear(i, o)
            self.norm = nn.LayerNorm(o)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.relu(self.norm(self.fc(x))), x], dim=1)

    layers: list[nn.Module] = []
    width = noise + cond
    for d in generator_dims:
        layers.append(Residual(width, d))
        width += d
    layers.append(nn.Linear(width, data))
    generator = nn.Sequential(*layers)

    critic_layers: list[nn.Module] = []
    width = (data + cond) * pac
    for d in critic_dims:
        critic_layers += [nn.Linear(width, d), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
        width = d
    critic_layers.append(nn.Linear(width, 1))
    return generator, nn.Sequential(*critic_layers)


class GANSynthesizer(HeldOutUnitsSynthesizer):
    """Conditional WGAN-GP synthesiser with CTGAN's coding; see the module docstring.

    Parameters
    ----------
    embedding_dim:
        Size of the generator's noise vector.
    generator_dims, critic_dims:
        Widths of the generator's residual layers and of the critic's hidden layers.
    max_modes:
        Most mixture modes per continuous part.
    epochs, patience, check_every, max_seconds:
        At most ``epochs`` epochs (``len(train) // batch_size`` generator steps each); the
        held-out fidelity checked every ``check_every`` epochs; stop after ``patience``
        checks without a better score, or before an epoch that would end after ``max_seconds``.
    batch_size, pac:
        Rows per step, and rows per critic pack (``batch_size`` is rounded to a multiple).
    critic_steps:
        Critic updates per generator update.
    generator_lr, critic_lr, betas, weight_decay:
        Adam's settings (CTGAN's: 2e-4, (0.5, 0.9), 1e-6).
    gradient_penalty:
        Weight of the WGAN-GP gradient penalty.
    holdout_share, holdout_groups:
        Share of rows (of units, when ``holdout_groups`` names the columns identifying one)
        kept aside for the fidelity score.
    posterior_epochs:
        Epochs of fine-tuning per :meth:`posterior_draw` / :meth:`replicate_draw`.
    calibrate_marginals:
        Map generated numbers onto the training marginals.
    enable_gpu, torch_threads:
        ``None``: CUDA when torch sees it; torch CPU threads (1: see the neural family).
    """

    family = "gan"
    warm_replicates = True

    def __init__(
        self,
        *,
        seed: int = 0,
        embedding_dim: int = 128,
        generator_dims: Sequence[int] = (256, 256),
        critic_dims: Sequence[int] = (256, 256),
        max_modes: int = 10,
        epochs: int = 300,
        patience: int = 6,
        check_every: int = 5,
        max_seconds: float | None = None,
        batch_size: int = 500,
        pac: int = 10,
        critic_steps: int = 1,
        generator_lr: float = 2e-4,
        critic_lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.9),
        weight_decay: float = 1e-6,
        gradient_penalty: float = 10.0,
        holdout_share: float = 0.1,
        holdout_groups: Sequence[str] = (),
        posterior_epochs: int = 3,
        calibrate_marginals: bool = True,
        enable_gpu: bool | None = None,
        torch_threads: int | None = 1,
        special_codes: Mapping[str, Sequence[float]] | None = None,
        id_columns: Sequence[str] = (),
        condition_columns: Sequence[str] = (),
        avoid_copies: bool = True,
        max_copy_rounds: int = 5,
    ) -> None:
        super().__init__(
            seed=seed,
            special_codes=special_codes,
            id_columns=id_columns,
            condition_columns=condition_columns,
            avoid_copies=avoid_copies,
            max_copy_rounds=max_copy_rounds,
        )
        self.embedding_dim = int(embedding_dim)
        self.generator_dims = [int(d) for d in generator_dims]
        self.critic_dims = [int(d) for d in critic_dims]
        self.max_modes = int(max_modes)
        self.epochs = int(epochs)
        self.patience = int(patience)
        self.check_every = int(check_every)
        self.max_seconds = max_seconds
        self.pac = int(pac)
        self.batch_size = max(self.pac, int(batch_size) // self.pac * self.pac)
        self.critic_steps = int(critic_steps)
        self.generator_lr = float(generator_lr)
        self.critic_lr = float(critic_lr)
        self.betas = [float(b) for b in betas]
        self.weight_decay = float(weight_decay)
        self.gradient_penalty = float(gradient_penalty)
        self.holdout_share = float(holdout_share)
        self.holdout_groups = list(holdout_groups)
        self.posterior_epochs = int(posterior_epochs)
        self.calibrate_marginals = bool(calibrate_marginals)
        self.enable_gpu = enable_gpu
        self.torch_threads = torch_threads
        self._labels: list[LabelBlock] = []
        self._continuous: list[ContinuousBlock] = []
        self._pairs: np.ndarray = np.zeros((0, 2), dtype=np.int64)
        self._generator: Any = None  # torch modules, kept on the CPU
        self._critic: Any = None
        self._codes: np.ndarray | None = None  # training label codes (for posterior draws)
        self._values: np.ndarray | None = None  # training continuous parts, gaps filled

    @property
    def calibrates_marginals(self) -> bool:  # type: ignore[override]
        return self.calibrate_marginals

    # ------------------------------------------------------------ coding
    @property
    def _data_width(self) -> int:
        return sum(b.width for b in self._labels) + sum(b.width for b in self._continuous)

    @property
    def _cond_width(self) -> int:
        return sum(b.width for b in self._labels)

    def _layout(self, frame: pd.DataFrame, rng: np.random.Generator) -> None:
        """Label blocks, then continuous blocks with their mixtures (fitted on ``frame``'s values)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        t = self.transformer
        self._labels = [LabelBlock(name, list(labels)) for name, labels in t.categorical_labels.items()]
        position = {b.name: i for i, b in enumerate(self._labels)}
        self._continuous = []
        for name, codec in t.continuous_columns.items():
            x = frame[name].to_numpy(dtype=float)
            x = x[~np.isnan(x)]
            fit_on = x if len(x) <= MIXTURE_MAX_ROWS else rng.choice(x, MIXTURE_MAX_ROWS, replace=False)
            with warnings.catch_warnings():  # not converging in 100 iterations still gives usable modes
                warnings.simplefilter("ignore", ConvergenceWarning)
                mixture = BayesianGaussianMixture(
                    n_components=min(self.max_modes, max(len(np.unique(fit_on)), 1)),
                    weight_concentration_prior_type="dirichlet_process",
                    weight_concentration_prior=1e-3, max_iter=100, n_init=1,
                    random_state=int(rng.integers(2**31)),
                ).fit(fit_on.reshape(-1, 1))
            modes = np.flatnonzero(mixture.weights_ > MODE_MIN_WEIGHT)
            if len(modes) == 0:
                modes = np.array([int(np.argmax(mixture.weights_))])
            state = position.get(codec.state_column) if codec.state_column else None
            self._continuous.append(ContinuousBlock(
                name=name, mixture=mixture, modes=modes,
                means=mixture.means_.ravel()[modes],
                stds=np.sqrt(mixture.covariances_.reshape(-1))[modes] + 1e-6,
                edges=np.unique(np.quantile(x, np.linspace(0, 1, FIDELITY_BINS + 1)[1:-1])) if len(x) else np.array([]),
                state=state,
                value_code=self._labels[state].labels.index(VALUE_STATE) if state is not None else 0,
            ))
        n = len(self._labels) + len(self._continuous)
        pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64).reshape(-1, 2)
        if len(pairs) > MAX_PAIRS:
            pairs = pairs[np.sort(rng.choice(len(pairs), MAX_PAIRS, replace=False))]
        self._pairs = pairs

    def _codes_values(self, frame: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Label codes (rows x label columns) and continuous parts with their gaps filled (float32)."""
        codes = np.column_stack(
            [np.maximum(pd.Categorical(frame[b.name], categories=b.labels).codes, 0) for b in self._labels]
        ).astype(np.int64) if self._labels else np.zeros((len(frame), 0), dtype=np.int64)
        filled = self.transformer.fill_continuous_gaps(frame, rng)
        values = np.column_stack(
            [filled[b.name].to_numpy(dtype=float) for b in self._continuous]
        ).astype(np.float32) if self._continuous else np.zeros((len(frame), 0), dtype=np.float32)
        return codes, values

    def _matrix(self, codes: np.ndarray, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The data vectors: label one-hots, then per continuous part its scalar and mode one-hot."""
        parts = [np.eye(b.width, dtype=np.float32)[codes[:, j]] for j, b in enumerate(self._labels)]
        for j, b in enumerate(self._continuous):
            x = values[:, j].astype(float)
            posterior = b.mixture.predict_proba(x.reshape(-1, 1))[:, b.modes] + 1e-12
            mode = _categorical_draw(posterior / posterior.sum(axis=1, keepdims=True), rng)
            scalar = np.clip((x - b.means[mode]) / (4 * b.stds[mode]), -0.99, 0.99)
            parts += [scalar[:, None].astype(np.float32), np.eye(len(b.modes), dtype=np.float32)[mode]]
        return np.hstack(parts) if parts else np.zeros((len(codes), 0), dtype=np.float32)

    def _read_output(self, raw: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Generator outputs (pre-activation) to label codes and continuous values, drawn with ``rng``."""
        codes = np.zeros((len(raw), len(self._labels)), dtype=np.int64)
        values = np.zeros((len(raw), len(self._continuous)), dtype=np.float32)
        start = 0
        for j, lb in enumerate(self._labels):
            codes[:, j] = _categorical_draw(_softmax(raw[:, start : start + lb.width]), rng)
            start += lb.width
        for j, cb in enumerate(self._continuous):
            scalar = np.tanh(raw[:, start])
            mode = _categorical_draw(_softmax(raw[:, start + 1 : start + cb.width]), rng)
            values[:, j] = scalar * 4 * cb.stds[mode] + cb.means[mode]
            start += cb.width
        return codes, values

    def _frame(self, codes: np.ndarray, values: np.ndarray) -> pd.DataFrame:
        """Model frame of codes and values (a continuous part is NaN where its state is not "value")."""
        out: dict[str, Any] = {b.name: np.array(b.labels, dtype=object)[codes[:, j]] for j, b in enumerate(self._labels)}
        for j, cb in enumerate(self._continuous):
            v = values[:, j].astype(float)
            if cb.state is not None:
                v = np.where(codes[:, cb.state] == cb.value_code, v, np.nan)
            out[cb.name] = v
        return pd.DataFrame(out)

    # ----------------------------------------------------- fidelity score
    def _binned(self, codes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Every column as small integer bins, and each column's number of bins."""
        columns = [codes[:, j] for j in range(codes.shape[1])]
        sizes = [b.width for b in self._labels]
        for j, cb in enumerate(self._continuous):
            bins = np.searchsorted(cb.edges, values[:, j], side="right")
            gap = len(cb.edges) + 1
            if cb.state is not None:
                bins = np.where(codes[:, cb.state] == cb.value_code, bins, gap)
            columns.append(bins)
            sizes.append(gap + 1)
        return np.column_stack(columns).astype(np.int64), sizes

    def _fidelity(self, generated: tuple[np.ndarray, np.ndarray], held: tuple[np.ndarray, np.ndarray]) -> float:
        """Mean TVD of the 1-way and 2-way tables (the mean of the two means); 0 is perfect."""
        a, sizes = self._binned(*generated)
        b, _ = self._binned(*held)

        def tvd(x: np.ndarray, y: np.ndarray, cells: int) -> float:
            return 0.5 * float(np.abs(np.bincount(x, minlength=cells) / len(x)
                                      - np.bincount(y, minlength=cells) / len(y)).sum())

        one = [tvd(a[:, j], b[:, j], s) for j, s in enumerate(sizes)]
        two = [tvd(a[:, i] * sizes[k] + a[:, k], b[:, i] * sizes[k] + b[:, k], sizes[i] * sizes[k])
               for i, k in self._pairs]
        return float(np.mean(one) + (np.mean(two) if two else np.mean(one))) / 2

    # ------------------------------------------------------------- fitting
    def _device(self) -> str:
        import torch

        gpu = torch.cuda.is_available() if self.enable_gpu is None else self.enable_gpu
        return "cuda" if gpu else "cpu"

    def _fit_model(self, frame: pd.DataFrame, rng: np.random.Generator) -> None:
        self._layout(frame, rng)
        codes, values = self._codes_values(frame, rng)
        self._codes, self._values = codes, values
        hold, train = self._holdout_split(len(codes), rng)
        with torch_environment(self.seed, self.torch_threads):
            self._generator, self._critic = _build_networks(
                self.embedding_dim, self._cond_width, self._data_width, self.generator_dims, self.critic_dims, self.pac)
            held = (codes[hold], values[hold]) if len(hold) else None
            log = self._train(codes[train], values[train], held, self.epochs, rng)
        self.training_log.update(log)

    def _train(
        self,
        codes: np.ndarray,
        values: np.ndarray,
        held: tuple[np.ndarray, np.ndarray] | None,
        epochs: int,
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        """WGAN-GP training by sampling; early stopping on ``held`` when given. Leaves the nets on the CPU."""
        import torch

        device = self._device()
        generator, critic = self._generator.to(device), self._critic.to(device)
        betas = (self.betas[0], self.betas[1])
        g_opt = torch.optim.Adam(generator.parameters(), lr=self.generator_lr, betas=betas, weight_decay=self.weight_decay)
        c_opt = torch.optim.Adam(critic.parameters(), lr=self.critic_lr, betas=betas, weight_decay=self.weight_decay)
        data_t = torch.as_tensor(self._matrix(codes, values, rng), device=device)
        sampler = _ConditionSampler(codes, [b.width for b in self._labels], log_frequency=True)
        n_rows = len(codes)
        batch = min(self.batch_size, max(self.pac, n_rows // self.pac * self.pac))
        steps = max(n_rows // batch, 1)
        history: dict[str, list[float]] = {"critic": [], "generator": []}
        fidelity: dict[str, list[float]] = {"epoch": [], "holdout_tvd": []}
        best, best_epoch, best_state, checks_since = np.inf, 0, None, 0
        stopped_by_budget = False
        started = time.perf_counter()
        for epoch in range(1, epochs + 1):
            generator.train()
            critic.train()
            c_total = g_total = 0.0
            for _ in range(steps):
                for _ in range(self.critic_steps):
                    cond, column, label = sampler.conditions(batch, rng)
                    perm = rng.permutation(batch)
                    real = data_t[torch.as_tensor(sampler.rows(column[perm], label[perm], rng), device=device)]
                    cond_t = torch.as_tensor(cond, device=device)
                    fake = self._activate(generator(self._noise_and(cond_t, batch, device)))
                    fake_in = torch.cat([fake, cond_t], dim=1)
                    real_in = torch.cat([real, cond_t[torch.as_tensor(perm, device=device)]], dim=1)
                    loss_c = critic(fake_in.view(-1, fake_in.shape[1] * self.pac)).mean() - critic(
                        real_in.view(-1, real_in.shape[1] * self.pac)).mean()
                    penalty = self._penalty(critic, real_in, fake_in)
                    c_opt.zero_grad(set_to_none=True)
                    (loss_c + penalty).backward()
                    c_opt.step()
                    c_total += float(loss_c.detach())
                cond, column, label = sampler.conditions(batch, rng)
                cond_t = torch.as_tensor(cond, device=device)
                raw = generator(self._noise_and(cond_t, batch, device))
                fake_in = torch.cat([self._activate(raw), cond_t], dim=1)
                loss_g = -critic(fake_in.view(-1, fake_in.shape[1] * self.pac)).mean()
                loss_g = loss_g + self._condition_loss(raw, column, label, device)
                g_opt.zero_grad(set_to_none=True)
                loss_g.backward()
                g_opt.step()
                g_total += float(loss_g.detach())
            history["critic"].append(c_total / (steps * self.critic_steps))
            history["generator"].append(g_total / steps)
            if held is not None and epoch % self.check_every == 0:
                score = self._fidelity(self._draw(max(len(held[0]), MIN_CHECK_ROWS), rng, device), held)
                fidelity["epoch"].append(epoch)
                fidelity["holdout_tvd"].append(score)
                LOGGER.info("%s: epoch %d  critic %.3f  generator %.3f  held-out TVD %.4f", self.family, epoch,
                            history["critic"][-1], history["generator"][-1], score)
                checks_since += 1
                if score < best - 1e-4:
                    best, best_epoch, checks_since = score, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in generator.state_dict().items()}
                if checks_since >= self.patience:
                    break
            elapsed = time.perf_counter() - started
            if self.max_seconds is not None and elapsed * (epoch + 1) / epoch > self.max_seconds:
                stopped_by_budget = epoch < epochs
                break
        if best_state is not None:
            generator.load_state_dict(best_state)
        self._generator, self._critic = generator.cpu(), critic.cpu()
        seconds = time.perf_counter() - started
        epochs_run = len(history["critic"])
        log: dict[str, Any] = {
            "device": device,
            "epochs": epochs_run,
            "epochs_requested": epochs,
            "best_epoch": best_epoch or epochs_run,
            "best_holdout_tvd": None if best == np.inf else round(float(best), 5),
            "stopped_by_budget": stopped_by_budget,
            "seconds_per_epoch": seconds / max(epochs_run, 1),
            "losses": history,
        }
        if fidelity["epoch"]:
            log["fidelity"] = fidelity
        return log

    def _noise_and(self, cond: Any, n: int, device: str) -> Any:
        import torch

        return torch.cat([torch.randn(n, self.embedding_dim, device=device), cond], dim=1)

    def _activate(self, raw: Any) -> Any:
        """tanh for the scalars, Gumbel-softmax for every one-hot block."""
        import torch
        from torch.nn import functional

        parts, start = [], 0
        for lb in self._labels:
            parts.append(functional.gumbel_softmax(raw[:, start : start + lb.width], tau=GUMBEL_TAU))
            start += lb.width
        for cb in self._continuous:
            parts.append(torch.tanh(raw[:, start : start + 1]))
            parts.append(functional.gumbel_softmax(raw[:, start + 1 : start + cb.width], tau=GUMBEL_TAU))
            start += cb.width
        return torch.cat(parts, dim=1)

    def _condition_loss(self, raw: Any, column: np.ndarray, label: np.ndarray, device: str) -> Any:
        """Cross-entropy of the generated label of each row's condition column (0 without label columns)."""
        import torch
        from torch.nn import functional

        if not self._labels:
            return torch.zeros((), device=device)
        starts = np.concatenate([[0], np.cumsum([b.width for b in self._labels])])
        loss = torch.zeros((), device=device)
        for j in range(len(self._labels)):
            rows = np.flatnonzero(column == j)
            if len(rows):
                rows_t = torch.as_tensor(rows, device=device)
                logits = raw[rows_t, int(starts[j]) : int(starts[j + 1])]
                target = torch.as_tensor(label[rows], device=device)
                loss = loss + functional.cross_entropy(logits, target, reduction="sum")
        return loss / len(column)

    def _penalty(self, critic: Any, real: Any, fake: Any) -> Any:
        """WGAN-GP gradient penalty on packs interpolated between real and fake packs."""
        import torch

        width = real.shape[1] * self.pac
        alpha = torch.rand(real.shape[0] // self.pac, 1, 1, device=real.device)
        alpha = alpha.repeat(1, self.pac, real.shape[1]).view(-1, real.shape[1])
        mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
        scores = critic(mixed.view(-1, width))
        grads = torch.autograd.grad(scores, mixed, grad_outputs=torch.ones_like(scores), create_graph=True)[0]
        norms = grads.view(-1, width).norm(2, dim=1)
        return self.gradient_penalty * ((norms - 1) ** 2).mean()

    # ------------------------------------------------------------ sampling
    def _draw(self, n: int, rng: np.random.Generator, device: str | None = None,
              cond: np.ndarray | None = None, block: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
        """``n`` rows as (codes, values): noise and unconditional conditions from ``rng``, or the rows of ``cond``."""
        import torch

        device = device or self._device()
        generator = self._generator.to(device).eval()
        sampler = _ConditionSampler(self._codes if self._codes is not None else np.zeros((1, len(self._labels)), np.int64),
                                    [b.width for b in self._labels], log_frequency=False)
        codes, values = [], []
        with torch.no_grad():
            for start in range(0, n, block):
                size = min(block, n - start)
                c = cond[start : start + size] if cond is not None else sampler.conditions(size, rng)[0]
                z = rng.standard_normal((size, self.embedding_dim)).astype(np.float32)
                x = torch.cat([torch.as_tensor(z, device=device), torch.as_tensor(c, device=device)], dim=1)
                part = self._read_output(generator(x).double().cpu().numpy(), rng)
                codes.append(part[0])
                values.append(part[1])
        generator.train()
        if device != "cpu":
            self._generator = generator.cpu()
        return np.concatenate(codes), np.concatenate(values)

    def _sample_model(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        return self._frame(*self._draw(n, rng))

    def _sample_model_given(self, known: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Given one label column: the condition vector, the rows whose label differs drawn again; else matching."""
        names = [b.name for b in self._labels]
        if len(known.columns) != 1 or known.columns[0] not in names:
            return super()._sample_model_given(known, rng)
        j = names.index(known.columns[0])
        block = self._labels[j]
        wanted = np.maximum(pd.Categorical(known.iloc[:, 0], categories=block.labels).codes, 0).astype(np.int64)
        start = sum(b.width for b in self._labels[:j])
        codes = np.zeros((len(known), len(self._labels)), dtype=np.int64)
        values = np.zeros((len(known), len(self._continuous)), dtype=np.float32)
        todo = np.arange(len(known))
        for attempt in range(CONDITION_ROUNDS):
            cond = np.zeros((len(todo), self._cond_width), dtype=np.float32)
            cond[np.arange(len(todo)), start + wanted[todo]] = 1.0
            drawn_codes, drawn_values = self._draw(len(todo), rng, cond=cond)
            ok = (drawn_codes[:, j] == wanted[todo]) | (attempt == CONDITION_ROUNDS - 1)
            codes[todo[ok]], values[todo[ok]] = drawn_codes[ok], drawn_values[ok]
            todo = todo[~ok]
            if len(todo) == 0:
                break
        codes[:, j] = wanted
        return self._frame(codes, values)

    # ---------------------------------------------------------- persistence
    def __getstate__(self) -> dict[str, Any]:
        """The networks travel as arrays (their classes are built at run time, so they have no pickle name)."""
        state = dict(self.__dict__)
        for key in ("_generator", "_critic"):
            if state.get(key) is not None:
                state[key] = {k: v.detach().cpu().numpy() for k, v in state[key].state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(state.get("_generator"), dict):
            import torch

            generator, critic = _build_networks(self.embedding_dim, self._cond_width, self._data_width,
                                                self.generator_dims, self.critic_dims, self.pac)
            generator.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state["_generator"].items()})
            critic.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state["_critic"].items()})
            self._generator, self._critic = generator, critic

    # ----------------------------------------------------------- replicates
    @property
    def has_posterior_draw(self) -> bool:
        return True

    def posterior_draw(self, seed: int) -> Self:
        """A copy fine-tuned ``posterior_epochs`` epochs on a Bayesian-bootstrap resample of the training records."""
        self._check_fitted()
        assert self._codes is not None and self._values is not None, "a fitted model keeps its training records"
        return self._bootstrap_fine_tune(self._codes, self._values, seed)

    def replicate_draw(self, data: pd.DataFrame, seed: int) -> Self:
        """A posterior draw given a replicate's own records, warm-started from this model.

        The coding (labels, mixtures) stays this model's, as the networks' inputs require;
        copies are then judged against ``data``.
        """
        self._check_fitted()
        self.check_training_rows(data, "replicate's training table")
        rng = np.random.default_rng(seed)
        codes, values = self._codes_values(self.transformer.transform(data), rng)
        draw = self._bootstrap_fine_tune(codes, values, seed)
        draw._codes, draw._values = codes, values
        if self.avoid_copies:
            draw._train_hashes = training_hashes(data, self._copy_columns(data))
        draw.training_log["posterior_draw"]["rows"] = len(data)
        return draw

    def _bootstrap_fine_tune(self, codes: np.ndarray, values: np.ndarray, seed: int) -> Self:
        """A copy trained ``posterior_epochs`` more epochs on rows resampled with Exponential(1) weights."""
        rng = np.random.default_rng(seed)
        weights = rng.standard_exponential(len(codes))
        rows = rng.choice(len(codes), len(codes), p=weights / weights.sum())
        draw = copy.copy(self)
        draw._generator = copy.deepcopy(self._generator)
        draw._critic = copy.deepcopy(self._critic)
        draw.training_log = dict(self.training_log)
        with torch_environment(seed, self.torch_threads):
            log = draw._train(codes[rows], values[rows], None, self.posterior_epochs, rng)
        draw.training_log["posterior_draw"] = {"seed": seed, "epochs": log["epochs"]}
        return draw


class _ConditionSampler:
    """Condition vectors and the training rows that match them (CTGAN's training by sampling).

    ``log_frequency``: labels drawn by the log of their frequency, and rows can be drawn
    (training); otherwise by their frequency (unconditional sampling).
    """

    def __init__(self, codes: np.ndarray, widths: Sequence[int], *, log_frequency: bool) -> None:
        self.widths = list(widths)
        self.n_rows = len(codes)
        self.starts = np.concatenate([[0], np.cumsum(self.widths)]).astype(np.int64)
        self.cumulative: list[np.ndarray] = []  # per column: cumulative label probabilities
        self.order: list[np.ndarray] = []  # per column: rows sorted by label
        self.bounds: list[np.ndarray] = []  # per column: where each label's rows start in ``order``
        for j, width in enumerate(self.widths):
            counts = np.bincount(codes[:, j], minlength=width).astype(float)
            weights = np.log1p(counts) if log_frequency else counts
            self.cumulative.append(np.cumsum(weights / weights.sum()))
            if log_frequency:  # only training draws rows; sampling needs the frequencies alone
                self.order.append(np.argsort(codes[:, j], kind="stable"))
                self.bounds.append(np.concatenate([[0], np.cumsum(counts.astype(np.int64))]))

    def conditions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(condition vectors, their column, their label): a column at random, a label by the column's weights."""
        cond = np.zeros((n, int(self.starts[-1])), dtype=np.float32)
        if not self.widths:
            return cond, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        column = rng.integers(0, len(self.widths), n)
        u = rng.random(n)
        label = np.zeros(n, dtype=np.int64)
        for c in np.unique(column):
            rows = np.flatnonzero(column == c)
            label[rows] = np.minimum(np.searchsorted(self.cumulative[c], u[rows], side="right"), self.widths[c] - 1)
        cond[np.arange(n), self.starts[column] + label] = 1.0
        return cond, column, label

    def rows(self, column: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A training row holding each (column, label); any row where the rows lack the label."""
        out = rng.integers(0, self.n_rows, len(column))
        u = rng.random(len(column))
        for c in np.unique(column) if self.widths else []:
            rows = np.flatnonzero(column == c)
            lo, hi = self.bounds[c][label[rows]], self.bounds[c][label[rows] + 1]
            has = hi > lo  # a replicate's resample may lack a label
            picked = self.order[c][np.minimum(lo + (u[rows] * (hi - lo)).astype(np.int64), self.n_rows - 1)]
            out[rows[has]] = picked[has]
        return out
