"""Neural-network matching (``neural_draw``), in the manner of the Beamm method.

A small multilayer perceptron (torch, CPU) is trained on the donors to predict
the distribution of every imputed variable from X: one softmax head per Z,
categorical Z on its levels, numeric Z on weighted-quantile bins (spikes such
as zero incomes or a special code become bins of their own; missing values
are a level).  The loss is the donor-weighted cross-entropy summed over the
heads, so the network estimates the survey-weighted P(Z_j | X).

The prediction is never plugged in (no argmax class, no conditional mean:
those collapse the imputed distribution onto the mode).  It defines where a
recipient stands, and the recipient *draws* a real donor:

* ``draw="match"`` (default): recipients and donors are placed in the space of
  predicted distributions (square roots of the predicted probabilities of
  every head, i.e. Hellinger geometry, each head weighted equally, projected
  on the donors' first ``dims`` principal components); every recipient draws
  one of its ``k`` nearest donors (all donors tied with the k-th included)
  with probability proportional to donor weight.  Donors near a recipient in
  that space have about the same P(Z | X), so the drawn donor's Z is a draw
  from it (predictive mean matching with a distributional prediction).
* ``draw="level"``: a level of one head (``target``, default the first imputed
  variable) is sampled from the recipient's predicted probabilities, and the
  recipient then draws among the ``k`` donors nearest in predicted space that
  have that level (of any class if its donation class has none).

Defaults from bench/matching (EU-SILC and the demo population): ``k=3`` was
as good as the exact-profile hot deck where X is discrete and as good as
larger k where X has a continuous income; ``dims=8`` kept about 98% of the
variance and halved the matching time without changing the scores.

Either way the whole Z block comes from one donor, so relations inside the
survey (skip patterns, zero incomes, z2 = f(z1)) survive, and a donation
class never gives donors to another class.

Numeric X enter the network as their donor-weighted empirical CDF value and
their standardised signed log, plus a missingness flag where values are
missing; categorical X are one-hot (missing is a level).  Training uses Adam
on mini-batches with early stopping on a donor-weighted validation split (a
bootstrap draw's copies of one record on one side of it, :func:`held_out_rows`);
the network is then refitted on all donors for the chosen number of epochs.
Everything is seeded from the ``fuse`` seed and runs on ``threads`` CPU
threads: on 2 cores, training on 8,000 donors took 2-4 s with one thread and
55 s with two.  torch is imported lazily:
importing :mod:`synth_assets.matching` does not pay for it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.matching.classes import ClassBlock
from synth_assets.matching.diagnostics import weighted_quantile_edges
from synth_assets.matching.encoding import as_float, joint_codes
from synth_assets.matching.methods.base import MethodOutput
from synth_assets.matching.methods.model_draw import sample_rows
from synth_assets.matching.neighbors import draw_nearest
from synth_assets.matching.problem import FusionProblem

logger = logging.getLogger("synth_assets.matching")

DRAWS = ("match", "level")
_PREDICT_BATCH = 65_536
#: Recipients taken from their inputs to their donors at once (four prediction batches): a
#: fusion's working set is this many recipients' inputs, places and profiles (about 80 MB), however
#: large the register. Up to this many recipients in one donation class, a fusion is the one
#: stream of draws it was with the whole register at once.
RECIPIENT_BLOCK = 4 * _PREDICT_BATCH
#: Neighbours searched beyond the k-th for ties: none in the predicted space. Its points are
#: continuous, so two distinct donor points rarely lie at one distance from a recipient (3 of 1.2
#: million recipients drew another donor without the eight more a discrete space needs); donors at
#: one point are one profile and tie exactly (``draw_nearest``). A k-d tree query of 11 neighbours
#: took 1.7 times one of 3 (random 8-dimensional points, bench/README.md "Twenty-fourth pass").
SPACE_TIE_CANDIDATES = 0


# ---------------------------------------------------------------- encodings


@dataclass(frozen=True)
class NumericScale:
    """How a numeric column enters the network, fitted on the donors: its donor-weighted mid-rank
    (robust to skew and to level shifts in the tails, rescaled to unit variance), its signed log
    standardised on the donors and, where ``flagged``, whether it is missing."""

    sorted_values: np.ndarray  # the donors' observed values, sorted
    cumulative: np.ndarray  # their cumulative weights, from 0
    log_mean: float
    log_sd: float
    flagged: bool

    @classmethod
    def of_donors(cls, donor: np.ndarray, weights: np.ndarray, flagged: bool) -> NumericScale:
        observed = ~np.isnan(donor)
        values, w = donor[observed], weights[observed]
        order = np.argsort(values, kind="stable")
        cumulative = np.concatenate([[0.0], np.cumsum(w[order])])
        log_d = _signed_log(donor)
        seen = ~np.isnan(log_d)
        mean = np.average(log_d[seen], weights=weights[seen]) if seen.any() else 0.0
        sd = np.sqrt(np.average((log_d[seen] - mean) ** 2, weights=weights[seen])) if seen.any() else 1.0
        return cls(values[order], cumulative, float(mean), float(sd) if sd > 0 else 1.0, flagged)

    @property
    def width(self) -> int:
        return 3 if self.flagged else 2

    def cdf(self, values: np.ndarray) -> np.ndarray:
        """Mid-rank weighted CDF of the donors at ``values`` (NaN where ``values`` is NaN)."""
        out = np.full(len(values), np.nan)
        if self.sorted_values.size == 0 or self.cumulative[-1] <= 0:
            return out
        fine = ~np.isnan(values)
        below = self.cumulative[np.searchsorted(self.sorted_values, values[fine], side="left")]
        upto = self.cumulative[np.searchsorted(self.sorted_values, values[fine], side="right")]
        out[fine] = 0.5 * (below + upto) / self.cumulative[-1]
        return out

    def inputs(self, values: np.ndarray) -> list[np.ndarray]:
        """The column's inputs (float64, NaN where ``values`` is missing)."""
        block = [(self.cdf(values) - 0.5) * np.sqrt(12.0),
                 np.clip((_signed_log(values) - self.log_mean) / self.log_sd, -5, 5)]
        if self.flagged:
            block.append(np.isnan(values).astype(float))
        return block


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


