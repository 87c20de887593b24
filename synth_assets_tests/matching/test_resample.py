"""The design bootstrap of a survey: whole households, rescaled weights, fresh ids."""

import numpy as np
import pandas as pd
import pytest

from synth_assets.matching.resample import resample_survey


def _survey():
    sizes = np.array([1, 2, 3, 4] * 25)
    hh = np.repeat(np.arange(100) + 1000, sizes)
    return pd.DataFrame({"hid": hh, "pid": np.arange(len(hh)), "w": 10.0,
                         "size": np.repeat(sizes, sizes), "stratum": hh % 2})


def test_households_are_kept_whole_and_weights_rescaled():
    table = _survey()
    out = resample_survey(table, np.random.default_rng(0), weight="w", household_id="hid", person_id="pid")
    assert out.groupby("hid").size().eq(out.groupby("hid")["size"].first()).all()  # members together
    assert out["hid"].nunique() == 99  # n - 1 households drawn (Rao-Wu)
    assert np.allclose(out["w"], 10 * 100 / 99)
    assert out["pid"].is_unique
    assert set(out.columns) == set(table.columns)


def test_strata_keep_their_household_counts_and_the_bootstrap_varies():
    table = _survey()
    means = []
    for seed in range(50):
        out = resample_survey(table, np.random.default_rng(seed), weight="w", household_id="hid", strata="stratum")
        heads = out.drop_duplicates("hid")
        assert heads.groupby("stratum").size().tolist() == [49, 49]
        means.append(np.average(out["size"], weights=out["w"]))
    assert np.std(means) > 0


def test_a_draw_names_the_delivered_row_each_of_its_rows_copies():
    table = _survey()
    out = resample_survey(table, np.random.default_rng(3), weight="w", household_id="hid", person_id="pid",
                          copies_column="copy_of")
    copied = table.iloc[out["copy_of"].to_numpy()]
    assert (out["size"].to_numpy() == copied["size"].to_numpy()).all()
    assert (out["stratum"].to_numpy() == copied["stratum"].to_numpy()).all()
    # a household drawn twice: two households with fresh ids, each member's copies naming one row
    drawn_twice = out.groupby("copy_of")["hid"].nunique()
    assert (drawn_twice > 1).any()
    assert (out.groupby("copy_of")["hid"].nunique() == out.groupby("copy_of").size()).all()
    assert set(out.columns) == set(table.columns) | {"copy_of"}
    empty = resample_survey(table.iloc[:0], np.random.default_rng(0), weight="w", copies_column="copy_of")
    assert list(empty.columns) == [*table.columns, "copy_of"]
    with pytest.raises(ValueError, match="already has a column 'size'"):
        resample_survey(table, np.random.default_rng(0), weight="w", household_id="hid", copies_column="size")
