"""One baseline release per session; each fault case breaks a copy of it.

The baseline is the Dagster tests' prepared 2024 release (``defs/conftest.py``: the same tiny
demo, the same fast options as ``RUN_OPTIONS``), not a second one built by ``synth-assets run``:
that cost a whole ingest and release per session. Its ``incoming`` keeps only the waves the 2024
release reads (register, silc, lfs, hbs, mobility 2024; hfcs, tus 2023), so a fault in any
delivered file is a fault in the release's own inputs; the instance remembers the removed waves,
which a release ignores (``runner.missing_sources``, the donors' delivered waves). Its home
gets the repository's dagster.yaml, as ``make run`` has it.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from synth_assets_tests.defs.conftest import (  # the prepared states' fixtures, visible to this folder's tests
    FAST_RUN_OPTIONS,
    Prepared,
    built_once,
    drop_older_waves,
    prepared_ingested,  # noqa: F401
    prepared_release,  # noqa: F401
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
def baseline(tmp_path_factory, prepared_release: Prepared) -> Baseline:  # noqa: F811
    """Built once per session, shared by the xdist workers (``built_once``)."""

    def build(prepared: Prepared) -> None:
        shutil.rmtree(prepared.home)
        prepared_release.copy_to(prepared.root.parent)
        drop_older_waves(prepared.root)
        prepared.use_repo_instance_settings()

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