@dataclass
class NetworkInputs:
    """The network's inputs (float32), scaled on the donors: the donors' matrix whole, the
    recipients' a block of rows at a time (:meth:`recipients`).

    The recipients are the whole register: their matrix, whole, was the fusion's largest array
    (about 390 MB at 2 million persons), and everything derived from it (predictions, places in
    the predicted space, their profiles) grew with it. A categorical column keeps the recipients'
    codes on the levels of both sides (32 bits a recipient), so every block has one layout.
    """

    recipient: pd.DataFrame
    plan: list[tuple[str, int, NumericScale | np.ndarray]]  # column, its width, its scale or codes
    donors: np.ndarray

    @classmethod
    def fit(cls, recipient: pd.DataFrame, donor: pd.DataFrame, columns: list[str],
            donor_weights: np.ndarray, donors_only: bool = False) -> NetworkInputs:
        """``donors_only``: the layout from the donors alone (a numeric column always flagged, a
        categorical one on the donors' levels, a recipient's level they lack left at zero), so any
        recipients of these donors get the same donors' matrix: what a network reused over the parts
        of a register (:class:`NetworkCache`) needs."""
        # a numeric column takes two inputs and a missingness flag where either side misses values;
        # a categorical one its levels on both sides, in order of appearance, recipients first
        plan: list[tuple[str, int, NumericScale | np.ndarray]] = []
        donor_parts: list[tuple[int, Any]] = []
        for col in columns:
            if is_numeric(donor[col]) and is_numeric(recipient[col]):
                d = as_float(donor[col])
                flagged = donors_only or bool(recipient[col].isna().any() or np.isnan(d).any())
                scale = NumericScale.of_donors(d, donor_weights, flagged)
                plan.append((col, scale.width, scale))
                donor_parts.append((scale.width, scale.inputs(d)))
            elif donors_only:
                dc, levels = pd.factorize(donor[col].astype(object), use_na_sentinel=False)
                rc = pd.Index(levels, dtype=object).get_indexer(recipient[col].astype(object))
                plan.append((col, len(levels), rc.astype(np.int32)))
                donor_parts.append((len(levels), dc.astype(np.int32)))
            else:
                rc, dc, n_levels = joint_codes(recipient[col], donor[col])
                plan.append((col, n_levels, rc.astype(np.int32)))
                donor_parts.append((n_levels, dc.astype(np.int32)))
        donors = np.zeros((len(donor), sum(w for _, w, _ in plan)), dtype=np.float32)
        at = 0
        for width, part in donor_parts:
            _write(donors, at, part)
            at += width
        return cls(recipient, plan, donors)

    @property
    def width(self) -> int:
        return self.donors.shape[1]

    def recipients(self, rows: np.ndarray) -> np.ndarray:
        """The inputs of the recipients at positions ``rows``."""
        x = np.zeros((len(rows), self.width), dtype=np.float32)
        at = 0
        for col, width, how in self.plan:
            if isinstance(how, NumericScale):
                _write(x, at, how.inputs(as_float(self.recipient[col].iloc[rows])))
            else:
                _write(x, at, how[rows])
            at += width
        return x


