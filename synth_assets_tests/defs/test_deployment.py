"""The code location beyond one machine: Kubernetes configuration files and object storage.

The files under ``deploy/kubernetes`` are checked against dagster-k8s's own schemas and
against the code they configure (module, step names, pools, volumes), and the whole pipeline
runs with its intermediates on an fsspec file system other than the local disk.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import yaml

from synth_assets.catalog import load_catalog
from synth_assets.defs.definitions import build_definitions
from synth_assets.defs.deployment import Deployment, DeploymentError, read_executor_config
from synth_assets.operations.lineage import collect_lineage
from synth_assets.operations.runner import run_pipeline
from synth_assets_tests.defs.conftest import FAST_RELEASE, Prepared, drop_older_waves

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
IMAGE_WORKDIR = "/opt/synth-assets/"

pytest.importorskip("dagster_k8s", reason="dagster-k8s is part of the test extra: pip install -e '.[test]'")


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


def _user_deployment() -> dict:
    (deployment,) = _values()["dagster-user-deployments"]["deployments"]
    return deployment


def _cluster_environment(data_root: Path) -> dict[str, str]:
    """The environment values.yaml gives the code server, with paths of the image mapped to the checkout."""
    env = {item["name"]: item["value"] for item in _user_deployment()["env"]}
    executor_config = env["SYNTH_ASSETS_EXECUTOR_CONFIG"]
    assert executor_config.startswith(IMAGE_WORKDIR), "the executor file must come from the image's checkout"
    env["SYNTH_ASSETS_EXECUTOR_CONFIG"] = str(REPO / executor_config.removeprefix(IMAGE_WORKDIR))
    env["SYNTH_ASSETS_DATA"] = str(data_root)
    return env


def test_executor_file_is_valid_for_dagster_k8s():
    from dagster._config import process_config
    from dagster_k8s import k8s_job_executor

    result = process_config(k8s_job_executor.config_schema.config_type, read_executor_config(DEPLOY / "executor.yaml"))
    assert result.success, [error.message for error in result.errors]


def test_values_load_the_code_location_with_step_pods_and_object_storage():
    deployment = _user_deployment()
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "synth_assets.definitions"]
    env = _cluster_environment(REPO / "data")
    settings = Deployment.from_environment(env)
    assert settings.storage_root.startswith("s3://")
    defs = build_definitions(deployment=settings)
    assert defs.resolve_job_def("release").executor_def.name == "k8s_job_executor"
    project = defs.resources["project"]
    assert project.layout.warehouse.as_uri() == settings.storage_root + "/warehouse"
    assert defs.resources["io_manager"].base_path == settings.storage_root + "/warehouse"
    assert defs.resources["model_io_manager"].base_path == settings.storage_root + "/models"


def test_per_step_settings_name_real_steps():
    """A misspelt step name would silently leave the GAN on a CPU node."""
    defs = build_definitions(REPO / "data", deployment=Deployment.from_environment(_cluster_environment(REPO / "data")))
    # dagster-k8s matches a step's op name, also for the ops inside a graph-backed asset (the
    # fictitious dataset's region steps: fictitious_dataset.fictitious_region[north])
    ops = {op.name for op in defs.resolve_job_def("release").graph.iterate_op_defs()}
    per_step = read_executor_config(DEPLOY / "executor.yaml")["per_step_k8s_config"]
    assert {"population_model", "fictitious_region", "fictitious_join"} <= set(per_step)
    assert set(per_step) <= ops, set(per_step) - ops


def test_population_model_step_is_a_job_on_a_gpu_node_and_others_are_not():
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

    settings = read_executor_config(DEPLOY / "executor.yaml")
    every_step = K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(settings["step_k8s_config"]))
    job_config = DagsterK8sJobConfig(job_image="registry.example.org/statistics/synth-assets:0.1.0",
                                     dagster_home="/opt/dagster/dagster_home", instance_config_map="dagster-instance")

    def pod_of(step: str):
        # The executor's own merge order: every-step settings, then the step's override.
        context = every_step.merge(K8sContainerContext(
            run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(settings["per_step_k8s_config"].get(step, {}))))
        job = construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_step"], f"dagster-step-{step}",
                                        user_defined_k8s_config=context.run_k8s_config)
        return job.spec.template.spec

    gan = pod_of("population_model")
    (container,) = gan.containers
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert gan.node_selector == {"synth-assets/node-pool": "gpu"}
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in gan.tolerations)
    matching = pod_of("matched_dataset")
    assert "nvidia.com/gpu" not in (matching.containers[0].resources.limits or {})
    assert not matching.node_selector
    assert matching.containers[0].resources.requests["memory"] == "4Gi"


def test_pods_share_the_data_volume_secrets_and_pools_of_the_code():
    values = _values()
    deployment = _user_deployment()
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    data_root = next(item["value"] for item in deployment["env"] if item["name"] == "SYNTH_ASSETS_DATA")
    for pod in (deployment, launcher):
        (mount,) = [m for m in pod["volumeMounts"] if m["mountPath"] == data_root]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["persistentVolumeClaim"]["claimName"] == "synth-assets-data"
    assert [s["name"] for s in deployment["envSecrets"]] == [s["name"] for s in launcher["envSecrets"]]
    # The local dagster.yaml and the cluster agree: one step per pool (one GAN at a time).
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert values["concurrency"]["pools"]["defaultLimit"] == local["concurrency"]["pools"]["default_limit"] == 1
    defs = build_definitions(REPO / "data")
    assert defs.resolve_assets_def("population_model").op.pool == "model_training"


def test_bad_deployment_settings_are_named():
    with pytest.raises(DeploymentError, match="SYNTH_ASSETS_EXECUTOR='celery'"):
        Deployment.from_environment({"SYNTH_ASSETS_EXECUTOR": "celery"})
    with pytest.raises(DeploymentError, match="SYNTH_ASSETS_EXECUTOR_CONFIG=.*missing.yaml"):
        Deployment.from_environment({"SYNTH_ASSETS_EXECUTOR_CONFIG": "/nowhere/missing.yaml"}).executor_definition()
    with pytest.raises(DeploymentError, match="SYNTH_ASSETS_SENSOR_INTERVAL='0.5'"):
        Deployment.from_environment({"SYNTH_ASSETS_SENSOR_INTERVAL": "0.5"})


def _executor_config(environ: dict[str, str]) -> dict:
    resolved = Deployment.from_environment(environ).executor_definition().config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    return resolved.value["config"]


def test_local_steps_are_forked_from_a_server_that_imported_the_code_but_not_torch(tmp_path):
    """Spawned, every step paid the project's imports itself (3-5 s a step); forked from a server
    that made them once, none does. The server must not import torch: its thread pools would be
    forked half-held. A module renamed away would be skipped silently by multiprocessing."""
    import subprocess
    import sys

    from synth_assets.defs.deployment import STEP_PRELOAD_MODULES

    config = _executor_config({})
    assert config["start_method"] == {"forkserver": {"preload_modules": list(STEP_PRELOAD_MODULES)}}
    # the daemon's and the UI's runs: their steps' processes rebuild the job from the code location's
    # module, which the server imports too (the definitions built once, not once a step)
    import synth_assets.definitions as code_location

    resolved = code_location.defs.executor.config_schema.resolve_config({})
    assert resolved.value["config"]["start_method"] == {
        "forkserver": {"preload_modules": [*STEP_PRELOAD_MODULES, "synth_assets.definitions"]}}
    # and a step's process opens the instance (SQLite storage, as dagster.yaml's) with nothing left to import
    code = ("import importlib, sys, tempfile\n"
            f"for name in {[*STEP_PRELOAD_MODULES, 'synth_assets.definitions']!r}: importlib.import_module(name)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "import dagster as dg\n"
            "from dagster._core.instance.ref import InstanceRef\n"
            "before = set(sys.modules)\n"
            "with tempfile.TemporaryDirectory() as home:\n"
            "    dg.DagsterInstance.from_ref(InstanceRef.from_dir(home)).dispose()\n"
            "late = sorted(m for m in set(sys.modules) - before if m.startswith(('alembic', 'sqlalchemy',\n"
            "              'dagster._core.storage.event_log', 'dagster._core.storage.runs')))\n"
            "assert not late, late\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    # an executor file can still choose (spawn where a library forbids forking)
    (tmp_path / "spawn.yaml").write_text("start_method: {spawn: {}}\nmax_concurrent: 1\n")
    config = _executor_config({"SYNTH_ASSETS_EXECUTOR_CONFIG": str(tmp_path / "spawn.yaml")})
    assert config["start_method"] == {"spawn": {}} and config["max_concurrent"] == 1


def test_sensor_interval_is_a_deployment_setting():
    """30 s (Dagster's default) unless the environment says; the daemon test sets a few seconds."""
    def intervals(environ: dict[str, str]) -> dict[str, int | None]:
        defs = build_definitions(REPO / "data", deployment=Deployment.from_environment(environ))
        return {s.name: s.minimum_interval_seconds for s in defs.sensors}

    assert list(intervals({}).values()) == [30, 30, 30]
    assert list(intervals({"SYNTH_ASSETS_SENSOR_INTERVAL": "4"}).values()) == [4, 4, 4]


@pytest.mark.slow
def test_pipeline_with_intermediates_on_object_storage(ingested_copy: Prepared):
    """Warehouse and models on an fsspec store (memory:// here, s3:// on a cluster); data/ keeps none.

    From the ingested tiny demo with only the files the 2024 release reads, its warehouse moved
    into the store but for the register's 2024 tables, and that register delivered again (the
    same rows, other bytes): one ingest run writes its tables to the store, and the release
    reads them and every survey's from it (seven ingest runs otherwise, each writing the same way).
    """
    data_root = ingested_copy.root
    drop_older_waves(data_root)
    register = data_root / "incoming" / "register" / "register_2024.parquet"
    pd.read_parquet(register).to_parquet(register, index=False, compression="gzip")  # a new sha256
    memory = fsspec.filesystem("memory")
    written_here = [f"warehouse/{asset}/2024.parquet" for asset in ("raw_register", "harmonised_register")]
    for table in sorted((data_root / "warehouse").rglob("*.parquet")):
        relative = table.relative_to(data_root).as_posix()
        if relative not in written_here:
            memory.put_file(str(table), f"/synth-assets-test/{relative}")
    shutil.rmtree(data_root / "warehouse")
    storage = "memory://synth-assets-test"
    deployment = dataclasses.replace(Deployment.from_environment({}), data_root=data_root, storage_root=storage)
    defs = build_definitions(deployment=deployment)
    try:
        with ingested_copy.instance() as instance:
            outcome = run_pipeline(defs, load_catalog(deployment.layout.catalog), deployment.layout, instance,
                                   release_config=FAST_RELEASE, echo=lambda _: None)
            assert outcome.success, [r.failures for r in outcome.runs]
            assert [r.job for r in outcome.runs] == ["ingest_register", "release"]
            wave = outcome.release.name.split("-")[0]
            for relative in written_here:
                assert memory.exists(f"/synth-assets-test/{relative}"), relative
            assert memory.exists(f"/synth-assets-test/warehouse/matched_dataset/{wave}.parquet")
            assert memory.exists(f"/synth-assets-test/models/population_model/{wave}.model")
            assert not (data_root / "warehouse").exists() and not (data_root / "models").exists()
            # The audit re-runs its copy test on the matched data read back from the store.
            lineage = collect_lineage(instance, defs, load_catalog(deployment.layout.catalog), deployment.layout,
                                      outcome.release.name)
        assert "matched dataset" in lineage.copy_test["references"], lineage.copy_test
        assert lineage.copy_test["passed"]
    finally:
        memory.rm("/synth-assets-test", recursive=True)
