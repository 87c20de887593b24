"""Fault injection: each kind of bad input or fault is refused with a message that names it,
a failing exit code, nothing published, and the previous release left byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synth_assets_tests.faults.conftest import RUN_OPTIONS, Baseline, public_digest

SILC_OPTIONS = {"sep": ";", "decimal": ",", "encoding": "latin-1"}


def _incoming(root: Path, relative: str) -> Path:
    return root / "incoming" / relative


def _edit_silc(root: Path, edit: Callable[[pd.DataFrame], None], **write) -> Path:
    path = _incoming(root, "silc/silc_2024.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, **SILC_OPTIONS)
    edit(frame)
    frame.to_csv(path, index=False, **{**SILC_OPTIONS, **write})
    return path


def _edit_register(root: Path, edit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Path:
    path = _incoming(root, "register/register_2024.parquet")
    frame = pd.read_parquet(path)
    edited = edit(frame)
    (frame if edited is None else edited).to_parquet(path, index=False)
    return path


def _set(column: str, value, row: int = 2) -> Callable[[pd.DataFrame], None]:
    def edit(frame: pd.DataFrame) -> None:
        if frame[column].dtype.kind in "if" and isinstance(value, str):
            frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value

    return edit


def _edit_catalog(root: Path, edit: Callable[[dict], None]) -> Path:
    path = root / "catalog.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _garble(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle: middle + 64] = b"\x00" * 64
    data[-16:] = b"not a parquet!!!"
    path.write_bytes(bytes(data))
    return path


# --- the faults: each breaks the copy and returns the fragments its message must hold ---

def missing_column(root):
    path = _edit_silc(root, lambda f: f.drop(columns=["pweight"], inplace=True))
    return [f"{path}: missing column(s) 'pweight' (for weight)"]


def renamed_column(root):
    path = _edit_register(root, lambda f: f.rename(columns={"AGE": "AGE_YEARS"}))
    return [f"{path}: missing column(s) 'AGE' (for age)", "AGE_YEARS"]


def unknown_code(root):
    _edit_silc(root, _set("sexe", "X"))
    return ["harmonised_silc", "sexe", "'X'"]


def duplicate_id(root):
    def edit(frame):
        frame.loc[1, "pid"] = frame.loc[0, "pid"]

    _edit_silc(root, edit)
    return ["raw_silc.delivered_file_is_valid failed", "pid"]


def negative_weight(root):
    _edit_silc(root, _set("pweight", "-3,5"))
    return ["raw_silc.delivered_file_is_valid failed", "pweight", "-3.5"]


def zero_weight(root):
    _edit_silc(root, _set("pweight", "0"))
    return ["raw_silc.delivered_file_is_valid failed", "pweight", "0"]


def empty_file(root):
    path = _incoming(root, "hbs/hbs_2024.dta")
    path.write_bytes(b"")
    return [f"{path}: file is empty"]


def wrong_delimiter(root):
    path = _edit_silc(root, lambda f: None, sep=",")
    return [f"{path}: missing column(s)", "'pweight'"]


def wrong_encoding(root):
    path = _edit_silc(root, lambda f: None, encoding="utf-16")
    return [str(path)]


def inf_in_register(root):
    path = _edit_register(root, _set("INC_LABOUR", float("inf")))
    return [str(path), "column 'INC_LABOUR'", "inf"]


def inf_in_survey(root):
    path = _edit_silc(root, _set("pweight", "inf"))
    return [str(path), "column 'pweight'", "inf in 1 row(s), first rows 3"]


def out_of_range_value(root):
    _edit_register(root, _set("AGE", 250))
    return ["harmonised_register", "age", "250"]


def corrupt_parquet(root):
    path = _garble(_incoming(root, "hfcs/hfcs_2023.parquet"))
    return [f"{path}: cannot be read as parquet"]


def truncated_stata(root):
    path = _truncate(_incoming(root, "hbs/hbs_2024.dta"))
    return [f"{path}: cannot be read as stata"]


def truncated_spss(root):
    path = _truncate(_incoming(root, "lfs/lfs_2024.sav"))
    return [f"{path}: cannot be read as spss"]


def deleted_source_folder(root):
    shutil.rmtree(_incoming(root, "hbs"))
    return ["source 'hbs': no file for release wave 2024", f"expected {_incoming(root, 'hbs/hbs_{wave}.dta')}"]


def misnamed_file(root):
    path = _incoming(root, "lfs/lfs_2024.sav")
    target = path.with_name("lfs2024.sav")
    path.rename(target)
    return [f"[IGNORED] {target} does not match lfs/lfs_{{wave}}.sav", "source 'lfs': no file for release wave 2024"]


def catalog_rule_typo(root):
    path = _edit_catalog(root, lambda raw: raw["release"]["rules"].__setitem__(0, "agee >= 0 and age <= 110"))
    return [str(path), "agee"]


def schema_drift_type_change(root):
    def edit(frame):
        frame["AGE"] = frame["AGE"].astype(str)  # the export now writes ages as text ...
        frame.loc[2, "AGE"] = "forty"  # ... and one of them in words

    _edit_register(root, edit)
    return ["AGE", "forty"]


def schema_drift_new_column(root):
    path = _edit_silc(root, lambda f: f.insert(3, "new_var", "1"))
    return [f"{path}: new column(s) 'new_var' not in the previous delivery", "sources.silc.ignored_columns"]


@dataclass(frozen=True)
class Case:
    fault: Callable[[Path], list[str]]
    code: int = 1
    options: tuple[str, ...] = ()
    marks: tuple = field(default_factory=tuple)


CASES = [
    Case(missing_column),
    Case(renamed_column),
    Case(unknown_code),
    Case(duplicate_id),
    Case(negative_weight),
    Case(zero_weight),
    Case(empty_file),
    Case(wrong_delimiter),
    Case(wrong_encoding),
    Case(inf_in_register),
    Case(inf_in_survey),
    Case(out_of_range_value),
    Case(corrupt_parquet),
    Case(truncated_stata),
    Case(truncated_spss),
    Case(deleted_source_folder),
    Case(misnamed_file),
    Case(catalog_rule_typo, code=2),
    Case(lambda root: ["argument --family: invalid choice: 'gann'", "cart"], code=2, options=("--family", "gann")),
    Case(schema_drift_type_change),
    Case(schema_drift_new_column),
]


def _case_id(case: Case) -> str:
    return "unknown_model_family" if case.fault.__name__ == "<lambda>" else case.fault.__name__


@pytest.mark.parametrize("case", [pytest.param(c, id=_case_id(c), marks=c.marks) for c in CASES])
def test_fault_is_refused_named_and_leaves_the_previous_release(case: Case, broken_copy: Baseline, capsys):
    from synth_assets.cli import main

    expected = case.fault(broken_copy.root)
    code = main(["run", "--data", str(broken_copy.root), *RUN_OPTIONS, *case.options])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == case.code, output[-6000:]
    for fragment in expected:
        assert fragment in output, f"{fragment!r} not in the output:\n{output[-6000:]}"
    assert "Public fictitious dataset:" not in output
    assert public_digest(broken_copy.root) == broken_copy.digest


@contextlib.contextmanager
def _read_only(folder: Path):
    """chmod 0555, and immutable too where the tests run as root (root ignores modes)."""
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        folder.chmod(0o755)
        pytest.skip("running as root and cannot make a folder immutable (chattr +i)")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


# The two faults below are the gate's and the publication's alone: each re-runs only the
# release steps that meet it, on the baseline's matched data, model and draw (as a release run
# does, the same job and run config), not a whole `synth-assets run` (matching and training
# again: about 50 s each on 2 cores). The cases above check the CLI's exit code and output.

def _release_steps(root: Path, *steps: str):
    """The release job for wave 2024, ``steps`` only, on the baseline's instance (DAGSTER_HOME)."""
    import dagster as dg

    from synth_assets.defs.automation.jobs import RELEASE_JOB
    from synth_assets.defs.definitions import build_definitions
    from synth_assets.operations.runner import execute
    from synth_assets_tests.defs.conftest import FAST_RELEASE

    config = {"ops": {step: FAST_RELEASE["ops"][step] for step in steps if step in FAST_RELEASE["ops"]}}
    with dg.DagsterInstance.get() as instance:
        return execute(build_definitions(root), RELEASE_JOB, "2024", instance, config,
                       asset_selection=[dg.AssetKey(step) for step in steps])


