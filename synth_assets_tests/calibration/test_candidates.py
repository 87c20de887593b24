"""Candidates spilled to disk: the selection reads the same households and returns the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.calibration import calibrated_population, register_targets, select_households
from synth_assets.calibration.candidates import Candidates

from .test_calibration import SPEC, population


def pieces_of(frame: pd.DataFrame, bounds: list[int]) -> list[pd.DataFrame]:
    """``frame`` cut at row positions ``bounds`` (whole households: callers cut between them)."""
    edges = [0, *bounds, len(frame)]
    return [frame.iloc[a:b] for a, b in zip(edges, edges[1:])]


def household_bounds(frame: pd.DataFrame, parts: int) -> list[int]:
    starts = np.flatnonzero(~frame["household_id"].duplicated().to_numpy())
    return [int(starts[len(starts) * k // parts]) for k in range(1, parts)]


def test_rows_read_back_equal_those_written_with_their_types():
    frame = population(300, 1)
    frame["size"] = frame["size"].astype("Int64")
    frame.loc[frame.index[::7], "size"] = pd.NA
    frame["tenure"] = pd.Categorical(np.where(frame.index % 3 == 0, "owner", "tenant"),
                                     categories=["owner", "tenant", "unused"])
    with Candidates(["household_id", "region"]) as candidates:
        for piece in pieces_of(frame, household_bounds(frame, 3)):
            candidates.append(piece)
        assert len(candidates) == len(frame)
        pd.testing.assert_frame_equal(candidates.frame(), frame[["household_id", "region"]].reset_index(drop=True))
        positions = np.flatnonzero(frame.index % 5 != 1)
        pd.testing.assert_frame_equal(candidates.take(positions), frame.iloc[positions].reset_index(drop=True))
        with pytest.raises(ValueError, match="ascending"):
            candidates.take(positions[::-1])
        # released from memory after a search, then more drawn: read back from disk, the same columns
        candidates.release_kept()
        assert candidates._kept == []
        more = frame.iloc[:30].assign(household_id=frame["household_id"].iloc[:30] + 10_000)
        candidates.append(more)
        pd.testing.assert_frame_equal(candidates.frame(), pd.concat([frame, more], ignore_index=True)[
            ["household_id", "region"]])


def test_selection_from_disk_equals_selection_in_memory():
    targets = register_targets(population(400, 1), SPEC, "household_id")
    surplus = population(1_500, 2, large_share=0.4)
    in_memory = select_households(surplus, targets, "household_id", seed=3)
    with Candidates(["household_id", *SPEC.variables]) as candidates:
        for piece in pieces_of(surplus, household_bounds(surplus, 4)):
            candidates.append(piece)
        on_disk = select_households(candidates, targets, "household_id", seed=3)
        assert candidates._kept == []  # the kept columns left memory once the search ended
        again = select_households(candidates, targets, "household_id", seed=3)  # a second selection reads them back
    pd.testing.assert_frame_equal(again.data, in_memory.data)
    pd.testing.assert_frame_equal(on_disk.data, in_memory.data)
    pd.testing.assert_frame_equal(on_disk.residuals, in_memory.residuals)
    assert on_disk.swaps == in_memory.swaps > 0


def test_a_draw_in_chunks_calibrates_as_the_same_draw_in_one_frame():
    targets = register_targets(population(400, 1), SPEC, "household_id")
    calls: list[int] = []

    def whole(n: int, seed: int) -> pd.DataFrame:
        calls.append(seed)
        # the first draw is short of large households, so a second draw (renumbered ids) is needed
        return population(n // 2, seed, large_share=0.02 if len(calls) == 1 else 0.5, id_start=1)

    def chunked(n: int, seed: int):
        frame = whole(n, seed)
        return iter(pieces_of(frame, household_bounds(frame, 3)))

    one = calibrated_population(whole, targets, "household_id", surplus=3.0, seed=4)
    first_calls = list(calls)
    calls.clear()
    chunks = calibrated_population(chunked, targets, "household_id", surplus=3.0, seed=4)
    assert calls == first_calls and len(calls) >= 2  # the same draws, more than one round
    pd.testing.assert_frame_equal(chunks.data, one.data)
    # every household whole and under its own id, drawn in either round
    assert chunks.data.groupby("household_id")["size"].first().sum() == len(chunks.data)
