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


def test_tables_left_in_their_files_give_the_same_result_as_in_memory(tables, tmp_path):
    """Samples taken a row group at a time, copies hashed a row group at a time: the same figures.

    The release is stacked (two replicates, replicate 1 a view of the file), the training data
    and a replicate's own training data are views (rows of some households, some columns), and
    row groups are small so that every sample and hash crosses many of them.
    """
    from synth_assets.common.frames import ParquetTable, write_rows
    from synth_assets.validation.preparation import seeded_sample

    real, holdout, synthetic, _ = tables
    columns = list(real.columns)
    real = real.assign(household=np.arange(len(real)) // 3)
    stacked = pd.concat([synthetic.assign(replicate=1), population(2000, 4).assign(replicate=2)], ignore_index=True)
    own = pd.concat([real.assign(replicate=r) for r in (1, 2)], ignore_index=True)
    own.loc[own["replicate"] == 2, "income"] *= 1.01
    for name, frame in {"real": real, "holdout": holdout, "release": stacked, "own": own}.items():
        write_rows(frame, tmp_path / f"{name}.parquet", row_group_rows=250)
    files = {name: ParquetTable(tmp_path / f"{name}.parquet") for name in ("real", "holdout", "release", "own")}
    households = np.arange(0, 400, 2)  # a training sample of some households
    kept = real["household"].isin(households)
    second = stacked[stacked["replicate"] == 2][columns]
    common = dict(quasi_identifiers=QIS, max_rows=MAX_ROWS, figures=False, seed=3, error_subsamples=1)
    in_memory = evaluate(
        real.loc[kept, columns], synthetic[columns], holdout=holdout,
        replicates=[seeded_sample(synthetic[columns], MAX_ROWS, 3), seeded_sample(second, MAX_ROWS, 3)],
        replicate_reals=[own.loc[(own["replicate"] == r) & own["household"].isin(households), columns]
                         for r in (1, 2)], **common)
    on_disk = evaluate(
        files["real"].where("household", households).select(columns),
        files["release"].where("replicate", [1]).select(columns), holdout=files["holdout"],
        replicates=[seeded_sample(files["release"].where("replicate", [r]).select(columns), MAX_ROWS, 3)
                    for r in (1, 2)],
        replicate_reals=[files["own"].where("replicate", [r]).where("household", households).select(columns)
                         for r in (1, 2)], **common)
    assert on_disk.metrics == in_memory.metrics
    assert on_disk.baseline == in_memory.baseline
    assert on_disk.sampling_error == in_memory.sampling_error
    assert on_disk.details["replicated_uniques"] == in_memory.details["replicated_uniques"]
    assert on_disk.metrics["exact_copy_rate"] == pytest.approx(1 / len(synthetic))  # the planted copy, found
    assert [c.message for c in on_disk.checks] == [c.message for c in in_memory.checks]


def test_the_three_groups_of_figures_forked_side_by_side_give_the_same_result(tables, sizes_seen):
    """``processes=2``: the utility figures, the privacy figures and the further samples each scored in
    a child of its own; the same figures, tables and errors as one after the other, and each child's
    progress lines reach the caller's callback (through the relayed ``synth_assets`` logger)."""
    import logging
    import os

    real, holdout, synthetic, _ = tables
    lines: list[str] = []
    evaluate_module = importlib.import_module("synth_assets.validation.evaluate")
    patch = pytest.MonkeyPatch()
    # a function each group alone calls (the further samples recompute utility figures and DCR too)
    for group, name in (("further samples", "subsample_figures"), ("utility", "worst_variable"),
                        ("privacy", "singling_out_risk")):
        original = getattr(evaluate_module, name)

        def recording(*args, _original=original, _group=group, **kwargs):  # says where it runs
            logging.getLogger("synth_assets.validation").info(f"{_group} in process {os.getpid()}")
            return _original(*args, **kwargs)

        patch.setattr(evaluate_module, name, recording)
    try:
        forked = evaluate(real, synthetic, holdout=holdout, quasi_identifiers=QIS, max_rows=MAX_ROWS, figures=False,
                          seed=0, processes=2, progress=lines.append)
    finally:
        patch.undo()
    alone = sizes_seen["result"]  # processes=None: in this process, one after the other
    where = {group: {line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"{group} in process ")}
             for group in ("further samples", "utility", "privacy")}
    assert all(len(pids) == 1 for pids in where.values()), where  # each group in one process
    pids = {next(iter(p)) for p in where.values()}
    assert len(pids) == 3 and str(os.getpid()) not in pids  # three children, none of them this process
    assert forked.metrics == pytest.approx(alone.metrics, nan_ok=True)
    assert list(forked.metrics) == list(alone.metrics)  # the report's order too
    assert forked.sampling_error == pytest.approx(alone.sampling_error) and forked.sampling_error
    assert forked.baseline == pytest.approx(alone.baseline, nan_ok=True)
    assert sorted(forked.tables) == sorted(alone.tables)
    for name, table in alone.tables.items():
        pd.testing.assert_frame_equal(forked.tables[name], table)
    assert [c.passed for c in forked.checks] == [c.passed for c in alone.checks]
    assert set(forked.details) == set(alone.details)
    assert set(forked.details["timings_s"]) == set(alone.details["timings_s"])
    assert any(line.startswith("metrics: sampling_error (") for line in lines)
    assert any(line.startswith("metrics: dcr (") for line in lines)


def test_figures_of_both_groups_are_rendered(tables):
    """The utility group's plots and the privacy group's DCR plot, rendered in their children, all reach
    the result."""
    real, holdout, synthetic, _ = tables
    result = evaluate(real, synthetic, holdout=holdout, max_rows=2_000, error_subsamples=0, seed=0, processes=2)
    assert result.figures["privacy:dcr"].startswith(b"\x89PNG")
    assert result.figures["association:cramers_v"].startswith(b"\x89PNG")
    assert any(name.startswith("variable:") for name in result.figures), sorted(result.figures)
