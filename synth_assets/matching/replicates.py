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

import functools
import os
import tempfile
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetStack, ParquetTable, StagedTable
from synth_assets.common.parallel import forked_imap, resolved_jobs
from synth_assets.matching.parts import PART_PERSONS, fuse_in_parts, whole_register_surveys
from synth_assets.matching.resample import COPIES_COLUMN, resample_survey
from synth_assets.matching.sources import SurveyFusion, fuse_sources, import_training_modules_for

#: Column of the matched replicates naming the replicate (1..m), as in the fictitious dataset.
REPLICATE_COLUMN = "replicate"


def replicate_seeds(seed: int, m: int) -> list[int]:
    """One independent seed per replicate (1..m), the same for a given ``seed``."""
    return [int(s) for s in np.random.SeedSequence([seed, 12]).generate_state(m)]


def resample_surveys(
    catalog: Catalog, surveys: dict[str, tuple[str, pd.DataFrame]], rng: np.random.Generator
) -> dict[str, tuple[str, pd.DataFrame]]:
    """Every survey redrawn by its design bootstrap (households as units, catalog weights), each row
    naming the delivered row it copies (``COPIES_COLUMN``: the fusions hold out a record with its copies)."""
    out = {}
    for name, (wave, table) in surveys.items():
        source = catalog.sources[name]
        drawn = resample_survey(
            table, rng, weight=source.weight_column, household_id=source.household_id_column,
            person_id=source.id_column, copies_column=COPIES_COLUMN,
        )
        out[name] = (wave, drawn)
    return out


def replicate_surveys(
    catalog: Catalog, surveys: dict[str, tuple[str, pd.DataFrame]], replicate_seed: int
) -> tuple[dict[str, tuple[str, pd.DataFrame]], int]:
    """One replicate's survey draws and fusion seed (from ``replicate_seed``, one of :func:`replicate_seeds`)."""
    rng = np.random.default_rng(replicate_seed)
    drawn = resample_surveys(catalog, surveys, rng)
    return drawn, int(rng.integers(2**31 - 1000))


def fuse_replicate(
    catalog: Catalog,
    register: pd.DataFrame,
    surveys: dict[str, tuple[str, pd.DataFrame]],
    replicate_seed: int,
    *,
    methods: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, list[SurveyFusion]]:
    """One replicate's matched data and fusions: its own survey draws and fusion seed
    (:func:`replicate_surveys`), the register fused whole."""
    drawn, seed = replicate_surveys(catalog, surveys, replicate_seed)
    return fuse_sources(catalog, register, drawn, methods=methods, seed=seed)


