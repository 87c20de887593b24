"""The fallback family under the daemon: ``release_fallback_sensor`` requests the fallback run
of a release run the gate refused, once, and never for a fault or for a fallback run.

The failed runs are real runs on a real instance, of a stand-in release job (a few assets of
the release's names, failing the way the release fails) so no model is trained; the sensor
is the project's, from ``build_definitions``.
"""

import json

import dagster as dg
import pytest

from synth_assets.defs import keys
from synth_assets.defs.definitions import build_definitions
from synth_assets.defs.synthesis.fallback import REFUSED_BY_TAG, REFUSED_FAMILY_TAG, fallback_of
from synth_assets.defs.synthesis.fallback_sensor import FALLBACK_SENSOR
from synth_assets.synthesis.constraints import RuleViolationError
from synth_assets_tests.defs.conftest import tiny_catalog

MODEL = {"family": "neural", "person_family": "neural", "fallback_family": "cart", "epochs": 1, "seed": 3}
WAVE = "2024"
#: Run tag of the stand-in runs: how ``fictitious_dataset`` fails (so their config is the release's own).
FAILURE_TAG = "test/failure"


def _stand_in_release() -> dg.JobDefinition:
    """A job named like the release, its configs the release's, whose runs fail as the release's
    do: ``FAILURE_TAG`` says how (the gate's check, the catalog's rules, or a fault)."""
    partitions = dg.StaticPartitionsDefinition([WAVE])

    @dg.asset(name=keys.name(keys.POPULATION_MODEL), partitions_def=partitions, config_schema=dg.Permissive())
    def population_model() -> str:
        return "model"

    @dg.asset(name=keys.name(keys.FICTITIOUS_DATASET), partitions_def=partitions, deps=[population_model],
              config_schema=dg.Permissive())
    def fictitious_dataset(context: dg.AssetExecutionContext) -> str:
        failure = context.run.tags[FAILURE_TAG]
        if failure == "rules":
            raise RuleViolationError("96% of generated households are rejected, most often rule `age >= 15`")
        if failure == "fault":
            raise OSError("disk full")
        return failure

    @dg.asset(name=keys.name(keys.VALIDATION_REPORT), partitions_def=partitions)
    def validation_report(fictitious_dataset: str) -> str:
        return fictitious_dataset

    @dg.asset_check(asset=validation_report, name=keys.THRESHOLDS_PASS, blocking=True)
    def thresholds_pass(validation_report: str) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=validation_report != "gate", description="k3_marginal 512 below 739")

    defs = dg.Definitions(assets=[population_model, fictitious_dataset, validation_report],
                          asset_checks=[thresholds_pass],
                          jobs=[dg.define_asset_job("release", partitions_def=partitions)])
    return defs.resolve_job_def("release")


@pytest.fixture(scope="module")
def fallback_sensor(tmp_path_factory) -> tuple[dg.SensorDefinition, dg.Definitions]:
    root = tmp_path_factory.mktemp("catalog_only")
    tiny_catalog(root / "catalog.yaml")
    defs = build_definitions(root)
    return defs.resolve_sensor_def(FALLBACK_SENSOR), defs


def _failed_run(instance: dg.DagsterInstance, failure: str, tags: dict[str, str] | None = None,
                model: dict | None = None) -> dg.ExecuteInProcessResult:
    config = {"ops": {"population_model": {"config": MODEL if model is None else model},
                      "fictitious_dataset": {"config": {"replicates": 2}}}}
    result = _stand_in_release().execute_in_process(instance=instance, partition_key=WAVE, run_config=config,
                                                    tags={**(tags or {}), FAILURE_TAG: failure},
                                                    raise_on_error=False)
    assert not result.success
    return result


def _evaluate(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult):
    context = dg.build_run_status_sensor_context(
        sensor_name=FALLBACK_SENSOR, dagster_event=result.get_run_failure_event(), dagster_instance=instance,
        dagster_run=result.dagster_run)
    return sensor(context)


