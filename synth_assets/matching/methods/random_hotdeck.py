"""Random hot deck within donation classes (StatMatch ``RANDwNND.hotdeck`` with no distance).

Each recipient draws one donor of its class with probability proportional to
donor weight.  X outside the classes is ignored, so this is the baseline that
shows what the distance step of the other hot decks buys.
"""

from __future__ import annotations

import numpy as np

from synth_assets.matching.methods.base import MethodOutput
from synth_assets.matching.problem import FusionProblem
from synth_assets.matching.sampling import draw_proportional


def run(problem: FusionProblem, rng: np.random.Generator) -> MethodOutput:
    chosen = np.empty(len(problem.recipient), dtype=np.int64)
    for block in problem.blocks:
        picks = draw_proportional(problem.donor_weights[block.donors], block.recipients.size, rng)
        chosen[block.recipients] = block.donors[picks]
    return MethodOutput(donor_index=chosen)
