"""synth_assets: a fully fictitious population from a register and surveys, published in replicates.

For analysts, at the top level (imported on first use, so ``import synth_assets`` stays light):
``synth_assets.load_release(path)`` reads a published release, and
``synth_assets.compare_fits(release, "ols", "y ~ a + b")`` fits a model on the original data,
one replicate and all replicates combined (see :mod:`synth_assets.inference`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synth_assets.inference import Release, compare_fits, load_release

__all__ = ["Release", "compare_fits", "load_release"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import synth_assets.inference as inference

        return getattr(inference, name)
    raise AttributeError(f"module 'synth_assets' has no attribute {name!r}")