@pytest.mark.slow
def test_an_impossible_threshold_refuses_the_release_naming_each_metric(broken_copy: Baseline):
    """A privacy bound and a utility bound out of reach: the gate refuses, naming each metric.
    (merged here: test_pipeline.py's test_failing_threshold_refuses_publication_and_names_metric)"""
    _edit_catalog(broken_copy.root,
                  lambda raw: raw["release"].setdefault("thresholds", {}).update(mia_auc=0.01, kmarginal_3=1000.5))
    refused = _release_steps(broken_copy.root, "validation_report", "public_dataset")
    failures = "\n".join(refused.failures)
    assert not refused.success and not refused.released, failures
    assert any(r.startswith("validation_report.thresholds_pass") for r in refused.refused_by), refused.refused_by
    for fragment in ("validation_report.thresholds_pass failed", "mia_auc", "kmarginal_3"):
        assert fragment in failures, f"{fragment!r} not in the failures:\n{failures}"
    assert public_digest(broken_copy.root) == broken_copy.digest


@pytest.mark.slow
def test_read_only_public_folder_refuses_the_release_and_names_it(broken_copy: Baseline):
    public = broken_copy.root / "public"
    with _read_only(public):
        refused = _release_steps(broken_copy.root, "public_dataset")
    failures = "\n".join(refused.failures)
    assert not refused.success and not refused.released, failures
    assert "step public_dataset failed" in failures and str(public) in failures, failures
    assert public_digest(broken_copy.root) == broken_copy.digest


