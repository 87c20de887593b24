"""The matching's network (``neural_draw``): milliseconds per training step, and its loss gathered
once for every head against one gather and one weight total per head.

    PYTHONPATH=. .venv/bin/python bench/matching/network_step.py [--donors 20000] [--heads 6] [--repeats 5]

On seeded random donors the size of a survey's (``--donors``, 40 inputs, ``--heads`` targets of 11
levels: 10 bins and missing), with the method's defaults (2 layers of 64, batches of 256, Adam), on
one thread as a fused survey trains: the median milliseconds per step of ``_train`` over
``--repeats`` runs of 3 epochs, then the median microseconds of one batch's loss and its backward
pass both ways, and whether the two give the same loss and gradients bit for bit. Last, the median
microseconds of ``log_softmax`` over a batch's logits of 11 and of 16 classes: PyTorch's CPU kernel
vectorises the class dimension, and one shorter than a vector (16 floats with AVX-512) takes a path
that is many times slower per row, which cross-entropy meets once per head.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def per_head_loss(net, x, targets, weights, rows):
    """The reference: each head gathers its own codes and divides by its own weight total."""
    import torch.nn.functional as F

    outputs = net(x[rows])
    total = None
    for j, out in enumerate(outputs):
        w = weights[rows]
        term = (F.cross_entropy(out, targets[j][rows], reduction="none") * w).sum() / w.sum()
        total = term if total is None else total + term
    return total


def main() -> None:
    import torch

    from synth_assets.matching.methods.neural import Head, _loss, _network, _train

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--donors", type=int, default=20_000)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, inputs, levels = args.donors, 40, 11
    x = torch.from_numpy(rng.normal(size=(n, inputs)).astype(np.float32))
    heads = [Head(f"z{i}", rng.integers(0, levels, n).astype(np.int64), levels, True) for i in range(args.heads)]
    targets = torch.from_numpy(np.stack([h.codes for h in heads]))
    weights = torch.from_numpy(rng.uniform(0.5, 2, n).astype(np.float32))

    def make_net():
        return _network(inputs, 64, 2, heads, 0.0)

    epochs, batch = 3, 256
    steps = epochs * -(-n // batch)
    per_step = []
    for _ in range(args.repeats):
        torch.manual_seed(1)
        started = time.perf_counter()
        _train(x, targets, weights, make_net=make_net, epochs=epochs, batch_size=batch, lr=3e-3, weight_decay=1e-5,
               generator=torch.Generator().manual_seed(1))
        per_step.append((time.perf_counter() - started) / steps * 1e3)

    torch.manual_seed(1)
    net = make_net()
    rows = torch.randperm(n, generator=torch.Generator().manual_seed(2))[:batch]

    def loss_and_gradients(loss) -> tuple[float, list]:
        net.zero_grad()
        value = loss(net, x, targets, weights, rows)
        value.backward()
        return float(value), [p.grad.clone() for p in net.parameters()]

    timed = {}
    for name, loss in (("per head", per_head_loss), ("gathered once", _loss)):
        seconds = []
        for _ in range(200 * args.repeats):
            started = time.perf_counter()
            loss_and_gradients(loss)
            seconds.append(time.perf_counter() - started)
        timed[name] = statistics.median(seconds) * 1e6
    (a, grads_a), (b, grads_b) = loss_and_gradients(per_head_loss), loss_and_gradients(_loss)
    same = a == b and all(torch.equal(g, h) for g, h in zip(grads_a, grads_b))
    print(f"{n:,} donors, {inputs} inputs, {args.heads} heads of {levels} levels, batches of {batch}, one thread\n")
    print(f"training step (`_train`): {statistics.median(per_step):.3f} ms, median of {args.repeats} runs "
          f"of {steps} steps\n")
    print("| loss | forward + backward of a batch: µs |\n|---|---|")
    for name, micro in timed.items():
        print(f"| {name} | {micro:.0f} |")
    print(f"\nratio: {timed['per head'] / timed['gathered once']:.2f}; same loss and gradients bit for bit: {same}")
    print("\n| classes | log_softmax of a batch's logits: µs |\n|---|---|")
    for classes in (levels, 16):
        logits = torch.randn(batch, classes)
        seconds = []
        for _ in range(200 * args.repeats):
            started = time.perf_counter()
            torch.log_softmax(logits, dim=1)
            seconds.append(time.perf_counter() - started)
        print(f"| {classes} | {statistics.median(seconds) * 1e6:.1f} |")


if __name__ == "__main__":
    main()
