"""Registry of matching methods: ``fuse(method=NAME)`` looks ``NAME`` up in :data:`METHODS`."""

from __future__ import annotations

from synth_assets.matching.methods import (
    auxiliary,
    constrained,
    model_draw,
    neural,
    nnd,
    pmm,
    random_hotdeck,
    rank,
)
from synth_assets.matching.methods.base import MethodOutput, MethodSpec

METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "nnd_hotdeck", nnd.run, "nearest donor on X (Gower or Mahalanobis), ties and k nearest drawn ∝ weight"
        ),
        MethodSpec("nnd_constrained", constrained.run, "nearest donor with capacity ∝ donor weight",
                   per_recipient=False),
        MethodSpec("random_hotdeck", random_hotdeck.run, "random donor within donation classes, ∝ weight"),
        MethodSpec("rank_hotdeck", rank.run, "nearest donor on the weighted ranks of one numeric X",
                   per_recipient=False),
        MethodSpec("pmm", pmm.run, "predictive mean matching on a ridge prediction of one Z"),
        MethodSpec(
            "model_draw", model_draw.run, "draws from boosted-classifier / forest-leaf conditional distributions"
        ),
        MethodSpec(
            "neural_draw",
            neural.run,
            "donor drawn near the recipient in the space of a torch MLP's predicted Z distributions",
            trains_networks=True,
        ),
        MethodSpec(
            "aux_hotdeck",
            auxiliary.run,
            "nearest donor within a Z level drawn to reproduce an auxiliary Y×Z table",
            uses_auxiliary=True,
            per_recipient=False,
        ),
    )
}

__all__ = ["METHODS", "MethodOutput", "MethodSpec"]
