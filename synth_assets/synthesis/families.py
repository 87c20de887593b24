"""The table-model families by name: CART, the autoregressive network and the conditional GAN (our own code) and the SDV families."""

from __future__ import annotations

from typing import Any, Literal, get_args

from synth_assets.synthesis.cart import CARTSynthesizer
from synth_assets.synthesis.gan import GANSynthesizer
from synth_assets.synthesis.neural import NeuralSynthesizer
from synth_assets.synthesis.sdv_models import SDV_FAMILIES, SDVSynthesizer
from synth_assets.synthesis.tabular import TabularSynthesizer

#: A family's name as a type: typed configurations (``Literal``) refuse any other before a run starts.
Family = Literal["cart", "neural", "gan", "ctgan", "tvae", "copula"]
FAMILIES: tuple[str, ...] = ("cart", "neural", "gan") + SDV_FAMILIES
#: Families trained by epochs (they take ``epochs``, ``max_seconds``, ``batch_size``, ...).
EPOCH_FAMILIES: tuple[str, ...] = ("neural", "gan", "ctgan", "tvae")
#: Families that train with torch (ours and SDV's): only they need it imported (about 160 MB resident).
TORCH_FAMILIES: tuple[str, ...] = EPOCH_FAMILIES
assert set(get_args(Family)) == set(FAMILIES), "Family and FAMILIES name the same families"
#: Families that draw within given rules (their ``rules``: the codes a rule forbids, given what
#: is drawn before, are masked; ``neural.RuleMasks``).
RULE_MASKING_FAMILIES: tuple[str, ...] = ("neural",)
#: Families that draw each block (a survey's variables, from one donor) whole from one training
#: record: CART from a record of its leaf, the network from the record nearest its draw
#: (``synthesis.blocks``).
BLOCK_FAMILIES: tuple[str, ...] = ("cart", "neural")


def make_synthesizer(family: str, *, seed: int = 0, **params: Any) -> TabularSynthesizer:
    """A new, unfitted synthesiser: ``"cart"`` (default of the CLI), ``"neural"``, ``"gan"``, ``"ctgan"``, ``"tvae"``, ``"copula"``."""
    if family == "cart":
        return CARTSynthesizer(seed=seed, **params)
    if family == "neural":
        return NeuralSynthesizer(seed=seed, **params)
    if family == "gan":
        return GANSynthesizer(seed=seed, **params)
    if family in SDV_FAMILIES:
        return SDVSynthesizer(family, seed=seed, **params)
    raise ValueError(f"unknown synthesiser family {family!r}; choose one of {', '.join(FAMILIES)}")