def _write(x: np.ndarray, at: int, part: list[np.ndarray] | np.ndarray) -> None:
    """A column's inputs into ``x`` from column ``at``: numeric inputs (missing as 0) or level codes
    (-1, a level the layout lacks: no input set)."""
    if isinstance(part, list):
        for j, values in enumerate(part):
            x[:, at + j] = np.nan_to_num(values)
    else:
        known = part >= 0
        x[np.flatnonzero(known), at + part[known]] = 1.0


@dataclass(frozen=True)
class Head:
    """One imputed variable as a classification target: dense level codes of every donor."""

    name: str
    codes: np.ndarray
    n_levels: int
    binned: bool  # numeric Z cut at weighted quantiles


def target_head(name: str, column: pd.Series, weights: np.ndarray, n_bins: int) -> Head:
    """Levels of a categorical Z, or weighted-quantile bins (missing a level) of a numeric one."""
    if is_numeric(column):
        values = as_float(column)
        edges = weighted_quantile_edges(values, weights, n_bins)
        raw = np.where(np.isnan(values), len(edges) + 1, np.searchsorted(edges, values, side="left"))
        binned = True
    else:
        raw, _ = pd.factorize(column.astype(object), use_na_sentinel=False)
        binned = False
    codes, levels = pd.factorize(raw)
    return Head(name, codes.astype(np.int64), len(levels), binned)


# ---------------------------------------------------------------- network


@dataclass
class Training:
    """What the training did (goes into the method's ``extra``)."""

    epochs: int
    best_epoch: int
    validation_loss: float | None
    seconds: float
    parameters: int


def import_training_modules() -> None:
    """Import torch and ``torch._dynamo``, which torch imports on an optimiser's first construction.

    For a process about to fork fusions that train networks: forked children inherit both, where
    each child would otherwise import them itself, about 3.5 s of a core per child (measured with
    torch 2.13 on 2 cores: torch 1.7-1.9 s, ``torch._dynamo`` 1.4-1.75 s), most of a small
    survey's fusion.
    """
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401


def _network(n_inputs: int, hidden: int, layers: int, heads: list[Head], dropout: float):
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            body: list[torch.nn.Module] = []
            width = n_inputs
            for _ in range(layers):
                body += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
                if dropout > 0:
                    body.append(torch.nn.Dropout(dropout))
                width = hidden
            self.body = torch.nn.Sequential(*body)
            self.heads = torch.nn.ModuleList([torch.nn.Linear(width, h.n_levels) for h in heads])

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            shared = self.body(x)
            return [head(shared) for head in self.heads]

    return Net()


