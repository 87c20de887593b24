"""Replicates sampled without copying them whole: the rows the evaluation would have sampled."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.common.frames import ParquetTable, write_rows
from synth_assets.validation.preparation import replicate_samples, seeded_sample


def test_replicate_samples_are_the_seeded_samples_of_each_replicate(tmp_path):
    rng = np.random.default_rng(0)
    stacked = pd.DataFrame({
        "person_id": np.arange(1_000),
        "age": rng.integers(0, 90, 1_000),
        "sex": pd.Categorical(rng.choice(["f", "m"], 1_000)),
        "replicate": np.repeat([1, 2, 3], [400, 350, 250]),
    }).sample(frac=1.0, random_state=1)  # rows of a replicate need not be together
    columns = ["age", "sex"]
    write_rows(stacked, tmp_path / "stacked.parquet", row_group_rows=128)
    on_disk = ParquetTable(tmp_path / "stacked.parquet")
    for n in (100, 300, 5_000):  # fewer rows than a replicate, and more (the replicate whole)
        expected = [seeded_sample(g[columns], n, 7) for _, g in stacked.groupby("replicate")]
        got = replicate_samples(stacked, columns, n, 7)
        from_disk = replicate_samples(on_disk, columns, n, 7)  # one replicate read at a time
        assert len(got) == len(from_disk) == 3
        for mine, disk, theirs in zip(got, from_disk, expected):
            pd.testing.assert_frame_equal(mine, theirs)
            pd.testing.assert_frame_equal(disk, theirs)
