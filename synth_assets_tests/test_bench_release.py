"""bench/release/truth.py on a tiny demo: the references behave as they must.

The release and the matched dataset are built from the truth itself, so each distance has a
known answer: a copy of the truth is exact, the floor is not, a dropped one-person household
share and missing values are caught.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_assets.common.layout import DataLayout
from synth_assets.demo import generate_demo

REPO = Path(__file__).resolve().parents[1]
WAVE = 2024


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_release_truth", REPO / "bench" / "release" / "truth.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _bench_module()


def _data_root(root: Path, replicates: list, matched_replicates: list | None = None) -> Path:
    generate_demo(root, persons=1500, waves=(WAVE,), seed=3)
    shutil.copy(REPO / "data" / "catalog.yaml", root / "catalog.yaml")
    layout = DataLayout(root)
    truth = pd.read_parquet(layout.truth / f"population_{WAVE}.parquet")
    keep = [c for c in truth.columns if not c.startswith("trait_") and c not in ("wave", "employment_status")]
    matched_dir = Path(layout.warehouse) / "matched_dataset"
    matched_dir.mkdir(parents=True)
    truth[keep].to_parquet(matched_dir / f"{WAVE}.parquet", index=False)
    if matched_replicates is not None:  # as synth_assets.matching.replicates stacks them
        stacked = pd.concat([make(truth[keep]).assign(replicate=i) for i, make in enumerate(matched_replicates, 1)])
        (Path(layout.warehouse) / "matched_replicates").mkdir(parents=True)
        stacked.to_parquet(Path(layout.warehouse) / "matched_replicates" / f"{WAVE}.parquet", index=False)
    release = layout.public / f"{WAVE}-20990101T000000Z"
    release.mkdir(parents=True)
    for i, make in enumerate(replicates, 1):
        make(truth[keep].drop(columns="person_id")).to_parquet(release / f"fictitious_population_r{i}.parquet")
    (layout.public / "LATEST").write_text(release.name + "\n")
    return root


def test_a_copy_of_the_truth_is_exact(tmp_path, bench):
    root = _data_root(tmp_path / "data", [lambda t: t, lambda t: t])
    evaluation = bench.evaluate(root, draws=2)
    pairs = evaluation.pairs
    assert evaluation.inputs.wave == str(WAVE)
    assert set(pairs["kind"]) >= {"register margin", "register × register", "register × survey",
                                  "within one survey", "across two surveys"}
    assert np.allclose(pairs[["release", "matched"]].to_numpy(), 0)
    single_years = pairs.loc[pairs["table"] == "persons: sex × age in single years (90+)"]
    assert single_years["kind"].tolist() == ["register margin"] and single_years["cells"].item() > 150
    register = pairs["kind"].isin(["register margin", "register × register"])
    assert np.allclose(pairs.loc[register, "cia_oracle"], 0)  # the oracle keeps the register
    assert (pairs.loc[register, "floor"] > 0).mean() > 0.9  # chance alone moves the tables
    verdicts = bench.targets(evaluation).set_index("target")["verdict"]
    assert verdicts.all()
    text = bench.to_markdown(evaluation, "test")
    assert "## Targets (7 of 7 met)" in text
    assert "no training sample stored" in text  # no resample of one to compare with (and no NaN warning)


def test_biased_households_and_missing_values_fail(tmp_path, bench):
    def biased(truth: pd.DataFrame) -> pd.DataFrame:
        # drop half of the households of two or more, blank a survey variable for some
        size = truth["household_size"]
        drop = (size > 1) & (truth["household_id"] % 2 == 0)
        out = truth.loc[~drop].copy()
        out.loc[out["age"] < 15, "occupation"] = np.nan
        return out

    root = _data_root(tmp_path / "data", [biased])
    evaluation = bench.evaluate(root, draws=2)
    verdicts = bench.targets(evaluation).set_index("target")
    failed = verdicts.loc[~verdicts["verdict"]].index
    assert any(t.startswith("register margins") for t in failed)
    assert any(t.startswith("household size") for t in failed)
    assert any(t.startswith("no missing values") for t in failed)
    missing = evaluation.missing.set_index("variable")
    assert missing.loc["occupation", "release"] > 0
    assert missing.loc["occupation", "release_in_universe"] == 0  # only children were blanked
    checks = evaluation.checks.set_index("replicate")
    assert checks.loc["r1", "one_person_share"] > checks.loc["truth", "one_person_share"]


def test_no_release_is_skipped(tmp_path, bench, capsys):
    assert bench.main(["--data", str(tmp_path), "--output", str(tmp_path / "out.md")]) == 0
    assert not (tmp_path / "out.md").exists()
    assert "skipped" in capsys.readouterr().err


def _shuffled(column: str, seed: int):
    """A survey variable cut from the rest of its record: what a replicate's bootstrap and fusion may do."""
    def make(truth: pd.DataFrame) -> pd.DataFrame:
        out = truth.copy()
        out[column] = np.random.default_rng(seed).permutation(out[column].to_numpy())
        return out
    return make


def test_the_release_is_judged_against_what_each_replicate_was_taught(tmp_path, bench):
    # matched replicates far from the truth (spend_food cut loose): a release as far is what its
    # models were taught, so it meets the targets against them and misses those against matched_dataset
    far = [_shuffled("spend_food", 1), _shuffled("spend_food", 2)]
    root = _data_root(tmp_path / "far", far, matched_replicates=far)
    evaluation = bench.evaluate(root, draws=2)
    pairs = evaluation.pairs
    food = pairs[pairs["table"].str.contains("spend_food") & pairs["table"].str.contains("tenure")].iloc[0]
    assert food["matched_replicates"] > 0.01
    assert food["matched"] == 0
    verdicts = bench.targets(evaluation).set_index("target")["verdict"]
    taught = verdicts[verdicts.index.str.contains("the matched replicates'")]
    assert len(taught) == 4 and taught.all()
    assert not verdicts["survey × survey pairs: worst release TVD ≤ matched_dataset's + 0.01"]

    # exact matched replicates: the same release strays from what it was taught, and fails
    root = _data_root(tmp_path / "exact", far, matched_replicates=[lambda t: t, lambda t: t])
    verdicts = bench.targets(bench.evaluate(root, draws=2)).set_index("target")["verdict"]
    assert not verdicts["survey × survey pairs: worst release TVD ≤ the matched replicates' + 0.01"]
