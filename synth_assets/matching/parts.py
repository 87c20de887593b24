"""The register fused in parts of whole households, so a fusion holds a part, not the register.

:func:`~synth_assets.matching.sources.fuse_sources` holds the register whole, with every column
it imputes and each fusion's temporaries: the matched dataset's step grew by about 0.57 GiB per
million persons, the one stage of a release still growing with the population (7.5 GiB at 12
million persons). :func:`fuse_in_parts` reads the register in parts of at least ``part_persons``
persons, whole households, in the register's order (``ParquetTable.whole_parts``), and fuses each
with ``fuse_sources`` and a seed of its own; the caller writes each part out before the next is read.

Why a register fused in parts is as right as one fused whole: with a ``per_recipient`` method
(``MethodSpec``; every method but the capacity-, rank- and auxiliary-table ones), a recipient's
donor is drawn given the donors and its own X alone, so a part's recipients get what they would in
the whole register. The parts share the donors' side: the surveys' item non-response is completed
with one seed, and ``neural_draw`` trains each survey's network once, on inputs laid out by the
donors alone, and reuses it in every later part (``NetworkCache``); each part draws its donors with
a seed of its own. Other model-based methods (``model_draw``, ``pmm``) fit again per part, a cost
per part, not per person. A survey matched by a method that spreads a quota over the recipients
makes the whole register one part (a quota over a city's part would be the country's).

The first part takes ``seed`` itself: a register of one part is fused exactly as ``fuse_sources``
fuses it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.matching.methods import METHODS
from synth_assets.matching.methods.neural import NetworkCache
from synth_assets.matching.sources import SurveyFusion, fuse_sources, survey_method

log = logging.getLogger("synth_assets.matching")

#: Persons per part by default: a register up to this size is fused whole, as before parts (a city
#: of 1.2 million persons gives the same release), a larger one in as few parts of about equal size.
#: The demo's six fusions hold about 750 MiB whatever the part and 0.3 GiB more per million persons
#: of it: in one process, 1,346 MiB for 1.2 million persons whole, 1,118 in four parts of 300,000,
#: 1,251 in two of 600,000 (bench/scale/matching_parts.py, bench/README.md "Thirty-second pass").
PART_PERSONS = 1_500_000


def part_seed(seed: int, part: int) -> int:
    """The fusion seed of part ``part`` (0-based): ``seed`` for the first, an independent one after."""
    return seed if part == 0 else int(np.random.SeedSequence([seed, 16, part]).generate_state(1)[0])


def whole_register_surveys(catalog: Catalog, surveys: list[str], methods: dict[str, str] | None = None) -> list[str]:
    """The surveys whose method is not ``per_recipient``: any of them makes the register one part."""
    return [s for s in surveys if not METHODS[survey_method(catalog, s, methods or {})].per_recipient]


def register_parts(register: pd.DataFrame | ParquetTable, key: str | None, part_persons: int) -> Iterator[pd.DataFrame]:
    """The register in as few parts as hold about ``part_persons`` records each, of about equal size,
    never splitting a ``key`` value (a household), in order, index 0..n-1 each; whole where a key's
    records are not together (or no key)."""
    rows = register.num_rows if isinstance(register, ParquetTable) else len(register)
    if key is None or rows <= part_persons:
        yield register.read() if isinstance(register, ParquetTable) else register
    elif isinstance(register, ParquetTable):
        yield from register.whole_parts([key], part_rows=part_persons)
    else:
        values, _ = pd.factorize(register[key])
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])  # each run of one key's records
        if len(starts) != register[key].nunique(dropna=False):  # a key's records apart: a part would split it
            yield register
            return
        count = -(-rows // part_persons)
        # part k ends at the first household starting at or past k shares of the records
        cuts = sorted({0, *(int(starts[i]) for k in range(1, count)
                           if (i := np.searchsorted(starts, k * rows / count - 0.5)) < len(starts)), rows})
        for first, last in itertools.pairwise(cuts):
            yield register.iloc[first:last].reset_index(drop=True)


def fuse_in_parts(
    catalog: Catalog,
    register: pd.DataFrame | ParquetTable,
    surveys: dict[str, tuple[str, pd.DataFrame]],
    *,
    part_persons: int = PART_PERSONS,
    methods: dict[str, str] | None = None,
    seed: int = 0,
    processes: int | None = None,
    on_log: Callable[[str, int, str], None] | None = None,
    on_peak: Callable[[int, int | None], None] | None = None,
) -> Iterator[tuple[pd.DataFrame, list[SurveyFusion]]]:
    """Each part of the register (:func:`register_parts`, by household where the register has them)
    with every survey fused into it, in order: ``fuse_sources`` with part ``p``'s draws seeded by
    :func:`part_seed`, the donors' item non-response by ``seed`` and one ``NetworkCache`` for all parts
    (each survey's network trained once). A register of one part is ``fuse_sources`` of it."""
    if part_persons < 1:
        raise ValueError(f"part_persons must be at least 1, got {part_persons}")
    source = catalog.register
    key = source.household_id_column or source.id_column
    whole = whole_register_surveys(catalog, list(surveys), methods)
    rows = register.num_rows if isinstance(register, ParquetTable) else len(register)
    if whole:
        if rows > part_persons:
            log.warning("the register is fused whole (%d records): %s matched by a method that spreads a quota "
                        "over all recipients", rows, ", ".join(whole))
        part_persons = max(rows, 1)
    parts = register_parts(register, key, part_persons)
    first = next(parts)
    if len(first) == rows:  # one part (a small register, or households apart): the register fused whole
        yield fuse_sources(catalog, first, surveys, methods=methods, seed=seed, processes=processes, on_log=on_log,
                           on_peak=on_peak)
        return
    # Parts share the donors' completion and each survey's network (trained by the first part); a
    # network trained in a forked child would die with it, so a part's surveys are fused here in turn.
    networks = NetworkCache()
    for part, records in enumerate(itertools.chain([first], parts)):
        yield fuse_sources(catalog, records, surveys, methods=methods, seed=part_seed(seed, part), processes=1,
                           donor_seed=seed, networks=networks)


def combined_fusions(by_part: list[list[SurveyFusion]]) -> list[SurveyFusion]:
    """One :class:`SurveyFusion` per survey for a register fused in parts: the first part's, with
    every part's diagnostics (``diagnostics["register_parts"]``, in order) where there were several.
    Donors and item non-response are the survey's, the same in every part."""
    if not by_part:
        raise ValueError("no part was fused")
    if len(by_part) == 1:
        return by_part[0]
    return [
        replace(first, diagnostics={"register_parts": [part[i].diagnostics for part in by_part],
                                    "item_nonresponse": first.item_nonresponse})
        for i, first in enumerate(by_part[0])
    ]
