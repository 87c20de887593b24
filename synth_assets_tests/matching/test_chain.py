"""fuse_chain: a later step matches on what an earlier one imputed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from synth_assets.matching import FusionStep, fuse_chain
from synth_assets_tests.matching.data import X, population, survey_pair


def test_second_step_matches_on_the_first_steps_imputation() -> None:
    base, labour_survey, _ = survey_pair(2000, 1000)
    income_survey = population(1500, seed=9)[X + ["status", "weight"]]
    income_survey["benefit"] = np.where(income_survey["status"] == "work", 0.0, 500.0)
    steps = [
        FusionStep(labour_survey, on=X, impute=["status", "hours"], donor_weight="weight"),
        FusionStep(
            income_survey,
            on=["age", "sex"],
            impute=["benefit"],
            donor_weight="weight",
            donation_classes=["status"],
            method="nnd_hotdeck",
            options={"k": 3},
        ),
    ]
    data, results = fuse_chain(base, steps, recipient_weight="weight", seed=1)
    assert len(results) == 2 and results[1].data is data
    assert ((data["status"] == "work") == (data["benefit"] == 0.0)).all()
    assert list(data.columns) == list(base.columns) + ["status", "hours", "benefit"]
    assert json.loads(json.dumps([r.to_dict() for r in results]))[1]["impute"] == ["benefit"]
    pd.testing.assert_frame_equal(data[base.columns], base)