def stack_fused_replicates(
    catalog: Catalog,
    register: pd.DataFrame | ParquetTable,
    surveys: dict[str, tuple[str, pd.DataFrame]],
    *,
    m: int,
    seed: int = 0,
    methods: dict[str, str] | None = None,
    part_persons: int = PART_PERSONS,
    recipients: Collection[Any] | np.ndarray | None = None,
    processes: int | None = None,
    check: Callable[[pd.DataFrame], None] | None = None,
    on_replicate: Callable[[int], None] | None = None,
    on_log: Callable[[str, int, str], None] | None = None,
    on_peak: Callable[[int, int | None], None] | None = None,
) -> StagedTable:
    """Replicates 1..m fused and stacked as one table with a ``replicate`` column, as ``pd.concat``
    joins them, staged on disk for the Parquet IO manager. Replicate r's surveys are drawn once
    (:func:`replicate_surveys`) and fused into the register a part at a time
    (``matching.parts.fuse_in_parts``, ``part_persons`` persons or more a part): a register of one
    part gives :func:`fuse_replicate`'s data.

    ``recipients``: the households (the register's household id, else its person id) whose records
    the replicates hold, None for all. A release reads its replicates for the training sample's
    households alone (replicate r's model learns from them, the validation compares with them), at
    most ``split.max_training_persons`` persons (1 million) whatever the register: the others'
    fusion was work for nothing, 20% of it at 1.2 million persons, 90% at 12 million. With
    ``per_recipient`` methods only those records are fused (a recipient's draw is given the donors
    and its own values alone); a survey matched by a method that spreads a quota over the
    recipients (``whole_register_surveys``) fuses the register whole, of which those records are kept.

    Each part of a replicate is written out as it is made, then the replicates joined, so a process
    holds one part of one replicate, never the table (a list of the replicates, their tagged copies
    and the concatenation held three times the table: 5.2 GB for five replicates of 1.2 million
    persons). With ``processes`` > 1 the replicates are fused side by side in child processes forked
    from this one (``common.parallel.forked_imap``: the fusions are pandas and Python, which threads
    would take turns at), the same table. ``check`` judges each part before it is written;
    ``on_replicate(r)`` is called as replicate r joins the table; ``on_log`` takes the children's
    log records, ``on_peak`` their peak resident memory (``forked_imap``).
    """
    seeds = replicate_seeds(seed, m)
    fused_into, kept_of = register, None
    if recipients is not None:
        key = catalog.register.household_id_column or catalog.register.id_column
        if key is None:
            raise ValueError(f"register {catalog.register_name!r}: recipients need its household or person id column")
        kept = np.unique(recipients if isinstance(recipients, np.ndarray) else np.asarray(list(recipients)))
        if whole_register_surveys(catalog, list(surveys), methods):
            kept_of = functools.partial(_records_in, column=key, values=kept)  # fused whole for its quotas
        else:
            fused_into = records_of(register, key, kept)
    with tempfile.TemporaryDirectory(prefix="synth-assets-matched-") as work:

        def fused(r: int) -> str:
            drawn, fusion_seed = replicate_surveys(catalog, surveys, seeds[r - 1])
            stack = ParquetStack(work)
            for matched, _ in fuse_in_parts(catalog, fused_into, drawn, part_persons=part_persons,
                                            methods=methods, seed=fusion_seed):
                if kept_of is not None:
                    matched = kept_of(matched)
                if check is not None:
                    check(matched)
                # tagged a row group at a time: a tagged copy of the whole part would double it
                for start in range(0, len(matched), stack.row_group_rows):
                    stack.append(matched.iloc[start:start + stack.row_group_rows].assign(**{REPLICATE_COLUMN: r}))
                del matched
            return stack.finish().detach()

        stacked = ParquetStack()
        if resolved_jobs(processes) > 1 and m > 1:
            import_training_modules_for(catalog, surveys, methods or {})
        pieces = forked_imap(fused, range(1, m + 1), processes, on_log=on_log, on_peak=on_peak)
        for r, path in enumerate(pieces, start=1):
            stacked.extend(path)
            os.remove(path)  # joined: its disk is not held while the next ones are made
            if on_replicate is not None:
                on_replicate(r)
        return stacked.finish()


def records_of(register: pd.DataFrame | ParquetTable, key: str, households: np.ndarray) -> pd.DataFrame | ParquetTable:
    """The register's records whose ``key`` is one of ``households`` (sorted), in order: a view of a
    stored register (read a row group at a time, on the whole file's categories), a copy of a frame."""
    if isinstance(register, ParquetTable):
        return register.where(key, households)
    return _records_in(register, key, households)


def _records_in(frame: pd.DataFrame, column: str, values: np.ndarray) -> pd.DataFrame:
    return frame.loc[np.isin(frame[column].to_numpy(), values)].reset_index(drop=True)


def split_replicates(stacked: pd.DataFrame) -> list[pd.DataFrame]:
    """Inverse of :func:`stack_fused_replicates`: one table per replicate, in replicate order."""
    return [g.drop(columns=REPLICATE_COLUMN).reset_index(drop=True)
            for _, g in stacked.groupby(REPLICATE_COLUMN, sort=True)]
