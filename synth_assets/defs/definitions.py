"""The one Definitions object's builder: every stage's assets, checks, jobs, sensor, schedule and resources.

``synth_assets.definitions`` holds the instance for ``dagster dev`` and the deployment; the
headless runner and the tests build their own from another data root.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from synth_assets.catalog import load_catalog
from synth_assets.common.settings import quiet_telemetry
from synth_assets.defs import keys
from synth_assets.defs.automation.jobs import RELEASE_JOB, build_jobs
from synth_assets.defs.automation.schedules import build_refresh_schedule
from synth_assets.defs.automation.sensors import build_automation_sensor, build_incoming_sensor
from synth_assets.defs.calibration.assets import build_calibration_targets
from synth_assets.defs.calibration.checks import build_calibration_check, build_top_coding_check
from synth_assets.defs.deployment import Deployment
from synth_assets.defs.harmonise.assets import build_harmonised_asset
from synth_assets.defs.harmonise.checks import build_harmonised_check
from synth_assets.defs.ingest.assets import build_incoming_asset, build_raw_asset
from synth_assets.defs.ingest.checks import build_raw_check
from synth_assets.defs.io_managers import (
    IntermediateIOManager,
    JsonIOManager,
    ModelIOManager,
    ParquetIOManager,
    ReportIOManager,
)
from synth_assets.defs.matching.assets import build_donor_asset, build_matched_dataset, build_matched_replicates
from synth_assets.defs.matching.checks import build_household_variables_check
from synth_assets.defs.publication.assets import build_public_dataset
from synth_assets.defs.resources import ComputeResource, ProjectResource
from synth_assets.defs.synthesis.assets import build_fictitious_dataset, build_population_model, build_split
from synth_assets.defs.synthesis.fallback import fallback_selection
from synth_assets.defs.synthesis.fallback_sensor import build_fallback_sensor
from synth_assets.defs.synthesis.linked import build_linked, build_linked_checks, build_survey_records, record_surveys
from synth_assets.defs.validation.assets import build_validation_report
from synth_assets.defs.validation.checks import build_validation_checks


def build_definitions(
    data_root: str | Path | None = None,
    *,
    compute: ComputeResource | None = None,
    deployment: Deployment | None = None,
    release_options: Mapping[str, Any] | None = None,
    code_location: str | None = None,
) -> dg.Definitions:
    """Assets, checks, jobs and resources for the sources declared in ``data_root/catalog.yaml``.

    ``deployment`` (default: read from the environment, see ``defs/deployment.py``) says where
    intermediates are stored and which executor runs the steps; ``data_root`` overrides its
    data root. ``release_options`` overlay the catalog's release section (the copy filters and
    their enforcement: ``Catalog.with_release_options``) for every asset and check, as
    ``synth-assets run --set release....`` asks. ``code_location``: the module these definitions are
    the code location of (``synth_assets.definitions``), which the fork server of a run's steps
    imports once: each step's process rebuilt them itself, 0.6 s of a core (``Deployment.executor_definition``).
    """
    quiet_telemetry()
    # Partitioned asset checks are a preview feature; we rely on them knowingly.
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    deployment = deployment or Deployment.from_environment()
    if data_root is not None:
        deployment = dataclasses.replace(deployment, data_root=Path(data_root))
    layout = deployment.layout
    release_options = dict(release_options or {})
    catalog = load_catalog(layout.catalog).with_release_options(release_options)
    assets: list[dg.AssetsDefinition | dg.SourceAsset] = []
    checks: list[dg.AssetChecksDefinition] = []
    for name in catalog.sources:
        assets += [build_incoming_asset(catalog, name), build_raw_asset(catalog, name), build_harmonised_asset(catalog, name)]
        checks += [build_raw_check(catalog, name), build_harmonised_check(catalog, name)]
    assets += [build_donor_asset(catalog, name) for name in catalog.surveys]
    assets += [
        build_matched_dataset(catalog),
        build_matched_replicates(catalog),
        build_split(catalog),
        build_population_model(catalog),
        build_calibration_targets(catalog),
        build_fictitious_dataset(catalog),
        build_validation_report(catalog),
        build_public_dataset(catalog),
    ]
    for name in record_surveys(catalog):
        assets += [build_survey_records(catalog, name), build_linked(catalog, name)]
        checks += build_linked_checks(catalog, name)
    checks += build_validation_checks(catalog)
    checks += [build_calibration_check(catalog), build_top_coding_check(catalog)]
    checks += [build_household_variables_check(catalog, asset)
               for asset in (keys.MATCHED_DATASET, keys.FICTITIOUS_DATASET)]
    jobs = build_jobs(catalog)
    release_job = next(j for j in jobs if j.name == RELEASE_JOB)
    fallback_assets = fallback_selection(assets, release_job.selection.resolve(assets))
    return dg.Definitions(
        executor=deployment.executor_definition(code_location),
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        sensors=[build_incoming_sensor(catalog, jobs, deployment.sensor_interval_s),
                 build_automation_sensor(deployment.sensor_interval_s),
                 build_fallback_sensor(jobs, fallback_assets, deployment.sensor_interval_s)],
        schedules=[build_refresh_schedule(catalog)],
        resources={
            "project": ProjectResource(data_root=str(layout.root), storage_root=layout.storage,
                                       release_options=release_options),
            "compute": compute or ComputeResource(),
            "io_manager": ParquetIOManager(base_path=str(layout.warehouse)),
            "model_io_manager": ModelIOManager(base_path=str(layout.models)),
            "json_io_manager": JsonIOManager(base_path=str(layout.warehouse)),
            "report_io_manager": ReportIOManager(base_path=str(layout.reports)),
            "intermediate_io_manager": IntermediateIOManager(base_path=str(layout.intermediates)),
        },
    )
