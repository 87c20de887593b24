import argparse
import json

import pytest

from synth_assets.validation import cli
from synth_assets_tests.validation.populations import population


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="synth-assets")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return cli.run(parser.parse_args(["evaluate", *argv]))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    train, holdout, fresh = population(600, 21), population(600, 22), population(600, 23)
    train.to_csv(folder / "train.csv", index=False)
    holdout.to_parquet(folder / "holdout.parquet")
    fresh.to_csv(folder / "fresh.csv", index=False)
    train.to_csv(folder / "copy.csv", index=False)
    train.drop(columns=["weight"]).to_csv(folder / "narrow.csv", index=False)
    (folder / "garbage.parquet").write_bytes(b"not parquet")
    return folder


def test_passing_synthetic_exits_0(files, tmp_path, capsys):
    code = _run("--real", str(files / "train.csv"), "--synthetic", str(files / "fresh.csv"),
                "--holdout", str(files / "holdout.parquet"), "--quasi-identifiers", "age,sex,region",
                "--sensitive", "income", "--output", str(tmp_path / "ok"))
    assert code == 0, capsys.readouterr().out
    assert json.loads((tmp_path / "ok" / "metrics.json").read_text())["passed"] is True
    assert (tmp_path / "ok" / "report.html").exists()


def test_failing_threshold_exits_1_and_still_reports(files, tmp_path, capsys):
    code = _run("--real", str(files / "train.csv"), "--synthetic", str(files / "copy.csv"),
                "--holdout", str(files / "holdout.parquet"), "--output", str(tmp_path / "bad"))
    assert code == 1
    assert "exact_copy_rate" in capsys.readouterr().out
    assert (tmp_path / "bad" / "report.html").exists()


def test_zero_threads_are_refused_before_any_work(files, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _run("--real", str(files / "train.csv"), "--synthetic", str(files / "fresh.csv"), "--jobs", "0",
             "--output", str(tmp_path / "x"))
    assert exit_.value.code == 2
    assert "--jobs: 0 threads" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("synthetic", "extra", "needle"),
    [
        ("narrow.csv", [], "weight"),
        ("missing.csv", [], "missing.csv"),
        ("garbage.parquet", [], "garbage.parquet"),
        ("fresh.csv", ["--quasi-identifiers", "age,postcode"], "postcode"),
    ],
)
def test_unusable_input_exits_2_naming_it(files, tmp_path, capsys, synthetic, extra, needle):
    code = _run("--real", str(files / "train.csv"), "--synthetic", str(files / synthetic), *extra,
                "--output", str(tmp_path / "x"))
    assert code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_bad_thresholds_file_exits_2(files, tmp_path, capsys):
    (tmp_path / "t.yaml").write_text("dcr_share: {min: 0.5}\n")
    code = _run("--real", str(files / "train.csv"), "--synthetic", str(files / "fresh.csv"),
                "--thresholds", str(tmp_path / "t.yaml"), "--output", str(tmp_path / "x"))
    assert code == 2
    assert "t.yaml" in capsys.readouterr().err
