"""Catalog rules and no real record copied, in every generated record, by conditional redraws.

A model can put a little mass where no real record lies (a 12-year-old with a wage, a
partner in a single-person household), or reproduce a real record whole. Such a household
is drawn again, *given what the model drew for it*: first its members, the household row
(household-level columns, size, head's age, id) kept; if they never come out valid, a fresh
household of the same structure (size, type, municipality...); if the structure itself
breaks a rule, a fresh household of the same size. Dropping rejected households
and refilling with unconditional draws would not do: a household of six has six chances to
be rejected, one person one, so the refilled file under-represents large households (on the
demo: 44% one-person households against the model's 39%). Redrawn conditionally, the
household structure stays exactly as the model drew it, and the household ids, numbers of
households and of persons are those of the draw. The share rejected is reported; a model
that breaks rules too often is an error naming the rule or the copy filter, not a loop
that never ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd

from synth_assets.catalog.rules import broken_rows
from synth_assets.common.disclosure import FULL, RARE, DisclosureIndex, filter_label, judge_all, reference_hashes
from synth_assets.common.frames import ParquetTable
from synth_assets.common.hashing import in_sorted, row_hashes
from synth_assets.common.parallel import forked_imap
from synth_assets.synthesis.base import Synthesizer
from synth_assets.synthesis.equal_rows import match_rows
from synth_assets.synthesis.households import HouseholdSynthesizer
from synth_assets.synthesis.replicates import replicate_models

T = TypeVar("T")

log = logging.getLogger("synth_assets.synthesis")

# Rows rejected, per reason (a rule, or a copy filter).
Rejector = Callable[[pd.DataFrame], dict[str, np.ndarray]]

# Household-level columns a replacement household must share with the one it replaces,
# where the model has them (the size always).
HOUSEHOLD_STRUCTURE = ("household_size", "household_type", "municipality")

_NO_STRUCTURE = "no household of the same structure drawn"


class RuleViolationError(RuntimeError):
    """The model breaks the rules so often that redraws cannot make the sample valid."""


class HouseholdRedraw(Protocol):
    """What :func:`enforce_rules` needs to redraw households conditionally (see HouseholdSynthesizer)."""

    def redraw_members(self, persons: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame: ...

    def sample_households_like(
        self, persons: pd.DataFrame, on: Sequence[str] = (), *, seed: int = 0
    ) -> tuple[pd.DataFrame, np.ndarray]: ...


@dataclass
class RuleEnforcement:
    """The valid sample and what it took: households (or rows) of the draw rejected, and how each was fixed."""

    data: pd.DataFrame
    rejected_households: int = 0  # of the draw's households (or rows), rejected at least once
    drawn_households: int = 0  # in the draw
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # records of the draw, per reason
    fixed_by_member_redraws: int = 0
    fixed_by_household_redraws: int = 0  # flat data: rows redrawn
    fixed_with_size_only: int = 0  # of those, households whose own structure broke a rule: only the size kept
    dropped_households: int = 0  # with drop_unfixable: households no redraw made valid
    # records of the draw rejected, per reason, per stratum variable and value (e.g. municipality)
    rejected_by_stratum: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    drawn_by_stratum: dict[str, dict[str, int]] = field(default_factory=dict)  # records of the draw

    @property
    def rejection_rate(self) -> float:
        return self.rejected_households / self.drawn_households if self.drawn_households else 0.0


def copy_detectors(
    references: Mapping[str, pd.DataFrame | ParquetTable] | None,
    unique_references: Mapping[str, pd.DataFrame | ParquetTable] | None,
    columns: Sequence[str],
    *,
    quasi_identifiers: Sequence[str] | None = None,
    k: int = 3,
) -> list[Rejector]:
    """The copy filters :func:`enforce_rules` applies (see there), indexed once: only the references'
    hashes are kept, a ``ParquetTable`` hashed a row group at a time."""
    if quasi_identifiers is not None:
        every = {**(references or {}), **(unique_references or {})}
        return [disclosure_detector(every, columns, quasi_identifiers=quasi_identifiers, k=k)] if every else []
    return [copy_detector(refs, columns, unique_only=unique)
            for refs, unique in ((references, False), (unique_references, True)) if refs]


def copy_detector(
    references: Mapping[str, pd.DataFrame | ParquetTable], columns: Sequence[str], *, unique_only: bool = False
) -> Rejector:
    """Rows identical to a record of a reference table on all the columns they share, per table.

    With ``unique_only``, only records unique in their reference count (replicated
    uniques): for a table of few variables where many real people share one record.
    """

    def hashes(ref: pd.DataFrame | ParquetTable, shared: list[str]) -> np.ndarray:
        values = reference_hashes(ref, shared)
        if unique_only:
            counts = pd.Series(values).value_counts()
            values = counts.index[counts == 1].to_numpy()
        return np.unique(values)  # sorted, for in_sorted

    compared = {
        name: (shared, hashes(ref, shared))
        for name, ref in references.items()
        if (shared := [c for c in columns if c in ref.columns])
    }
    label = "replicated unique of" if unique_only else "copy of"

    def detect(data: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            f"{label} a {name} record": in_sorted(row_hashes([data], shared)[0], hashes)
            for name, (shared, hashes) in compared.items()
        }

    return detect


def disclosure_detector(
    references: Mapping[str, pd.DataFrame | ParquetTable], columns: Sequence[str], *,
    quasi_identifiers: Sequence[str] | None, k: int = 3,
) -> Rejector:
    """Rows that disclose a real record, per reference table and filter (:mod:`synth_assets.common.disclosure`).

    A row is rejected when it reproduces a record of a reference that is rare on the
    quasi-identifiers (fewer than ``k`` records share them; on the columns the two share), or
    equals a record on every one of ``columns`` (a reference holding them all). A common
    profile on a few coarse columns (a survey's) is no longer a "copy".
    """
    indexes = {name: DisclosureIndex(ref, columns, quasi_identifiers=quasi_identifiers, k=k)
               for name, ref in references.items()}
    indexes = {name: index for name, index in indexes.items() if index.shared}
    labels = {RARE: f"{RARE} (fewer than {k} share its {', '.join(quasi_identifiers or []) or 'values'})",
              FULL: f"{FULL} (every variable)"}

    def detect(data: pd.DataFrame) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, masks in judge_all(indexes, data).items():
            for kind, mask in masks.items():
                out[filter_label(labels[kind], name)] = mask
        return out

    return detect


def _by_stratum(data: pd.DataFrame, masks: Mapping[str, np.ndarray], strata: Sequence[str],
                ) -> tuple[dict[str, dict[str, dict[str, int]]], dict[str, dict[str, int]]]:
    """Records rejected per reason and stratum value, and records drawn per stratum value."""
    present = [c for c in strata if c in data.columns]
    drawn = {c: {str(k): int(v) for k, v in data[c].astype(str).value_counts(sort=False).items()} for c in present}
    rejected: dict[str, dict[str, dict[str, int]]] = {}
    for reason, mask in masks.items():
        if not mask.any():
            continue
        rejected[reason] = {
            c: {str(k): int(v) for k, v in data.loc[mask, c].astype(str).value_counts(sort=False).items()}
            for c in present
        }
    return rejected, drawn


def enforce_rules(
    sample: pd.DataFrame,
    rules: Sequence[str],
    draw: Callable[[int, int], pd.DataFrame],
    *,
    references: Mapping[str, pd.DataFrame] | None = None,
    unique_references: Mapping[str, pd.DataFrame] | None = None,
    compare_columns: Sequence[str] | None = None,
    household_id: str | None = None,
    households: HouseholdRedraw | None = None,
    structure: Sequence[str] = HOUSEHOLD_STRUCTURE,
    seed: int = 0,
    max_rounds: int = 20,
    member_rounds: int = 5,
    max_rejection_rate: float = 0.5,
    drop_unfixable: bool = False,
    quasi_identifiers: Sequence[str] | None = None,
    k: int = 3,
    strata: Sequence[str] = (),
    detectors: Sequence[Rejector] | None = None,
) -> RuleEnforcement:
    """Redraw every household (or row) of ``sample`` that breaks a rule or copies a real record.

    ``references`` are the real tables no record may equal, ``unique_references`` those
    whose unique records may not reappear, compared on ``compare_columns`` (default: all
    columns of the sample but the household id) that each shares with the sample. With
    ``quasi_identifiers`` (a list, possibly empty) the copy filters judge risk instead
    (:func:`disclosure_detector`): every reference, of either kind, rejects the records that
    reproduce one of its records rare on the quasi-identifiers (fewer than ``k``), or equal
    one on every variable. What the draw loses is counted per reason and per value of each
    ``strata`` column (``rejected_by_stratum``, ``drawn_by_stratum``).

    Flat data (no ``household_id``): a rejected row is replaced by a row of ``draw(n, seed)``
    (new rows from the same model), up to ``max_rounds`` times.

    Households: ``households`` (the model that drew ``sample``, e.g. a
    :class:`~synth_assets.synthesis.households.HouseholdSynthesizer`) first redraws the
    members of each rejected household with its row kept, up to ``member_rounds`` times;
    households still rejected are replaced by fresh ones of the same ``structure`` (those of
    its columns the model has as household columns, the size always), up to ``max_rounds``
    times: the first half on the whole structure, the second on the size only, for the
    households whose structure itself breaks a rule. Without ``households``, only the second
    step, with households of ``draw`` whose size and ``structure`` columns match. Either way
    the result has the household ids and the numbers of households and persons of
    ``sample``, households in their order.

    ``detectors``: the copy filters of :func:`copy_detectors` built once for many samples (the
    chunks of a draw), instead of from ``references`` at each call.

    Raises :class:`RuleViolationError` when more than ``max_rejection_rate`` of the sample is
    rejected (with more than 50 households), or when a household is still rejected after the
    rounds, naming the rule or copy filter behind it; with ``drop_unfixable`` such households
    are dropped instead and counted in ``dropped_households`` (for a surplus that calibration
    chooses from, where a handful of households of a rare, ever-copied structure would
    otherwise stop the release).
    """
    rejectors: list[Rejector] = []
    if rules:
        rejectors.append(lambda data: {rule: broken_rows(data, [rule])[0] for rule in rules})
    columns = compare_columns or [c for c in sample.columns if c != household_id]
    filters: set[str] = set()
    if detectors is None:
        detectors = copy_detectors(references, unique_references, columns, quasi_identifiers=quasi_identifiers, k=k)
    for detector in detectors:
        filters.update(detector(sample.iloc[:0]))
        rejectors.append(detector)
    result = RuleEnforcement(sample)
    if not rejectors:
        return result

    def check(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        masks: dict[str, np.ndarray] = {}
        for rejector in rejectors:
            masks.update(rejector(frame))
        bad = np.zeros(len(frame), dtype=bool)
        for mask in masks.values():
            bad |= mask
        return bad, masks

    data = sample.reset_index(drop=True).copy()
    bad, masks = check(data)
    result.rejected_by_reason = {reason: int(mask.sum()) for reason, mask in masks.items()}
    if strata:
        result.rejected_by_stratum, result.drawn_by_stratum = _by_stratum(data, masks, strata)
    if household_id:
        result.drawn_households = int(pd.unique(data[household_id]).size)
        result.rejected_households = int(pd.unique(data.loc[bad, household_id]).size)
    else:
        result.drawn_households, result.rejected_households = len(data), int(bad.sum())
    if result.rejection_rate > max_rejection_rate and result.drawn_households > 50:
        reason = max(result.rejected_by_reason, key=lambda r: result.rejected_by_reason[r])
        raise RuleViolationError(
            f"{result.rejection_rate:.0%} of generated households are rejected, most often "
            f"{_why(reason, result.rejected_by_reason[reason], filters)}"
        )
    if not bad.any():
        return result
    rng = np.random.default_rng(seed)
    if household_id:
        data = _redraw_households(data, bad, check, household_id, households, draw, structure, rng,
                                  member_rounds, max_rounds, result, filters, drop_unfixable)
    else:
        data = _redraw_rows(data, bad, check, draw, rng, max_rounds, result, filters)
    log.info("redrew %d of %d generated households (%.2f%%; %d by their members, %d whole, %d of them "
             "with the size only): %s", result.rejected_households, result.drawn_households,
             100 * result.rejection_rate, result.fixed_by_member_redraws, result.fixed_by_household_redraws,
             result.fixed_with_size_only,
             {k: v for k, v in result.rejected_by_reason.items() if v})
    result.data = data
    return result


def _why(reason: str, records: int, filters: set[str]) -> str:
    """Why records are rejected, and what to look at: a copy filter is not a rule to check."""
    if reason in filters or reason.startswith("disclosure filter"):
        return (f"by the copy filter `{reason}` ({records} records), not a rule: the model reproduces real "
                "records (too little smoothing, or cells too small for the filter)")
    if reason == _NO_STRUCTURE:
        return (f"because {reason} ({records} households): the model hardly ever draws that structure, and its "
                "members never came out valid either")
    return f"for `{reason}` ({records} records): the model does not learn it; check the rule against the training data"


def _worst(masks: dict[str, np.ndarray], extra: Mapping[str, int] | None = None) -> tuple[str, int]:
    counts = {reason: int(mask.sum()) for reason, mask in masks.items()} | dict(extra or {})
    reason = max(counts, key=lambda r: counts[r])
    return reason, counts[reason]


def _redraw_rows(data, bad, check, draw, rng, max_rounds, result, filters) -> pd.DataFrame:
    pending = np.flatnonzero(bad)
    masks: dict[str, np.ndarray] = {}
    for _ in range(max_rounds):
        if not len(pending):
            return data
        fresh = draw(len(pending), int(rng.integers(2**31))).reset_index(drop=True).iloc[: len(pending)]
        fresh_bad, masks = check(fresh)
        ok = np.flatnonzero(~fresh_bad)
        for col in data.columns:
            data.loc[pending[ok], col] = fresh[col].to_numpy()[ok]
        result.fixed_by_household_redraws += len(ok)
        pending = np.concatenate([pending[: len(fresh)][fresh_bad], pending[len(fresh):]])
    if not len(pending):
        return data
    raise RuleViolationError(
        f"{len(pending)} records still rejected after {max_rounds} redraws, most often {_why(*_worst(masks), filters)}"
    )


#: Persons a redraw round aims at. A round's cost is mostly fixed (the model's conditional draw and the
#: filters' hashing of the release's 40-odd columns: about a second a round at 300,000 persons, whatever
#: its rows), and most rounds redraw a few hundred households, so a round draws several copies of each
#: pending household, up to its attempts left, and takes its first valid copy: the same as drawing
#: copy after copy in rounds of their own (the copies are independent), in far fewer rounds.
REDRAW_PERSONS = 20_000


def copies_per_round(pending_persons: int, attempts_left: int) -> int:
    """How many copies of each pending household a round draws (:data:`REDRAW_PERSONS`)."""
    return max(1, min(attempts_left, REDRAW_PERSONS // max(pending_persons, 1)))


class _Copies:
    """Whole households ``copies`` times over, each copy's households under ids of their own (the
    ids' kind: integers, else text), and the way back from a copy's id to its household's."""

    def __init__(self, persons: pd.DataFrame, household_id: str, copies: int) -> None:
        ids = persons[household_id]
        codes, self.households = pd.factorize(ids, sort=False)
        self.count = len(self.households)
        self.copies = copies
        integers = pd.api.types.is_integer_dtype(ids.dtype)
        parts: list[pd.DataFrame] = []
        for j in range(copies):
            copy_codes = codes + j * self.count
            copy_ids = (pd.Series(copy_codes, index=ids.index).astype(ids.dtype) if integers
                        else pd.Series([f"{c}~copy" for c in copy_codes], index=ids.index, dtype=object))
            parts.append(persons.assign(**{household_id: copy_ids}))
        self.persons = parts[0] if copies == 1 else pd.concat(parts, ignore_index=True)
        # copy by copy, households in order: a copy's position is its number times the count plus the household's
        self._names = pd.Index(pd.unique(self.persons[household_id]))

    def positions(self, copy_ids: np.ndarray | pd.Series) -> np.ndarray:
        """The copy number times the households' count plus the household's position, of each id."""
        found = self._names.get_indexer(pd.Index(copy_ids))
        if (found < 0).any():
            raise AssertionError("a redraw changed the households' ids it was given")
        return found


def _redraw_households(data, bad, check, household_id, households, draw, structure, rng,
                       member_rounds, max_rounds, result, filters, drop_unfixable=False) -> pd.DataFrame:
    ids = data[household_id]
    pending = pd.unique(ids[bad])
    accepted: list[pd.DataFrame] = []

    def attempt(redraw: Callable[[pd.DataFrame], pd.DataFrame], attempts_left: int
                ) -> tuple[int, int, tuple[str, int], int]:
        """Redraw the pending households (``redraw``: their copies' rows -> fresh rows, a copy it could
        not draw left out), keep each one's first valid copy; households fixed, attempts used, the worst
        reason among those still pending, and how many households no copy of which could be drawn."""
        nonlocal pending
        rows = data[ids.isin(pending)]
        copies = _Copies(rows, household_id, copies_per_round(len(rows), attempts_left))
        fresh = redraw(copies.persons)
        fresh = fresh[data.columns]
        fresh_bad, masks = check(fresh)
        position = copies.positions(fresh[household_id])
        household = position % copies.count
        drawn = np.zeros(copies.count, dtype=bool)
        drawn[household] = True  # some copy of it came back (a structure never drawn: none did)
        # a copy is valid when none of its members is rejected; ascending: copy by copy
        valid = np.setdiff1d(position, position[fresh_bad])
        first = valid[np.unique(valid % copies.count, return_index=True)[1]]
        accepted.append(fresh[np.isin(position, first)].assign(
            **{household_id: copies.households[household[np.isin(position, first)]]}))
        fixed = np.zeros(copies.count, dtype=bool)
        fixed[first % copies.count] = True
        still = np.flatnonzero(drawn & ~fixed)
        unmatched = np.flatnonzero(~drawn)
        pending = copies.households[np.concatenate([still, unmatched])]
        worst = _worst({r: m & np.isin(household, still) for r, m in masks.items()},
                       {_NO_STRUCTURE: len(unmatched)} if len(unmatched) else {})
        return int(fixed.sum()), copies.copies, worst, len(unmatched)

    if households is not None:
        left = member_rounds
        while left > 0 and len(pending):
            fixed, used, _, _ = attempt(
                lambda rows: households.redraw_members(rows, seed=int(rng.integers(2**31))), left)
            result.fixed_by_member_redraws += fixed
            left -= used
    like = households.sample_households_like if households is not None else _households_of(draw, household_id)
    # A household whose own structure breaks a rule (a one-person household of three) has no
    # valid household of that structure: after half the rounds, only the size is kept.
    worst: tuple[str, int] = ("", 0)
    relaxed = max_rounds // 2
    for on, rounds in ((structure, relaxed), ((), max_rounds - relaxed)):
        left = rounds
        while left > 0 and len(pending):
            def redraw(rows: pd.DataFrame, on: Sequence[str] = on) -> pd.DataFrame:
                return like(rows, on, seed=int(rng.integers(2**31)))[0]

            fixed, used, worst, unmatched = attempt(redraw, left)
            result.fixed_by_household_redraws += fixed
            if not on:
                result.fixed_with_size_only += fixed
            left -= used
            if unmatched:  # each call already drew in growing batches: another would not find them
                worst = (_NO_STRUCTURE, unmatched)
                break
    if len(pending) and drop_unfixable:
        log.warning("dropped %d households still rejected after every redraw, most often %s", len(pending),
                    _why(*worst, filters))
        result.dropped_households = len(pending)
        data = data[~ids.isin(pending)]
        ids = data[household_id]
        pending = pending[:0]
    if len(pending):
        raise RuleViolationError(
            f"{len(pending)} households still rejected after {member_rounds if households is not None else 0} "
            f"member and up to {max_rounds} household redraws, most often {_why(*worst, filters)}"
        )
    if not accepted:
        return data.reset_index(drop=True)
    replaced = pd.concat(accepted, ignore_index=True)
    out = pd.concat([data[~ids.isin(replaced[household_id])], replaced], ignore_index=True)
    # Households back in the order of the draw; members in the order they come.
    order = pd.Index(pd.unique(ids)).get_indexer(out[household_id])
    return out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def _households_of(draw: Callable[[int, int], pd.DataFrame], household_id: str):
    """Structure-conditional households from ``draw`` alone: unconditional draws, first matches taken."""

    def structure_of(persons: pd.DataFrame, on: Sequence[str]) -> pd.DataFrame:
        groups = persons.groupby(household_id, sort=False)
        present = [c for c in on if c in persons.columns]
        table = groups[present].first() if present else pd.DataFrame(index=groups.size().index)
        return table.assign(_members=groups.size()).reset_index(drop=False)

    def like(persons: pd.DataFrame, on: Sequence[str] = (), *, seed: int = 0, max_rounds: int = 8):
        wanted = structure_of(persons, on)
        keys = [c for c in wanted.columns if c != household_id]
        found: list[pd.DataFrame] = []
        missing = np.arange(len(wanted))
        rng = np.random.default_rng(seed)
        for round_ in range(max_rounds):
            if not len(missing):
                break
            n = int(persons.groupby(household_id).size().mean() * len(missing) * 20 * 2**round_) + 50
            batch = draw(n, int(rng.integers(2**31)))
            drawn = structure_of(batch, on)
            target = wanted.iloc[missing][keys].astype(drawn[keys].dtypes.to_dict())
            taken = match_rows(target.reset_index(drop=True), drawn[keys])
            hit = taken >= 0
            new_id = dict(zip(drawn[household_id].to_numpy()[taken[hit]],
                              wanted[household_id].to_numpy()[missing[hit]]))
            chosen = batch[batch[household_id].isin(list(new_id))]
            found.append(chosen.assign(**{household_id: chosen[household_id].map(new_id).to_numpy()}))
            missing = missing[~hit]
        out = pd.concat(found, ignore_index=True) if found else persons.iloc[:0]
        return out, wanted[household_id].to_numpy()[missing]

    return like


def sample_valid_replicates(
    synth,
    n: int,
    m: int,
    rules: Sequence[str],
    *,
    seed: int = 0,
    references: Mapping[str, pd.DataFrame] | None = None,
    unique_references: Mapping[str, pd.DataFrame] | None = None,
    household_id: str | None = None,
    structure: Sequence[str] = HOUSEHOLD_STRUCTURE,
    data: pd.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[RuleEnforcement]:
    """``m`` replicates of ``n`` persons, each from its own parameter draw, every record valid.

    Households that break a rule or copy a real record are redrawn by :func:`enforce_rules`
    from the replicate's own model (its posterior draw, or refit): everything a replicate
    holds comes from one parameter draw, as the combining rules assume. The redraws are
    conditional (members given their household, else a household of the same structure),
    so they keep the household structure of that draw. ``data`` is for refitting families
    without a posterior draw (see :func:`~synth_assets.synthesis.replicates.replicate_models`).
    """
    results: list[RuleEnforcement] = []
    for i, (model, replicate_seed) in enumerate(
        replicate_models(synth, m, seed, data=data, cluster=household_id), start=1
    ):
        results.append(enforce_rules(
            model.sample(n, seed=replicate_seed), rules, _sampler(model),
            references=references, unique_references=unique_references, household_id=household_id,
            households=model if household_id and isinstance(model, HouseholdSynthesizer) else None,
            structure=structure, seed=replicate_seed,
        ))
        if progress is not None:
            progress(i * n, m * n)
    return results


def _sampler(model: Synthesizer) -> Callable[[int, int], pd.DataFrame]:
    """``model.sample`` as a ``draw(n, seed)`` for :func:`enforce_rules`."""
    return lambda n, seed: model.sample(n, seed=seed)


def chunk_seed(seed: int, index: int) -> int:
    """The enforcement seed of chunk ``index`` of a draw seeded ``seed``: ``seed`` itself for the first.

    The first chunk keeps the draw's own seed, so a draw in one chunk is the unchunked draw.
    """
    return seed if index == 0 else int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def drop_disclosive_households(
    data: pd.DataFrame, detectors: Sequence[Rejector], household_id: str | None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``data`` without the households of records the copy filters flag; records dropped per reason.

    For a last pass over what will be published: top-coding sets an amount to its threshold, a
    value of the real data, so a record the filters passed before can reproduce a rare real one
    afterwards (seen once in 250,000 records: a 59-year-old's labour income top-coded to exactly
    his only look-alike's). Calibration chooses from a surplus, so dropping is enough there.
    """
    flagged = np.zeros(len(data), dtype=bool)
    dropped: dict[str, int] = {}
    for detect in detectors:
        for reason, mask in detect(data).items():
            if mask.any():
                dropped[reason] = dropped.get(reason, 0) + int(mask.sum())
                flagged |= mask
    if not flagged.any():
        return data, {}
    if household_id and household_id in data.columns:
        flagged = data[household_id].isin(data.loc[flagged, household_id].unique()).to_numpy()
    return data.loc[~flagged], dropped


def enforced_chunks(
    model: Synthesizer,
    n: int,
    enforce: Callable[[pd.DataFrame, int], T],
    *,
    seed: int,
    chunk_size: int | None = None,
    processes: int | None = None,
    on_log: Callable[[str, int, str], None] | None = None,
) -> Iterator[T]:
    """The chunks of :func:`draw_in_chunks`, each enforced (what ``enforce`` returns), in order, one at
    a time: a caller that writes each away (the calibration's candidates, to disk) never holds the
    whole draw.

    With ``processes`` > 1 each chunk is begun here (:meth:`~synth_assets.synthesis.base.Synthesizer.iter_chunk_draws`:
    a household model's household rows, whose sizes number the next chunk's persons) and drawn and
    enforced in a child process forked then (:func:`~synth_assets.common.parallel.forked_imap`,
    ``on_log`` its children's log lines), ``processes`` chunks at a time. Until the forty-fourth pass
    this process drew each chunk whole and the children only enforced them: once the enforcement
    cost less than the draw, the draw paced the replicate and a core waited (six 100,000-person
    chunks of a 1.2-million-person replicate: 22 s, now 14 s; bench/README.md). The chunks, their
    seeds and so the results are those of one process: chunk k depends on the ones before it only
    through its first identifier, its enforcement on the chunk and its seed alone. ``enforce`` then
    runs in the child, so what it returns is all the caller sees of it (side effects stay in the child)."""
    draws = ((draw, chunk_seed(seed, index))
             for index, draw in enumerate(model.iter_chunk_draws(n, seed=seed, chunk_size=chunk_size)))
    yield from forked_imap(lambda job: enforce(job[0](), job[1]), draws, processes, on_log=on_log)


def draw_in_chunks(
    model: Synthesizer,
    n: int,
    enforce: Callable[[pd.DataFrame, int], pd.DataFrame],
    *,
    seed: int,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """About ``n`` records of ``model``, drawn ``chunk_size`` at a time, each chunk passed through
    ``enforce(chunk, seed)`` (rules, copy filters, top-coding) before the next one is drawn.

    Households are independent given the model, so a chunk of whole households is a draw of its
    own: only the valid records (about 300 bytes a person) accumulate, while the sampler's and
    the enforcement's working sets (about 3.3 KB per drawn person for CART on the demo,
    ``bench/scale``) are those of one chunk. Chunks take :meth:`Synthesizer.iter_chunks`' seeds
    (spawned from ``seed``, identifiers unique across chunks) and enforcement seeds from
    :func:`chunk_seed`; with ``chunk_size`` None or at least ``n`` the result is
    ``enforce(model.sample(n, seed=seed), seed)``.
    """
    parts = list(enforced_chunks(model, n, enforce, seed=seed, chunk_size=chunk_size))
    if not parts:
        return model.fitted_schema.empty_frame()
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
