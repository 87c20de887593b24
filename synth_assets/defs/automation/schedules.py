"""The schedule: ``monthly_release_refresh`` re-runs the release of the latest register wave."""

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.defs.automation.jobs import RELEASE_JOB
from synth_assets.defs.partitions import partitions_name, wave_order


def build_refresh_schedule(catalog: Catalog) -> dg.ScheduleDefinition:
    register_waves = partitions_name(catalog.register_name)

    @dg.schedule(
        name="monthly_release_refresh",
        job_name=RELEASE_JOB,
        cron_schedule="0 3 1 * *",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="On the 1st of each month, rebuild the release of the latest register wave.",
    )
    def monthly_release_refresh(context: dg.ScheduleEvaluationContext):
        waves = context.instance.get_dynamic_partitions(register_waves)
        if not waves:
            return dg.SkipReason("no register wave yet")
        latest = max(waves, key=wave_order)
        return dg.RunRequest(partition_key=latest, run_key=f"refresh-{latest}-{context.scheduled_execution_time:%Y%m}")

    return monthly_release_refresh

