"""The register fused in parts of whole households: each part as fuse_sources fuses it, with its own seed."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import parse_catalog
from synth_assets.common.distances import total_variation
from synth_assets.common.frames import ParquetTable, write_rows
from synth_assets.matching.parts import (
    combined_fusions,
    fuse_in_parts,
    part_seed,
    register_parts,
    whole_register_surveys,
)
from synth_assets.matching.sources import fuse_sources
from synth_assets_tests.matching.data import count_trainings
from synth_assets_tests.matching.test_sources import CATALOG, _budget, _households, _register, _work

HOT_DECKS = {"work": "nnd_hotdeck", "budget": "nnd_hotdeck"}


def _surveys() -> dict[str, tuple[str, pd.DataFrame]]:
    return {"work": ("2024", _work()), "budget": ("2024", _budget())}


def _timeless(diagnostics):
    """Diagnostics without their seconds (a clock's, not the fusion's)."""
    if isinstance(diagnostics, dict):
        return {k: _timeless(v) for k, v in diagnostics.items() if k != "seconds"}
    return diagnostics


def _on_disk(frame: pd.DataFrame, tmp_path, rows: int = 97) -> ParquetTable:
    write_rows(frame, tmp_path / "register.parquet", row_group_rows=rows)  # households cut across row groups
    return ParquetTable(tmp_path / "register.parquet")


@pytest.mark.parametrize("stored", [False, True])
def test_parts_hold_whole_households_in_the_register_order(stored: bool, tmp_path):
    register = _register()
    source = _on_disk(register, tmp_path) if stored else register
    parts = list(register_parts(source, "household_id", 200))
    assert len(parts) == -(-len(register) // 200)  # as few as hold about 200 records each
    assert all(abs(len(p) - len(register) / len(parts)) <= (97 if stored else 0) + 4 for p in parts)  # equal
    assert all(list(p.index) == list(range(len(p))) for p in parts)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), register)  # every record once, in order
    households = [set(p["household_id"]) for p in parts]
    assert all(not (a & b) for i, a in enumerate(households) for b in households[i + 1:])  # none split
    # as many records or fewer: the register whole, as read
    (whole,) = register_parts(source, "household_id", len(register))
    pd.testing.assert_frame_equal(whole, register)


def test_a_register_whose_households_are_apart_is_one_part():
    register = _register()
    shuffled = register.sample(frac=1.0, random_state=0).reset_index(drop=True)
    (only,) = register_parts(shuffled, "household_id", 100)
    assert only is shuffled
    (no_key,) = register_parts(register, None, 100)
    assert no_key is register


def test_one_part_is_the_fusion_of_the_whole_register(tmp_path):
    catalog = parse_catalog(CATALOG)
    register = _register()
    whole, fusions = fuse_sources(catalog, register, _surveys(), methods=HOT_DECKS, seed=3)
    ((one, one_fusions),) = fuse_in_parts(catalog, _on_disk(register, tmp_path), _surveys(),
                                          part_persons=len(register), methods=HOT_DECKS, seed=3)
    pd.testing.assert_frame_equal(one, whole)
    assert [_timeless(f.diagnostics) for f in combined_fusions([one_fusions])] == [
        _timeless(f.diagnostics) for f in fusions]


def test_each_part_is_fused_with_its_own_seed_and_households_stay_whole(tmp_path):
    catalog = parse_catalog(CATALOG)
    register = _register()
    parts = list(fuse_in_parts(catalog, _on_disk(register, tmp_path), _surveys(), part_persons=200,
                               methods=HOT_DECKS, seed=3))
    assert len(parts) >= 3
    matched = pd.concat([m for m, _ in parts], ignore_index=True)
    pd.testing.assert_frame_equal(matched[list(register.columns)], register)  # the register, in order
    assert matched.groupby("household_id")["food"].nunique().max() == 1  # a household's one donor
    assert not matched[["hours", "job", "food"]].isna().any().any()
    # part p is fuse_sources of its records with part p's seed, the donors completed with the seed
    for p, (part, _) in enumerate(parts):
        records = part[list(register.columns)]
        again, _ = fuse_sources(catalog, records, _surveys(), methods=HOT_DECKS, seed=part_seed(3, p), donor_seed=3)
        pd.testing.assert_frame_equal(part, again)
    assert part_seed(3, 0) == 3 and len({part_seed(3, p) for p in range(len(parts))}) == len(parts)
    combined = combined_fusions([f for _, f in parts])
    assert [len(f.diagnostics["register_parts"]) for f in combined] == [len(parts)] * 2
    assert combined[0].diagnostics["register_parts"][1] == parts[1][1][0].diagnostics
    assert combined[0].item_nonresponse == parts[0][1][0].item_nonresponse


def test_a_register_fused_in_parts_keeps_the_population_distribution():
    """Parts of the register are not miniatures of it (here: the oldest households last); a per-recipient
    method gives each recipient what the whole register's fusion would, so the imputed distributions,
    by age group too, stay those of the whole fusion."""
    catalog = parse_catalog(CATALOG)
    rng = np.random.default_rng(7)
    register = _households(rng, 3000)
    oldest = register.groupby("household_id")["age"].transform("max")
    register = register.assign(_order=oldest.to_numpy()).sort_values(["_order", "household_id"], kind="stable")
    register = register.drop(columns="_order").reset_index(drop=True)
    register["person_id"] = pd.array(np.arange(1, len(register) + 1), "Int64")
    work = _work(n=1500)
    young = work["age"].to_numpy(dtype=float, na_value=np.nan) < 45
    work["job"] = pd.Series(np.where(young, "a", "b"), dtype=work["job"].dtype).where(work["job"].notna())
    surveys = {"work": ("2024", work)}  # the job follows age: a record given another's job shows
    whole, _ = fuse_sources(catalog, register, surveys, methods={"work": "nnd_hotdeck"}, seed=1)
    parts = list(fuse_in_parts(catalog, register, surveys, part_persons=1200, methods={"work": "nnd_hotdeck"},
                               seed=1))
    assert len(parts) >= 4
    matched = pd.concat([m for m, _ in parts], ignore_index=True)
    band = pd.cut(register["age"].astype(float), [0, 25, 50, 75, 120], right=False)
    # two whole fusions of other seeds differ by about 0.002 (job) and 0.04 (hours, 60 values); a part's
    # records given other records' imputations, or donors drawn ignoring X, by 0.26 to 0.45 and 0.05 to 0.22
    for column, limit in [("job", 0.02), ("hours", 0.06)]:
        a = pd.crosstab(band, matched[column].astype(str), normalize=True)
        b = pd.crosstab(band, whole[column].astype(str), normalize=True)
        assert total_variation(a.stack(), b.stack()) < limit, column


def test_a_quota_method_fuses_the_register_whole(caplog, tmp_path):
    catalog = parse_catalog(CATALOG)
    methods = {"work": "nnd_constrained", "budget": "nnd_hotdeck"}
    assert whole_register_surveys(catalog, ["work", "budget"], methods) == ["work"]
    assert whole_register_surveys(catalog, ["work", "budget"], HOT_DECKS) == []
    register = _register()
    with caplog.at_level(logging.WARNING, logger="synth_assets.matching"):
        parts = list(fuse_in_parts(catalog, _on_disk(register, tmp_path), _surveys(), part_persons=100,
                                   methods=methods, seed=0))
    assert len(parts) == 1 and len(parts[0][0]) == len(register)
    assert "fused whole" in caplog.text and "work" in caplog.text
    with pytest.raises(ValueError, match="part_persons"):
        next(fuse_in_parts(catalog, register, _surveys(), part_persons=0))


def test_the_parts_train_each_surveys_network_once(tmp_path, monkeypatch):
    """neural_draw in parts: the first part trains each survey's network, the later parts reuse it
    (the donors completed once), drawing with seeds of their own; the same parts twice."""
    catalog = parse_catalog(CATALOG)
    register = _register()
    methods = {"work": "neural_draw", "budget": "neural_draw"}
    trained = count_trainings(monkeypatch)
    stored = _on_disk(register, tmp_path)
    parts = list(fuse_in_parts(catalog, stored, _surveys(), part_persons=200, methods=methods, seed=5))
    assert len(parts) >= 3
    assert len(trained) == 2  # one network per survey (work's persons, budget's households), not per part
    matched = pd.concat([m for m, _ in parts], ignore_index=True)
    pd.testing.assert_frame_equal(matched[list(register.columns)], register)
    assert matched.groupby("household_id")["food"].nunique().max() == 1
    assert not matched[["hours", "job", "food"]].isna().any().any()
    again = list(fuse_in_parts(catalog, stored, _surveys(), part_persons=200, methods=methods, seed=5))
    for (a, _), (b, _) in zip(parts, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
