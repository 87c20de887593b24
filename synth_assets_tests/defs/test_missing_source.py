"""A catalog source whose files were removed is refused, never fused from what the instance remembers."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from synth_assets.catalog import load_catalog
from synth_assets.common.layout import DataLayout
from synth_assets.defs.definitions import build_definitions
from synth_assets.operations.runner import MissingSourceError, execute, register_waves, run_pipeline


def test_fresh_instance_refuses_a_release_without_a_source_naming_it_and_its_pattern(
    data_root, tmp_path, monkeypatch, capsys
):
    from synth_assets.cli import main

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    shutil.rmtree(data_root / "incoming" / "silc")

    code = main(["run", "--data", str(data_root), "--family", "cart", "--replicates", "2"])

    captured = capsys.readouterr()
    assert code == 1, captured
    expected = f"source 'silc': no file for release wave 2024: expected {data_root / 'incoming' / 'silc' / 'silc_{wave}.csv'}"
    assert expected in captured.err, captured.err
    assert "(present: none)" in captured.err
    assert "IndexError" not in captured.out + captured.err
    assert not (data_root / "public").exists()


def test_an_instance_that_ingested_the_source_before_refuses_it_once_its_files_are_gone(data_root):
    layout = DataLayout(data_root)
    catalog = load_catalog(layout.catalog)
    defs = build_definitions(data_root)
    with dg.instance_for_test() as instance:
        register_waves(instance, catalog, layout)
        assert execute(defs, "ingest_silc", "2024", instance).success
        shutil.rmtree(data_root / "incoming" / "silc")

        # The headless runner refuses before any run ...
        with pytest.raises(MissingSourceError, match=r"source 'silc': no file for release wave 2024: expected .*silc_\{wave\}\.csv"):
            run_pipeline(defs, catalog, layout, instance, echo=lambda _: None)

        # ... and so does the release materialised from the UI or by automation: the instance
        # still knows wave 2024, but its file is gone.
        release = execute(defs, "release", "2024", instance)
    assert not release.success
    donor = next(f for f in release.failures if f.startswith("step donor_silc failed"))
    assert "source 'silc': no file for release wave 2024" in donor
    assert "(present: none; known to the instance: 2022, 2023, 2024)" in donor
    assert not (data_root / "public").exists()


def test_a_file_changed_after_ingest_is_refused_with_both_hashes(data_root):
    layout = DataLayout(data_root)
    catalog = load_catalog(layout.catalog)
    defs = build_definitions(data_root)
    with dg.instance_for_test() as instance:
        register_waves(instance, catalog, layout)
        assert execute(defs, "ingest_silc", "2024", instance).success
        path = data_root / "incoming" / "silc" / "silc_2024.csv"
        path.write_bytes(path.read_bytes() + b"\n")
        release = execute(defs, "release", "2024", instance)
    donor = next(f for f in release.failures if f.startswith("step donor_silc failed"))
    assert f"{path} changed since it was ingested (sha256 " in donor and "ingest it again" in donor
