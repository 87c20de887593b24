"""Multiple synthetic replicates, for inference with the combining rules.

The combining rules themselves (Raghunathan, Reiter & Rubin 2003; Reiter 2003) are in
``synth_assets.inference.combining``.
The rules are valid only if each replicate is drawn with its own draw of the model's
parameters (a posterior predictive draw, "proper" synthesis). Drawing all replicates from
one fitted model understates the variance. :func:`sample_replicates` therefore draws each
replicate from :meth:`~synth_assets.synthesis.base.Synthesizer.posterior_draw` where the
family has one (CART: Bayesian-bootstrap weights on the training records), or from a clone
refitted on a bootstrap of ``data`` when given, and warns when neither is possible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from synth_assets.synthesis.base import LOGGER, Synthesizer


def _bootstrap(data: pd.DataFrame, cluster: str | None, rng: np.random.Generator) -> pd.DataFrame:
    """Resample rows, or whole clusters (households) when ``cluster`` is given."""
    if cluster is None:
        return data.iloc[rng.integers(0, len(data), len(data))].reset_index(drop=True)
    keys = data[cluster].unique()
    drawn = rng.choice(keys, len(keys), replace=True)
    groups = {k: g for k, g in data.groupby(cluster, sort=False)}
    parts = []
    for i, key in enumerate(drawn):  # each drawn cluster becomes a new, distinct cluster
        part = groups[key].copy()
        part[cluster] = i
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def replicate_models(
    synth: Synthesizer,
    m: int = 5,
    seed: int = 0,
    *,
    data: pd.DataFrame | None = None,
    cluster: str | None = None,
) -> Iterator[tuple[Synthesizer, int]]:
    """Yield ``(model, seed)`` for each of ``m`` replicates: each its own parameter draw.

    A family with a posterior draw (CART) yields :meth:`Synthesizer.posterior_draw`; otherwise,
    with ``data`` (and ``cluster`` for household data), a clone refitted on a bootstrap
    sample; otherwise the fitted model itself, with a warning (see module doc). Everything
    one replicate holds, refills included, should come from its own model.
    """
    seeds = np.random.SeedSequence(seed).generate_state(m)
    has_draw = synth.has_posterior_draw
    if not has_draw and data is None:
        LOGGER.warning(
            "%s has no posterior draw and no data was given: replicates differ only by sampling "
            "noise and the combining rules will understate variances", synth.family,
        )
    for replicate_seed in (int(s) for s in seeds):
        if has_draw:
            yield synth.posterior_draw(replicate_seed), replicate_seed
        elif data is not None:
            rng = np.random.default_rng(replicate_seed)
            yield synth.clone().fit(_bootstrap(data, cluster, rng)), replicate_seed
        else:
            yield synth, replicate_seed


def sample_replicates(
    synth: Synthesizer,
    n: int,
    m: int = 5,
    seed: int = 0,
    *,
    data: pd.DataFrame | None = None,
    cluster: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[pd.DataFrame]:
    """``m`` synthetic datasets of ``n`` rows, each from its own parameter draw (:func:`replicate_models`).

    ``progress(done_rows, total_rows)`` is called after each replicate.
    """
    replicates = []
    for model, replicate_seed in replicate_models(synth, m, seed, data=data, cluster=cluster):
        replicates.append(model.sample(n, seed=replicate_seed))
        if progress is not None:
            progress(sum(len(r) for r in replicates), n * m)
    return replicates
