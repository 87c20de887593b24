"""Loss curves of neural synthesisers as PNG bytes (for Dagster metadata and reports)."""

from __future__ import annotations

import io
from typing import Any

from synth_assets.synthesis.base import Synthesizer


def _loss_logs(log: dict[str, Any], label: str) -> list[tuple[str, dict[str, Any]]]:
    """Every model's training log with ``losses``, households' sub-models included."""
    found = [(label, log)] if log.get("losses") else []
    for key in ("household", "person"):
        if isinstance(log.get(key), dict):
            found += _loss_logs(log[key], f"{key} model")
    return found


def plot_losses(model: Synthesizer | dict[str, Any]) -> bytes | None:
    """Per-epoch losses of every neural model in ``model`` (or its training log) as a PNG.

    A model that checked a held-out fidelity score at some epochs (``fidelity``: ``epoch``
    and the score, the GAN's held-out TVD) gets it on a second axis, since its scale is not
    the losses'. ``None`` when no model kept losses (CART, copula).
    """
    log = model if isinstance(model, dict) else model.training_log
    panels = _loss_logs(log, log.get("family", "model"))
    if not panels:
        return None
    import matplotlib  # here only: plotting is optional, and matplotlib costs import time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False)
    for ax, (title, panel) in zip(axes[0], panels):
        for name, values in panel["losses"].items():
            ax.plot(range(1, len(values) + 1), values, label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(loc="upper left")
        fidelity = panel.get("fidelity")
        if fidelity:
            score = ax.twinx()
            for name, values in fidelity.items():
                if name != "epoch":
                    score.plot(fidelity["epoch"], values, "k--", marker=".", label=name)
            score.set_ylabel("held-out score")
            score.legend(loc="upper right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
