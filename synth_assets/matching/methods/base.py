"""What a matching method is: a function from a validated problem to imputations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class MethodOutput:
    """Either donor positions (hot deck: the whole Z block comes from that donor) or imputed values."""

    donor_index: np.ndarray | None = None
    imputed: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: ``run(problem, rng, **options)``: each method declares its own keyword options, which
#: ``fuse`` checks against the signature before calling it.
MethodFunction = Callable[..., MethodOutput]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method; ``uses_auxiliary`` methods need (and others refuse) ``auxiliary``.

    ``per_recipient``: a recipient's imputation depends on the donors and its own X alone (given the
    seed), not on which other recipients are fused with it, so a register fused in parts (``matching
    .parts``) is as right as one fused whole. False for a method that spreads a quota over the
    recipients (donor capacities, ranks among them, an auxiliary table to reproduce): a part that is
    not a miniature of the register (a city's households) would get the whole register's quota.

    ``trains_networks``: the method trains torch networks, so a caller about to fork fusions into
    child processes imports torch's training modules first (``neural.import_training_modules``).
    """

    name: str
    run: MethodFunction
    summary: str
    uses_auxiliary: bool = False
    per_recipient: bool = True
    trains_networks: bool = False
