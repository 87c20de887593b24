"""``synth-assets compare`` through the main CLI: files written, table printed, clear input errors."""

from __future__ import annotations

import pandas as pd
import pytest

from synth_assets.cli import main
from synth_assets_tests.validation.populations import population


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    population(500, 31).to_csv(folder / "train.csv", index=False)
    population(500, 32).to_parquet(folder / "holdout.parquet")
    population(500, 33).drop(columns=["weight"]).to_csv(folder / "narrow.csv", index=False)
    (folder / "garbage.parquet").write_bytes(b"not parquet")
    return folder


def test_compares_families_end_to_end(files, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["compare", "--train", str(files / "train.csv"), "--holdout", str(files / "holdout.parquet"),
                 "--models", "cart,copula", "--quasi-identifiers", "age,sex,region", "--sensitive", "income",
                 "--seed", "1", "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["family"]) == ["baseline (holdout)", "cart", "copula"]
    assert table["error"].isna().all() and (table["fit_seconds"].iloc[1:] > 0).all()
    assert "Model families compared" in (out / "comparison.html").read_text()
    assert "copula fitted in" in printed and "baseline (holdout)" in printed and "passing every threshold: " in printed


def test_exit_1_when_no_family_passes(files, tmp_path, capsys) -> None:
    code = main(["compare", "--train", str(files / "train.csv"), "--holdout", str(files / "holdout.parquet"),
                 "--models", "tvae", "--epochs", "1", "--output", str(tmp_path / "out")])
    assert code == 1
    assert "passing every threshold: none" in capsys.readouterr().out
    assert (tmp_path / "out" / "comparison.csv").exists()


@pytest.mark.parametrize(
    ("train", "holdout", "models", "needle"),
    [
        ("missing.csv", "holdout.parquet", "cart", "missing.csv"),
        ("train.csv", "garbage.parquet", "cart", "garbage.parquet"),
        ("train.csv", "narrow.csv", "cart", "narrow.csv"),
        ("train.csv", "holdout.parquet", "cart,diffusion", "argument --models: invalid choice(s): 'diffusion' (choose from cart, neural, gan, ctgan, tvae, copula)"),
    ],
)
def test_unusable_input_exits_2_naming_it(files, tmp_path, capsys, train, holdout, models, needle) -> None:
    code = main(["compare", "--train", str(files / train), "--holdout", str(files / holdout), "--models", models,
                 "--output", str(tmp_path / "out")])
    assert code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
