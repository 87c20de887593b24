"""Matched replicates: replicate r fuses its own bootstrap draw of every survey, with its own seed.

The matched dataset of a release (``fuse_sources`` on the surveys as delivered) is one draw
of the fusion. A release's replicates need the variation of the whole chain (issue 12): for
replicate r, every donor survey is redrawn by the design bootstrap of
:func:`synth_assets.matching.resample.resample_survey` (households, within strata when the
survey has them), its item non-response imputed afresh, and the fusion run with a seed of
its own. The register is not resampled: it is the population.

The spread of an estimate over these matched replicates is then the survey's sampling
variance plus the matching's own (Rässler 2002, matching as multiple imputation), which the
generative model, given each, carries into the fictitious replicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetStack, StagedTable
from synth_assets.matching.resample import resample_survey
from synth_assets.matching.sources import SurveyFusion, fuse_sources

#: Column of the matched replicates naming the replicate (1..m), as in the fictitious dataset.
REPLICATE_COLUMN = "replicate"


def replicate_seeds(seed: int, m: int) -> list[int]:
    """One independent seed per replicate (1..m), the same for a given ``seed``."""
    return [int(s) for s in np.random.SeedSequence([seed, 12]).generate_state(m)]


def resample_surveys(
    catalog: Catalog, surveys: dict[str, tuple[str, pd.DataFrame]], rng: np.random.Generator
) -> dict[str, tuple[str, pd.DataFrame]]:
    """Every survey redrawn by its design bootstrap (households as units, catalog weights)."""
    out = {}
    for name, (wave, table) in surveys.items():
        source = catalog.sources[name]
        drawn = resample_survey(
            table, rng, weight=source.weight_column, household_id=source.household_id_column,
            person_id=source.id_column,
        )
        out[name] = (wave, drawn)
    return out


def fuse_replicates(
    catalog: Catalog,
    register: pd.DataFrame,
    surveys: dict[str, tuple[str, pd.DataFrame]],
    *,
    m: int,
    seed: int = 0,
    methods: dict[str, str] | None = None,
) -> Iterator[tuple[int, pd.DataFrame, list[SurveyFusion]]]:
    """Yield ``(r, matched_r, fusions_r)`` for r = 1..m, each from its own survey draws and fusion seed."""
    for r, replicate_seed in enumerate(replicate_seeds(seed, m), start=1):
        rng = np.random.default_rng(replicate_seed)
        drawn = resample_surveys(catalog, surveys, rng)
        matched, fusions = fuse_sources(catalog, register, drawn, methods=methods,
                                        seed=int(rng.integers(2**31 - 1000)))
        del drawn
        yield r, matched, fusions
        del matched, fusions  # not held while the next replicate is fused


def stack_replicates(frames: Iterable[pd.DataFrame]) -> StagedTable:
    """The matched replicates as one table with a ``replicate`` column (1..m), as ``pd.concat``
    joins them, staged on disk for the Parquet IO manager.

    Each replicate is written as it comes (``ParquetStack``): given a generator, one replicate
    is in memory at a time, never the table (a list of the replicates, their tagged copies and
    the concatenation held three times the table: 5.2 GB for five replicates of 1.2 million persons).
    """
    stack = ParquetStack()
    for r, frame in enumerate(frames, start=1):
        # tagged a row group at a time: a tagged copy of the whole replicate would double it
        for start in range(0, len(frame), stack.row_group_rows):
            stack.append(frame.iloc[start:start + stack.row_group_rows].assign(**{REPLICATE_COLUMN: r}))
        del frame
    return stack.finish()


def split_replicates(stacked: pd.DataFrame) -> list[pd.DataFrame]:
    """Inverse of :func:`stack_replicates`: one table per replicate, in replicate order."""
    return [g.drop(columns=REPLICATE_COLUMN).reset_index(drop=True)
            for _, g in stacked.groupby(REPLICATE_COLUMN, sort=True)]
