"""``fuse``: impute donor variables Z into a recipient file through common variables X."""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.matching.diagnostics import MatchingDiagnostics, donor_usage, marginal_distance, x_by_z_tvds
from synth_assets.matching.methods import METHODS, MethodOutput, MethodSpec
from synth_assets.matching.problem import FusionProblem, build_problem

logger = logging.getLogger("synth_assets.matching")


@dataclass
class FusionResult:
    """The fused file and how it was made.

    ``data``: the recipient (same rows, order and index) plus the imputed
    columns, with the donor's dtypes.  ``donor_index``: for hot-deck methods the
    *position* (``iloc``) of the donor row each recipient took, else None.
    """

    data: pd.DataFrame
    donor_index: np.ndarray | None
    diagnostics: MatchingDiagnostics
    on: list[str]
    impute: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (no data)."""
        return {
            "on": list(self.on),
            "impute": list(self.impute),
            "rows": len(self.data),
            "hot_deck": self.donor_index is not None,
            "diagnostics": self.diagnostics.to_dict(),
        }


def method_spec(method: str, options: dict[str, Any]) -> MethodSpec:
    """Look a method up and check its options, so a typo fails before any work is done."""
    if method not in METHODS:
        raise ValueError(f"unknown matching method {method!r} (choose from {', '.join(METHODS)})")
    spec = METHODS[method]
    accepted = [p for p in inspect.signature(spec.run).parameters if p not in ("problem", "rng")]
    unknown = [o for o in options if o not in accepted]
    if unknown:
        raise ValueError(f"method {method!r} has no option {unknown[0]!r} (options: {', '.join(accepted) or 'none'})")
    return spec


def fuse(
    recipient: pd.DataFrame,
    donor: pd.DataFrame,
    *,
    on: list[str],
    impute: list[str],
    recipient_weight: str | None = None,
    donor_weight: str | None = None,
    donation_classes: list[str] | None = None,
    method: str = "nnd_hotdeck",
    distance: str = "gower",
    seed: int = 0,
    auxiliary: pd.DataFrame | None = None,
    one_table: bool = False,
    donor_copies: str | None = None,
    **method_options: Any,
) -> FusionResult:
    """Impute the donor's ``impute`` columns into ``recipient`` through the common columns ``on``.

    ``method`` is a key of :data:`METHODS`; ``method_options`` go to it (e.g.
    ``k=5``).  ``donation_classes`` restrict donors to the recipient's class
    (a class without donors falls back to all donors, with a warning).
    ``auxiliary`` is a file observing Y and Z together, used by ``aux_hotdeck``.
    ``one_table``: recipient and donor are rows of one table (item non-response), so a
    recipient label no donor has is a class without donors, not a coding to harmonise.
    ``donor_copies``: a donor column naming the record each row copies (a bootstrap draw's,
    ``resample.COPIES_COLUMN``): a method that holds donors out to judge itself (``neural_draw``'s
    early stopping) holds out a record with all its copies.
    Raises ``ValueError`` naming the column for missing or ill-typed columns and
    bad weights.  Deterministic for a given ``seed``.
    """
    spec = method_spec(method, method_options)
    if auxiliary is not None and not spec.uses_auxiliary:
        raise ValueError(f"method {method!r} cannot use an auxiliary file; use 'aux_hotdeck'")
    problem = build_problem(
        recipient,
        donor,
        on=on,
        impute=impute,
        recipient_weight=recipient_weight,
        donor_weight=donor_weight,
        donation_classes=donation_classes,
        distance=distance,
        auxiliary=auxiliary,
        one_table=one_table,
        donor_copies=donor_copies,
    )
    logger.info(
        "fuse %s: %d recipients, %d donors, on %s, impute %s",
        method,
        len(recipient),
        len(donor),
        problem.on,
        problem.impute,
    )
    start = time.perf_counter()
    output = _run(spec, problem, seed, method_options) if len(recipient) else MethodOutput(np.empty(0, np.int64))
    data = _assemble(problem, output)
    seconds = time.perf_counter() - start
    diagnostics = _diagnose(problem, data, output, method, seconds)
    logger.info("%s", diagnostics.summary())
    return FusionResult(data, output.donor_index, diagnostics, problem.on, problem.impute)


def _run(spec: MethodSpec, problem: FusionProblem, seed: int, options: dict[str, Any]) -> MethodOutput:
    output = spec.run(problem, np.random.default_rng(seed), **options)
    if output.donor_index is None and output.imputed is None:
        raise RuntimeError(f"method {spec.name!r} returned neither donors nor imputed values")
    return output


def _assemble(problem: FusionProblem, output: MethodOutput) -> pd.DataFrame:
    """Recipient plus imputed columns; hot-deck values are taken from the donor so dtypes carry over."""
    if output.donor_index is not None:
        values = problem.donor[problem.impute].iloc[output.donor_index]
    elif output.imputed is not None:
        values = output.imputed[problem.impute]
    else:
        raise ValueError("a matching method returned neither donor rows nor imputed values")
    data = problem.recipient.copy()
    for z in problem.impute:
        data[z] = values[z].array  # positional: no index alignment, extension dtypes kept
    return data


def _diagnose(
    problem: FusionProblem, data: pd.DataFrame, output: MethodOutput, method: str, seconds: float
) -> MatchingDiagnostics:
    w_fused, w_donor = problem.recipient_weights, problem.donor_weights
    x_by_z = x_by_z_tvds(data, problem.donor, problem.on, problem.impute, w_fused, w_donor) if len(data) else {}
    return MatchingDiagnostics(
        method=method,
        seconds=seconds,
        n_recipients=len(problem.recipient),
        n_donors=len(problem.donor),
        n_classes=len(problem.blocks) if len(data) else 0,
        fallback_classes=sum(b.fallback for b in problem.blocks) if len(data) else 0,
        marginal={z: marginal_distance(data[z], problem.donor[z], w_fused, w_donor) for z in problem.impute},
        x_by_z_tvd=x_by_z,
        mean_x_by_z_tvd=float(np.mean(list(x_by_z.values()))) if x_by_z else None,
        donor_usage=donor_usage(output.donor_index, w_donor) if output.donor_index is not None else None,
        extra=output.extra,
    )
