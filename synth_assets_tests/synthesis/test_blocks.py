import numpy as np
import pandas as pd

from synth_assets.synthesis.blocks import BlockDonors

LABELS = {"c": ["x", "y", "z"]}


def _donors(seed: int = 0) -> BlockDonors:
    train = pd.DataFrame({"c": ["x", "x", "x", "y", "y"], "a": [1.0, 2.0, 3.0, 10.0, 20.0], "b": [5, 6, 7, 8, 9.0]})
    return BlockDonors([["c", "a", "b"]], seed=seed).fit(train, LABELS)


def test_a_row_takes_the_block_of_the_nearest_record_with_its_labels() -> None:
    drawn = pd.DataFrame({"c": ["x", "y", "x"], "a": [2.9, 2.9, 0.5], "b": [7.1, 5.0, 5.2], "other": [1, 2, 3]})
    out = _donors().take(drawn, np.random.default_rng(0))
    # the nearest by rank among records of the same label, whole (b comes with a)
    assert out[["c", "a", "b"]].values.tolist() == [["x", 3.0, 7.0], ["y", 10.0, 8.0], ["x", 1.0, 5.0]]
    assert out["other"].tolist() == [1, 2, 3]  # columns outside the block are left alone


def test_a_label_no_record_has_takes_a_block_of_the_closest_labels() -> None:
    drawn = pd.DataFrame({"c": ["z"] * 50, "a": [15.0] * 50, "b": [8.5] * 50})
    out = _donors().take(drawn, np.random.default_rng(0))
    real = {("x", 1.0, 5.0), ("x", 2.0, 6.0), ("x", 3.0, 7.0), ("y", 10.0, 8.0), ("y", 20.0, 9.0)}
    assert set(map(tuple, out[["c", "a", "b"]].to_numpy())) <= real


def test_equal_records_are_taken_in_turn_not_always_the_first() -> None:
    train = pd.DataFrame({"c": ["x"] * 4, "a": [1.0] * 4, "b": [2.0] * 4})
    donors = BlockDonors([["c", "a", "b"]], seed=0).fit(train, LABELS)
    drawn = pd.DataFrame({"c": ["x"] * 400, "a": [1.0] * 400, "b": [2.0] * 400})
    (records,) = donors.donor_records(drawn, np.random.default_rng(0))
    assert set(records) == {0, 1, 2, 3}  # the four equal records, each taken by some rows
