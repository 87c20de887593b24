"""Scale smoke test: not timed (timings live in bench/matching), only "it works, memory-bounded"."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.matching import fuse


def test_200k_recipients_by_10k_donors() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.integers(16, 90, n),
                "sex": rng.choice(["f", "m"], n),
                "region": rng.choice(list("ABCDEFGHI"), n),
                "income": rng.lognormal(10, 1, n),
                "w": rng.uniform(50, 500, n),
            }
        )

    recipient, donor = frame(200_000), frame(10_000)
    donor["z"] = np.where(donor["age"] > 60, "retired", "active")
    result = fuse(
        recipient,
        donor,
        on=["age", "sex", "region", "income"],
        impute=["z"],
        donor_weight="w",
        donation_classes=["sex"],
        chunk_size=50_000,
    )
    assert len(result.data) == 200_000 and result.data["z"].notna().all()
    assert result.diagnostics.marginal["z"]["value"] < 0.01
    assert ((result.data["z"] == "retired") == (result.data["age"] > 60)).mean() > 0.99