def test_a_refused_release_gets_its_fallback_run_once(fallback_sensor):
    sensor, defs = fallback_sensor
    with dg.DagsterInstance.ephemeral() as instance:
        refused = _failed_run(instance, "gate")
        request = _evaluate(sensor, instance, refused)
        assert isinstance(request, dg.RunRequest), request
        assert request.job_name == "release" and request.partition_key == WAVE
        assert request.run_key == refused.run_id  # the daemon requests it once per refused run
        # the model and what follows it, on the refused run's training sample: no matching again
        selected = set(request.asset_selection or [])
        assert {keys.POPULATION_MODEL, keys.FICTITIOUS_DATASET, keys.VALIDATION_REPORT,
                keys.PUBLIC_DATASET} <= selected
        assert keys.MATCHED_DATASET not in selected and keys.TRAINING_SAMPLE not in selected
        assert set(request.asset_selection or []) <= set(defs.resolve_job_def("release").asset_layer.executable_asset_keys)
        model = request.run_config["ops"]["population_model"]["config"]
        assert model["family"] == model["person_family"] == "cart" and model["fallback_family"] is None
        assert model["seed"] == 3 and model["epochs"] == 1
        assert request.run_config["ops"]["fictitious_dataset"] == {"config": {"replicates": 2}}
        # the real release job takes the request's config (the daemon would launch it)
        assert dg.validate_run_config(defs.resolve_job_def("release"), request.run_config)
        assert fallback_of(request.tags) == {
            "refused_run": refused.run_id, "instead_of": "neural/neural",
            "refused_by": ["validation_report.thresholds_pass: k3_marginal 512 below 739"]}

        # once its fallback exists (launched by the daemon or by `synth-assets run`), no second one;
        # and the fallback's own refusal gets no fallback of its own
        fallback = _failed_run(instance, "gate", tags=request.tags, model=model | {"fallback_family": "neural"})
        again = _evaluate(sensor, instance, refused)
        assert isinstance(again, dg.SkipReason) and f"already has its fallback run {fallback.run_id}" in str(
            again.skip_message)
        after_fallback = _evaluate(sensor, instance, fallback)
        assert isinstance(after_fallback, dg.SkipReason)
        assert f"is itself the fallback of run {refused.run_id}" in str(after_fallback.skip_message)


def test_draws_the_rules_reject_get_the_fallback_too(fallback_sensor):
    sensor, _ = fallback_sensor
    with dg.DagsterInstance.ephemeral() as instance:
        refused = _failed_run(instance, "rules")
        request = _evaluate(sensor, instance, refused)
        assert isinstance(request, dg.RunRequest), request
        assert request.tags[REFUSED_FAMILY_TAG] == "neural/neural"
        (line,) = json.loads(request.tags[REFUSED_BY_TAG])
        assert line.startswith("fictitious_dataset: the model's draws broke the catalog's rules: 96%")


def test_a_fault_or_a_model_without_fallback_gets_no_fallback_run(fallback_sensor):
    sensor, _ = fallback_sensor
    with dg.DagsterInstance.ephemeral() as instance:
        fault = _evaluate(sensor, instance, _failed_run(instance, "fault"))
        assert isinstance(fault, dg.SkipReason) and "a fault" in str(fault.skip_message)
        no_family = _evaluate(sensor, instance, _failed_run(instance, "gate", model={"family": "neural",
                                                                                   "fallback_family": None}))
        assert isinstance(no_family, dg.SkipReason) and "names no fallback_family" in str(no_family.skip_message)
        # the default fallback (CART) of a refused CART model would train the same model again
        cart = _evaluate(sensor, instance, _failed_run(instance, "gate", model={"family": "cart"}))
        assert isinstance(cart, dg.SkipReason) and "of the fallback family cart already" in str(cart.skip_message)
        # by default a refused neural model gets the CART fallback
        default = _evaluate(sensor, instance, _failed_run(instance, "gate", model={}))
        assert isinstance(default, dg.RunRequest) and default.tags[REFUSED_FAMILY_TAG] == "neural/neural"
        assert default.run_config["ops"]["population_model"]["config"]["family"] == "cart"


def test_the_sensor_runs_by_default_and_watches_the_release_job(fallback_sensor):
    sensor, _ = fallback_sensor
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert [t.job_name for t in sensor.targets] == ["release"]