def _loss(net, x, targets, weights, rows):
    """The donor-weighted cross-entropy summed over the heads; ``targets`` holds a row of codes per
    head, so a batch's codes of every head are gathered at once."""
    import torch.nn.functional as F

    outputs = net(x[rows])
    codes = targets[:, rows]
    w = weights[rows]
    # one gather and one weight total for every head, not one each: on these small networks a
    # step is mostly per-operation overhead, and the loss is the same number bit for bit
    w_total = w.sum()
    total = None
    for j, out in enumerate(outputs):
        term = (F.cross_entropy(out, codes[j], reduction="none") * w).sum() / w_total
        total = term if total is None else total + term
    return total


def _train(
    x,
    targets,
    weights,
    *,
    make_net,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator,
    validation_rows=None,
    patience: int = 0,
):
    """Adam on shuffled mini-batches; with ``validation_rows``, stop when the validation loss stalls.

    Returns (network in its best state, best epoch, best validation loss).
    """
    import torch

    net = make_net()
    # foreach: one call updates every parameter (not a Python loop over them, a tenth of a step's
    # time on these small networks), with the same arithmetic, so the same weights bit for bit
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
    n = len(x)
    train_rows = torch.arange(n)
    if validation_rows is not None:
        mask = torch.ones(n, dtype=torch.bool)
        mask[validation_rows] = False
        train_rows = train_rows[mask]
    best_loss, best_epoch, best_state, stale = float("inf"), 0, None, 0
    for epoch in range(1, epochs + 1):
        net.train()
        order = train_rows[torch.randperm(len(train_rows), generator=generator)]
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            _loss(net, x, targets, weights, batch).backward()
            optimiser.step()
        if validation_rows is None:
            best_epoch = epoch
            continue
        net.eval()
        with torch.no_grad():
            loss = float(_loss(net, x, targets, weights, validation_rows))
        if loss < best_loss - 1e-4:
            best_loss, best_epoch, stale = loss, epoch, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net, best_epoch, (best_loss if validation_rows is not None else None)


def fit_network(
    x_don: np.ndarray,
    heads: list[Head],
    weights: np.ndarray,
    seed: int,
    *,
    hidden: int,
    layers: int,
    dropout: float,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    patience: int,
    validation: float,
    refit: bool,
    threads: int,
    copies: np.ndarray | None = None,
) -> tuple[Any, Training]:
    """Train on the donors: the network predicting every head's probabilities (:func:`predict`).

    ``copies``: the record each donor row copies (a bootstrap draw's rows, codes 0..), so the
    validation holds out records with all their copies (:func:`held_out_rows`)."""
    import torch

    start = time.perf_counter()
    with _torch_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        x = torch.from_numpy(np.ascontiguousarray(x_don))
        targets = torch.from_numpy(np.stack([h.codes for h in heads]))  # a row per head
        w = torch.from_numpy((weights / weights.mean()).astype(np.float32))

        def make_net():
            return _network(x.shape[1], hidden, layers, heads, dropout)

        train = functools.partial(
            _train, make_net=make_net, batch_size=batch_size, lr=lr, weight_decay=weight_decay, generator=generator
        )
        validation_rows = held_out_rows(len(x), validation, generator, copies) if patience > 0 else None
        if validation_rows is not None:
            net, best_epoch, val_loss = train(
                x, targets, w, epochs=epochs, validation_rows=validation_rows, patience=patience
            )
            if refit:  # all donors, for as many epochs as the validation chose
                net, _, _ = train(x, targets, w, epochs=max(best_epoch, 1))
        else:
            net, best_epoch, val_loss = train(x, targets, w, epochs=epochs)
        n_parameters = sum(p.numel() for p in net.parameters())
    return net, Training(epochs, best_epoch, val_loss, time.perf_counter() - start, n_parameters)


