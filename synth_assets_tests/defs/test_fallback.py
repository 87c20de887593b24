"""The fallback family: a release the gate refuses is released again from ``model.fallback_family``.

The unit tests judge the decision (which failures are the gate's, which run follows); the
pipeline tests run it on the tiny demo: a primary model the gate refuses for real (SDV's
Gaussian copula, whose draws break the catalog's rules); the prepared release is the
primary that passes.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import dagster as dg
import pytest

from synth_assets.defs import keys
from synth_assets.defs.synthesis.assets import ModelConfig
from synth_assets.defs.synthesis.fallback import (
    FALLBACK_OF_TAG,
    REFUSED_BY_TAG,
    fallback_of,
    fallback_run,
    gate_refusals,
)
from synth_assets.operations.settings import SettingsError, release_run_config
from synth_assets_tests.defs.conftest import FAST_RELEASE, Prepared

SUBSET = {"population_model", "fictitious_dataset", "validation_report", "public_dataset"}


def _evaluation(asset: dg.AssetKey, check: str, passed: bool, description: str | None = None):
    return SimpleNamespace(asset_key=asset, check_name=check, passed=passed, description=description)


def test_gate_refusals_name_each_failed_gate_check_with_its_figures():
    evaluations = [
        _evaluation(keys.VALIDATION_REPORT, keys.THRESHOLDS_PASS, False, "k3_marginal 512 below 739"),
        _evaluation(keys.FICTITIOUS_DATASET, keys.NO_REAL_RECORD_COPIED, True),
        _evaluation(keys.linked("tus"), keys.NO_REAL_DAY_COPIED, False, "3 days copied"),
        # a failed check that is not the gate's (the matched data's) refuses no release
        _evaluation(keys.MATCHED_DATASET, keys.HOUSEHOLD_VARIABLES_CONSTANT, False, "x"),
    ]
    assert gate_refusals(evaluations) == ["validation_report.thresholds_pass: k3_marginal 512 below 739",
                                          "linked_tus.no_real_day_copied: 3 days copied"]
    # a step that raised is a fault, not a refusal: no fallback hides it
    fault = SimpleNamespace(cls_name="OSError", message="OSError: disk full", cause=None)
    assert gate_refusals(evaluations, [("fictitious_dataset", fault)]) == []


def test_draws_the_rules_reject_are_a_refusal_naming_the_rule():
    """The model's draws broke the catalog's rules beyond the enforcement's limit: the
    fictitious dataset stopped before the gate, for the model's fault, not the code's."""
    rules = SimpleNamespace(cls_name="RuleViolationError", cause=None,
                            message="synth_assets.synthesis.constraints.RuleViolationError: 96% of generated "
                                    "households are rejected, most often rule `age >= 15 or occupation == 'none'`")
    wrapped = SimpleNamespace(cls_name="DagsterExecutionStepExecutionError", message="error in op", cause=rules)
    assert gate_refusals([], [("fictitious_dataset", wrapped)]) == [
        "fictitious_dataset: the model's draws broke the catalog's rules: 96% of generated households are "
        "rejected, most often rule `age >= 15 or occupation == 'none'`"]
    # the same error anywhere else is not the model's draws judged
    assert gate_refusals([], [("population_model", wrapped)]) == []


def _model(config):
    return ModelConfig(**(config or {}).get("ops", {}).get("population_model", {}).get("config", {}))


def _config(**model):
    return {"ops": {"population_model": {"config": model}, "matched_dataset": {"config": {"k": 5}},
                    "fictitious_dataset": {"config": {"replicates": 2}}}}


def test_fallback_run_trains_the_fallback_for_both_models_from_the_refused_runs_sample():
    config = _config(family="neural", person_family="neural", fallback_family="cart", epochs=3, seed=4,
                     params={"hidden": [8], "max_copy_rounds": 7})
    run = fallback_run(config, _model(config), "abc123", ["validation_report.thresholds_pass: k3 512 below 739"],
                       SUBSET)
    assert run is not None and run.family == "cart" and run.refused_family == "neural/neural"
    model = run.run_config["ops"]["population_model"]["config"]
    assert model["family"] == model["person_family"] == "cart" and model["fallback_family"] is None
    assert model["params"] == {"max_copy_rounds": 7}  # an option both take passes on, the neural's own does not
    assert model["seed"] == 4
    # the matching is not run again: the fallback learns from the refused run's training sample
    assert set(run.run_config["ops"]) == {"population_model", "fictitious_dataset"}
    assert run.run_config["ops"]["fictitious_dataset"] == {"config": {"replicates": 2}}
    assert "resources" not in run.run_config
    # the machine's use as the refused run set it (compute.processes=1: one replicate at a time)
    config["resources"] = {"compute": {"config": {"processes": 1}}}
    again = fallback_run(config, _model(config), "abc123", ["x"], SUBSET)
    assert again is not None and again.run_config["resources"] == config["resources"]
    assert fallback_of(run.tags) == {"refused_run": "abc123", "instead_of": "neural/neural",
                                     "refused_by": ["validation_report.thresholds_pass: k3 512 below 739"]}
    assert json.loads(run.tags[REFUSED_BY_TAG]) == run.refused_by


def test_no_fallback_without_a_fallback_family_or_a_refusal():
    refused = ["validation_report.thresholds_pass: k3 512 below 739"]
    for config, refusals in ((_config(family="neural", fallback_family=None), refused),
                             (_config(family="neural", fallback_family="cart"), [])):
        assert fallback_run(config, _model(config), "r", refusals, SUBSET) is None
    # the defaults: the neural network, released by CART when the gate refuses it
    default = fallback_run(None, _model(None), "r", refused, SUBSET)
    assert default is not None and default.family == "cart" and default.refused_family == "neural/neural"
    assert fallback_of({}) is None


def test_fallback_family_is_a_checked_setting():
    config = release_run_config({"model.family": "neural", "model.fallback_family": "cart"})
    assert config["ops"]["population_model"]["config"]["fallback_family"] == "cart"
    with pytest.raises(SettingsError, match="'crat' is not a model family"):
        release_run_config({"model.fallback_family": "crat"})


# ------------------------------------------------------------------------------- pipeline
#: A primary refused for real, and soon: SDV's Gaussian copula, blind to the catalog's rules,
#: has most households of its first draw rejected (measured: 84%, most often
#: `not (household_type == 'single' and household_size != 1)`), so `fictitious_dataset` stops
#: there. Not a tiny neural model: that draws within the rules (neural.RuleMasks) and was refused
#: only by `calibrated_to_register`, after 77 s of household redraws. CART is the fallback.
REFUSED_PRIMARY = {"ops": {
    "population_model": {"config": {"family": "copula", "person_family": "copula", "fallback_family": "cart",
                                    "seed": 0}},
    "matched_replicates": {"config": {"replicates": 2}},
    "fictitious_dataset": {"config": {"replicates": 2}},
    "validation_report": {"config": {"error_subsamples": 0}},
}}


def _run(prepared: Prepared, instance, config):
    from synth_assets.catalog import load_catalog
    from synth_assets.common.layout import DataLayout
    from synth_assets.defs.definitions import build_definitions
    from synth_assets.operations.runner import run_pipeline

    layout = DataLayout(prepared.root)
    return run_pipeline(build_definitions(prepared.root), load_catalog(layout.catalog), layout, instance,
                        release_config=config, echo=lambda _: None)


@pytest.mark.slow
def test_a_refused_primary_is_released_by_the_fallback_which_names_the_refusal(ingested_copy: Prepared):
    from synth_assets.dagster_api import latest_materialization, materializations

    with ingested_copy.instance() as instance:
        outcome = _run(ingested_copy, instance, REFUSED_PRIMARY)
        (refused,) = [r for r in outcome.runs if r.job == "release"]
        assert not refused.success and refused.refused_by, refused.failures
        assert refused.fallback is not None and refused.fallback.success, refused.fallback.failures
        assert outcome.success and outcome.fallbacks == [refused]
        # lineage: both attempts, the fallback's model naming the refused run and why
        models = materializations(instance, keys.POPULATION_MODEL, "2024")
        assert [m.run_id for m in models] == [refused.fallback.run_id, refused.run_id]
        assert models[0].metadata["family"] == "cart" and models[1].metadata["family"] == "copula"
        assert models[0].metadata["fallback_of_run"] == refused.run_id
        assert models[0].metadata["fallback_instead_of"] == "copula/copula"
        fallback_run_record = instance.get_run_by_id(refused.fallback.run_id)
        assert fallback_run_record is not None and fallback_run_record.tags[FALLBACK_OF_TAG] == refused.run_id
        # the fallback learnt from the refused run's training sample: matching did not run again
        assert latest_materialization(instance, keys.TRAINING_SAMPLE, "2024").run_id == refused.run_id
        published = latest_materialization(instance, keys.PUBLIC_DATASET, "2024")
        assert published is not None and published.run_id == refused.fallback.run_id
    # nothing refused was promoted: one release, CART's, its card naming the refusal with figures
    releases = [p for p in (ingested_copy.root / "public").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert releases == [ingested_copy.release]
    card = json.loads((ingested_copy.release / "data_card.json").read_text())
    assert card["model"]["family"] == "cart"
    assert card["model"]["fallback"]["instead_of"] == "copula/copula"
    assert card["model"]["fallback"]["refused_by"] == refused.refused_by
    assert all(any(ch.isdigit() for ch in line) for line in refused.refused_by)  # the figures, not just names
    assert any(line.startswith(("fictitious_dataset", "validation_report")) for line in refused.refused_by)
    markdown = (ingested_copy.release / "data_card.md").read_text()
    assert "fallback: this model replaced copula/copula, whose release the gate refused:" in markdown
    assert refused.run_id not in markdown  # run ids are for auditors, not the public card


def test_a_primary_that_passes_is_published_without_fallback(release_copy: Prepared):
    """The prepared release names a fallback family (conftest.FAST_RELEASE) and passes the gate."""
    from synth_assets.dagster_api import materializations

    assert FAST_RELEASE["ops"]["population_model"]["config"]["fallback_family"] == "neural"
    with release_copy.instance() as instance:
        (model,) = materializations(instance, keys.POPULATION_MODEL, "2024")
        assert model.metadata["family"] == "cart" and "fallback_of_run" not in model.metadata
        assert not [r for r in instance.get_runs() if FALLBACK_OF_TAG in r.tags]
    card = json.loads((release_copy.release / "data_card.json").read_text())
    assert card["model"]["family"] == "cart" and "fallback" not in card["model"]
