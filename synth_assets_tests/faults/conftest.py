"""One tiny demo and one baseline release per session; each fault case breaks a copy of both.

The demo keeps only the waves the 2024 release reads (register, silc, lfs, hbs, mobility 2024;
hfcs, tus 2023), so a case ingests seven files, not fifteen, and a fault in any delivered file
is a fault in the release's own inputs.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from synth_assets_tests.defs.conftest import (
    FAST_RUN_OPTIONS,
    TINY_PERSONS,
    Prepared,
    built_once,
    drop_older_waves,
    tiny_catalog,
)

RUN_OPTIONS = FAST_RUN_OPTIONS


def public_digest(data_root: Path) -> dict[str, str]:
    """sha256 of every file under data/public, hidden ones (half-written releases) included."""
    public = data_root / "public"
    return {
        str(p.relative_to(public)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(public.rglob("*")) if p.is_file()
    }


@dataclass(frozen=True)
class Baseline:
    root: Path
    home: Path
    release: Path
    digest: dict[str, str]


@pytest.fixture(scope="session")
def baseline(tmp_path_factory) -> Baseline:
    """Built once per session, shared by the xdist workers (``built_once``)."""

    def build(prepared: Prepared) -> None:
        from synth_assets.cli import main
        from synth_assets.demo import generate_demo

        generate_demo(prepared.root, persons=TINY_PERSONS)
        shutil.rmtree(prepared.root / "truth")
        drop_older_waves(prepared.root)
        tiny_catalog(prepared.root / "catalog.yaml")
        prepared.use_repo_instance_settings()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_HOME", str(prepared.home))
            code = main(["run", "--data", str(prepared.root), *RUN_OPTIONS])
        assert code == 0, "the baseline release of the fault suite was not published"

    built = built_once(tmp_path_factory, "fault_baseline", build)
    return Baseline(built.root, built.home, built.release, public_digest(built.root))


@pytest.fixture
def broken_copy(baseline: Baseline, tmp_path, monkeypatch) -> Baseline:
    """The baseline's data root and instance, copied for one case to break."""
    root, home = tmp_path / "data", tmp_path / "dagster_home"
    shutil.copytree(baseline.root, root, symlinks=True)
    shutil.copytree(baseline.home, home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return Baseline(root, home, root / "public" / baseline.release.name, public_digest(root))
