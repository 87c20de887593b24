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

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import pandas as pd

from synth_assets.common.frames import ParquetTable
from synth_assets.matching.replicates import REPLICATE_COLUMN
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


def chain_replicate_models(
    synth: Synthesizer,
    training: Sequence[pd.DataFrame],
    seed: int = 0,
    *,
    refit: bool | None = None,
    cluster: str | None = None,
    from_scratch: bool = False,
) -> Iterator[tuple[Synthesizer, int]]:
    """Yield ``(model, seed)`` per replicate of the whole chain: replicate r's own training data.

    ``training[r]`` is replicate r's matched training records (its own survey bootstraps and
    fusion draw, ``synth_assets.matching.replicates``), taken when replicate r's turn comes
    (:class:`ReplicateTrainingSets` reads each then: one in memory at a time). With ``refit`` (default: when the
    family has a posterior draw) the model is given it and a posterior draw of its parameters
    taken (:meth:`Synthesizer.replicate_draw`: CART fills its fitted trees' leaves with it, the
    networks fine-tune on it, instead of fitting from scratch), so replicate r carries every
    stage's uncertainty; a family without a posterior draw is fitted on a
    bootstrap of ``training[r]`` instead (``refit=True`` forces it: m fits, minutes each for
    the SDV families). Without a refit, :func:`replicate_models` of the one fitted model,
    with a warning: survey variables then lose their sampling and matching uncertainty.
    ``from_scratch``: a family with a posterior draw is fitted afresh on ``training[r]`` before
    its draw, as CART was before it kept its trees: the models then differ in structure too, which
    widens the replicates' own spread, at a whole fit per replicate.
    """
    refit = synth.has_posterior_draw if refit is None else refit
    seeds = np.random.SeedSequence([seed, 7]).generate_state(len(training))
    if not refit:
        LOGGER.warning("%s is not refitted per replicate: replicates hold one matched dataset only, "
                       "intervals of survey variables will be too narrow", synth.family)
        yield from replicate_models(synth, len(training), seed)
        return
    has_draw = synth.has_posterior_draw
    # a model fitted afresh per replicate needs no fitted state, and warm draws only what they start
    # from: the fitted model itself need not be held meanwhile (CART's leaves hold its training data),
    # and a caller that lets go of it saves as much
    fresh = from_scratch or not (has_draw and synth.warm_replicates)
    synth = synth.clone() if fresh else synth.replicate_template()
    for index, replicate_seed in enumerate(int(s) for s in seeds):
        # training[index] is read for the fit and let go of: the replicate's records are not held
        # while its model draws (a local would keep them until the next replicate)
        if has_draw and from_scratch:
            model = synth.clone().fit(training[index]).posterior_draw(replicate_seed)
        elif has_draw:
            model = synth.replicate_draw(training[index], replicate_seed)
        else:  # its parameter draw: a fit on a bootstrap of the replicate's data
            model = synth.clone().fit(_bootstrap(training[index], cluster, np.random.default_rng(replicate_seed)))
        yield model, replicate_seed
        del model


class ReplicateTrainingSets(Sequence[pd.DataFrame]):
    """Replicate r's training records (item r - 1): its matched data for the training sample's
    households, read when asked for, so that a loop over them holds one replicate at a time.

    ``matched_replicates``: the stacked table of ``synth_assets.matching.replicates`` (column
    ``replicate``), in memory or on disk (``ParquetTable``: only the replicate asked for is read,
    from the row groups that hold it); the first ``m`` replicates are used. ``drop``: columns the
    model does not see.
    """

    def __init__(self, matched_replicates: pd.DataFrame | ParquetTable, training: pd.DataFrame, household_id: str,
                 m: int, drop: Sequence[str] = ()) -> None:
        if isinstance(matched_replicates, ParquetTable):
            values = matched_replicates.values(REPLICATE_COLUMN)
        else:
            values = np.unique(matched_replicates[REPLICATE_COLUMN].to_numpy()).tolist()
        if len(values) < m:
            raise ValueError(f"{m} replicates asked for, but only {len(values)} matched replicates exist; "
                             "give matched_replicates at least as many")
        self._matched, self._values = matched_replicates, values[:m]
        self._keep = training[household_id].unique()
        self._household_id, self._drop = household_id, [REPLICATE_COLUMN, *drop]

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> pd.DataFrame: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[pd.DataFrame]: ...

    def __getitem__(self, index: int | slice) -> pd.DataFrame | Sequence[pd.DataFrame]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        value = self._values[index]  # IndexError past the end: iteration stops there
        if isinstance(self._matched, ParquetTable):
            # the training households' rows only, filtered a row group at a time: the training sample
            # may be a small share of the population (split.max_training_persons), never read it all
            rows = self._matched.where(REPLICATE_COLUMN, [value]).where(self._household_id, self._keep).read()
        else:
            rows = self._matched.loc[self._matched[REPLICATE_COLUMN].to_numpy() == value]
            rows = rows.loc[rows[self._household_id].isin(self._keep)]
        return rows.drop(columns=[c for c in self._drop if c in rows]).reset_index(drop=True)


def replicate_training_views(
    matched_replicates: ParquetTable, households: Iterable[Any] | np.ndarray, household_id: str, m: int,
) -> list[ParquetTable]:
    """:class:`ReplicateTrainingSets` as views of the file (``ParquetTable.where``): replicate r's
    rows of ``households`` (the training sample's), in the file's order, read or sampled a row group
    at a time, so no replicate is ever held whole. Select the columns wanted on each view."""
    values = matched_replicates.values(REPLICATE_COLUMN)
    if len(values) < m:
        raise ValueError(f"{m} replicates asked for, but only {len(values)} matched replicates exist; "
                         "give matched_replicates at least as many")
    keep = np.unique(np.asarray(households))
    return [matched_replicates.where(REPLICATE_COLUMN, [value]).where(household_id, keep) for value in values[:m]]
