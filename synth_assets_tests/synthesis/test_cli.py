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
    pd.DataFrame({"when": pd.date_range("2020-01-01", periods=60), "x": range(60)}).to_parquet(source)
    assert run("--input", str(source), "--output", str(tmp_path / "out.parquet")) == 2
    assert "'when'" in capsys.readouterr().err


def test_too_small_table_is_refused_with_a_nonzero_exit(persons: pd.DataFrame, tmp_path: Path, capsys) -> None:
    source, target = tmp_path / "small.csv", tmp_path / "out.csv"
    persons.head(20).to_csv(source, index=False)
    assert run("--input", str(source), "--output", str(target)) == 2
    err = capsys.readouterr().err
    assert str(source) in err and "has 20 rows, fewer than the 50 needed" in err
    assert not target.exists()
    # The minimum is a declared default, not a law: it can be lowered deliberately.
    assert run("--input", str(source), "--output", str(target), "--min-rows", "10") == 0
    assert len(pd.read_csv(target)) == 20


def test_library_fit_refuses_too_small_tables(persons: pd.DataFrame) -> None:
    from synth_assets.synthesis import MIN_TRAINING_ROWS, TooFewRowsError, make_synthesizer, training_row_minimum

    assert MIN_TRAINING_ROWS == 50
    with pytest.raises(TooFewRowsError, match="has 49 rows, fewer than the 50 needed"):
        make_synthesizer("cart").fit(persons.head(49))
    synth = make_synthesizer("cart")
    synth.min_training_rows = 10
    assert synth.fit(persons.head(49)).is_fitted
    with training_row_minimum(10):
        assert make_synthesizer("cart").fit(persons.head(49)).is_fitted
    with pytest.raises(TooFewRowsError):
        make_synthesizer("cart").fit(persons.head(49))  # the override ended with the block


@pytest.mark.parametrize(("sep", "shown"), [(";", "';'"), ("\t", "a tab")])
def test_csv_that_parses_as_one_column_is_refused(
    persons: pd.DataFrame, tmp_path: Path, capsys, sep: str, shown: str
) -> None:
    source, target = tmp_path / "semicolons.csv", tmp_path / "out.csv"
    persons.to_csv(source, index=False, sep=sep)
    assert run("--input", str(source), "--output", str(target)) == 2
    err = capsys.readouterr().err
    assert str(source) in err and "parses as one column" in err and f"delimited by {shown}" in err
    assert not target.exists()


def test_through_the_main_entry_point(persons: pd.DataFrame, tmp_path: Path, capsys) -> None:
    from synth_assets.cli import main

    source = tmp_path / "small.csv"
    persons.head(5).to_csv(source, index=False)
    code = main(["synthesize", "--input", str(source), "--output", str(tmp_path / "out.csv")])
    assert code == 2
    assert "fewer than the 50 needed" in capsys.readouterr().err
