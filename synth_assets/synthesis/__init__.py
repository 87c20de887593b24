"""Synthetic microdata: CART, our autoregressive network and GAN, and SDV's CTGAN, TVAE and copula behind one interface.

Plain Python, no Dagster. SDV and torch are imported only when an SDV family is fitted or
loaded, so importing this package stays fast.

    >>> synth = make_synthesizer("cart", seed=1).fit(data)          # doctest: +SKIP
    >>> synthetic = synth.sample(10_000, seed=2)                     # doctest: +SKIP
    >>> synth.save("model.synth"); Synthesizer.load("model.synth")   # doctest: +SKIP

Licence note: the SDV families use sdv, ctgan, rdt and copulas (BUSL-1.1): internal use and
publishing generated data are fine; offering synthesis as a service to third parties is
not. CART, ``neural`` and ``gan`` are our own code (torch for the last two, imported when fitted).
"""

from synth_assets.synthesis.base import (
    MIN_TRAINING_ROWS,
    ModelFileError,
    NotFittedError,
    Synthesizer,
    TooFewRowsError,
    training_row_minimum,
)
from synth_assets.synthesis.cart import CARTSynthesizer
from synth_assets.synthesis.factory import build_population_synthesizer, load_synthesizer
from synth_assets.synthesis.families import FAMILIES, Family, make_synthesizer
from synth_assets.synthesis.gan import GANSynthesizer
from synth_assets.synthesis.households import HouseholdSynthesizer
from synth_assets.synthesis.neural import NeuralSynthesizer
from synth_assets.synthesis.plots import plot_losses
from synth_assets.synthesis.replicates import replicate_models, sample_replicates
from synth_assets.synthesis.sdv_models import SDVSynthesizer
from synth_assets.synthesis.transform import SchemaError, TableSchema, TableTransformer

__all__ = [
    "FAMILIES",
    "Family",
    "CARTSynthesizer",
    "GANSynthesizer",
    "HouseholdSynthesizer",
    "NeuralSynthesizer",
    "MIN_TRAINING_ROWS",
    "ModelFileError",
    "TooFewRowsError",
    "training_row_minimum",
    "NotFittedError",
    "SDVSynthesizer",
    "SchemaError",
    "Synthesizer",
    "TableSchema",
    "TableTransformer",
    "build_population_synthesizer",
    "load_synthesizer",
    "make_synthesizer",
    "plot_losses",
    "replicate_models",
    "sample_replicates",
]
