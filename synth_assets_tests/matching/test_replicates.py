"""Matched replicates: each its own survey bootstraps and fusion, the register untouched."""

import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import parse_catalog
from synth_assets.common.frames import ParquetTable, write_rows
from synth_assets.matching.parts import fuse_in_parts
from synth_assets.matching.replicates import (
    fuse_replicate,
    replicate_seeds,
    replicate_surveys,
    split_replicates,
    stack_fused_replicates,
)
from synth_assets.matching.resample import resample_survey
from synth_assets_tests.matching.test_sources import CATALOG, _budget, _register, _work


def test_each_replicate_fuses_its_own_bootstrap():
    catalog = parse_catalog(CATALOG)
    register = _register()
    surveys = {"work": ("2024", _work()), "budget": ("2024", _budget())}
    methods = {"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}
    out = [fuse_replicate(catalog, register, surveys, s, methods=methods) for s in replicate_seeds(4, 3)]
    frames = [matched for matched, _ in out]
    for matched in frames:  # the register's rows, in order, untouched
        assert len(matched) == len(register)
        pd.testing.assert_series_equal(matched["person_id"], register["person_id"].reset_index(drop=True))
        assert matched["food"].notna().all()
    assert not frames[0]["food"].equals(frames[1]["food"])  # a draw of its own
    donors = [{f.survey: f.donors for f in fusions} for _, fusions in out]
    assert donors[0]["budget"] != len(_budget()) or donors[1]["budget"] != len(_budget())  # resampled
    again = fuse_replicate(catalog, register, surveys, replicate_seeds(4, 3)[2], methods=methods)[0]
    pd.testing.assert_frame_equal(again, frames[2])  # reproducible
    joined: list[int] = []
    stacked = stack_fused_replicates(catalog, register, surveys, m=3, seed=4, methods=methods,
                                     on_replicate=joined.append).read()  # staged on disk, one replicate at a time
    assert joined == [1, 2, 3]
    pd.testing.assert_frame_equal(stacked, pd.concat([f.assign(replicate=r) for r, f in enumerate(frames, 1)],
                                                     ignore_index=True))  # the table pd.concat built
    assert stacked["replicate"].tolist() == sorted(stacked["replicate"].tolist())
    for a, b in zip(split_replicates(stacked), frames, strict=True):
        pd.testing.assert_frame_equal(a, b)
    # fused side by side in forked children: the same table, each child's peak heard
    peaks: dict[int, int | None] = {}
    forked = stack_fused_replicates(catalog, register, surveys, m=3, seed=4, methods=methods, processes=2,
                                    on_peak=peaks.__setitem__)
    pd.testing.assert_frame_equal(forked.read(), stacked)
    assert sorted(peaks) == [0, 1, 2]


def test_a_stored_register_is_fused_a_part_at_a_time_in_every_replicate(tmp_path):
    """Each replicate draws its surveys once and fuses them into every part of the register: the parts
    of replicate r are fuse_in_parts of r's draws; the check judges each part."""
    catalog = parse_catalog(CATALOG)
    register = _register()
    write_rows(register, tmp_path / "register.parquet", row_group_rows=97)
    stored = ParquetTable(tmp_path / "register.parquet")
    surveys = {"work": ("2024", _work()), "budget": ("2024", _budget())}
    methods = {"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}
    checked: list[int] = []
    stacked = stack_fused_replicates(catalog, stored, surveys, m=2, seed=4, methods=methods, part_persons=200,
                                     check=lambda part: checked.append(len(part))).read()
    assert len(checked) >= 6 and sum(checked) == 2 * len(register)  # every part of both replicates judged
    for r, seed in enumerate(replicate_seeds(4, 2), start=1):
        drawn, fusion_seed = replicate_surveys(catalog, surveys, seed)
        parts = [m for m, _ in fuse_in_parts(catalog, stored, drawn, part_persons=200, methods=methods,
                                             seed=fusion_seed)]
        expected = pd.concat(parts, ignore_index=True).assign(replicate=r)
        got = stacked[stacked["replicate"] == r].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)
        assert got.groupby("household_id")["food"].nunique().max() == 1


@pytest.mark.parametrize("stored", [False, True])
def test_replicates_hold_the_recipient_households_alone(tmp_path, stored):
    """With ``recipients`` (a release's training households) every replicate holds those households'
    records alone, in the register's order: with per-recipient methods only they are fused (the
    replicate is the fusion of their records, whatever else the register holds); with a method that
    spreads a quota over the recipients the register is fused whole and their records kept, exactly
    the whole fusion's rows. Fails if the other records were fused for nothing, or if a quota were
    spread over the recipients alone."""
    from synth_assets.matching.replicates import records_of

    catalog = parse_catalog(CATALOG)
    register = _register()
    if stored:
        write_rows(register, tmp_path / "register.parquet", row_group_rows=97)
    source = ParquetTable(tmp_path / "register.parquet") if stored else register
    surveys = {"work": ("2024", _work()), "budget": ("2024", _budget())}
    households = register["household_id"].drop_duplicates().to_numpy()[::3]
    expected_ids = register.loc[register["household_id"].isin(households), "person_id"].tolist()
    per_recipient = {"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}
    fused_calls: list[int] = []
    stacked = stack_fused_replicates(catalog, source, surveys, m=2, seed=4, methods=per_recipient,
                                     recipients=households, check=lambda part: fused_calls.append(len(part))).read()
    assert sum(fused_calls) == 2 * len(expected_ids)  # only their records reached the fusions
    into = records_of(source, "household_id", np.sort(households))
    for r, seed in enumerate(replicate_seeds(4, 2), start=1):
        got = stacked[stacked["replicate"] == r].reset_index(drop=True)
        assert got["person_id"].tolist() == expected_ids
        drawn, fusion_seed = replicate_surveys(catalog, surveys, seed)
        alone = pd.concat([m for m, _ in fuse_in_parts(catalog, into, drawn, methods=per_recipient,
                                                       seed=fusion_seed)], ignore_index=True)
        pd.testing.assert_frame_equal(got, alone.assign(replicate=r))
    quota = {"work": "nnd_constrained", "budget": "nnd_hotdeck"}
    kept = stack_fused_replicates(catalog, source, surveys, m=2, seed=4, methods=quota, recipients=households).read()
    whole = stack_fused_replicates(catalog, source, surveys, m=2, seed=4, methods=quota).read()
    expected = whole.loc[whole["household_id"].isin(households)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, expected)


def test_a_replicate_the_check_refuses_stops_the_table():
    catalog = parse_catalog(CATALOG)
    surveys = {"work": ("2024", _work()), "budget": ("2024", _budget())}

    def refuse_second(matched: pd.DataFrame) -> None:
        if refuse_second.calls == 1:
            raise ValueError("survey ids in replicate 2")
        refuse_second.calls += 1

    refuse_second.calls = 0  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="survey ids in replicate 2"):
        stack_fused_replicates(catalog, _register(), surveys, m=3, seed=4, check=refuse_second,
                               methods={"work": "nnd_hotdeck", "budget": "nnd_hotdeck"})


def test_bootstrap_leaves_the_household_structure_of_the_survey():
    budget = _budget()
    drawn = resample_survey(budget, np.random.default_rng(0), weight="weight", household_id="household_id",
                            person_id="person_id")
    sizes = drawn.groupby("household_id").size()
    assert (sizes.to_numpy() == drawn.groupby("household_id")["household_size"].first().to_numpy()).all()
    assert drawn["household_id"].nunique() == budget["household_id"].nunique() - 1


def test_a_replicates_networks_hold_out_a_record_with_its_copies(monkeypatch):
    """Each network of a replicate is told which donor rows copy one record of the survey (persons and
    households alike): its early stopping holds them out together. The delivered surveys' are not."""
    from synth_assets.matching.methods import neural
    from synth_assets.matching.sources import fuse_sources

    catalog = parse_catalog(CATALOG)
    surveys = {"work": ("2024", _work()), "budget": ("2024", _budget())}
    methods = {"work": "neural_draw", "budget": "neural_draw"}
    fits: list[tuple[np.ndarray, np.ndarray | None]] = []
    fit_network = neural.fit_network

    def recorded(x_don, *args, **kwargs):
        fits.append((x_don, kwargs.get("copies")))
        return fit_network(x_don, *args, **kwargs)

    monkeypatch.setattr(neural, "fit_network", recorded)
    fuse_replicate(catalog, _register(), surveys, replicate_seeds(4, 1)[0], methods=methods)
    assert len(fits) == 2
    for inputs, copies in fits:
        assert copies is not None and len(copies) == len(inputs)
        assert np.bincount(copies).max() >= 2  # some record drawn twice or more
        for record in np.flatnonzero(np.bincount(copies) >= 2):
            rows = inputs[copies == record]
            assert (rows == rows[0]).all()  # the copies of one record: its inputs every time
    fits.clear()
    fuse_sources(catalog, _register(), surveys, methods=methods)
    assert [copies for _, copies in fits] == [None, None]
