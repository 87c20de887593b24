"""The report's population section, one replicate at a time: the tables of the whole release."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_assets.calibration import register_targets
from synth_assets.common.frames import ParquetTable, write_rows
from synth_assets.matching import missing_shares
from synth_assets.validation.population import population_tables, residuals_by_margin

from ..calibration.test_calibration import SPEC, population


def test_population_tables_from_disk_by_households_equal_those_of_the_whole_release(tmp_path, monkeypatch):
    """On disk the release is read a row group at a time in parts of whole households (households
    straddle the row groups), never a replicate or the whole table at once: the same tables."""
    targets = register_targets(population(300, 0), SPEC, "household_id")
    release = pd.concat([population(300, r).assign(replicate=r) for r in (1, 2)], ignore_index=True)
    release.loc[release.index[-40:], "income"] = np.nan  # missing values in replicate 2 only
    matched = population(300, 9)
    sources = {"register": matched[["region", "sex", "age"]]}
    write_rows(release, tmp_path / "release.parquet", row_group_rows=200)
    columns = [c for c in matched.columns if c != "household_id"]
    # what the section gave when it took the whole release at once
    expected_residuals = residuals_by_margin({int(r): targets.residuals(g, "household_id")
                                              for r, g in release.groupby("replicate")})
    assert expected_residuals["beyond_tolerance"].sum() > 0  # other populations than the targets': residuals to add up
    expected_missing = missing_shares(sources, matched[columns], release[columns]).reset_index()
    on_disk = ParquetTable(tmp_path / "release.parquet")
    assert on_disk.rows_in_order(["replicate", "household_id"])
    for given in (release, on_disk):
        with monkeypatch.context() as patch:
            for method in ("part", "read"):
                patch.setattr(ParquetTable, method, lambda *a, **k: pytest.fail("a replicate or the release read whole"))
            tables, figures = population_tables(targets, given, "household_id", sources, matched)
        pd.testing.assert_frame_equal(tables["population: calibration residuals by margin"], expected_residuals,
                                      check_exact=False, rtol=1e-12)
        pd.testing.assert_frame_equal(tables["population: missing values (share of records)"], expected_missing)
        assert figures["population:calibration"].startswith(b"\x89PNG")
    missing = expected_missing.set_index("variable")["release"]
    assert missing["income"] == 40 / len(release) and missing["age"] == 0
