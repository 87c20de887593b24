"""validation_report compares model families when its config asks, and the gate ignores them."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from synth_assets.defs.definitions import build_definitions
from synth_assets.operations.runner import latest_report
from synth_assets_tests.defs.conftest import FAST_RELEASE, Prepared, built_once

pytestmark = pytest.mark.slow

# the Gaussian copula's households break the time-use survey's universe (children under 10 drawn
# with diary minutes) beyond what redraws fix: the comparison reports it as that family's error
COMPARED = ["cart", "neural"]
#: the prepared release's validation settings (no sampling-error subsamples: conftest.FAST_RELEASE)
VALIDATION = FAST_RELEASE["ops"]["validation_report"]["config"]
COMPARISON = {**VALIDATION, "compare_families": COMPARED, "compare_epochs": 5}


@dataclass
class Released:
    """What the run with the comparison left, read before any other run overwrites it."""

    instance: dg.DagsterInstance
    defs: dg.Definitions
    wave: str
    reports: Path
    report_html: str
    metrics: dict
    comparison_csv: pd.DataFrame
    metadata: dict


@pytest.fixture(scope="session")
def prepared_comparison(tmp_path_factory, prepared_release: Prepared) -> Prepared:
    """The prepared release validated again with the comparison asked for, and published: once per
    session, shared by the xdist workers (a module fixture ran it once in each worker that took one
    of this module's tests, 50-60 s each time).

    Everything up to the fictitious dataset is the prepared release's: the comparison is
    validation_report's alone, and public_dataset must publish what that report judged.
    """

    def build(prepared: Prepared) -> None:
        shutil.rmtree(prepared.home)
        prepared_release.copy_to(prepared.root.parent)
        wave = prepared.release.name.split("-")[0]
        with prepared.instance() as instance:
            compared = build_definitions(prepared.root).resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance, partition_key=wave, raise_on_error=False,
                asset_selection=[dg.AssetKey("validation_report"), dg.AssetKey("public_dataset")],
                run_config={"ops": {"validation_report": {"config": COMPARISON}}},
            )
            assert compared.success, [e.message for e in compared.all_events if e.is_step_failure]
            assert latest_report(instance, wave, compared.run_id) is not None  # the compared run's report
        assert prepared.release.name != prepared_release.release.name  # a new release, on the compared report

    return built_once(tmp_path_factory, "comparison", build)


@pytest.fixture(scope="module")
def released(tmp_path_factory, prepared_comparison: Prepared):
    """A copy of the compared release, for this module's tests to validate again."""
    copy = prepared_comparison.copy_to(tmp_path_factory.mktemp("comparison"))
    defs = build_definitions(copy.root)
    wave = copy.release.name.split("-")[0]
    with copy.instance() as instance:
        reports = latest_report(instance, wave).parent  # reports/<wave>/<run id>/ of the compared run
        yield Released(
            instance, defs, wave, reports,
            report_html=(reports / "report.html").read_text(),
            metrics=json.loads((reports / "metrics.json").read_text()),
            comparison_csv=pd.read_csv(reports / "comparison.csv"),
            metadata=_report_metadata(instance),
        )


def _report_metadata(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey("validation_report"))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def _materialise_report(released: Released, config: dict) -> dg.ExecuteInProcessResult:
    """validation_report alone, on the upstream assets the release run stored."""
    job = released.defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=released.instance, partition_key=released.wave,
        asset_selection=[dg.AssetKey("validation_report")],
        run_config={"ops": {"validation_report": {"config": config}}}, raise_on_error=False,
    )


def test_report_csv_and_metadata_hold_the_comparison(released: Released) -> None:
    section = released.report_html[released.report_html.index("<h2>Model families compared</h2>"):]
    assert all(family in section for family in COMPARED) and "data:image/png;base64" in section
    table = released.comparison_csv
    assert list(table["family"]) == ["baseline (holdout)", *COMPARED]
    assert table["error"].isna().all() and (table["kmarginal_3"] > 0).all()
    # Rule-breaking households are replaced before scoring, as in the release itself.
    cart = table.set_index("family").loc["cart"]
    assert "rules_excess" not in str(cart["failed_checks"]), cart["failed_checks"]
    assert f"| {COMPARED[1]} |" in released.metadata["model_comparison"]
    assert "data:image/png;base64" in released.metadata["plot_model_comparison"]


def test_the_gate_judges_the_released_model_only(released: Released) -> None:
    """Without the comparison, the same checks with the same values and verdicts."""
    result = _materialise_report(released, VALIDATION)
    assert result.success
    reports = latest_report(released.instance, released.wave, result.run_id).parent
    assert reports != released.reports  # a run of its own writes a report of its own
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["checks"] == released.metrics["checks"] and metrics["passed"] == released.metrics["passed"]
    assert released.metadata["passed"] == released.metrics["passed"]


def test_unknown_family_fails_the_step_naming_the_valid_ones(released: Released) -> None:
    result = _materialise_report(released, {"compare_families": ["cart", "diffusion"]})
    assert not result.success
    error = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert "'diffusion' is not a model family; choose one of cart, neural, gan, ctgan, tvae, copula" in error.message