def test_corrupt_model_file_is_refused_before_generating(broken_copy: Baseline):
    """The model a release would generate from, damaged on disk: generation and publication refuse it."""
    import dagster as dg

    from synth_assets.defs.definitions import build_definitions
    from synth_assets.operations.runner import _failures

    model = broken_copy.root / "models" / "population_model" / "2024.model"
    _garble(model)
    job = build_definitions(broken_copy.root).resolve_job_def("release")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, partition_key="2024", raise_on_error=False,
            run_config={"ops": {"fictitious_dataset": {"config": {"replicates": 2}}}},
            asset_selection=[dg.AssetKey("fictitious_dataset"), dg.AssetKey("validation_report"),
                             dg.AssetKey("public_dataset")],
        )
    assert not result.success
    failures = "\n".join(_failures(list(result.all_events)))
    # the region step (one, all) loads the model first
    assert "step fictitious_dataset.fictitious_region[all] failed" in failures and str(model) in failures, failures
    assert public_digest(broken_copy.root) == broken_copy.digest


def test_the_data_card_cites_only_files_that_exist_with_their_hash(baseline: Baseline):
    """What every case above compares against: a release whose provenance can be checked on disk."""
    import json

    from synth_assets.catalog import load_catalog
    from synth_assets.common.hashing import file_sha256

    card = json.loads((baseline.release / "data_card.json").read_text())
    sources = set(load_catalog(baseline.root / "catalog.yaml").sources)
    assert {"register", "silc", "hbs", "lfs", "hfcs", "tus", "mobility"} <= sources
    assert set(card["provenance"]) == sources  # every source the release drew on, each once
    delivered = {file_sha256(p) for p in (baseline.root / "incoming").rglob("*") if p.is_file()}
    for name, info in card["provenance"].items():
        # the public card names no path: the sha256 is of a file delivered under incoming/
        assert set(info) == {"wave", "sha256"}, name
        assert info["sha256"] in delivered, f"{name}: sha256 {info['sha256']} of no delivered file"