def held_out_rows(rows: int, validation: float, generator: Any, copies: np.ndarray | None = None) -> Any:
    """The donor rows held out for early stopping (a torch index), None when too few to hold any out.

    A ``validation`` share of the records at random; with ``copies`` (the record each row copies), a
    record is held out with all its copies. A bootstrap draw takes about a quarter of the records
    it draws from twice or more, so about 62% of its rows have a copy: rows held out alone, a
    held-out row's copy would be trained on, the held-out loss would fall as the
    network learnt those very rows by heart, and the training would run on (best epochs 26 to 45
    where the survey as delivered stops at 10 to 16, bench/README.md "Fortieth pass").
    """
    import torch

    records = rows if copies is None else int(copies.max()) + 1 if len(copies) else 0
    held = int(round(validation * records)) if records >= 20 else 0
    if held == 0:
        return None
    chosen = torch.randperm(records, generator=generator)[:held]
    if copies is None:
        return chosen
    is_held = np.zeros(records, dtype=bool)
    is_held[chosen.numpy()] = True
    return torch.from_numpy(np.flatnonzero(is_held[copies]))


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def predict_batches(net: Any, x: np.ndarray, threads: int = 1) -> Iterator[list[np.ndarray]]:
    """Every head's predicted probabilities, ``_PREDICT_BATCH`` rows at a time: a caller that keeps
    less than the probabilities (the recipients' projection) holds one batch of them, not all."""
    import torch

    with _torch_threads(threads), torch.no_grad():
        for start in range(0, len(x), _PREDICT_BATCH):
            outputs = net(torch.from_numpy(np.ascontiguousarray(x[start : start + _PREDICT_BATCH])))
            yield [torch.softmax(o, dim=1).numpy().astype(np.float64) for o in outputs]


def predict(net: Any, x: np.ndarray, threads: int = 1) -> list[np.ndarray]:
    """Every head's predicted probabilities for the rows of ``x`` (one matrix per head)."""
    chunks = list(predict_batches(net, x, threads))
    if not chunks:
        return [np.empty((0, len(o.bias))) for o in net.heads]
    return [np.vstack([c[j] for c in chunks]) for j in range(len(chunks[0]))]


def embedding(probabilities: list[np.ndarray]) -> np.ndarray:
    """Square-root probabilities of every head, each head scaled to equal weight (Hellinger geometry)."""
    scale = 1.0 / np.sqrt(2.0 * len(probabilities))
    return np.hstack([np.sqrt(np.clip(p, 0.0, 1.0)) * scale for p in probabilities])


@dataclass(frozen=True)
class Projection:
    """The donors' first ``dims`` weighted principal components of the predicted space (none: the
    space as it is), and the share of the donors' variance they keep (1.0 when nothing is dropped)."""

    mean: np.ndarray | None
    basis: np.ndarray | None
    kept: float

    @classmethod
    def of_donors(cls, don: np.ndarray, weights: np.ndarray, dims: int | None) -> Projection:
        """The predicted distributions live near a low-dimensional surface (a few X drive them),
        and a KD tree is much faster in a few dimensions."""
        if dims is None or don.shape[1] <= dims or len(don) < 2:
            return cls(None, None, 1.0)
        mean = np.average(don, axis=0, weights=weights)
        cov = np.atleast_2d(np.cov(don, rowvar=False, aweights=weights))
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
        kept = float(eigval[:dims].sum() / eigval.sum()) if eigval.sum() > 0 else 1.0
        return cls(mean, eigvec[:, :dims], kept)

    def __call__(self, space: np.ndarray) -> np.ndarray:
        return space if self.basis is None else (space - self.mean) @ self.basis


# ---------------------------------------------------------------- reuse over parts


@dataclass(frozen=True)
class FittedNetwork:
    """A network trained on one set of donors, and the donors' places in its predicted space."""

    net: Any
    training: Training
    project: Projection
    don_space: np.ndarray


