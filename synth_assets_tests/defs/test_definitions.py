import dagster as dg

from synth_assets.definitions import defs
from synth_assets.defs import keys as keys_module


def test_definitions_load_with_every_stage():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    from synth_assets.catalog import load_catalog
    from synth_assets.defs.deployment import Deployment

    catalog = load_catalog(Deployment.from_environment().layout.catalog)
    for source in catalog.sources:
        assert {f"raw_{source}", f"harmonised_{source}"} <= keys
    assert {k.to_user_string() for k in keys_module.RELEASE_CHAIN} <= keys
    groups = {graph.get(dg.AssetKey(k)).group_name for k in keys}
    assert groups == {"ingest", "harmonise", "matching", "synthesis", "calibration", "validation", "publication"}


def test_every_asset_has_code_version_and_description():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        # a delivered file (observable source asset) is versioned by its data (sha256), not by code
        assert node.code_version or (node.is_observable and not node.is_materializable), key
        assert node.description and len(node.description) > 40, key


def test_gate_checks_are_blocking():
    blocking = {
        (spec.asset_key.to_user_string(), spec.name)
        for checks_def in defs.asset_checks
        for spec in checks_def.check_specs
        if spec.blocking
    }
    assert ("fictitious_dataset", "no_real_record_copied") in blocking
    assert ("fictitious_dataset", "rules_and_categories_hold") in blocking
    assert ("validation_report", "thresholds_pass") in blocking
    assert ("raw_register", "delivered_file_is_valid") in blocking


def test_public_dataset_depends_on_the_gate_inputs():
    graph = defs.resolve_asset_graph()
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("public_dataset")).parent_keys}
    assert {"fictitious_dataset", "validation_report"} <= parents


def test_model_training_is_limited_to_one_at_a_time(tmp_path):
    import shutil

    assert defs.resolve_assets_def("population_model").op.pool == "model_training"
    shutil.copy(dg.file_relative_path(__file__, "../../dagster.yaml"), tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        concurrency = instance.get_concurrency_config()  # what the run-queue daemon applies
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.run_queue_config.max_concurrent_runs == 2
