"""An autoregressive neural synthesiser of our own ("neural"), written in torch (Apache-2.0).

The joint distribution of the model frame is factorised along a visiting order, as CART's
is: ``p(x) = p(x_1) p(x_2 | x_1) ... p(x_D | x_1..x_{D-1})``. Every column is a softmax head:

* label columns (categories, and the ``#state`` columns of semi-continuous variables) over
  their labels;
* continuous parts over ``bins`` equal-probability bins of their training marginal, plus a
  "gap" class where the state column says the value does not apply. A drawn bin becomes a
  number by a uniform draw of the probability within the bin, mapped through the training
  quantiles, so the marginal is kept by construction and values are smoothed within their
  bin (no training value is copied). Columns with few distinct values (equivalence scales,
  weights; see ``FEW_DISTINCT``) draw from their training values instead, to stay on their
  support as CART does.

All heads share one masked MLP (MADE, Germain et al. 2015): one forward pass gives every
conditional, a mask lets the head of column ``j`` see only the columns before it. Inputs are
one-hot codes; a masked direct input-to-output layer gives every head a linear term too.
Training: Adam on the negative log-likelihood, every head's biases starting at the log of its
column's training frequencies (:meth:`NeuralSynthesizer._set_prior_biases`), with ``holdout_share`` of the rows kept aside
(whole units where ``holdout_groups`` names the columns that identify one: see below);
the held-out log-likelihood (a fidelity score: how probable unseen real records are under
the model) is measured after every epoch, training stops after ``patience`` epochs without
improvement (or at ``epochs``/``max_seconds``) and the best epoch's weights are kept.
Sampling draws column by column, all rows at once; each hidden unit is computed once per row,
as soon as the columns it sees are drawn (``MADE.stepwise``).

Why whole units: the members of a household share its household-level values. With rows
held out one by one, a held-out member's household values are in training through the other
members, so the held-out score rewards memorising each household's combination and keeps
improving long after the model stopped generalising. On EU-SILC (bench/README.md) a split by
row peaked at epoch 36 (held-out NLL 24.5) with synthetic records nearer to training records
than to holdout ones in 56% of cases; split by household it peaked at epoch 17 (NLL 31.1,
the honest figure) with that share at 0.53 and the 3-way k-marginal unchanged (932 against 942).

Conditioning columns come first in the visiting order, so :meth:`sample_conditional` is
exact: their codes are fixed and the rest drawn given them (no pool matching).

:meth:`NeuralSynthesizer.posterior_draw` is a warm-started weighted likelihood bootstrap
(Newton & Raftery 1994): the fitted network trained ``posterior_epochs`` more epochs with
one Exponential(1) weight per training record (Bayesian-bootstrap weights, as CART's
draw uses). A refit from scratch per replicate would be the exact version but costs a
whole fit each; fine-tuning from the fitted weights moves the parameters by the sampling
variability of the data at a few epochs' cost. It steps at a tenth of the fit's learning rate
(:data:`POSTERIOR_LEARNING_RATE_SHARE`): a fresh Adam's first steps move every weight by about
the learning rate whatever its gradient, and at the fit's own rate that kick threw the draw far
from its data (see the constant).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, cast

import numpy as np
import pandas as pd

from synth_assets.catalog.rules import RuleError, broken_rows, referenced_columns
from synth_assets.synthesis.base import LOGGER
from synth_assets.synthesis.blocks import BlockDonors, block_columns, fit_block_donors
from synth_assets.synthesis.equal_rows import batch_rows, match_rows
from synth_assets.synthesis.holdout import HeldOutUnitsSynthesizer
from synth_assets.synthesis.tabular import training_hashes
from synth_assets.synthesis.transform import VALUE_STATE, CategoricalCodec, allowed_codes

#: Continuous parts with fewer distinct training values than this share of their records are
#: drawn from their training values (as CART leaves them unsmoothed): interpolating between
#: 1.0 and 1.5 equivalence-scale points would put values off the support a classifier knows.
FEW_DISTINCT = 0.1

#: Draws within its bin a value that breaks a rule gets (see ``NeuralSynthesizer._decode_within_rules``).
MAX_WITHIN_BIN_DRAWS = 10

#: The posterior draws' fine-tuning learning rate, as a share of the fit's. On the demo's 50,000
#: persons (the households model, 512 x 512 units), three replicates' draws fine-tuned at the fit's
#: rate sampled shares of persons walking no kilometre 0.01 to 0.10 away from their replicate's own
#: data (trips, km by car or bicycle alike) and the gate refused the release on that variable; at a
#: tenth, at most 0.02 away, the replicates' spread kept (bench/README.md, "Twenty-fourth pass").
POSTERIOR_LEARNING_RATE_SHARE = 0.1


@dataclass
class ColumnCode:
    """How one model-frame column becomes integer codes and back."""

    name: str
    n_classes: int
    labels: list[str] | None = None  # label column: code -> label
    quantiles: np.ndarray | None = None  # binned column: training quantiles (probability grid 0..1)
    support: np.ndarray | None = None  # binned, few distinct values: sorted training values
    state: int | None = None  # binned: position of its state column in the visiting order
    bins: int = 0

    @property
    def gap(self) -> int:
        """Code of "no value here" of a binned column (its state is not "value")."""
        return self.bins

    def encode(self, column: pd.Series) -> np.ndarray:
        if self.labels is not None:
            codes = pd.Categorical(column, categories=self.labels).codes
            return np.where(codes < 0, 0, codes).astype(np.int64)
        assert self.quantiles is not None
        x = column.to_numpy(dtype=float)
        gaps = np.isnan(x)
        q = self.quantiles
        # mid-rank probability, so tied values fall in the bin of their middle
        p = (np.searchsorted(q, x, "left") + np.searchsorted(q, x, "right")) / (2.0 * (len(q) - 1))
        codes = np.minimum((np.clip(p, 0, 1) * self.bins).astype(np.int64), self.bins - 1)
        return np.where(gaps, self.gap, codes)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.labels is not None:
            return np.array(self.labels, dtype=object)[codes]
        p = (np.minimum(codes, self.bins - 1) + rng.random(len(codes))) / self.bins
        return np.where(codes == self.gap, np.nan, self.value_at(p))

    def value_at(self, p: np.ndarray | float) -> np.ndarray:
        """The binned column's value at probability ``p`` of its training marginal."""
        assert self.quantiles is not None
        if self.support is not None:
            at = np.minimum((np.asarray(p) * len(self.support)).astype(np.int64), len(self.support) - 1)
            return np.asarray(self.support[at])
        return np.asarray(np.interp(p, np.linspace(0.0, 1.0, len(self.quantiles)), self.quantiles))


