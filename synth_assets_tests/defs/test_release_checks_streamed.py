"""The release's population checks read whole households (or persons) a row group at a time, never a
replicate or a table at once, and give the verdicts and figures of the tables read whole."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_assets.calibration import Targets, spec_from_catalog
from synth_assets.calibration.tails import tail_thresholds
from synth_assets.catalog import load_catalog
from synth_assets.common.frames import ParquetTable, write_rows
from synth_assets.common.layout import DataLayout
from synth_assets.defs import keys
from synth_assets.defs.calibration.checks import build_calibration_check, build_top_coding_check
from synth_assets.defs.matching.checks import build_household_variables_check
from synth_assets.defs.synthesis.linked import build_linked_checks
from synth_assets.synthesis import linked as linked_records
from synth_assets_tests.defs.conftest import Prepared

pytestmark = pytest.mark.slow

ROWS = 97  # row groups of 97 rows: households and persons straddle them


def _small_groups(source: Path, target: Path) -> ParquetTable:
    write_rows(pd.read_parquet(source), target, row_group_rows=ROWS)
    return ParquetTable(target)


def _linked_parts_of_rows(patch: pytest.MonkeyPatch, rows: int) -> list[int]:
    """Linked records recomputed about ``rows`` at a time (row groups joined, never the whole table);
    the list fills with the records of each recomputation."""
    seen: list[int] = []
    recompute = linked_records.aggregate_records

    def counted(records, source):
        seen.append(len(records))
        return recompute(records, source)

    patch.setattr(linked_records, "AGGREGATE_PART_ROWS", rows)
    patch.setattr(linked_records, "aggregate_records", counted)
    return seen


def _forbid_whole_reads(patch: pytest.MonkeyPatch) -> None:
    """A replicate read at once, or more than one column of a whole table, fails the test."""
    read = ParquetTable.read

    def one_column(self, columns=None):
        if columns is None or len(columns) > 1:
            pytest.fail(f"{self} read whole ({columns})")
        return read(self, columns)

    patch.setattr(ParquetTable, "part", lambda *a, **k: pytest.fail("a replicate read whole"))
    patch.setattr(ParquetTable, "read", one_column)


def test_the_release_checks_read_a_row_group_at_a_time(prepared_release: Prepared, tmp_path, monkeypatch):
    layout = DataLayout(prepared_release.root)
    catalog = load_catalog(layout.catalog)
    warehouse = prepared_release.root / "warehouse"
    wave = sorted(p.stem for p in (warehouse / "fictitious_dataset").glob("*.parquet"))[-1]
    whole = pd.read_parquet(warehouse / "fictitious_dataset" / f"{wave}.parquet")
    register = pd.read_parquet(warehouse / f"harmonised_{catalog.register_name}" / f"{wave}.parquet")
    matched = pd.read_parquet(warehouse / "matched_dataset" / f"{wave}.parquet")
    targets = pd.read_parquet(warehouse / "calibration_targets" / f"{wave}.parquet")
    household_id = catalog.register.household_id_column
    release = _small_groups(warehouse / "fictitious_dataset" / f"{wave}.parquet", tmp_path / "release.parquet")
    on_disk = {
        "register": _small_groups(warehouse / f"harmonised_{catalog.register_name}" / f"{wave}.parquet",
                                  tmp_path / "register.parquet"),
        "matched": _small_groups(warehouse / "matched_dataset" / f"{wave}.parquet", tmp_path / "matched.parquet"),
        "linked_tus": _small_groups(warehouse / "linked_tus" / f"{wave}.parquet", tmp_path / "linked_tus.parquet"),
    }
    assert release.rows_in_order(["replicate", household_id]) and len(whole) > 5 * ROWS
    household_check = build_household_variables_check(catalog, keys.FICTITIOUS_DATASET)
    calibration_check = build_calibration_check(catalog)
    top_coding_check = build_top_coding_check(catalog)
    aggregates_check = build_linked_checks(catalog, "tus")[1]

    with monkeypatch.context() as patch:
        _forbid_whole_reads(patch)
        households = household_check(release)
        calibrated = calibration_check(fictitious_dataset=release, targets=targets, register=on_disk["register"])
        top_coded = top_coding_check(fictitious_dataset=release, matched=on_disk["matched"])
        recomputed = _linked_parts_of_rows(patch, 5 * ROWS)
        aggregates = aggregates_check(fictitious=release, linked_tus=on_disk["linked_tus"])

    # the figures of each replicate read whole
    assert households.passed
    assert households.metadata["households"].value == whole[["replicate", household_id]].drop_duplicates().shape[0]
    assert calibrated.passed, calibrated.description
    table = pd.read_csv(io.StringIO(calibrated.metadata["replicates"].value.replace(" ", "")),
                        sep="|").dropna(axis=1, how="all").iloc[1:].astype(float)
    spec = spec_from_catalog(catalog)
    structure = ["household_size", "household_type"]
    real = register.drop_duplicates(household_id).groupby(structure).size()
    for (number, replicate), row in zip(whole.groupby("replicate"), table.itertuples(), strict=True):
        residuals = Targets.from_frame(spec, targets).residuals(replicate, household_id)
        assert row.replicate == number and row.beyond_tolerance == (~residuals["within"]).sum()
        assert row.max_abs_count_difference == residuals.loc[residuals["kind"] == "count", "difference"].abs().max()
        released = replicate.drop_duplicates(household_id).groupby(structure).size()
        cells = real.index.union(released.index)
        tvd = (released.reindex(cells, fill_value=0) / released.sum() - real.reindex(cells, fill_value=0) / real.sum())
        assert row.household_structure_tvd == pytest.approx(round(tvd.abs().sum() / 2, 5), abs=1e-5)
    expected = tail_thresholds(matched, [v for v in catalog.amounts() if v in matched], catalog.release.top_coding.quantile)
    assert top_coded.passed and top_coded.metadata["thresholds"].value == {v: round(t, 2) for v, t in expected.items()}
    assert aggregates.passed, aggregates.description
    # row groups joined five at a time (each recomputation costs pandas' set-up, whatever its rows): one
    # recomputation a joined part, two where a part holds the end of a replicate and the next one's start
    linked_rows, replicates = on_disk["linked_tus"].num_rows, whole["replicate"].nunique()
    assert sum(recomputed) == linked_rows and max(recomputed) <= 8 * ROWS  # a share, a row group, a person
    assert len(recomputed) <= -(-linked_rows // (5 * ROWS)) + replicates - 1
    universe = whole[list(catalog.sources["tus"].aggregates)].ge(0).all(axis=1).sum()
    assert re.search(rf"\|\s+{universe}\s+\|\s+0\s+\|", aggregates.metadata["aggregates"].value)

    # a household straddling two row groups, one of its members given another household value: caught
    ids = whole[household_id].to_numpy()
    straddling = next(i for i in range(ROWS, len(whole), ROWS) if ids[i] == ids[i - 1])
    variable = next(v for v in catalog.household_variables() if v in whole and whole[v].nunique() > 1)
    broken = whole.copy()
    values = broken[variable].dropna().unique()
    broken.loc[broken.index[straddling], variable] = next(v for v in values if v != broken[variable].iloc[straddling])
    write_rows(broken, tmp_path / "broken.parquet", row_group_rows=ROWS)
    with monkeypatch.context() as patch:
        _forbid_whole_reads(patch)
        refused = household_check(ParquetTable(tmp_path / "broken.parquet"))
    assert not refused.passed and refused.metadata["households_disagreeing"].value == {variable: 1}
    # a person's aggregate off, in the last row group: caught once
    off = whole.copy()
    aggregate = list(catalog.sources["tus"].aggregates)[0]
    last = np.flatnonzero(off[aggregate].ge(0).to_numpy())[-1]
    off.loc[off.index[last], aggregate] += 30
    write_rows(off, tmp_path / "off.parquet", row_group_rows=ROWS)
    with monkeypatch.context() as patch:
        _forbid_whole_reads(patch)
        _linked_parts_of_rows(patch, 5 * ROWS)
        refused = aggregates_check(fictitious=ParquetTable(tmp_path / "off.parquet"), linked_tus=on_disk["linked_tus"])
    assert not refused.passed and f"{aggregate} 1 " in refused.description
