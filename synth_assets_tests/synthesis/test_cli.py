"""``synth-assets synthesize`` through argparse: round trips and clear input errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from synth_assets.synthesis import cli, load_synthesizer


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="synth-assets")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["synthesize", *argv])
    return args.func(args)


def test_csv_round_trip_keeps_columns_and_dtypes(persons: pd.DataFrame, tmp_path: Path, capsys) -> None:
    source, target, model = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "m.model"
    persons.to_csv(source, index=False)
    assert run("--input", str(source), "--output", str(target), "--rows", "250", "--seed", "3",
               "--save-model", str(model)) == 0
    real, synthetic = pd.read_csv(source), pd.read_csv(target)
    assert len(synthetic) == 250
    assert list(synthetic.columns) == list(real.columns)
    assert synthetic.dtypes.equals(real.dtypes)
    assert load_synthesizer(model).family == "cart"
    out = capsys.readouterr().out
    assert "fitting cart on 686 rows" in out and "wrote 250 synthetic rows" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "m.model", "out.csv"]


def test_parquet_round_trip_keeps_categories(people: pd.DataFrame, tmp_path: Path) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    people.to_parquet(source)
    assert run("--input", str(source), "--output", str(target), "--household-id", "household_id",
               "--chunk-size", "200", "--epochs", "3") == 0
    synthetic = pd.read_parquet(target)
    assert synthetic.dtypes.equals(people.dtypes)
    assert synthetic["region"].cat.categories.equals(people["region"].cat.categories)
    assert len(synthetic) >= len(people)
    assert (synthetic.groupby("household_id")["region"].nunique() == 1).all()


@pytest.mark.slow
def test_gan_with_budget_from_the_command_line(persons: pd.DataFrame, tmp_path: Path) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    persons.to_parquet(source)
    assert run("--input", str(source), "--output", str(target), "--model", "ctgan",
               "--epochs", "2", "--max-seconds", "20", "--rows", "100") == 0
    assert pd.read_parquet(target).dtypes.equals(persons.dtypes)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("absent.csv", None, "cannot read input file"),
        ("broken.parquet", b"not parquet at all", "cannot read input file"),
        ("empty.csv", b"a,b\n", "holds no rows"),
        ("table.xlsx", b"whatever", "unsupported file type"),
    ],
)
def test_bad_input_names_the_file(tmp_path: Path, capsys, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert run("--input", str(path), "--output", str(tmp_path / "out.csv")) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert not (tmp_path / "out.csv").exists()


def test_unusable_column_is_an_input_error(tmp_path: Path, capsys) -> None:
    source = tmp_path / "dates.parquet"
    pd.DataFrame({"when": pd.date_range("2020-01-01", periods=30), "x": range(30)}).to_parquet(source)
    assert run("--input", str(source), "--output", str(tmp_path / "out.parquet")) == 2
    assert "'when'" in capsys.readouterr().err
