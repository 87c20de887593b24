"""generate_demo: layout, calendars, validation, determinism, atomic writes, CLI."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from synth_assets.demo import cli, generate_demo, survey_calendar

from .conftest import PERSONS, WAVES

EXPECTED_INCOMING = {
    "register": ["register/register_2022.parquet", "register/register_2023.parquet", "register/register_2024.parquet"],
    "silc": ["silc/silc_2022.csv", "silc/silc_2023.csv", "silc/silc_2024.csv"],
    "lfs": ["lfs/lfs_2022.sav", "lfs/lfs_2023.sav", "lfs/lfs_2024.sav"],
    "hbs": ["hbs/hbs_2022.dta", "hbs/hbs_2024.dta"],
    "hfcs": ["hfcs/hfcs_2023.parquet"],
    "tus": ["tus/tus_2023.xpt"],
    "mobility": ["mobility/mobility_2022.csv", "mobility/mobility_2024.csv"],
}


def test_files_per_wave_follow_the_calendars(demo, demo_dir):
    incoming = demo_dir / "incoming"
    on_disk = sorted(p.relative_to(incoming).as_posix() for p in incoming.rglob("*") if p.is_file())
    assert on_disk == sorted(f for files in EXPECTED_INCOMING.values() for f in files)
    for source, files in EXPECTED_INCOMING.items():
        assert [f.relative_to(incoming) for f in demo.incoming(source)] == files
    assert demo.waves_of("hbs") == [2022, 2024]
    assert demo.waves_of("hfcs") == [2023]
    for wave in WAVES:
        assert (demo_dir / "truth" / f"population_{wave}.parquet").is_file()
    assert (demo_dir / "truth" / "manifest.json").is_file()


def test_calendar_generalises_to_other_waves():
    cal = survey_calendar([2025, 2026, 2027, 2028, 2029])
    assert cal["silc"] == cal["lfs"] == cal["register"] == [2025, 2026, 2027, 2028, 2029]
    assert cal["hbs"] == [2026, 2028]
    assert cal["hfcs"] == cal["tus"] == [2026, 2029]
    assert cal["mobility"] == [2026, 2028]


def test_manifest_lists_every_file_with_rows(demo, demo_dir):
    assert demo.persons == PERSONS and demo.waves == WAVES
    assert all(f.path.is_file() and f.rows > 0 for f in demo.files)
    assert {f.source for f in demo.incoming()} == {"register", "silc", "hbs", "lfs", "hfcs", "tus", "mobility"}
    assert all(f.rows == PERSONS for f in demo.incoming("register"))
    written = json.loads((demo_dir / "truth" / "manifest.json").read_text(encoding="utf-8"))
    assert written["persons"] == PERSONS
    assert len(written["files"]) == len(demo.files)


@pytest.mark.parametrize("persons", [500, 999, 2_000_001, 0, -5])
def test_persons_out_of_range_is_a_clear_error(tmp_path, persons):
    with pytest.raises(ValueError, match="persons must be between 1,000 and 2,000,000"):
        generate_demo(tmp_path, persons=persons)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"persons": 3000.5}, "persons must be an integer"),
        ({"waves": ()}, "waves must not be empty"),
        ({"waves": (2022, 2022)}, "distinct"),
        ({"waves": (1800,)}, "years between"),
        ({"waves": (2000, 2020)}, "span at most"),
        ({"seed": -1}, "seed"),
    ],
)
def test_other_invalid_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_demo(tmp_path, **kwargs)


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.suffix in (".csv", ".parquet")
    }


def test_deterministic_for_a_seed(demo_dir, tmp_path):
    generate_demo(tmp_path / "again", persons=PERSONS, waves=WAVES)
    first, second = _digests(demo_dir), _digests(tmp_path / "again")
    # register x3, silc x3, hfcs x1, mobility x2, truth populations x3, truth sample links x12
    # (silc 3, lfs 3, hbs 2, hfcs 1, tus 1, mobility 2); the SAS transport header has a timestamp
    assert len(first) == 3 + 3 + 1 + 2 + 3 + 12
    assert first == second
    generate_demo(tmp_path / "other", persons=PERSONS, waves=WAVES, seed=7)
    other = _digests(tmp_path / "other")
    assert other.keys() == first.keys()
    assert all(other[k] != first[k] for k in first)


def test_no_temporary_files_left_behind(demo_dir):
    assert not [p for p in demo_dir.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synth-assets")
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    return parser


def test_cli_defaults():
    args = _parser().parse_args(["demo-data"])
    assert args.output == Path("data")
    assert args.persons == 50_000
    assert args.waves == (2022, 2023, 2024)
    assert args.seed == 20240101
    assert args.func is cli.run


def test_cli_writes_and_reports(tmp_path, capsys):
    args = _parser().parse_args(
        ["demo-data", "--output", str(tmp_path), "--persons", "1500", "--waves", "2023,2024", "--seed", "3"]
    )
    assert cli.run(args) == 0
    out = capsys.readouterr().out
    assert "1,500 persons" in out
    assert "incoming/hfcs/hfcs_2023.parquet" in out and "incoming/hbs/hbs_2024.dta" in out
    assert "hbs_2023" not in out
    assert (tmp_path / "incoming" / "lfs" / "lfs_2024.sav").is_file()


def test_cli_reports_invalid_persons(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["demo-data", "--output", str(tmp_path), "--persons", "500"])
    assert exit_info.value.code == 2
    assert "argument --persons: 500 is below the minimum" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_malformed_waves(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["demo-data", "--waves", "2022,next"])
    assert "comma-separated years" in capsys.readouterr().err
