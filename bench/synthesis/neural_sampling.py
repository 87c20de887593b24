"""Sampling speed of the neural family: each hidden unit once per row (``MADE.stepwise``) against
one whole forward pass per column (the sampler before it), on a fitted population model.

    python bench/synthesis/neural_sampling.py --model data/models/population_model/2024.model --rows 20000

``--model`` is a fitted ``population_model`` of the neural family (households, members or both
neural). For each neural table model, both samplers fill the same rows (the given columns drawn
once by the model) with the same random numbers; the script prints the median seconds of
``--repeats`` runs of each, their ratio, and the share of drawn codes that agree (the two differ
only by float rounding, which moves a draw that falls exactly on a class boundary).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def per_column_sampler(net: Any) -> Callable[[Any], Callable[[int, int, int], Any]]:
    """The reference: the masked weights once, then a whole forward pass for every column."""
    import torch
    from torch.nn import functional

    first = net.first.masked().t().contiguous()
    hidden = [(layer.masked(), layer.bias) for layer in net.hidden]
    head, bias = net.head.masked(), net.head.bias
    direct = net.direct.masked().t().contiguous()

    def begin(idx: torch.Tensor) -> Callable[[int, int, int], torch.Tensor]:
        def logits(j: int, lo: int, hi: int) -> torch.Tensor:
            h = torch.relu(functional.embedding_bag(idx, first, mode="sum") + net.first.bias)
            for weight, b in hidden:
                h = torch.relu(functional.linear(h, weight, b))
            out = functional.linear(h, head[lo:hi], bias[lo:hi])
            return out + functional.embedding_bag(idx, direct[:, lo:hi].contiguous(), mode="sum")

        return logits

    return begin


def fill(model: Any, codes: np.ndarray, begin: Callable[[Any], Callable[[int, int, int], Any]], seed: int) -> float:
    """Seconds to draw every non-given column of ``codes`` (in place), as ``NeuralSynthesizer._draw`` does."""
    import torch

    rng = np.random.default_rng(seed)
    sizes = model._sizes
    starts = np.concatenate([[0], np.cumsum(sizes)])
    started = time.perf_counter()
    with torch.inference_mode():
        idx = torch.as_tensor(codes) + torch.as_tensor(starts[:-1])
        logits_of = begin(idx)
        for j in range(model._n_given, len(sizes)):
            p = torch.softmax(logits_of(j, int(starts[j]), int(starts[j + 1])).double(), dim=1).numpy()
            u = rng.random(len(codes))[:, None]
            drawn = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), sizes[j] - 1)
            codes[:, j] = drawn
            idx[:, j] = torch.as_tensor(drawn) + int(starts[j])
    return time.perf_counter() - started


def main() -> None:
    import torch

    from synth_assets.synthesis.base import Synthesizer
    from synth_assets.synthesis.neural import NeuralSynthesizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = Synthesizer.load(args.model)
    tables = {name: getattr(model, f"{name}_model", None) for name in ("household", "person")}
    tables = {name: m for name, m in tables.items() if isinstance(m, NeuralSynthesizer)} or {"model": model}
    print("| table | columns (given) | hidden | rows | per column (s) | stepwise (s) | ratio | codes agreeing |")
    print("|---|---|---|---|---|---|---|---|")
    for name, table in tables.items():
        assert isinstance(table, NeuralSynthesizer), f"{args.model}: not a neural model"
        net = table._net.eval()
        given = table._draw(np.zeros((args.rows, len(table._columns)), dtype=np.int64), np.random.default_rng(0))
        given[:, table._n_given:] = 0
        times: dict[str, list[float]] = {"per column": [], "stepwise": []}
        drawn: dict[str, np.ndarray] = {}
        stepwise = net.stepwise(np.repeat(np.arange(len(table._sizes)), table._sizes))
        for _ in range(args.repeats):
            for label, begin in (("per column", per_column_sampler(net)), ("stepwise", stepwise)):
                codes = given.copy()
                times[label].append(fill(table, codes, begin, seed=1))
                drawn[label] = codes
        slow, fast = statistics.median(times["per column"]), statistics.median(times["stepwise"])
        agree = float((drawn["per column"] == drawn["stepwise"]).mean())
        print(f"| {name} | {len(table._sizes)} ({table._n_given}) | {tuple(table.hidden)} | {args.rows:,} | "
              f"{slow:.2f} | {fast:.2f} | {slow / fast:.1f} | {agree:.5f} |")


if __name__ == "__main__":
    main()
