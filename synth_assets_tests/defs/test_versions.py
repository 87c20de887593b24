"""Code versions come from the source each asset runs: an edit changes them, the audit shows them."""

import shutil

import dagster as dg

from synth_assets.dagster_api import latest_materialization
from synth_assets.defs import keys
from synth_assets.defs.definitions import build_definitions
from synth_assets.defs.versions import ROOT, code_version, covered

STAGES = ("ingest", "harmonise", "matching", "calibration", "synthesis", "validation", "publication")


def _versions(root):
    return {s: code_version(f"synth_assets.defs.{s}.assets", root) for s in STAGES}


def test_an_edit_changes_the_versions_of_the_assets_that_run_it(tmp_path):
    copy = tmp_path / "synth_assets"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = _versions(copy)
    assert before == _versions(ROOT)  # paths are not hashed, contents are
    assert len(set(before.values())) == len(STAGES)

    constraints = copy / "synthesis" / "constraints.py"
    constraints.write_text(constraints.read_text() + "\n# a change\n")
    code_version.cache_clear()
    after = _versions(copy)
    changed = {s for s in STAGES if after[s] != before[s]}
    assert "synthesis" in changed and "validation" in changed  # validation measures the generated data
    assert "ingest" not in changed and "harmonise" not in changed
    assert all("synthesis" in covered(after[s]) for s in changed)

    rule = copy / "catalog" / "rules.py"  # a gate rule: every stage reading the catalog changes
    rule.write_text(rule.read_text() + "\n# another\n")
    code_version.cache_clear()
    assert _versions(copy)["publication"] != after["publication"]


def test_assets_carry_the_derived_version_and_the_audit_reads_it(data_root):
    defs = build_definitions(data_root)
    graph = defs.resolve_asset_graph()
    ingest = code_version("synth_assets.defs.ingest.assets")
    assert graph.get(keys.raw("register")).code_version == ingest
    assert graph.get(keys.PUBLIC_DATASET).code_version == code_version("synth_assets.defs.publication.assets")
    assert covered(ingest) == ("catalog", "common", "dagster_api", "defs", "defs/ingest", "ingest")
    wave = sorted((data_root / "incoming" / "register").glob("*.parquet"))[-1].stem.rsplit("_", 1)[-1]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("register_waves", [wave])
        assert defs.resolve_job_def("ingest_register").execute_in_process(
            instance=instance, partition_key=wave).success
        # What the audit (operations/lineage.py) lists per step.
        step = latest_materialization(instance, keys.raw("register"), wave)
        assert step is not None and step.code_version == ingest
