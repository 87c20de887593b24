"""Choosing households from a surplus so that the file meets the register's margins.

The method of population synthesisers (PopulationSim's integerisation, R simPop's
``calibPop``): draw more households than the population holds, then pick whole households
so that every margin is met with unit weights.

1. Households are stratified by the cells of the first household margin (municipality x
   type x size by default); each stratum gets exactly its register count, chosen at random
   among the candidates: the household structure is exact by construction.
2. A local search swaps a chosen household for an unchosen one of the same stratum when
   the swap brings the other controls (person cells, income totals and non-zero counts)
   closer to the register, scored by a chi-square distance ``sum (released - target)^2 /
   target``. Swaps are proposed in vectorised batches and applied one by one with their
   exact gain, so the score never rises. This is simPop's simulated annealing at zero
   temperature: with a surplus of candidates in every stratum it reaches the targets.
3. Every member carries its household's calibrated weight (:func:`~.weights.rake`), which
   meets every control exactly for users who gross up, income totals included; bounded
   (``weight_bounds``, the logit distance) so that no household stands for many.

The chosen households are as the model drew them (nothing is edited), so within each
stratum the selection only reweights the model's own draws towards the register.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from synth_assets.calibration.candidates import Candidates
from synth_assets.calibration.margins import CalibrationError, Targets, cell_codes
from synth_assets.calibration.weights import RakingResult, rake

log = logging.getLogger("synth_assets.calibration")

WEIGHT_COLUMN = "calibration_weight"

#: Further searches, each weighing the controls still beyond their tolerance this much more.
REPAIR_ROUNDS = 12
REPAIR_WEIGHT = 25.0


class InsufficientCandidates(CalibrationError):
    """Some strata have fewer candidate households than the register: draw more for them.

    ``deficits`` maps the stratum's control id to the number of households missing;
    ``cells`` maps it to the cell keys the stratum covers.
    """

    def __init__(self, deficits: dict[str, int], labels: dict[str, str], cells: dict[str, list[str]],
                 available: dict[str, int] | None = None) -> None:
        self.deficits, self.labels, self.cells = deficits, labels, cells
        self.available = available or {}
        worst = sorted(deficits, key=lambda s: deficits[s], reverse=True)[:3]
        super().__init__(
            f"{sum(deficits.values())} households missing in {len(deficits)} strata, e.g. "
            + "; ".join(f"{labels[c]}: {deficits[c]} short" for c in worst)
        )

    def shortfall(self) -> float:
        """The largest deficit as a share of the stratum's candidates (inf where it has none):
        the share of the draws so far that, drawn again, would be expected to cover it."""
        return max((d / self.available[c] if self.available.get(c) else math.inf) for c, d in self.deficits.items())


@dataclass
class CalibrationResult:
    """The chosen households (persons, with their weight) and how well they meet the targets."""

    data: pd.DataFrame
    residuals: pd.DataFrame
    candidate_households: int
    households: int
    swaps: int
    seconds: float
    weights_converged: bool
    history: list[float] = field(default_factory=list, repr=False)

    @property
    def within_tolerance(self) -> bool:
        return bool(self.residuals["within"].all())

    def summary(self) -> dict[str, float]:
        counts = self.residuals[self.residuals["kind"] == "count"]
        totals = self.residuals[self.residuals["kind"] != "count"]
        return {
            "candidate_households": self.candidate_households,
            "households": self.households,
            "persons": len(self.data),
            "swaps": self.swaps,
            "count_cells_off": int((counts["difference"] != 0).sum()),
            "max_abs_count_residual": float(counts["difference"].abs().max()) if len(counts) else 0.0,
            "max_relative_total_residual": float(totals["relative"].abs().max()) if len(totals) else 0.0,
            "seconds": round(self.seconds, 2),
        }


#: Bounded weights that leave every control within this share of its target (relative to
#: ``max(|target|, 1)``, as :func:`~.weights.rake` measures it) are kept although not exact: on the
#: 50,000-person demo two replicates of five stopped at 1.1e-4 and 3.9e-4 within (0.5, 2), where
#: raking without bounds met them exactly with weights up to 3.99 (bench/README.md, "Twenty-sixth
#: pass"). A thousandth is the gate's tolerance of an income total.
BOUNDED_RESIDUAL = 1e-3


def _weights(design: sp.csr_matrix, targets: np.ndarray, bounds: tuple[float, float] | None) -> RakingResult:
    """The chosen households' calibrated weights, within ``bounds`` where the controls allow it.

    Within the bounds the controls are met exactly, or to :data:`BOUNDED_RESIDUAL` where no weights
    inside them meet the last digits (a few households carrying a cell, which exact weights would
    stretch). Bounds that leave a control further off would make grossed-up totals miss the
    register, the worse surprise: the weights are then raked without bounds, which meets them, and
    the log says how far they went.
    """
    if bounds is not None:
        # once within a thousandth, steps that no longer halve the residual end it: where no weights
        # within the bounds meet the last digits, Newton's steps creep on (replicate 2 of a 1.2-million-
        # person run: about a hundred steps, 99 s, to 8.3e-5)
        bounded = rake(design, targets, bounds=bounds, stall_below=BOUNDED_RESIDUAL)
        if bounded.max_relative_residual <= BOUNDED_RESIDUAL:
            if not bounded.converged:
                log.info("calibration: weights within %s meet every control to %.2g of its target", list(bounds),
                         bounded.max_relative_residual)
            return bounded
    weights = rake(design, targets)
    if bounds is not None:
        log.warning("calibration: no weights within %s meet the controls (worst residual %.2g after %d steps); "
                    "raked without bounds, weights %.3g to %.3g", list(bounds), bounded.max_relative_residual,
                    bounded.iterations, weights.weights.min(initial=1.0), weights.weights.max(initial=1.0))
    return weights


@dataclass
class _Design:
    """The incidence of every candidate household on every control, scaled for the score."""

    matrix: sp.csr_matrix  # households x controls
    targets: np.ndarray
    inverse_scale: np.ndarray  # 1 / target (chi-square weights)
    stratum: np.ndarray  # control index of each household's first household-margin cell
    household_codes: np.ndarray  # household position of each person
    tolerance: np.ndarray  # the gate's tolerance of each control, in the design's units


def _design(persons: pd.DataFrame, targets: Targets, household_id: str) -> _Design:
    spec = targets.spec
    controls = targets.controls
    index = {c: i for i, c in enumerate(controls["control"])}
    codes, _ = pd.factorize(persons[household_id])
    n_households = int(codes.max()) + 1 if len(codes) else 0
    first = np.flatnonzero(~pd.Series(codes).duplicated().to_numpy())
    shape = (n_households, len(controls))
    # the incidence summed a margin at a time: one margin's entries (a few per candidate person,
    # 3.6 million persons at 1.2 million) are in memory at once, not every margin's
    matrix = sp.csr_matrix(shape)

    def add(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        nonlocal matrix
        part = sp.csr_matrix((vals, (rows, cols)), shape=shape)
        part.sum_duplicates()
        matrix = matrix + part

    stratum = None
    target = controls["target"].to_numpy(dtype=float).copy()
    relative = (controls["kind"] != "count").to_numpy()
    tolerance = np.where(relative, targets.tolerances() * np.maximum(np.abs(target), 1.0), targets.tolerances())
    for margin in spec.margins:
        table_rows = np.arange(len(persons)) if margin.unit == "person" else first
        # the margin's columns only, then its rows: no copy of every candidate column; cells as
        # integer codes, a key string per distinct cell only
        table = persons[list(margin.variables)]
        keys, positions = cell_codes(table if margin.unit == "person" else table.iloc[first], margin.variables,
                                     margin.cut(spec.bands))
        col = np.array([index[c] for c in targets.controls_of(margin, keys, "generated cell")], dtype=np.int64)[positions]
        add(codes[table_rows], col, np.ones(len(table_rows)))
        if margin.unit == "household" and stratum is None:
            stratum = np.empty(n_households, dtype=np.int64)
            stratum[codes[first]] = col
        del table, keys, positions, col
    if stratum is None:
        raise CalibrationError("calibration needs at least one household margin (it stratifies the selection)")
    for variable in spec.totals:
        x = pd.to_numeric(persons[variable], errors="coerce").to_numpy(dtype=float)
        x = np.where(np.isfinite(x), x, 0.0)
        t_total, t_nonzero = index[f"total:{variable}"], index[f"nonzero:{variable}"]
        # totals in units of the register's mean non-zero value: a total then weighs in the
        # score like a count of its earners
        unit = abs(target[t_total]) / max(target[t_nonzero], 1.0) or 1.0
        target[t_total] = target[t_total] / unit
        tolerance[t_total] = tolerance[t_total] / unit
        nonzero = np.flatnonzero(x != 0)
        add(np.concatenate([codes[nonzero], codes[nonzero]]),
            np.concatenate([np.full(len(nonzero), t_total), np.full(len(nonzero), t_nonzero)]),
            np.concatenate([x[nonzero] / unit, np.ones(len(nonzero))]))
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    return _Design(matrix, target, 1.0 / np.maximum(np.abs(target), 1.0), stratum, codes, tolerance)


def _initial_selection(design: _Design, stratum_targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random selection of exactly the target number of households in every stratum."""
    chosen = np.zeros(len(design.stratum), dtype=bool)
    order = rng.permutation(len(design.stratum))
    by_stratum = order[np.argsort(design.stratum[order], kind="stable")]
    strata, starts, counts = np.unique(design.stratum[by_stratum], return_index=True, return_counts=True)
    for s, start, count in zip(strata, starts, counts):
        take = int(round(stratum_targets[s]))
        chosen[by_stratum[start : start + min(take, count)]] = True
    return chosen


