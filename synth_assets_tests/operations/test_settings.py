"""Typed configuration: a bad value is refused before any step runs, with one line naming it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pydantic
import pytest

from synth_assets.cli import main
from synth_assets.defs.synthesis.assets import FictitiousConfig, ModelConfig
from synth_assets.defs.validation.assets import ValidationConfig
from synth_assets.operations.settings import (
    SettingsError,
    parse_assignments,
    read_settings_file,
    release_options,
    release_run_config,
    valid_keys,
)


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")} if root.exists() else {}


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    (root / "incoming").mkdir(parents=True)
    (root / "catalog.yaml").write_text("not: [a, catalog\n")  # never read: the settings are refused first
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # never created either
    return root


def _refused(argv: list[str], capsys, root: Path) -> str:
    before = _tree(root)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert _tree(root) == before, "the data root changed"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _refused_after_parsing(argv: list[str], capsys, root: Path) -> str:
    before = _tree(root)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert _tree(root) == before, "the data root changed"
    assert not (root.parent / "home").exists(), "a Dagster instance was opened"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, named", [
    (["--family", "ctgn"], ["--family", "'ctgn'", "cart", "ctgan"]),
    (["--epochs", "0"], ["--epochs", "0", "minimum 1"]),
    (["--max-seconds", "-5"], ["--max-seconds", "-5"]),
    (["--replicates", "1000"], ["--replicates", "1000", "maximum 100"]),
    (["--demo-persons", "10"], ["--demo-persons", "10"]),
])
def test_run_flags_refused_at_parse_time(argv, named, root, capsys):
    line = _refused(["run", "--data", str(root), *argv], capsys, root)
    assert line.startswith("synth-assets run: error: argument ")
    for word in named:
        assert word in line, line


@pytest.mark.parametrize("setting, named", [
    ("model.family=ctgn", ["model.family='ctgn'", "'cart'"]),
    ("model.epochs=0", ["model.epochs=0", "greater than or equal to 1"]),
    ("model.person_family=xx", ["model.person_family='xx'", "not a model family"]),
    ("fictitious.replicates=0", ["fictitious.replicates=0"]),
    ("split.holdout_fraction=1.5", ["split.holdout_fraction=1.5", "less than 1"]),
    ("validation.compare_families=[cart, ctgn]", ["validation.compare_families", "'ctgn' is not a model family"]),
    ("validation.max_rows=abc", ["validation.max_rows='abc'", "integer"]),
    ("matching.methods={silc: nearest}", ["matching.methods", "'nearest' is not a matching method"]),
    ("compute.processes=0", ["compute.processes=0", "n_jobs must be -1, None or at least 1"]),
])
def test_run_settings_refused_before_any_work(setting, named, root, capsys):
    line = _refused_after_parsing(["run", "--data", str(root), "--set", setting], capsys, root)
    assert line.startswith("error: setting "), line
    for word in named:
        assert word in line, line


def test_unknown_setting_lists_the_valid_ones(root, capsys):
    line = _refused_after_parsing(["run", "--data", str(root), "--set", "model.famly=cart"], capsys, root)
    assert "unknown setting 'model.famly'" in line
    assert all(key in line for key in ("model.family", "validation.max_rows", "fictitious.replicates"))


def test_config_file_is_checked_like_set(root, tmp_path, capsys):
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text("model:\n  family: cart\n  epochs: -1\n")
    line = _refused_after_parsing(["run", "--data", str(root), "--config", str(run_yaml)], capsys, root)
    assert line == "error: setting model.epochs=-1: Input should be greater than or equal to 1"


@pytest.mark.parametrize("argv, named", [
    (["synthesize", "--input", "a.csv", "--output", "b.csv", "--model", "ctgn"], ["--model", "'ctgn'"]),
    (["synthesize", "--input", "a.csv", "--output", "b.csv", "--epochs", "0"], ["--epochs", "0"]),
    (["synthesize", "--input", "a.csv", "--output", "b.csv", "--rows", "-3"], ["--rows", "-3"]),
    (["demo-data", "--persons", "5"], ["--persons", "5", "minimum"]),
    (["fuse", "--recipient", "a", "--donor", "b", "--on", "x", "--impute", "z", "--output", "o",
      "--method", "nearest"], ["--method", "'nearest'"]),
    (["evaluate", "--real", "a", "--synthetic", "b", "--output", "o", "--seed", "-1"], ["--seed", "-1"]),
    (["compare", "--train", "a", "--holdout", "b", "--output", "o", "--models", "cart,ctgn"],
     ["--models", "'ctgn'", "copula"]),
])
def test_library_commands_refuse_bad_values(argv, named, tmp_path, capsys):
    os.chdir(tmp_path)
    line = _refused(argv, capsys, tmp_path)
    assert line.startswith(f"synth-assets {argv[0]}: error: argument "), line
    for word in named:
        assert word in line, line
    assert list(tmp_path.iterdir()) == []


def test_settings_map_onto_the_release_jobs_typed_configs():
    from synth_assets.definitions import defs
    from synth_assets.defs.automation.jobs import RELEASE_JOB

    config = release_run_config({"model.family": "cart", "model.epochs": 5, "fictitious.replicates": 2,
                                 "validation.max_rows": 5000, "validation.compare_families": ["cart"],
                                 "split.holdout_fraction": 0.3, "matching.seed": 3})
    job = defs.resolve_job_def(RELEASE_JOB)
    assert dg.validate_run_config(job, config)
    assert set(valid_keys()) >= {"model.family", "model.max_seconds", "validation.compare_families",
                                 "compute.processes", "compute.threads"}
    with pytest.raises(SettingsError):
        release_run_config({"model": "cart"})
    assert config["ops"]["matched_replicates"] == {"config": {"replicates": 2}}
    # the matched replicates are fused as the matched dataset is: its methods and parts, not its seed
    config = release_run_config({"matching.methods": {"silc": "nnd_hotdeck"}, "matching.part_persons": 400_000,
                                 "matching.seed": 3, "fictitious.replicates": 2})
    assert config["ops"]["matched_replicates"] == {"config": {"methods": {"silc": "nnd_hotdeck"},
                                                              "part_persons": 400_000, "replicates": 2}}
    assert config["ops"]["matched_dataset"]["config"]["part_persons"] == 400_000
    assert dg.validate_run_config(job, config)
    # the compute section configures the run's resource, not a step
    config = release_run_config({"compute.processes": 1, "fictitious.replicates": 2})
    assert config["resources"] == {"compute": {"config": {"processes": 1}}}
    assert dg.validate_run_config(job, config)["resources"]["compute"]["config"]["processes"] == 1


def test_configs_are_typed():
    """Dagster refuses a misspelt family at launch (the UI's launchpad too), pydantic in code."""
    from synth_assets.definitions import defs
    from synth_assets.defs.automation.jobs import RELEASE_JOB

    job = defs.resolve_job_def(RELEASE_JOB)
    with pytest.raises(dg.DagsterInvalidConfigError, match="ctgn"):
        dg.validate_run_config(job, {"ops": {"population_model": {"config": {"family": "ctgn"}}}})
    for config, values in [(ModelConfig, {"epochs": 0}), (ModelConfig, {"max_seconds": 0}),
                           (FictitiousConfig, {"replicates": 0}), (ValidationConfig, {"compare_families": ["x"]})]:
        with pytest.raises(pydantic.ValidationError):
            config(**values)


@pytest.mark.parametrize("setting, named", [
    ("release.disclosure.k=1", ["release.disclosure.k=1", "greater than or equal to 2"]),
    ("release.enforcement.max_rejection_rate=2", ["release.enforcement.max_rejection_rate=2", "less than or equal to 1"]),
    ("release.enforcement.max_rounds=abc", ["release.enforcement.max_rounds='abc'", "integer"]),
    ("model.params.min_leaf=abc", ["model.params", "min_leaf='abc'", "integer"]),
    ("model.params.min_leef=20", ["model.params", "'min_leef' is not an option of cart", "min_leaf", "smoothing"]),
    ("model.params.batch_size=500", ["'batch_size' is not an option of cart"]),
    ("model.params={epochs: 3}", ["'epochs' is an option of the model step itself"]),
])
def test_filter_and_model_options_refused_before_any_work(setting, named, root, capsys):
    # CART's options, checked against CART's (the default family is the neural network)
    line = _refused_after_parsing(["run", "--data", str(root), "--family", "cart", "--set", setting], capsys, root)
    assert line.startswith("error: setting "), line
    for word in named:
        assert word in line, line


def test_unknown_release_option_lists_the_valid_ones(root, capsys):
    line = _refused_after_parsing(["run", "--data", str(root), "--set", "release.thresholds.k3=0"], capsys, root)
    assert "unknown setting 'release.thresholds.k3'" in line
    assert all(key in line for key in ("release.disclosure.k", "release.disclosure.strata",
                                       "release.enforcement.max_rounds", "model.params.OPTION"))


def test_release_options_are_checked_against_the_catalog_before_any_run(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    (root / "incoming").mkdir(parents=True)
    shutil.copy(Path(__file__).parents[2] / "data" / "catalog.yaml", root / "catalog.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    line = _refused_after_parsing(["run", "--data", str(root), "--set", "release.disclosure.strata=[region]"],
                                  capsys, root)
    assert line == (f"error: setting release.disclosure.strata: 'region' is not a variable of any source "
                    f"({root / 'catalog.yaml'})"), line


def test_filter_and_model_settings_parse_from_set_and_file(tmp_path):
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text("model:\n  family: cart\n  params: {min_leaf: 40, smoothing: false}\n"
                        "release:\n  disclosure: {k: 5, strata: [municipality]}\n  enforcement: {max_rounds: 8}\n")
    settings = read_settings_file(run_yaml)
    settings.update(parse_assignments(["model.params.min_leaf=60", "release.quasi_identifiers=[age, sex]"]))
    assert release_options(settings) == {"disclosure.k": 5, "disclosure.strata": ["municipality"],
                                         "enforcement.max_rounds": 8, "quasi_identifiers": ["age", "sex"]}
    config = release_run_config(settings)
    assert config["ops"]["population_model"]["config"] == {"family": "cart",
                                                           "params": {"min_leaf": 60, "smoothing": False}}
    assert "release" not in str(config["ops"])
    from synth_assets.definitions import defs
    from synth_assets.defs.automation.jobs import RELEASE_JOB

    assert dg.validate_run_config(defs.resolve_job_def(RELEASE_JOB), config)


def test_release_options_overlay_the_catalog_for_every_asset_and_check(tmp_path):
    """The run's overlay reaches the resource the assets read and the catalog the checks are built from."""
    from synth_assets.catalog import load_catalog
    from synth_assets.defs.definitions import build_definitions

    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(Path(__file__).parents[2] / "data" / "catalog.yaml", root / "catalog.yaml")
    options = {"disclosure.k": 6, "enforcement.member_rounds": 2}
    defs = build_definitions(root, release_options=options)
    release = defs.resources["project"].catalog.release
    assert (release.disclosure.k, release.enforcement.member_rounds) == (6, 2)
    plain = load_catalog(root / "catalog.yaml").release
    assert (plain.disclosure.k, plain.enforcement.member_rounds) == (3, 5), "the catalog file is the default"
    assert release.rules == plain.rules and release.thresholds == plain.thresholds
