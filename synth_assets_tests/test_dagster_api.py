"""Contract of ``synth_assets.dagster_api``, the one module on Dagster's private APIs.

A tiny partitioned asset with a blocking check that fails on one partition, materialised
on a real ephemeral instance: the adapter must report each check evaluation on its own
partition, the materialisations with their metadata, and recognise the step error a failed
blocking check raises. A Dagster upgrade that changes any of these fails here, not in the gate.
"""

import dagster as dg

from synth_assets import dagster_api

PARTITIONS = dg.StaticPartitionsDefinition(["good", "bad"])


@dg.asset(partitions_def=PARTITIONS, code_version="7")
def tiny(context: dg.AssetExecutionContext) -> dg.Output[int]:
    return dg.Output(1, metadata={"wave": context.partition_key, "rows": 3})


@dg.asset_check(asset=tiny, blocking=True, partitions_def=PARTITIONS)
def tiny_is_good(context: dg.AssetCheckExecutionContext, tiny: int) -> dg.AssetCheckResult:
    good = context.partition_key == "good"
    return dg.AssetCheckResult(passed=good, description=None if good else "bad partition",
                               metadata={"judged": context.partition_key})


@dg.asset(partitions_def=PARTITIONS)
def downstream(tiny: int) -> int:
    return tiny + 1


def _materialize(instance: dg.DagsterInstance, partition: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([tiny, downstream, tiny_is_good], instance=instance,
                          partition_key=partition, raise_on_error=False)


def test_check_evaluations_are_read_per_partition_with_their_metadata():
    key = dg.AssetCheckKey(tiny.key, "tiny_is_good")
    with dg.DagsterInstance.ephemeral() as instance:
        assert dagster_api.latest_check_evaluations(instance, tiny.key, ["tiny_is_good"], "good") == {
            "tiny_is_good": None}
        assert _materialize(instance, "good").success
        assert not _materialize(instance, "bad").success
        good = dagster_api.latest_check_evaluations(instance, tiny.key, ["tiny_is_good"], "good")["tiny_is_good"]
        bad = dagster_api.latest_check_evaluations(instance, tiny.key, ["tiny_is_good"], "bad")["tiny_is_good"]
        history = dagster_api.check_history(instance, key, "bad", limit=5)
    assert good is not None and good.passed and good.metadata == {"judged": "good"} and good.status == "SUCCEEDED"
    assert bad is not None and not bad.passed and bad.metadata == {"judged": "bad"}
    assert bad.description == "bad partition" and bad.run_id and bad.status == "FAILED"
    assert [e.run_id for e in history] == [bad.run_id]


def test_materializations_are_read_per_partition_before_a_time():
    with dg.DagsterInstance.ephemeral() as instance:
        _materialize(instance, "good")
        first = dagster_api.latest_materialization(instance, tiny.key, "good")
        _materialize(instance, "good")
        latest = dagster_api.latest_materialization(instance, tiny.key, "good")
        assert first is not None and latest is not None
        before = dagster_api.latest_materialization(instance, tiny.key, "good", before=first.timestamp)
        assert dagster_api.latest_materialization(instance, tiny.key, "bad") is None
        assert len(dagster_api.materializations(instance, tiny.key, "good")) == 2
        any_partition = dagster_api.latest_materialization(instance, tiny.key, None)
    assert latest.run_id != first.run_id and before is not None and before.run_id == first.run_id
    assert {"wave": "good", "rows": 3}.items() <= latest.metadata.items() and latest.code_version == "7"
    assert any_partition is not None and any_partition.run_id == latest.run_id


def test_a_failed_blocking_check_is_recognised_as_such():
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(instance, "bad")
    failures = result.get_step_failure_events()
    assert failures, "the blocking check should stop the run"
    errors = [event.step_failure_data.error for event in failures]
    assert any(dagster_api.is_check_failure(error) for error in errors), [e.cls_name for e in errors if e]
    assert dagster_api.CHECK_FAILED_ERROR == "dagster._core.errors.DagsterAssetCheckFailedError"


def test_only_the_adapter_imports_private_dagster_modules():
    from pathlib import Path

    package = Path(dagster_api.__file__).parent
    importers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                       if "dagster._core" in p.read_text(encoding="utf-8"))
    assert importers == ["dagster_api.py"], importers



def test_forget_closed_instance_clears_the_state_storage_left_set() -> None:
    from dagster._core.storage.defs_state.base import DefsStateStorage, set_defs_state_storage

    from synth_assets.dagster_api import forget_closed_instance

    with dg.instance_for_test() as instance:
        storage = instance.defs_state_storage
    # as a run's instance can leave it (seen in the suite: "Attempted to resolve undefined
    # DagsterInstance weakref" when loading Definitions after an instance was collected)
    left_open = set_defs_state_storage(storage)
    left_open.__enter__()
    assert DefsStateStorage.get() is storage
    forget_closed_instance()
    assert DefsStateStorage.get() is None