class _Strata:
    """The households ordered by stratum once, for the search's proposals, each stratum's households
    not chosen first (``perm``, ``pos``: a household's place in it). A swap takes one household out
    and brings one of the same stratum in, so each stratum's count not chosen never changes: a
    household to bring in is one of its stratum's first places at random, found in constant time,
    and an accepted swap exchanges the two households' places (on a 1.2-million-person run's release,
    a million households, the search's proposals took 12 of its 19 s when each batch counted the households not chosen over every
    candidate: bench/README.md, "Twenty-seventh pass"). Proposals of a household in ``focus`` to
    bring in count the eligible households of each stratum over every candidate, linear in them."""

    def __init__(self, stratum: np.ndarray, chosen: np.ndarray) -> None:
        self.stratum = stratum
        self.chosen = chosen  # the search's own array, changed in place as it swaps
        self.order = np.argsort(stratum, kind="stable")
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(stratum))])
        self.perm = np.lexsort((chosen, stratum))  # by stratum, those not chosen first
        self.pos = np.empty_like(self.perm)
        self.pos[self.perm] = np.arange(len(self.perm))
        self.not_chosen = np.bincount(stratum[~chosen], minlength=len(self.starts) - 1)

    def swapped(self, out: int, in_: int) -> None:
        """Household ``out`` taken out, ``in_`` of the same stratum brought in: their places exchanged."""
        a, b = self.pos[out], self.pos[in_]
        self.perm[a], self.perm[b] = in_, out
        self.pos[out], self.pos[in_] = b, a

    def propose(self, out_pool: np.ndarray, n: int, rng: np.random.Generator, in_focus: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``n`` pairs (a household of ``out_pool`` to take out, one not chosen of the same
        stratum, and of ``in_focus`` if given, to bring in, at random among them); household masks."""
        out_candidates = np.flatnonzero(out_pool)
        if len(out_candidates) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        out_ = rng.choice(out_candidates, size=min(n, len(out_candidates)), replace=False)
        s = self.stratum[out_]
        if in_focus is None:
            available = self.not_chosen[s]
            out_, s, available = out_[available > 0], s[available > 0], available[available > 0]
            rank = (rng.random(len(out_)) * available).astype(np.int64)
            return out_, self.perm[self.starts[s] + rank]
        in_pool = ~self.chosen & in_focus
        # eligible[q]: how many of the first q households in stratum order may come in
        eligible = np.concatenate([[0], np.cumsum(in_pool[self.order])])
        before = eligible[self.starts[s]]
        available = eligible[self.starts[s + 1]] - before
        out_, before, available = out_[available > 0], before[available > 0], available[available > 0]
        rank = (rng.random(len(out_)) * available).astype(np.int64)  # the rank-th eligible of the stratum
        position = np.searchsorted(eligible, before + rank + 1, side="left") - 1
        return out_, self.order[position]


def _swap_search(
    design: _Design, chosen: np.ndarray, rng: np.random.Generator, *, batch: int, patience: int,
    max_batches: int, progress: Callable[[str], None] | None, focus: np.ndarray | None = None,
) -> tuple[np.ndarray, int, list[float]]:
    """Swaps within strata while they lower the score; ``focus`` (a household mask) draws one
    side of every proposed swap among those households, alternately the side taken out and
    the side brought in."""
    a = design.matrix
    inv = design.inverse_scale
    deviation = np.asarray(a.T @ chosen.astype(float)).ravel() - design.targets
    strata = _Strata(design.stratum, chosen)
    swaps, idle = 0, 0
    history = [float(np.sum(deviation**2 * inv))]
    for b in range(max_batches):
        out_pool, in_focus = chosen, None
        if focus is not None:
            out_pool, in_focus = (chosen & focus, None) if b % 2 == 0 else (chosen, focus)
        out_, in_ = strata.propose(out_pool, batch, rng, in_focus)
        if len(out_) == 0:
            break
        diff = a[in_] - a[out_]
        diff.sum_duplicates()  # one entry a control in each row (a no-op when already so)
        gain = diff @ (2 * deviation * inv) + diff.multiply(diff) @ inv
        rows, controls, changes = diff.indptr, diff.indices, diff.data
        # Moves that leave the score as it is are taken too: they let the search wander along a
        # plateau to a household whose swap then helps (pure descent stalls a person short).
        promising = np.flatnonzero(gain <= 1e-12)
        accepted = improved = 0
        used: set[int] = set()
        for k in promising[np.argsort(gain[promising])]:
            i, j = int(out_[k]), int(in_[k])
            if i in used or j in used:
                continue
            # the swap's change to each control: the proposal's row of ``diff`` (household j's row
            # less i's), as the batch's gains computed it; re-scored against the deviation as it is now
            cols, change = controls[rows[k] : rows[k + 1]], changes[rows[k] : rows[k + 1]]
            exact = float(np.sum((2 * deviation[cols] + change) * change * inv[cols]))
            if exact <= 1e-12:
                improved += exact < -1e-12
                deviation[cols] += change
                chosen[i], chosen[j] = False, True
                strata.swapped(i, j)
                used.update((i, j))
                accepted += 1
        swaps += accepted
        history.append(float(np.sum(deviation**2 * inv)))
        idle = idle + 1 if improved == 0 else 0
        if progress is not None and b % 20 == 0:
            progress(f"calibration: batch {b}, {swaps} swaps, chi-square distance {history[-1]:.3g}")
        if idle >= patience or history[-1] < 1e-9:
            break
    return chosen, swaps, history


def _shortage(stratum: np.ndarray, targets: Targets) -> InsufficientCandidates | None:
    """The strata (first household margin) with fewer candidate households than the register, if any;
    ``stratum``: the control index of each candidate household."""
    controls = targets.controls
    available = np.bincount(stratum, minlength=len(controls))
    needed = controls["target"].to_numpy(dtype=float)
    strata = np.unique(np.flatnonzero(controls["margin"] == targets.spec.household_margins[0].name))
    short = {
        controls["control"].iloc[s]: int(round(needed[s] - available[s])) for s in strata if available[s] < needed[s] - 0.5
    }
    if not short:
        return None
    index = {controls["control"].iloc[s]: s for s in strata}
    by_control = controls.set_index("control")
    labels = {c: str(by_control.at[c, "label"]) for c in short}
    cells = {c: json.loads(str(by_control.at[c, "cells"])) for c in short}
    return InsufficientCandidates(short, labels, cells, {c: int(available[index[c]]) for c in short})


def candidate_shortage(candidates: pd.DataFrame | Candidates, targets: Targets, household_id: str
                       ) -> InsufficientCandidates | None:
    """What :func:`select_households` would raise for lack of candidates (None: enough in every
    stratum), from the first household margin alone: for a step that draws candidates and leaves
    the selection to another (a region's draw, chosen from with every region's)."""
    persons = candidates.frame() if isinstance(candidates, Candidates) else candidates
    margin = targets.spec.household_margins[0]
    first = ~persons[household_id].duplicated().to_numpy()
    keys, positions = cell_codes(persons.loc[first, list(margin.variables)], margin.variables,
                                 margin.cut(targets.spec.bands))
    index = {c: i for i, c in enumerate(targets.controls["control"])}
    stratum = np.array([index[c] for c in targets.controls_of(margin, keys, "generated cell")], dtype=np.int64)
    return _shortage(stratum[positions], targets)


def select_households(
    candidates: pd.DataFrame | Candidates,
    targets: Targets,
    household_id: str,
    *,
    seed: int = 0,
    batch: int = 4096,
    patience: int = 100,
    max_batches: int = 3000,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Whole households of ``candidates`` (one row a person) that meet ``targets``; see the module doc.

    ``candidates`` held on disk (:class:`~.candidates.Candidates`) are read for the margin and
    total columns only, and for the chosen households' rows at the end; the result is the same.

    Raises :class:`InsufficientCandidates` when a stratum has fewer candidate households
    than the register: the caller draws more for those cells and calls again.
    """
    started = time.perf_counter()
    if isinstance(candidates, Candidates):
        persons = candidates.frame()
    else:  # positions as labels; no copy of the candidates (three times the population) when they are already
        persons = candidates if candidates.index.equals(pd.RangeIndex(len(candidates))) else candidates.reset_index(drop=True)
    if persons[household_id].isna().any():
        raise CalibrationError(f"candidates have missing {household_id!r}")
    design = _design(persons, targets, household_id)
    short = _shortage(design.stratum, targets)
    if short is not None:
        raise short
    needed = targets.controls["target"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    chosen = _initial_selection(design, needed, rng)
    chosen, swaps, history = _swap_search(
        design, chosen, rng, batch=batch, patience=patience, max_batches=max_batches, progress=progress
    )
    # The chi-square distance weighs a control by its size, the gate by its tolerance: a search
    # that ends near the optimum may leave one cell a person or a total 0.02% beyond its
    # tolerance. Then the controls still beyond it weigh more and the search goes on from there,
    # each swap proposed with a household that counts in one of them.
    for _ in range(REPAIR_ROUNDS):
        deviation = np.asarray(design.matrix.T @ chosen.astype(float)).ravel() - design.targets
        beyond = np.abs(deviation) > design.tolerance + 1e-9
        if not beyond.any():
            break
        boosted = design.inverse_scale.copy()
        boosted[beyond] *= REPAIR_WEIGHT
        design = replace(design, inverse_scale=boosted)
        # random pairs rarely touch one small cell: one side of each proposal is a household in it
        focus = np.asarray((design.matrix[:, np.flatnonzero(beyond)] != 0).sum(axis=1)).ravel() > 0
        chosen, more, tail = _swap_search(
            design, chosen, rng, batch=batch, patience=patience, max_batches=max_batches, progress=progress,
            focus=focus,
        )
        swaps += more
        history += tail[1:]
    picked = np.flatnonzero(chosen)
    keep = np.isin(design.household_codes, picked)
    del persons  # the selection's columns, or every column of every candidate
    if isinstance(candidates, Candidates):
        candidates.release_kept()  # and the candidates' own copy of them
    # the chosen households' rows of the design, and nothing else of the candidates' (457 MB at 2
    # million persons) while their members are read and weighted
    n_candidates, chosen_design, chosen_codes, design_targets = (
        design.matrix.shape[0], design.matrix[picked], design.household_codes[keep], design.targets)
    del design
    # the phases after the search, named: at 1.2 million persons 7 minutes passed between the
    # search's last line and the result's, with nothing to say which phase took them
    if progress is not None:
        progress(f"calibration: {len(picked):,} households chosen ({swaps:,} swaps); reading their members")
    if isinstance(candidates, Candidates):
        data = candidates.take(np.flatnonzero(keep))
    else:
        data = candidates.loc[keep].reset_index(drop=True)
    if progress is not None:
        progress(f"calibration: weighting {len(picked):,} households to the register's controls")
    household_weights = _weights(chosen_design, design_targets, targets.spec.weight_bounds)
    del chosen_design
    by_code = np.zeros(n_candidates)
    by_code[picked] = household_weights.weights
    data[WEIGHT_COLUMN] = by_code[chosen_codes]
    residuals = targets.residuals(data, household_id)
    result = CalibrationResult(
        data, residuals, n_candidates, len(picked), swaps, time.perf_counter() - started,
        household_weights.converged, history,
    )
    log.info("calibration: %s", result.summary())
    return result
