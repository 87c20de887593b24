"""The ``fuse`` subcommand, driven through argparse as the main CLI will."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from synth_assets.matching.cli import add_parser, run
from synth_assets_tests.matching.data import survey_pair


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="synth-assets")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    recipient, donor, _ = survey_pair(400, 200)
    recipient.to_csv(tmp_path / "a.csv", index=False)
    donor.to_csv(tmp_path / "b.csv", index=False)
    return tmp_path / "a.csv", tmp_path / "b.csv"


def test_csv_in_parquet_out(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = files
    out = a.parent / "fused.parquet"
    args = parse(
        [
            "fuse",
            "--recipient",
            str(a),
            "--donor",
            str(b),
            "--on",
            "age,sex,region",
            "--impute",
            "status,hours",
            "--donor-weight",
            "weight",
            "--donation-classes",
            "sex",
            "--option",
            "k=2",
            "--seed",
            "3",
            "--output",
            str(out),
        ]
    )
    assert args.func is run
    assert run(args) == 0
    fused = pd.read_parquet(out)
    recipient = pd.read_csv(a)
    assert len(fused) == len(recipient) and (fused["age"].to_numpy() == recipient["age"].to_numpy()).all()
    assert fused["status"].notna().all() and fused["hours"].dtype == "float64"
    printed = capsys.readouterr().out
    assert "method nnd_hotdeck" in printed and "status: TVD vs donor" in printed and "wrote 400 rows" in printed
    assert sorted(p.name for p in a.parent.iterdir()) == ["a.csv", "b.csv", "fused.parquet"]  # no temp file left


def test_missing_column_is_named_with_the_file(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = files
    out = a.parent / "fused.csv"
    args = parse(
        ["fuse", "--recipient", str(a), "--donor", str(b), "--on", "age", "--impute", "z1", "--output", str(out)]
    )
    assert run(args) == 2
    error = capsys.readouterr().err
    assert f"donor file {b} has no column 'z1' (columns: age, sex, region, status" in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "fused.xlsx"], "unsupported file type '.xlsx'"),
        (["--output", "fused.csv", "--option", "k"], "--option expects KEY=VALUE"),
        (["--output", "fused.csv", "--option", "kk=2"], "has no option 'kk'"),
        (
            ["--output", "fused.csv", "--donor-weight", "age", "--recipient", "missing.csv"],
            "recipient file missing.csv does not exist",
        ),
    ],
)
def test_other_input_errors_exit_2(
    files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    a, b = files
    monkeypatch.chdir(a.parent)
    argv = ["fuse", "--recipient", str(a), "--donor", str(b), "--on", "age", "--impute", "status"] + extra
    assert run(parse(argv)) == 2
    assert message in capsys.readouterr().err


def test_auxiliary_file_selects_aux_hotdeck(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = files
    auxiliary = pd.read_csv(a).iloc[:60].assign(status=pd.read_csv(b)["status"].iloc[:60].to_numpy())
    auxiliary.to_parquet(a.parent / "c.parquet")
    out = a.parent / "fused.csv"
    argv = [
        "fuse",
        "--recipient",
        str(a),
        "--donor",
        str(b),
        "--on",
        "age,sex,region",
        "--impute",
        "status",
        "--auxiliary",
        str(a.parent / "c.parquet"),
        "--output",
        str(out),
    ]
    assert run(parse(argv)) == 0
    assert "method aux_hotdeck" in capsys.readouterr().out
    assert pd.read_csv(out)["status"].isin(["work", "retired", "other"]).all()
