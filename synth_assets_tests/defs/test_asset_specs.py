"""A snapshot of the graph: every asset's key, group, deps, checks, partitions, code version, automation
and working set (the executor's memory limit: ``defs/working_sets.py``).

A change to the graph is then a visible diff of ``asset_specs.json`` in review. The test
fails with that diff; ``UPDATE_SNAPSHOTS=1`` rewrites the file (commit it with the change).

Code versions are hashes of the source (``defs/versions.py``) and change with every edit, so
the snapshot records what each version covers instead (``hash of: catalog, common, ...``):
an asset that gains or loses a package, or a hand-set version, is a diff; an edit is not.
"""

import difflib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from synth_assets.defs.definitions import build_definitions
from synth_assets.defs.versions import covered
from synth_assets.defs.working_sets import WORKING_SET
from synth_assets_tests.defs.conftest import REPO

SNAPSHOT = Path(__file__).with_name("asset_specs.json")


def _condition(condition: dg.AutomationCondition | None) -> str | None:
    """An automation condition as a readable expression (its label where it has one)."""
    if condition is None:
        return None
    label = condition.get_label()
    if label:
        return label
    children = [c for c in condition.children if isinstance(c, dg.AutomationCondition)]
    inner = ", ".join(str(_condition(c)) for c in children)
    return f"{condition.name}({inner})" if children else condition.name


def _code_version(version: str | None) -> str | None:
    packages = covered(version)
    return version if packages is None else f"hash of: {', '.join(packages)}"


def _working_set(node_def: dg.OpDefinition | dg.GraphDefinition) -> list[str] | None:
    """The working-set tags of a step's ops (a graph-backed asset's every op): what the executor limits."""
    ops = list(node_def.iterate_op_defs()) if isinstance(node_def, dg.GraphDefinition) else [node_def]
    return sorted({op.tags[WORKING_SET] for op in ops if WORKING_SET in op.tags}) or None


def asset_specs(defs: dg.Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    checks: dict[str, list[dict[str, Any]]] = {}
    for checks_def in defs.asset_checks or []:
        for spec in checks_def.check_specs:
            checks.setdefault(spec.asset_key.to_user_string(), []).append(
                {"name": spec.name, "blocking": spec.blocking,
                 "additional_deps": sorted(d.asset_key.to_user_string() for d in spec.additional_deps),
                 "working_set": _working_set(checks_def.node_def)})
    specs = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        specs[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(checks.get(key.to_user_string(), []), key=lambda c: c["name"]),
            "partitions": getattr(partitions, "name", None) or (type(partitions).__name__ if partitions else None),
            "code_version": _code_version(node.code_version),
            "automation_condition": _condition(node.automation_condition),
            "pool": node.pools and sorted(node.pools) or None,
            "kinds": sorted(node.kinds),
            "working_set": _working_set(defs.resolve_assets_def(key).node_def),
        }
    return specs


def test_asset_specs_match_the_snapshot():
    # The project catalog: the snapshot is the graph `dagster dev` shows.
    current = json.dumps(asset_specs(build_definitions(REPO / "data")), indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current, encoding="utf-8")
    expected = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    if current != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), current.splitlines(True),
                                            f"{SNAPSHOT.name} (committed)", f"{SNAPSHOT.name} (code)"))
        raise AssertionError(f"the asset graph changed; if intended, rerun with UPDATE_SNAPSHOTS=1 and commit "
                             f"{SNAPSHOT.name}:\n{diff}")
