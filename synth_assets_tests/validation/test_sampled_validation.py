"""Validation at the cost of a sample: bounded sample, sampling errors, exhaustive copy tests."""

import importlib
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synth_assets.validation import evaluate, headline_markdown
from synth_assets.validation.privacy.copies import replicated_uniques
from synth_assets_tests.validation.populations import population

QIS = ["age", "sex", "region", "hsize"]
MAX_ROWS = 300


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    real, holdout = population(1500, 1), population(1500, 2)
    synthetic = population(6000, 3)
    # a real record unique on the quasi-identifiers, copied whole into the release's last row
    unique = next(i for i in range(len(real)) if replicated_uniques(real.iloc[[i]], real, QIS)["n_replicated"])
    synthetic.iloc[-1] = real.iloc[unique]
    return real, holdout, synthetic, unique


@pytest.fixture(scope="module")
def sizes_seen(tables, monkeypatch_module) -> dict[str, Any]:
    """Rows each sampled metric received, and the result of one sampled evaluation."""
    evaluate_module = importlib.import_module("synth_assets.validation.evaluate")
    seen: dict[str, Any] = {"kmarginal": [], "pmse": [], "dcr": []}

    def recording(name, function):
        def wrapped(*args, **kwargs):
            seen[name] += [len(args[0]), len(args[1])]
            return function(*args, **kwargs)
        return wrapped

    for name in list(seen):
        attribute = {"kmarginal": "kmarginal_scores"}.get(name, name)
        monkeypatch_module.setattr(evaluate_module, attribute, recording(name, getattr(evaluate_module, attribute)))
    real, holdout, synthetic, _ = tables
    seen["result"] = evaluate(real, synthetic, holdout=holdout, quasi_identifiers=QIS, max_rows=MAX_ROWS,
                              figures=False, seed=0)
    return seen


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def test_sampled_metrics_never_see_more_than_max_rows(sizes_seen):
    for name in ("kmarginal", "pmse", "dcr"):
        assert sizes_seen[name] and max(sizes_seen[name]) == MAX_ROWS, name
    sample = sizes_seen["result"].details["sample"]
    assert sample["rows"] == MAX_ROWS and sample["rows_synthetic"] == 6000


def test_a_copy_beyond_the_sample_is_still_found(tables, sizes_seen):
    real, _, synthetic, _ = tables
    assert len(synthetic) - 1 not in synthetic.sample(n=MAX_ROWS, random_state=0).index  # planted beyond the sample
    result = sizes_seen["result"]
    assert result.metrics["exact_copy_rate"] == pytest.approx(1 / len(synthetic))
    assert result.details["replicated_uniques"]["n_replicated"] == 1
    copy_check = next(c for c in result.checks if c.metric == "exact_copy_rate")
    assert "of 1,500 holdout rows" in copy_check.basis  # the baseline's copies, counted over every holdout row


def test_sampling_error_is_reported_beside_each_sampled_figure(sizes_seen):
    result = sizes_seen["result"]
    errors = result.sampling_error
    assert {"kmarginal_1", "kmarginal_3", "s_pmse", "propensity_auc", "dcr_share", "mia_auc"} <= set(errors)
    assert all(np.isfinite(v) and v >= 0 for v in errors.values())
    assert errors["kmarginal_3"] > 0 and errors["dcr_share"] > 0
    assert "exact_copy_rate" not in errors  # exhaustive: no sampling error
    assert result.to_dict()["sampling_error"] == pytest.approx(errors)
    assert f"± {errors['kmarginal_3']:.2g}" in headline_markdown(result)


def test_tables_within_max_rows_are_exact(tables):
    real, holdout, synthetic, _ = tables
    result = evaluate(real, synthetic.iloc[:1000], holdout=holdout, max_rows=5000, figures=False,
                      error_subsamples=1)
    assert result.details["sample"]["rows"] == 1500
    assert result.sampling_error and all(v == 0 for v in result.sampling_error.values())
    whole = evaluate(real, synthetic.iloc[:1000], holdout=holdout, figures=False)
    assert whole.sampling_error == {} and "sample" not in whole.details
    assert whole.metrics["kmarginal_3"] == result.metrics["kmarginal_3"]