class RuleMasks:
    """The codes the catalog's rules forbid for a column, given the columns drawn before it.

    A rule (a pandas query over data columns, ``catalog/rules.py``) is checked at the model
    columns of the last data column it names in the visiting order, every other one being
    drawn by then: the state column of a semi-continuous amount, then its bins; a label
    column's labels. A candidate code is forbidden to a row when the rule breaks at both ends
    of what the code can decode to (a label, a point mass, a bin's edges, a state "value"'s
    whole range): the rules are thresholds, so a bin straddling one stays allowed, and the
    household redraws (``constraints.py``) catch what the masks let through. A row for which
    every code is forbidden keeps the model's probabilities (earlier columns already broke
    the rule). On the demo's member model the rules of age and universe (no income or hours
    below 15 or 16, no hours without an occupation) are decided this way, which the network
    alone learns only approximately.
    """

    def __init__(self, rules: Sequence[str], columns: Sequence[ColumnCode], transformer: Any, n_given: int) -> None:
        self._columns = list(columns)
        self._codecs = transformer.codecs
        position = {c.name: j for j, c in enumerate(columns)}
        model_columns = {name: [position[m] for m in codec.model_columns if m in position]
                         for name, codec in self._codecs.items()}
        self.checks: dict[int, list[tuple[str, list[str], str]]] = {}  # column -> (rule, data columns, decided)
        self.exact_values: set[int] = set()  # binned columns whose values the checks read
        for rule in rules:
            names = referenced_columns(rule, list(self._codecs))
            if not names or any(not model_columns[n] for n in names):
                continue
            try:  # a rule naming a column this model lacks (a person's age in the household table)
                broken_rows(pd.DataFrame({n: [np.nan] for n in names}), [rule])
            except RuleError:
                continue
            last = max(names, key=lambda n: max(model_columns[n]))
            before = max((max(model_columns[n]) for n in names if n != last), default=-1)
            at = [j for j in model_columns[last] if j >= n_given]
            if not at or min(model_columns[last]) <= before:
                continue
            for j in at:
                self.checks.setdefault(j, []).append((rule, names, last))
            self.exact_values.update(j for n in names for j in model_columns[n] if self._columns[j].labels is None)
        self._position = position

    def _exact(self, name: str, codes: np.ndarray, values: Mapping[int, np.ndarray]) -> np.ndarray:
        """Values of a data column drawn before (numbers as the transformer will output them)."""
        codec = self._codecs[name]
        if hasattr(codec, "levels"):
            j = self._position[name]
            return np.array(list(codec.levels) + [None], dtype=object)[np.minimum(codes[:, j], len(codec.levels))]
        out = self._number(codec, values[self._position[name]].copy())
        if codec.state_column:
            state = codes[:, self._position[codec.state_column]]
            masses = np.array(list(codec.masses) + [np.nan] * (1 + codec.has_missing))
            out = np.where(state == 0, out, masses[np.maximum(state - 1, 0)])
        return out

    @staticmethod
    def _number(codec: Any, x: np.ndarray) -> np.ndarray:
        x = np.clip(x, codec.lo, codec.hi)
        return np.round(x) if codec.is_integer else x

    def _candidates(self, j: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """What each code of column ``j`` (of data column ``name``) can decode to, at its two ends."""
        column, codec = self._columns[j], self._codecs[name]
        if hasattr(codec, "levels"):
            values = np.array(list(codec.levels) + [None], dtype=object)[:column.n_classes]
            return values, values
        if column.labels is not None:  # the state column: "value" spans the continuous part's range
            ends = self._number(codec, np.array([codec.quantiles[0], codec.quantiles[-1]], dtype=float))
            masses = np.array(list(codec.masses) + [np.nan] * codec.has_missing, dtype=float)
            return np.concatenate([ends[:1], masses]), np.concatenate([ends[1:], masses])
        edges = np.array([column.value_at(k / column.bins) for k in range(column.bins + 1)])
        edges = self._number(codec, edges)
        return np.append(edges[:-1], np.nan), np.append(edges[1:], np.nan)  # the gap: no value

    def broken(self, j: int, codes: np.ndarray, values: Mapping[int, np.ndarray]) -> np.ndarray:
        """Rows breaking a rule decided at the binned column ``j``, with its values as decoded."""
        out = np.zeros(len(codes), dtype=bool)
        for rule, names, _ in self.checks.get(j, []):
            out |= broken_rows(pd.DataFrame({name: self._exact(name, codes, values) for name in names}), [rule])[0]
        return out

    def forbidden(self, j: int, codes: np.ndarray, values: Mapping[int, np.ndarray]) -> np.ndarray | None:
        """(rows x codes of column ``j``) True where a rule forbids the code; None when no rule is decided here."""
        if j not in self.checks:
            return None
        n, k = len(codes), self._columns[j].n_classes
        out = np.zeros((n, k), dtype=bool)
        for rule, names, last in self.checks[j]:
            given = {name: self._exact(name, codes, values) for name in names if name != last}
            gated = self._columns[j].labels is None and getattr(self._codecs[last], "state_column", None)
            if gated:  # the bins of rows whose state is a point mass: the state decides, not the bin
                given["#value"] = codes[:, self._position[self._codecs[last].state_column]] == 0
            # evaluated once per distinct combination of the other columns' values (ages are
            # whole years, the rest labels): a few hundred rows instead of the block's thousands
            if given:
                group = pd.DataFrame(given).groupby(list(given), sort=False, dropna=False).ngroup().to_numpy()
            else:
                group = np.zeros(n, dtype=np.int64)
            _, first = np.unique(group, return_index=True)
            m = len(first)
            frame = {name: np.tile(np.repeat(v[first], k), 2) for name, v in given.items() if name != "#value"}
            low, high = self._candidates(j, last)
            candidate = np.concatenate([np.tile(low, m), np.tile(high, m)])
            if gated:
                candidate = np.where(np.tile(np.repeat(given["#value"][first], k), 2), candidate, np.nan)
            frame[last] = candidate
            broken = broken_rows(pd.DataFrame(frame), [rule])[0]  # both ends in one evaluation
            out |= (broken[: m * k] & broken[m * k :]).reshape(m, k)[group]
        out[out.all(axis=1)] = False  # nothing allowed: the model's own choice, redrawn later if need be
        return out


@contextlib.contextmanager
def torch_environment(seed: int, threads: int | None) -> Iterator[None]:
    """Seeded torch generators and thread count, restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def _made_masks(
    sizes: Sequence[int], hidden: Sequence[int], rng: np.random.Generator, n_given: int = 0
) -> list[np.ndarray]:
    """MADE masks (out x in) for one-hot column blocks of ``sizes``: head j sees columns < j only.

    The ``n_given`` conditioning columns come first and form one block of degree 0: every
    hidden unit sees all of them (with one degree each, a unit of degree m would see only the
    first m, and most units would miss most of the household), and they have no outputs
    (nothing is drawn for them). The other columns have degrees 1, 2, ...; hidden units get
    degrees 0..D-2 in turn (shuffled); a hidden unit of degree m sees inputs of degree <= m,
    the output of a column of degree j hidden units of degree < j. The last mask is the direct
    input-to-output layer (inputs of degree < j). Without conditioning this is Germain et al.'s
    layout with column j at degree j.
    """
    column_degree = np.maximum(np.arange(len(sizes)) - max(n_given - 1, 0), 0)
    d = int(column_degree[-1]) + 1
    in_deg = np.repeat(column_degree, sizes)
    degrees = [in_deg]
    for width in hidden:
        deg = np.arange(width) % max(d - 1, 1)
        degrees.append(rng.permutation(deg))
    masks = [(degrees[i + 1][:, None] >= degrees[i][None, :]).astype(np.float32) for i in range(len(hidden))]
    out_deg = np.repeat(column_degree[n_given:], sizes[n_given:])
    masks.append((out_deg[:, None] > degrees[-1][None, :]).astype(np.float32))
    masks.append((out_deg[:, None] > in_deg[None, :]).astype(np.float32))
    return masks


def _build_network(hidden: Sequence[int], masks: list[np.ndarray], dropout: float) -> Any:
    """The masked MLP (torch module); defined here so torch is imported only when used.

    It takes each row's one-hot *indices* (``codes + offsets``, rows x columns): the first
    and the direct layers sum the weight rows of the row's codes (``embedding_bag``), which
    equals multiplying the one-hot vector at a fraction of the cost. Masks make the head of
    column j independent of the codes of columns j and later, so while sampling those can
    hold anything.
    """
    import torch
    from torch import nn
    from torch.nn import functional

    class MaskedLinear(nn.Linear):
        def __init__(self, mask: np.ndarray, bias: bool = True) -> None:
            super().__init__(mask.shape[1], mask.shape[0], bias=bias)
            self.register_buffer("mask", torch.from_numpy(mask))

        def masked(self) -> torch.Tensor:
            mask = cast(torch.Tensor, self.mask)
            return self.weight * mask

    class MADE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = MaskedLinear(masks[0])
            self.hidden = nn.ModuleList(MaskedLinear(m) for m in masks[1 : len(hidden)])
            self.head = MaskedLinear(masks[len(hidden)])
            self.direct = MaskedLinear(masks[len(hidden) + 1], bias=False)
            self.dropout = nn.Dropout(dropout)

        def forward(self, idx: torch.Tensor, lo: int = 0, hi: int | None = None) -> torch.Tensor:
            """Logits of the output units ``lo:hi`` (all by default) for one-hot indices ``idx``."""
            h = torch.relu(functional.embedding_bag(idx, self.first.masked().t().contiguous(), mode="sum") + self.first.bias)
            for layer in cast(list[MaskedLinear], list(self.hidden)):
                h = torch.relu(functional.linear(self.dropout(h), layer.masked(), layer.bias))
            head = functional.linear(self.dropout(h), self.head.masked()[lo:hi], self.head.bias[lo:hi])
            return head + functional.embedding_bag(idx, self.direct.masked()[lo:hi].t().contiguous(), mode="sum")

        def stepwise(self, input_columns: np.ndarray) -> Callable[[torch.Tensor], Callable[[int, int, int], torch.Tensor]]:
            """The logits of ``forward`` for sampling, each hidden unit computed once per row, not per column.

            A hidden unit depends on the columns its mask lets through, directly or through
            the layer below, and on nothing else: once those columns are drawn its value is
            final. So before column ``j`` only the units whose last input column is ``j - 1``
            are computed (all those complete at the first column drawn), and the head of ``j``
            reads the rest from the rows' buffers. Same logits as ``forward`` (to rounding) at
            about one forward pass per row for the hidden layers instead of one per column:
            those dominate the cost (a (512, 512) layer against a head of a few dozen classes).
            ``input_columns`` is the column of each input unit.
            """
            layers = [self.first, *cast(list[MaskedLinear], list(self.hidden))]
            # the column before which each unit is final: 1 + its last input column (0: none)
            ready = input_columns.astype(np.int64) + 1
            readiness = []
            for layer in layers:
                mask = cast(torch.Tensor, layer.mask).cpu().numpy().astype(bool)
                ready = np.where(mask.any(axis=1), np.where(mask, ready[None, :], 0).max(axis=1), 0)
                readiness.append(ready)
            weights = [layer.masked() for layer in layers]
            head, bias = self.head.masked(), self.head.bias
            direct = self.direct.masked().t().contiguous()

            cache: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

            def units(layer: int, after: int, upto: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
                # the same for every block of rows: gathered once per sampling call
                if (layer, after, upto) not in cache:
                    chosen = torch.as_tensor(np.flatnonzero((readiness[layer] > after) & (readiness[layer] <= upto)))
                    weight = weights[layer][chosen]
                    cache[layer, after, upto] = (chosen, weight.t().contiguous() if layer == 0 else weight,
                                                 layers[layer].bias[chosen])
                return cache[layer, after, upto]

            def begin(idx: torch.Tensor) -> Callable[[int, int, int], torch.Tensor]:
                states = [torch.zeros(len(idx), w.shape[0], dtype=w.dtype, device=idx.device) for w in weights]
                done = [-1]

                def logits(j: int, lo: int, hi: int) -> torch.Tensor:
                    for layer, state in enumerate(states):
                        chosen, weight, b = units(layer, done[0], j)
                        if len(chosen):
                            below = functional.embedding_bag(idx, weight, mode="sum") if layer == 0 else \
                                functional.linear(states[layer - 1], weight)
                            state[:, chosen] = torch.relu(below + b)
                    done[0] = j
                    out = functional.linear(states[-1], head[lo:hi], bias[lo:hi])
                    return out + functional.embedding_bag(idx, direct[:, lo:hi].contiguous(), mode="sum")

                return logits

            return begin

    return MADE()


class NeuralSynthesizer(HeldOutUnitsSynthesizer):
    """Autoregressive masked-MLP synthesiser; see the module docstring.

    Parameters
    ----------
    hidden:
        Widths of the shared masked hidden layers.
    bins:
        Equal-probability bins of every continuous part (its softmax classes).
    dropout:
        Dropout rate on the hidden layers.
    epochs, patience, max_seconds:
        At most ``epochs`` epochs; stop after ``patience`` epochs without a better held-out
        log-likelihood, or before an epoch that would end after ``max_seconds``.
    holdout_share:
        Share of training rows kept aside for the held-out log-likelihood (early stopping).
    holdout_groups:
        Columns whose values together identify a unit (a household): the held-out rows are
        whole units (see the module docstring). Empty: rows are held out one by one.
    posterior_epochs:
        Epochs of weighted fine-tuning per :meth:`posterior_draw`.
    enable_gpu:
        ``None``: CUDA when torch sees it.
    torch_threads:
        Torch CPU threads (``None``: torch's setting, e.g. the pipeline's compute resource).
        1 by default, as for the SDV families: on the shared 2-core benchmark machine an
        EU-SILC epoch (7,383 rows) took 117 s with torch's 2 threads against 2.5 s with one
        (one observation each, under different loads, so only the direction is reliable).
    """

    family = "neural"
    warm_replicates = True

    def __init__(
        self,
        *,
        seed: int = 0,
        hidden: Sequence[int] = (512, 512),
        bins: int = 40,
        dropout: float = 0.0,
        epochs: int = 300,
        patience: int = 8,
        max_seconds: float | None = None,
        batch_size: int = 256,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-5,
        holdout_share: float = 0.1,
        holdout_groups: Sequence[str] = (),
        posterior_epochs: int = 3,
        enable_gpu: bool | None = None,
        torch_threads: int | None = 1,
        special_codes: Mapping[str, Sequence[float]] | None = None,
        id_columns: Sequence[str] = (),
        condition_columns: Sequence[str] = (),
        avoid_copies: bool = True,
        max_copy_rounds: int = 5,
        rules: Sequence[str] = (),
        blocks: Sequence[Sequence[str]] = (),
    ) -> None:
        super().__init__(
            seed=seed,
            special_codes=special_codes,
            id_columns=id_columns,
            condition_columns=condition_columns,
            avoid_copies=avoid_copies,
            max_copy_rounds=max_copy_rounds,
        )
        self.hidden = [int(h) for h in hidden]
        self.bins = int(bins)
        self.dropout = float(dropout)
        self.epochs = int(epochs)
        self.patience = int(patience)
        self.max_seconds = max_seconds
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.holdout_share = float(holdout_share)
        self.holdout_groups = list(holdout_groups)
        self.posterior_epochs = int(posterior_epochs)
        self.enable_gpu = enable_gpu
        self.torch_threads = torch_threads
        self.rules = list(rules)
        self.blocks = [list(b) for b in blocks]
        self._donors: BlockDonors | None = None  # the training records' blocks (see synthesis.blocks)
        self._columns: list[ColumnCode] = []
        self._n_given = 0
        self._net: Any = None  # the fitted MADE, kept on the CPU
        self._codes: np.ndarray | None = None  # training codes (for posterior draws)

    # --------------------------------------------------------------- layout
    def _visit_order(self) -> list[str]:
        """Conditioning columns, then labels by number of levels, then each state before its value;
        the blocks last, each drawn given every other column (its donor is then chosen given them)."""
        t = self.transformer
        given = t.model_columns_of(self.condition_columns)
        labels = t.categorical_labels
        state_of = {n: c.state_column for n, c in t.continuous_columns.items() if c.state_column and n not in given}
        states = set(state_of.values())
        categorical = sorted((c for c in labels if c not in given and c not in states), key=lambda c: len(labels[c]))
        order = list(categorical)
        for name in t.continuous_columns:
            if name in given:
                continue
            if name in state_of:
                order.append(state_of[name])
            order.append(name)
        blocks = self._block_columns()
        inside = {c for members in blocks for c in members}
        return given + [c for c in order if c not in inside] + [c for members in blocks for c in members]

    def _block_columns(self) -> list[list[str]]:
        t = self.transformer
        return block_columns(t, getattr(self, "blocks", []), t.model_columns_of(self.condition_columns))

    def _fit_donors(self, frame: pd.DataFrame) -> BlockDonors | None:
        return fit_block_donors(self.transformer, getattr(self, "blocks", []), frame, self.condition_columns, self.seed)

    def _layout(self, frame: pd.DataFrame) -> list[ColumnCode]:
        t = self.transformer
        labels = t.categorical_labels
        order = self._visit_order()
        position = {c: i for i, c in enumerate(order)}
        columns = []
        for name in order:
            if name in labels:
                columns.append(ColumnCode(name, len(labels[name]), labels=labels[name]))
                continue
            codec = t.continuous_columns[name]
            values = frame[name].to_numpy(dtype=float)
            values = np.sort(values[~np.isnan(values)])
            support = values if len(np.unique(values)) < FEW_DISTINCT * len(values) else None
            state = position[codec.state_column] if codec.state_column else None
            columns.append(ColumnCode(name, self.bins + 1, quantiles=codec.quantiles, support=support,
                                      state=state, bins=self.bins))
        return columns

    def _encode(self, frame: pd.DataFrame, columns: Sequence[ColumnCode]) -> np.ndarray:
        return np.column_stack([c.encode(frame[c.name]) for c in columns]).astype(np.int64)

    def _decode(self, codes: np.ndarray, rng: np.random.Generator,
                values: Mapping[int, np.ndarray] | None = None) -> pd.DataFrame:
        """The model frame of ``codes``; ``values`` holds columns already decoded while drawing."""
        drawn = {j: v for j, v in (values or {}).items() if j >= self._n_given}
        frame = pd.DataFrame({c.name: drawn[j] if j in drawn else c.decode(codes[:, j], rng)
                              for j, c in enumerate(self._columns)})
        donors = getattr(self, "_donors", None)  # a model saved before blocks were drawn whole has none
        return frame if donors is None else donors.take(frame, rng)

    @property
    def _sizes(self) -> list[int]:
        return [c.n_classes for c in self._columns]

    def _device(self) -> str:
        import torch

        gpu = torch.cuda.is_available() if self.enable_gpu is None else self.enable_gpu
        return "cuda" if gpu else "cpu"

    # ------------------------------------------------------------- fitting
    def _fit_model(self, frame: pd.DataFrame, rng: np.random.Generator) -> None:
        self._columns = self._layout(frame)
        self._n_given = len(self.transformer.model_columns_of(self.condition_columns))
        self.__dict__.pop("_masks", None)  # of the previous fit's columns
        codes = self._encode(frame, self._columns)
        self._codes = codes
        self._donors = self._fit_donors(frame)
        masks = _made_masks(self._sizes, self.hidden, rng, self._n_given)
        with torch_environment(self.seed, self.torch_threads):
            self._net = _build_network(self.hidden, masks, self.dropout)
            hold, train = self._holdout_split(len(codes), rng)
            self._set_prior_biases(codes[train])
            log = self._train(codes[train], codes[hold] if len(hold) else None, None, self.epochs, rng)
        self.training_log.update(log)

    def _set_prior_biases(self, codes: np.ndarray, weights: np.ndarray | None = None,
                          columns: Sequence[int] | None = None) -> None:
        """Set every head's biases (or those of ``columns``) to the log of its column's (weighted)
        training frequencies.

        The first column drawn has no input (its logits are its biases alone), and Adam moves a
        weight by at most about the learning rate per step: a class of 1% needs its bias about
        4 below the most frequent one's, at least 1,000 steps at 2e-3, more than a small
        table's early-stopped fit takes. On the demo's 17,159 households the first column, the
        household's cars, was still drawn 3 cars 3.3 times too often after 24 epochs (about
        1,450 steps; bench/README.md, "Twenty-fifth pass"). Starting from the
        marginals (the usual initialisation of a softmax output) the hidden units only have
        to learn the dependence. Half a record added to every class keeps unseen ones finite.
        """
        import torch

        net = self._net
        out = self._output_starts(net)
        with torch.no_grad():
            for j in range(self._n_given, len(self._columns)) if columns is None else columns:
                counts = np.bincount(codes[:, j], weights=weights, minlength=self._columns[j].n_classes) + 0.5
                prior = np.log(counts / counts.sum())
                net.head.bias[int(out[j]) : int(out[j + 1])] = torch.as_tensor(prior - prior.mean(),
                                                                                dtype=net.head.bias.dtype)

    def _train(
        self,
        train: np.ndarray,
        hold: np.ndarray | None,
        weights: np.ndarray | None,
        epochs: int,
        rng: np.random.Generator,
        learning_rate: float | None = None,
    ) -> dict[str, Any]:
        """Adam on the (weighted) NLL (at ``learning_rate``, default the model's); early stopping on
        ``hold`` when given. Leaves the net on the CPU."""
        import torch

        device = self._device()
        net = self._net.to(device)
        # fused: one kernel per step for all parameters instead of a dozen per tensor; on the demo's
        # member model a step took 0.100 s against 0.124 s (bench/README.md, "Neural family")
        optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate or self.learning_rate, weight_decay=self.weight_decay,
                                     fused=True)
        offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(self._sizes)[:-1]]), device=device)
        train_t = torch.as_tensor(train, device=device)
        index = self._nll_index(net, device)
        weight_t = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=device)
        started = time.perf_counter()
        history: dict[str, list[float]] = {"train_nll": [], "holdout_nll": []}
        best, best_epoch, best_state = np.inf, 0, None
        stopped_by_budget = False
        for epoch in range(1, epochs + 1):
            net.train()
            total = 0.0
            perm = torch.as_tensor(rng.permutation(len(train)), device=device)
            for start in range(0, len(train), self.batch_size):
                idx = perm[start : start + self.batch_size]
                nll = self._row_nll(net, train_t[idx], offsets, index)
                loss = (nll * weight_t[idx]).mean() if weight_t is not None else nll.mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
            history["train_nll"].append(total / len(train))
            if hold is not None:
                score = self._mean_nll(net, hold, offsets)
                history["holdout_nll"].append(score)
                if score < best - 1e-4:
                    best, best_epoch = score, epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                LOGGER.info("%s: epoch %d  train NLL %.3f  held-out NLL %.3f", self.family, epoch,
                            history["train_nll"][-1], score)
                if epoch - best_epoch >= self.patience:
                    break
            elapsed = time.perf_counter() - started
            if self.max_seconds is not None and elapsed * (epoch + 1) / epoch > self.max_seconds:
                stopped_by_budget = epoch < epochs
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        self._net = net.cpu()
        if not history["holdout_nll"]:
            del history["holdout_nll"]
        seconds = time.perf_counter() - started
        return {
            "device": device,
            "epochs": len(history["train_nll"]),
            "epochs_requested": epochs,
            "best_epoch": best_epoch or len(history["train_nll"]),
            "best_holdout_nll": None if best == np.inf else round(float(best), 4),
            "stopped_by_budget": stopped_by_budget,
            "seconds_per_epoch": seconds / max(len(history["train_nll"]), 1),
            "losses": history,
        }

    def _output_starts(self, net: Any) -> np.ndarray:
        """First output unit of each column (given columns have none in a network built by this version)."""
        starts = np.concatenate([[0], np.cumsum(self._sizes)])
        # a network of an earlier version has outputs for the given columns too
        skipped = int(starts[-1]) - int(net.head.out_features)
        return starts - skipped

    def _nll_index(self, net: Any, device: Any) -> Any:
        """(columns drawn x most classes) positions of each drawn column's logits; padding points past the end."""
        import torch

        out = self._output_starts(net)
        sizes = self._sizes[self._n_given :]
        width = max(sizes)
        index = np.full((len(sizes), width), int(net.head.out_features), dtype=np.int64)
        for k, size in enumerate(sizes):
            start = int(out[self._n_given + k])
            index[k, :size] = np.arange(start, start + size)
        return torch.as_tensor(index, device=device)

    def _row_nll(self, net: Any, codes: Any, offsets: Any, index: Any) -> Any:
        """Negative log-likelihood of each row (sum over the non-given columns).

        One log-softmax over a (rows, columns, classes) view padded with -inf, instead of one
        cross-entropy per column: on the demo's member model (44 drawn columns) the loop's
        small kernels and their backward passes took a third of each step.
        """
        import torch

        logits = net(codes + offsets)
        padded = torch.cat([logits, logits.new_full((len(logits), 1), -torch.inf)], dim=1)[:, index]
        log_p = torch.log_softmax(padded, dim=2)
        drawn = codes[:, self._n_given :].unsqueeze(2)
        return -log_p.gather(2, drawn).squeeze(2).sum(dim=1)

    def _mean_nll(self, net: Any, codes: np.ndarray, offsets: Any) -> float:
        import torch

        net.eval()
        with torch.no_grad():
            t = torch.as_tensor(codes, device=offsets.device)
            index = self._nll_index(net, offsets.device)
            return float(sum(float(self._row_nll(net, t[s : s + 4096], offsets, index).sum())
                             for s in range(0, len(t), 4096)) / len(t))

    # ------------------------------------------------------------ sampling
    def _sample_model(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        codes = np.zeros((n, len(self._columns)), dtype=np.int64)
        values: dict[int, np.ndarray] = {}
        self._draw(codes, rng, values)
        return self._decode(codes, rng, values)

    def _sample_model_given(self, known: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        codes = np.zeros((len(known), len(self._columns)), dtype=np.int64)
        given = self._columns[: self._n_given]
        codes[:, : self._n_given] = self._encode(known, given)
        # the given amounts as known, for the rules that read them
        values = {j: known[c.name].to_numpy(dtype=float) for j, c in enumerate(given) if c.labels is None}
        self._draw(codes, rng, values)
        return self._decode(codes, rng, values)

    def _rule_masks(self) -> RuleMasks | None:
        """The masks of ``rules``, built once per model: every redraw call of a household draws again, and
        building them evaluates each of its rules (44 on the demo's member model) once more."""
        rules = tuple(getattr(self, "rules", []))  # a model saved before rules were masked has none
        if not rules:
            return None
        cached = self.__dict__.get("_masks")
        if cached is None or cached[0] != rules:
            cached = (rules, RuleMasks(rules, self._columns, self.transformer, self._n_given))
            self._masks = cached
        return cached[1]

    def _draw(
        self, codes: np.ndarray, rng: np.random.Generator, values: dict[int, np.ndarray], block: int = 20_000,
        start: int | None = None, stop: int | None = None,
    ) -> np.ndarray:
        """Fill every non-given column of ``codes`` in visiting order (inverse-CDF draws from ``rng``).

        ``start`` and ``stop`` (positions in the visiting order) draw only those columns, the
        ones before ``start`` being drawn already: a prefix, then the rest given it.

        The catalog's rules mask the codes they forbid given the columns drawn before
        (:class:`RuleMasks`); the values of the amounts they read are decoded as soon as drawn
        and put in ``values`` (column -> values), which :meth:`_decode` then keeps.
        """
        import torch

        device = self._device()
        net = self._net.to(device).eval()
        sizes = self._sizes
        starts = np.concatenate([[0], np.cumsum(sizes)])
        value_code = {j: c.labels.index(VALUE_STATE) for j, c in enumerate(self._columns)
                      if c.labels is not None and VALUE_STATE in c.labels}
        offsets = torch.as_tensor(starts[:-1], device=device)
        out = self._output_starts(net)
        masks = self._rule_masks()
        for j in masks.exact_values if masks else ():
            values.setdefault(j, np.full(len(codes), np.nan))
        with torch.inference_mode():
            begin = net.stepwise(np.repeat(np.arange(len(sizes)), sizes))
            for b in range(0, len(codes), block):
                part = codes[b : b + block]  # a view: filled in place
                idx = torch.as_tensor(part, device=device) + offsets
                logits_of = begin(idx)
                for j in range(self._n_given if start is None else start, len(sizes) if stop is None else stop):
                    column = self._columns[j]
                    logits = logits_of(j, int(out[j]), int(out[j + 1])).double().cpu().numpy()
                    if column.labels is None:
                        logits[:, column.gap] = -np.inf  # a value is drawn; the gap is set from the state
                    forbidden = masks.forbidden(j, part, {k: v[b : b + block] for k, v in values.items()}) \
                        if masks else None
                    if forbidden is not None:
                        keep = np.isfinite(logits).any(axis=1, where=~forbidden)
                        logits[keep[:, None] & forbidden] = -np.inf
                    p = np.exp(logits - logits.max(axis=1, keepdims=True))
                    cumulative = np.cumsum(p, axis=1)
                    u = rng.random(len(part)) * cumulative[:, -1]
                    drawn = np.minimum((cumulative < u[:, None]).sum(axis=1), sizes[j] - 1)
                    if column.state is not None:
                        state = part[:, column.state]
                        drawn = np.where(state == value_code[column.state], drawn, column.gap)
                    part[:, j] = drawn
                    if j in values:
                        values[j][b : b + block] = self._decode_within_rules(j, part, values, b, block, masks, rng)
                    idx[:, j] = torch.as_tensor(drawn, device=device) + int(starts[j])
        self._net = net.cpu()
        return codes

    def sample_matching(
        self, wanted: pd.DataFrame, *, seed: int, max_rounds: int = 8, offset: int = 0,
        within: tuple[str, Collection[str]] | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray] | None:
        """Rows drawn from the model given ``wanted``'s columns: one per wanted row that was drawn.

        Returns the rows (for the wanted rows found, in their order) and those rows' positions
        in ``wanted``; None when a wanted column is not a label column of this model (the caller
        then draws whole rows and matches them). Only the columns up to the last wanted one in
        the visiting order are drawn, in growing batches (``max_rounds``), and the first equal
        to a wanted row kept: an exact draw of that prefix given the wanted values; the other
        columns are then drawn given it. On the demo's household model the household's size,
        type and municipality are among its first six columns of thirty, so a rare structure
        costs draws of six columns instead of whole households. ``within``: a label column and
        the values (as text) its rows must have, drawn in the prefix too (a region's model).
        """
        self._check_fitted()
        position = {c.name: j for j, c in enumerate(self._columns)}
        names = list(wanted.columns)
        if getattr(self, "_calibrator", None) is not None or any(
            self.transformer.model_columns_of([n]) != [n] or n not in position or position[n] < self._n_given
            or self._columns[position[n]].labels is None for n in names
        ):
            return None
        at = [position[n] for n in names]
        inside, at_within = None, -1
        if within is not None:
            at_within = position.get(within[0], -1)
            inside = None if at_within < self._n_given else allowed_codes(
                self.transformer.codecs.get(within[0]), self._columns[at_within].labels, within[1])
            if inside is None:
                return None
        stop = max([*at, at_within]) + 1
        codecs = [codec for n in names if isinstance(codec := self.transformer.codecs[n], CategoricalCodec)]
        if len(codecs) < len(names):
            return None
        # a value the model never saw is never drawn: its rows match nothing (code -1)
        seen = np.logical_and.reduce([
            (wanted[n].isin(list(codec.levels)) | (wanted[n].isna() & (codec.missing_label is not None))).to_numpy()
            for n, codec in zip(names, codecs, strict=True)])
        frame = self.transformer.transform(wanted[seen], names)
        target = pd.DataFrame(-1, index=range(len(wanted)), columns=names, dtype=np.int64)
        for n, j in zip(names, at, strict=True):
            target.loc[seen, n] = pd.Categorical(frame[n], categories=self._columns[j].labels).codes
        rng = np.random.default_rng(seed)
        found = np.full(len(wanted), -1, dtype=np.int64)
        kept_codes: list[np.ndarray] = []
        kept_values: list[dict[int, np.ndarray]] = []
        kept = 0
        for round_ in range(max_rounds):
            missing = np.flatnonzero(found < 0)
            if not len(missing):
                break
            k = batch_rows(len(missing), round_)
            codes = np.zeros((k, len(self._columns)), dtype=np.int64)
            values: dict[int, np.ndarray] = {}
            self._draw(codes, rng, values, stop=stop)
            if inside is not None:
                keep = np.isin(codes[:, at_within], inside)
                codes, values = codes[keep], {j: v[keep] for j, v in values.items()}
            taken = match_rows(target.iloc[missing].reset_index(drop=True), pd.DataFrame(codes[:, at], columns=names))
            hit = taken >= 0
            found[missing[hit]] = kept + np.arange(int(hit.sum()))
            kept_codes.append(codes[taken[hit]])
            kept_values.append({j: v[taken[hit]] for j, v in values.items()})
            kept += int(hit.sum())
        rows = np.flatnonzero(found >= 0)
        codes = np.concatenate(kept_codes)[found[rows]] if kept else np.zeros((0, len(self._columns)), np.int64)
        values = {j: np.concatenate([v[j] for v in kept_values])[found[rows]] for j in (kept_values[0] if kept else {})}
        prefix_codes, prefix_values = codes.copy(), {j: v.copy() for j, v in values.items()}

        def rest(idx: np.ndarray) -> pd.DataFrame:
            """The columns after the prefix drawn (again) for rows ``idx``, given their prefix."""
            part = prefix_codes[idx].copy()
            part_values = {j: v[idx].copy() for j, v in prefix_values.items()}
            self._draw(part, rng, part_values, start=stop)
            return self._decode(part, rng, part_values)

        out = self.transformer.inverse(rest(np.arange(len(rows))), rng, offset)
        # a row equal to a training record is drawn again, its prefix (the wanted values) kept
        out = self._redraw_copies(out, rest, rng, offset)
        return self.fitted_schema.enforce(out), rows

    def _decode_within_rules(self, j: int, part: np.ndarray, values: dict[int, np.ndarray], b: int, block: int,
                             masks: RuleMasks | None, rng: np.random.Generator) -> np.ndarray:
        """Values of binned column ``j`` for the rows ``part`` (from ``b``), each drawn again within its
        bin, a few times, where it breaks a rule: a bin a threshold cuts keeps only its valid side."""
        column = self._columns[j]
        drawn = column.decode(part[:, j], rng)
        if masks is None or j not in masks.checks:
            return drawn
        window = {k: v[b : b + block] for k, v in values.items()}
        todo = np.arange(len(part))
        for _ in range(MAX_WITHIN_BIN_DRAWS):
            window[j] = drawn
            todo = todo[masks.broken(j, part[todo], {k: v[todo] for k, v in window.items()})]
            if not len(todo):
                break
            drawn[todo] = column.decode(part[todo, j], rng)
        return drawn

    # ---------------------------------------------------------- persistence
    def __getstate__(self) -> dict[str, Any]:
        """The network travels as arrays (its class is built at run time, so it has no pickle name)."""
        state = dict(self.__dict__)
        state.pop("_masks", None)  # rebuilt from the rules at the first draw
        if self._net is not None:
            state["_net"] = {k: v.detach().cpu().numpy() for k, v in self._net.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.get("_net")
        self.__dict__.update(state)
        if isinstance(weights, dict):
            import torch

            masks = [weights["first.mask"]]
            masks += [weights[f"hidden.{i}.mask"] for i in range(len(self.hidden) - 1)]
            masks += [weights["head.mask"], weights["direct.mask"]]
            net = _build_network(self.hidden, masks, self.dropout)
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
            self._net = net

    # ----------------------------------------------------------- replicates
    @property
    def has_posterior_draw(self) -> bool:
        return True

    def posterior_draw(self, seed: int) -> Self:
        """A copy fine-tuned ``posterior_epochs`` epochs with Bayesian-bootstrap record weights."""
        self._check_fitted()
        assert self._codes is not None, "a fitted model keeps its training codes"
        return self._weighted_fine_tune(self._codes, seed)

    def replicate_draw(self, data: pd.DataFrame, seed: int) -> Self:
        """A posterior draw given a replicate's own records, warm-started from this model.

        The fitted network is fine-tuned on ``data`` as :meth:`posterior_draw` fine-tunes it on
        the training records: a refit from scratch per replicate would cost the pipeline six
        whole fits for five replicates. The column coding (labels, bins) stays this model's,
        as the network's inputs require; copies are then judged against ``data``.
        """
        self._check_fitted()
        self.check_training_rows(data, "replicate's training table")
        frame = self.transformer.transform(data)
        codes = self._encode(frame, self._columns)
        draw = self._weighted_fine_tune(codes, seed)
        draw._codes = codes
        draw._donors = self._fit_donors(frame)  # the replicate's own records' blocks
        if self.avoid_copies:
            draw._train_hashes = training_hashes(data, self._copy_columns(data))
        draw.training_log["posterior_draw"]["rows"] = len(data)
        return draw

    def _weighted_fine_tune(self, codes: np.ndarray, seed: int) -> Self:
        """A copy trained ``posterior_epochs`` more epochs on ``codes``, one Exponential(1) weight per row."""
        rng = np.random.default_rng(seed)
        weights = rng.standard_exponential(len(codes))
        draw = copy.copy(self)
        draw._net = copy.deepcopy(self._net)
        draw.training_log = dict(self.training_log)
        with torch_environment(seed, self.torch_threads):
            log = draw._train(codes, None, weights, self.posterior_epochs, rng,
                              learning_rate=self.learning_rate * POSTERIOR_LEARNING_RATE_SHARE)
            if self._n_given == 0:
                # The first column's head has no input: the weighted likelihood's optimum for it is
                # its weighted frequencies, set exactly. A few steps at a tenth of the rate barely
                # move it: on the demo, replicate 1's matched data held 11.9% of persons in two-car
                # households, the training data 20.8%, and the draw released 18.2% (bench/README.md,
                # "Twenty-fifth pass").
                draw._set_prior_biases(codes, weights, columns=[0])
        draw.training_log["posterior_draw"] = {"seed": seed, "epochs": log["epochs"]}
        return draw
