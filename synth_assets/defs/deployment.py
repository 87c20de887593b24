"""Where the code location runs: read once from the environment, so one image serves every deployment.

The same ``synth_assets.definitions`` module runs on a laptop (``dagster dev``), headless
(``synth-assets run``) and on a Kubernetes Dagster deployment; only environment variables
change (``deploy/kubernetes/values.yaml`` sets them for the cluster):

==============================  ===========================================================
``SYNTH_ASSETS_DATA``           data root: catalog, drop zone, reports, public releases
                                (default ``data/`` of the checkout; a shared volume on a cluster)
``SYNTH_ASSETS_STORAGE``        root of the warehouse tables and fitted models, any fsspec
                                URL such as ``s3://bucket/synth-assets`` (default: the data root)
``SYNTH_ASSETS_EXECUTOR``       ``multiprocess`` (default: steps as processes of the run) or
                                ``k8s`` (each step in its own Kubernetes pod, dagster-k8s)
``SYNTH_ASSETS_EXECUTOR_CONFIG``  YAML file of the executor's configuration (for ``k8s``:
                                per-step pods, e.g. ``population_model`` on a GPU node)
``SYNTH_ASSETS_SENSOR_INTERVAL``  seconds between two evaluations of each sensor (default 30;
                                the daemon test sets a few, to wait less for each tick)
==============================  ===========================================================
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from synth_assets.common.layout import DataLayout
from synth_assets.common.settings import PROJECT_ROOT
from synth_assets.dagster_api import SQLITE_STORAGE_MODULE
from synth_assets.defs import working_sets

EXECUTORS = ("multiprocess", "k8s")
#: Seconds between two evaluations of a sensor unless SYNTH_ASSETS_SENSOR_INTERVAL says: Dagster's own default.
DEFAULT_SENSOR_INTERVAL_S = 30

#: Steps of a run in parallel locally, at most one per core of the machines this targets.
LOCAL_MAX_CONCURRENT = 2
#: Imported once per run by a fork server that every step's process is forked from: spawned, each
#: step paid these imports itself (3-5 s of a core, about 40 steps a release; bench/README).
#: Modules that import without side effects only (no definitions built, no torch: it starts
#: thread pools that a fork must not inherit). The instance's SQLite storage too: each step's
#: process opens the instance, whose storage modules took 0.8 s of a core to import there, a
#: step's process's largest cost after its definitions.
STEP_PRELOAD_MODULES = ("synth_assets.defs.definitions", "synth_assets.operations.runner", SQLITE_STORAGE_MODULE)


class DeploymentError(ValueError):
    """A deployment setting that cannot work; the message names the variable and its value."""


@dataclass(frozen=True)
class Deployment:
    data_root: Path
    storage_root: str | None = None
    executor: str = "multiprocess"
    executor_config: Path | None = None
    sensor_interval_s: int = DEFAULT_SENSOR_INTERVAL_S

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Deployment:
        executor = environ.get("SYNTH_ASSETS_EXECUTOR", "multiprocess")
        if executor not in EXECUTORS:
            raise DeploymentError(f"SYNTH_ASSETS_EXECUTOR={executor!r}: choose one of {', '.join(EXECUTORS)}")
        config = environ.get("SYNTH_ASSETS_EXECUTOR_CONFIG")
        interval = environ.get("SYNTH_ASSETS_SENSOR_INTERVAL", str(DEFAULT_SENSOR_INTERVAL_S))
        if not interval.isdigit() or int(interval) < 1:
            raise DeploymentError(f"SYNTH_ASSETS_SENSOR_INTERVAL={interval!r}: expected a whole number of seconds >= 1")
        return cls(
            data_root=Path(environ.get("SYNTH_ASSETS_DATA", PROJECT_ROOT / "data")),
            storage_root=environ.get("SYNTH_ASSETS_STORAGE") or None,
            executor=executor,
            executor_config=Path(config) if config else None,
            sensor_interval_s=int(interval),
        )

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_root, storage=self.storage_root)

    def executor_definition(self, code_location: str | None = None) -> dg.ExecutorDefinition:
        """The executor of the steps; ``code_location``: the module holding the definitions (the one
        each step's process of a run launched from the daemon or the UI imports to rebuild its job),
        imported once by the run's fork server with the others, so no step's process builds it."""
        settings = read_executor_config(self.executor_config) if self.executor_config else {}
        if self.executor == "k8s":
            # Imported only here: dagster-k8s is the `kubernetes` extra, not needed locally.
            from dagster_k8s import k8s_job_executor

            return k8s_job_executor.configured(settings, name="k8s_job_executor")
        preload = [*STEP_PRELOAD_MODULES, *([code_location] if code_location else [])]
        start = ({"forkserver": {"preload_modules": preload}}
                 if "forkserver" in multiprocessing.get_all_start_methods() else {"spawn": {}})  # Windows: spawn only
        # One population-sized step at a time (working_sets): never two population steps side by side.
        return dg.multiprocess_executor.configured({"max_concurrent": LOCAL_MAX_CONCURRENT, "start_method": start,
                                                    "tag_concurrency_limits": working_sets.LOCAL_LIMITS, **settings})


def read_executor_config(path: Path) -> dict[str, Any]:
    """The executor's configuration from YAML; a missing or malformed file is named in the error."""
    try:
        settings = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DeploymentError(f"SYNTH_ASSETS_EXECUTOR_CONFIG={path}: {error}") from error
    if not isinstance(settings, dict):
        raise DeploymentError(f"SYNTH_ASSETS_EXECUTOR_CONFIG={path}: expected a mapping of executor settings")
    return settings
