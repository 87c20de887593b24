"""A calibrated fictitious population: surplus draws from a model, then household selection.

The model is reached through one callable, ``draw(persons, seed)``, that returns whole,
valid households (rules enforced, no real record copied), so this module knows nothing of
the model's family. Strata left short of candidates get more draws, round after round;
what is still short after ``max_rounds`` is an error naming the cells, not a release that
misses the register quietly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.calibration.candidates import Candidates
from synth_assets.calibration.margins import CalibrationError, Targets, cell_keys, rows_of_cells
from synth_assets.calibration.selection import (
    CalibrationResult,
    InsufficientCandidates,
    candidate_shortage,
    select_households,
)

#: ``draw(persons, seed)``: whole valid households, as one frame or as chunks of whole households.
Draw = Callable[[int, int], "pd.DataFrame | Iterable[pd.DataFrame]"]
#: ``draw_like(structures, seed)``: whole valid households, one per row of ``structures`` (the
#: first household margin's variables) the model can draw, equal to it on those variables.
DrawLike = Callable[[pd.DataFrame, int], "pd.DataFrame | Iterable[pd.DataFrame]"]


def renumbered_households(batch: pd.DataFrame, household_id: str, last_id: Any, rows: int) -> pd.DataFrame:
    """``batch`` with household ids that follow ``last_id``, the largest so far among ``rows``
    candidates (new ids stay synthetic)."""
    if batch.empty:
        return batch
    ids = batch[household_id]
    if pd.api.types.is_integer_dtype(ids.dtype) and isinstance(last_id, (int, np.integer)):
        # generated integer ids start above every real id: shifting upwards keeps them synthetic
        return batch.assign(**{household_id: ids - ids.min() + last_id + 1})
    return batch.assign(**{household_id: ids.astype(str) + f"~{rows}"})


#: Households generated per register household to choose from (the surplus), by the register's size:
#: from each count of register persons on, its surplus. The selection meets a cell only if the model
#: drew enough of its households and persons, and a model trained on a smaller register misses cells
#: by more. Measured with CART (bench/README.md, "Twenty-third pass"), a surplus of 2 against 3: at
#: 50,000 and 300,000 persons it left every replicate beyond a count tolerance (26 to 415 persons off),
#: each then drawn again whole (178 s against 62 s, 226 s against 79 s); at 1.2 million persons it met
#: every control as 3 did (at most 4 persons off) in 225 s against 295 s, where 1.5 did not (4,570 off,
#: drawn again: 460 s). Between 300,000 and 1.2 million persons it was not measured.
SURPLUS_BY_REGISTER_PERSONS: tuple[tuple[int, float], ...] = ((0, 3.0), (1_000_000, 2.0))


def default_surplus(register_persons: int) -> float:
    """The surplus :data:`SURPLUS_BY_REGISTER_PERSONS` gives a register of this many persons."""
    return next(surplus for persons, surplus in reversed(SURPLUS_BY_REGISTER_PERSONS) if register_persons >= persons)


#: A top-up draw for strata short of candidates: this many times the draws so far that the worst
#: stratum's shortfall implies (the stratum's households come at random), at least MIN_TOP_UP of a
#: whole draw, at most one whole draw.
TOP_UP_MARGIN = 2.0
MIN_TOP_UP = 0.1


def _structures_of_short_strata(candidates: Candidates, short: InsufficientCandidates, targets: Targets,
                                household_id: str, rng: np.random.Generator) -> pd.DataFrame | None:
    """The structures (first household margin's variables) to draw for the short strata: for each,
    ``TOP_UP_MARGIN`` times its deficit plus a few, taken at random among its candidate households
    (the model's own mix of the cells a stratum merges), or among its cells, written back from
    their keys, when it has none (a structure the surplus never drew: a whole draw more would
    rarely draw it either, and cost the population's size); None when neither can be had."""
    margin = targets.spec.household_margins[0]
    persons = candidates.frame()
    households = persons.loc[~persons[household_id].duplicated(), list(margin.variables)].reset_index(drop=True)
    bands = margin.cut(targets.spec.bands)
    keys = cell_keys(households, margin.variables, bands)
    parts = []
    for stratum, deficit in short.deficits.items():
        wanted = int(math.ceil(TOP_UP_MARGIN * deficit)) + 5
        members = np.flatnonzero(np.isin(keys, short.cells[stratum]))
        if len(members):
            parts.append(households.iloc[rng.choice(members, wanted)])
            continue
        cells = rows_of_cells(short.cells[stratum], margin.variables, households, bands)
        if cells.empty:
            return None
        parts.append(cells.iloc[rng.integers(len(cells), size=wanted)])
    return pd.concat(parts, ignore_index=True)


def append_renumbered(candidates: Candidates, drawn: pd.DataFrame | Iterable[pd.DataFrame], household_id: str,
                      last_id: Any, renumber: bool = True) -> Any:
    """Append ``drawn`` (a frame or chunks) to ``candidates``, its households renumbered after
    ``last_id`` (``renumber`` False: kept as they are); the largest id after it."""
    for piece in [drawn] if isinstance(drawn, pd.DataFrame) else drawn:
        if renumber:
            piece = renumbered_households(piece, household_id, last_id, len(candidates))
        if len(piece):
            top = piece[household_id].max()
            last_id = top if last_id is None or not isinstance(top, (int, np.integer)) else max(last_id, top)
        candidates.append(piece)
    return last_id


def selection_seed(seed: int, max_rounds: int = 8) -> int:
    """The seed :func:`calibrated_population` selects with (draws take the others of the sequence)."""
    return int(np.random.SeedSequence(seed).generate_state(max_rounds + 1)[-1])


def draw_candidates(
    draw: Draw,
    targets: Targets,
    household_id: str,
    candidates: Candidates,
    *,
    surplus: float | None = None,
    seed: int = 0,
    max_rounds: int = 8,
    progress: Callable[[str], None] | None = None,
    draw_like: DrawLike | None = None,
) -> int:
    """Draw ``surplus`` times the register's persons into ``candidates`` (None: :func:`default_surplus`
    of the targets' persons), then more for the strata left short of their register count, until every
    stratum has enough; the draws it took.

    Short strata get another draw (new seed), sized to their shortfall (:data:`TOP_UP_MARGIN`,
    :data:`MIN_TOP_UP`), up to ``max_rounds`` draws in all. With ``draw_like``, a top-up draws
    the short strata's households given their structure instead, as many as their deficits call
    for (at 300,000 persons a stratum four households short cost 650,000 persons drawn), a stratum
    without any candidate included (its structures written back from its cells); a round of those
    that leaves the deficit as it was is followed by a sized whole draw. Households of
    later draws are renumbered after those already drawn, so every candidate has its own id.
    """
    size = int(math.ceil((surplus or default_surplus(targets.persons)) * targets.persons))
    seeds = np.random.SeedSequence(seed).generate_state(max_rounds + 1)
    last_id: Any = None
    drawn_persons = 0

    def add(round_: int, persons: int) -> None:
        nonlocal drawn_persons
        drawn_persons += persons
        keep(round_, draw(persons, int(seeds[round_])))

    def keep(round_: int, drawn: pd.DataFrame | Iterable[pd.DataFrame]) -> None:
        nonlocal last_id
        # a draw's own chunks already have distinct ids: only later draws are renumbered
        last_id = append_renumbered(candidates, drawn, household_id, last_id, renumber=bool(round_))

    add(0, size)
    targeted_deficit: int | None = None  # the deficit a round of structure draws started from
    for round_ in range(1, max_rounds + 1):
        short = candidate_shortage(candidates, targets, household_id)
        if short is None:
            return round_
        if round_ == max_rounds:
            raise CalibrationError(
                f"after {max_rounds} draws ({drawn_persons:,} persons) the model still generates too few "
                f"households in some register cells: {short}"
            ) from short
        deficit = sum(short.deficits.values())
        structures = None
        if draw_like is not None and (targeted_deficit is None or deficit < targeted_deficit):
            structures = _structures_of_short_strata(candidates, short, targets, household_id,
                                                     np.random.default_rng(seeds[round_]))
        if structures is not None and draw_like is not None:
            targeted_deficit = deficit
            if progress is not None:
                progress(f"calibration: {short}; drawing {len(structures):,} households of those strata")
            keep(round_, draw_like(structures, int(seeds[round_])))
            continue
        targeted_deficit = None
        # a few households short in one stratum need a fraction of a draw, not a whole one
        # (at 300,000 persons a whole draw cost 6 minutes for 4 missing households)
        persons = int(math.ceil(min(size, max(MIN_TOP_UP * size, TOP_UP_MARGIN * short.shortfall() * drawn_persons))))
        if progress is not None:
            progress(f"calibration: {short}; drawing {persons:,} more persons")
        add(round_, persons)
    raise AssertionError("unreachable")


def calibrated_population(
    draw: Draw,
    targets: Targets,
    household_id: str,
    *,
    surplus: float | None = None,
    seed: int = 0,
    max_rounds: int = 8,
    progress: Callable[[str], None] | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    draw_like: DrawLike | None = None,
) -> CalibrationResult:
    """Households chosen from ``surplus`` times the register's persons drawn by ``draw`` (None:
    :func:`default_surplus` of the targets' persons).

    The candidates are drawn by :func:`draw_candidates` (more for strata left short), then
    chosen by :func:`~.selection.select_households`; a selection that leaves a control beyond
    its tolerance triggers, once, a whole draw and a second selection (the caller's check then
    judges it).

    The candidates go to disk as they come, a chunk at a time when ``draw`` yields chunks
    (:class:`~.candidates.Candidates`, under ``spill_dir``, default ``TMPDIR``): memory holds
    the selection's columns, not the surplus.
    """
    surplus = surplus or default_surplus(targets.persons)
    with Candidates([household_id, *targets.spec.variables], directory=spill_dir) as candidates:
        rounds = draw_candidates(draw, targets, household_id, candidates, surplus=surplus, seed=seed,
                                 max_rounds=max_rounds, progress=progress, draw_like=draw_like)
        result = select_households(candidates, targets, household_id, seed=selection_seed(seed, max_rounds),
                                   progress=progress)
        if result.within_tolerance or rounds >= max_rounds:
            return result
        # a selection left beyond a tolerance gets more candidates to choose from, once
        size = int(math.ceil(surplus * targets.persons))
        if progress is not None:
            progress(f"calibration: controls beyond tolerance; drawing {size:,} more persons")
        more = draw(size, int(np.random.SeedSequence(seed).generate_state(max_rounds + 1)[rounds]))
        append_renumbered(candidates, more, household_id, candidates.frame()[household_id].max())
        return select_households(candidates, targets, household_id, seed=selection_seed(seed, max_rounds),
                                 progress=progress)
