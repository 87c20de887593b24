"""The fallback family under the daemon: ``release_fallback_sensor`` requests the fallback run of
a release run the gate refused (``fallback.py`` says what refused means and what the run is).

``fallback_for`` is the one decision, the sensor's and ``synth-assets run``'s: the headless
runner executes its runs in process, where no daemon watches them (they have no code
location, so the sensor's job filter does not match them), and applies the same decision
itself. Apart from ``fallback.py`` so the model assets, which import that, keep their code
version (this module reads the run's events through ``dagster_api``).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from synth_assets.dagster_api import is_check_failure
from synth_assets.defs import keys
from synth_assets.defs.automation.jobs import RELEASE_JOB
from synth_assets.defs.synthesis.assets import ModelConfig
from synth_assets.defs.synthesis.fallback import FALLBACK_OF_TAG, FallbackRun, fallback_run, gate_refusals

FALLBACK_SENSOR = "release_fallback_sensor"
PARTITION_TAG = "dagster/partition"


def run_refusals(events: Iterable[dg.DagsterEvent]) -> list[str]:
    """``gate_refusals`` of a run's events (``ExecuteInProcessResult.all_events`` or the instance's log)."""
    events = list(events)
    evaluations = [e.asset_check_evaluation_data for e in events
                   if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    errors = [(e.step_key, e.step_failure_data.error) for e in events
              if e.is_step_failure and not is_check_failure(e.step_failure_data.error)]
    return gate_refusals(evaluations, errors)


@dataclass(frozen=True)
class FallbackDecision:
    """Whether a failed release run gets its fallback run: ``run`` if so, else ``reason`` says why not."""

    run: FallbackRun | None
    reason: str


def fallback_for(instance: dg.DagsterInstance, failed: dg.DagsterRun, subset_ops: Iterable[str]) -> FallbackDecision:
    """The one decision on a failed release run's fallback, the sensor's and ``synth-assets run``'s.

    No fallback run for a run that is itself a fallback (its refusal ends the wave's release), for one whose
    fallback already exists (whoever launched it), for a model without ``fallback_family`` or of
    that family already (the default CART fallback of a CART run), and for a fault (a failure
    that is not the gate's refusal: ``gate_refusals``).
    """
    if FALLBACK_OF_TAG in failed.tags:
        return FallbackDecision(None, f"run {failed.run_id} is itself the fallback of run {failed.tags[FALLBACK_OF_TAG]}")
    existing = instance.get_runs(dg.RunsFilter(tags={FALLBACK_OF_TAG: failed.run_id}), limit=1)
    if existing:
        return FallbackDecision(None, f"run {failed.run_id} already has its fallback run {existing[0].run_id}")
    config: dict[str, Any] = dict(failed.run_config or {})
    model = ModelConfig(**config.get("ops", {}).get(keys.name(keys.POPULATION_MODEL), {}).get("config", {}))
    if model.fallback_family is None:
        return FallbackDecision(None, f"run {failed.run_id}: its population_model names no fallback_family")
    families = {model.family, model.person_family or model.family} if model.households else {model.family}
    if families == {model.fallback_family}:
        return FallbackDecision(None, f"run {failed.run_id}: its model is of the fallback family "
                                      f"{model.fallback_family} already")
    events = [entry.dagster_event for entry in instance.all_logs(failed.run_id, of_type={
        dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.STEP_FAILURE}) if entry.dagster_event]
    run = fallback_run(config, model, failed.run_id, run_refusals(events), subset_ops)
    if run is None:
        return FallbackDecision(None, f"run {failed.run_id} failed without a gate refusal: a fault, no fallback hides it")
    return FallbackDecision(run, f"the gate refused run {failed.run_id}: {len(run.refused_by)} refusal(s)")


def build_fallback_sensor(jobs: list[Any], selection: list[dg.AssetKey], interval_s: int) -> dg.SensorDefinition:
    """Requests the fallback run of a release run the gate refused (``selection``: the assets it builds again).

    The run key is the refused run's id, so the daemon requests one fallback per refused run
    even if the sensor sees the failure twice (a reset cursor).
    """
    release = next(j for j in jobs if j.name == RELEASE_JOB)
    subset_ops = {keys.name(k) for k in selection}

    @dg.run_failure_sensor(
        name=FALLBACK_SENSOR,
        monitored_jobs=[release],
        request_job=release,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "When the gate refuses a release run whose population_model names a fallback_family, requests "
            "the fallback family's run on the same wave (the model and what follows it), once per refused run."
        ),
    )
    def release_fallback_sensor(context: dg.RunFailureSensorContext) -> dg.RunRequest | dg.SkipReason:
        failed = context.dagster_run
        decision = fallback_for(context.instance, failed, subset_ops)
        if decision.run is None:
            return dg.SkipReason(decision.reason)
        context.log.info(f"{decision.reason}; requesting the fallback family {decision.run.family}")
        return dg.RunRequest(
            run_key=failed.run_id, job_name=RELEASE_JOB, partition_key=failed.tags.get(PARTITION_TAG),
            run_config=decision.run.run_config, tags=decision.run.tags, asset_selection=selection,
        )

    return release_fallback_sensor