class NetworkCache:
    """Networks trained on one set of donors, for later fusions of other recipients with the same donors
    and options: the parts of one register (``matching.parts``), each a fusion of its own, train each
    survey's network once instead of once per part (about 33 of the 39 seconds a part of the demo's
    six surveys cost, whatever its size). Keyed by the donors' network inputs, targets and weights and
    the options (``donors_only`` inputs: recipients do not change them). The first fusion's network,
    trained with its seed, serves the later ones: the parts' draws are their own, their network one.
    """

    def __init__(self) -> None:
        self._fitted: dict[str, FittedNetwork] = {}
        self.hits = 0

    @staticmethod
    def key(inputs: NetworkInputs, heads: list[Head], weights: np.ndarray, options: dict[str, Any],
            copies: np.ndarray | None = None) -> str:
        digest = hashlib.sha256()
        # the copies too: they choose the rows the training holds out
        for array in (inputs.donors, weights, *(h.codes for h in heads), *([] if copies is None else [copies])):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(repr(sorted(options.items())).encode())
        return digest.hexdigest()

    def get(self, key: str) -> FittedNetwork | None:
        fitted = self._fitted.get(key)
        self.hits += fitted is not None
        return fitted

    def put(self, key: str, fitted: FittedNetwork) -> None:
        self._fitted[key] = fitted


# ---------------------------------------------------------------- method


def run(
    problem: FusionProblem,
    rng: np.random.Generator,
    *,
    draw: str = "match",
    k: int = 3,
    dims: int | None = 8,
    target: str | None = None,
    n_bins: int = 10,
    hidden: int = 64,
    layers: int = 2,
    dropout: float = 0.0,
    epochs: int = 200,
    batch_size: int = 256,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    patience: int = 10,
    validation: float = 0.2,
    refit: bool = True,
    threads: int = 1,
    n_jobs: int | None = -1,
    networks: NetworkCache | None = None,
) -> MethodOutput:
    """Options: ``draw`` ("match": draw among the ``k`` donors nearest in predicted space;
    "level": sample a level of ``target`` from the prediction, then match within it),
    ``dims`` principal components of the predicted space matched on (None: all),
    ``n_bins`` quantile bins of numeric Z, ``hidden``/``layers``/``dropout`` of the network,
    ``epochs`` (at most), ``batch_size``, ``lr``, ``weight_decay``, ``patience`` epochs without
    validation improvement before stopping, ``validation`` share of donors held out
    (0: no early stopping), ``refit`` on all donors afterwards, ``threads`` for torch,
    ``n_jobs`` for the neighbour search, ``networks`` a :class:`NetworkCache` to take the network from
    (trained on these donors by an earlier fusion) or leave it in."""
    if draw not in DRAWS:
        raise ValueError(f"neural_draw: draw must be one of {', '.join(DRAWS)}, got {draw!r}")
    if k < 1:
        raise ValueError(f"neural_draw: k must be at least 1, got {k}")
    if n_bins < 2:
        raise ValueError(f"neural_draw: n_bins must be at least 2, got {n_bins}")
    target = target or problem.impute[0]
    if target not in problem.impute:
        raise ValueError(f"neural_draw: target {target!r} is not one of the imputed variables {problem.impute}")

    weights = problem.donor_weights
    heads = [target_head(z, problem.donor[z], weights, n_bins) for z in problem.impute]
    inputs = NetworkInputs.fit(problem.recipient, problem.donor, problem.predictors, weights,
                               donors_only=networks is not None)
    seed = int(rng.integers(2**62))
    training_options: dict[str, Any] = {"hidden": hidden, "layers": layers, "dropout": dropout, "epochs": epochs,
                        "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "patience": patience,
                        "validation": validation, "refit": refit}
    key = NetworkCache.key(inputs, heads, weights, {**training_options, "dims": dims},
                           problem.donor_copies) if networks else ""
    fitted = networks.get(key) if networks is not None else None
    if fitted is None:
        net, training = fit_network(inputs.donors, heads, weights, seed, threads=threads,
                                    copies=problem.donor_copies, **training_options)
        logger.info(
            "neural_draw: %d donors, %d inputs, %d parameters, best epoch %d, %.1f s training",
            len(inputs.donors),
            inputs.width,
            training.parameters,
            training.best_epoch,
            training.seconds,
        )
        don_embedding = embedding(predict(net, inputs.donors, threads))
        project = Projection.of_donors(don_embedding, weights, dims)
        fitted = FittedNetwork(net, training, project, project(don_embedding))
        del don_embedding
        if networks is not None:
            networks.put(key, fitted)
    net, training, project, don_space = fitted.net, fitted.training, fitted.project, fitted.don_space
    j = problem.impute.index(target)
    chosen = np.empty(len(problem.recipient), dtype=np.int64)
    done = 0
    # The recipients (the whole register) a block at a time, from their inputs to their donors: a
    # fusion holds one block's inputs, places and profiles, not the register's. Within a block the
    # levels are sampled before any donor is drawn, so one block is one stream of draws as before.
    for block in problem.blocks:
        for first in range(0, len(block.recipients), RECIPIENT_BLOCK):
            rows = block.recipients[first : first + RECIPIENT_BLOCK]
            spaces, levels = [], []
            for proba in predict_batches(net, inputs.recipients(rows), threads):
                spaces.append(project(embedding(proba)))
                if draw == "level":
                    levels.append(sample_rows(proba[j], rng))
            space = np.vstack(spaces)
            if draw == "match":
                chosen[rows] = _draw_donors(problem, space, block.donors, don_space, rng, k=k, n_jobs=n_jobs)
            else:
                chosen[rows] = _draw_donors_within_levels(
                    problem, space, block, don_space, np.concatenate(levels), heads[j].codes, rng, k=k, n_jobs=n_jobs)
            done += len(rows)
            if len(problem.recipient) > RECIPIENT_BLOCK:
                logger.info("neural_draw: %d of %d recipients matched", done, len(problem.recipient))
    extra: dict[str, Any] = {
        "draw": draw,
        "k": k,
        "best_epoch": training.best_epoch,
        "validation_loss": training.validation_loss,
        "training_seconds": training.seconds,
        "parameters": training.parameters,
        "matching_dimensions": int(don_space.shape[1]),
        "variance_kept": project.kept,
    }
    if draw == "level":
        extra["target"] = target
    return MethodOutput(donor_index=chosen, extra=extra)


def _draw_donors(problem: FusionProblem, space: np.ndarray, donors: np.ndarray, don_space: np.ndarray,
                 rng: np.random.Generator, *, k: int, n_jobs: int | None) -> np.ndarray:
    """Positions of the donors drawn among ``donors`` for recipients at ``space``."""
    local, _ = draw_nearest(
        space,
        don_space[donors],
        problem.donor_weights[donors],
        rng,
        k=k,
        metric="euclidean",
        tie_candidates=SPACE_TIE_CANDIDATES,
        n_jobs=n_jobs,
        log_progress=False,  # run() logs the recipients' progress over the blocks
    )
    return donors[local]


def _draw_donors_within_levels(
    problem: FusionProblem,
    space: np.ndarray,
    block: ClassBlock,
    don_space: np.ndarray,
    level: np.ndarray,
    donor_level: np.ndarray,
    rng: np.random.Generator,
    *,
    k: int,
    n_jobs: int | None,
) -> np.ndarray:
    """Nearest in predicted space within (donation class, drawn level); the level over all classes if needed."""
    chosen = np.empty(len(space), dtype=np.int64)
    for lv in np.unique(level):
        recipients = np.flatnonzero(level == lv)
        donors = block.donors[donor_level[block.donors] == lv]
        if donors.size == 0:  # the class lacks the level: the level's donors of every class
            donors = np.flatnonzero(donor_level == lv)
            logger.warning("neural_draw: class %s has no donor with the drawn level; using all classes", block.key)
        chosen[recipients] = _draw_donors(problem, space[recipients], donors, don_space, rng, k=k, n_jobs=n_jobs)
    return chosen
