"""One tiny demo and one baseline release per session; each fault case breaks a copy of both.

The demo keeps only the waves the 2024 release reads (register, silc, lfs, hbs 2024; hfcs
2023), so a case ingests five files, not twelve, and a fault in any delivered file is a
fault in the release's own inputs.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from synth_assets_tests.defs.conftest import TINY_PERSONS, tiny_catalog

REPO = Path(__file__).resolve().parents[2]
OLDER_WAVES = ["register/register_2022.parquet", "register/register_2023.parquet", "silc/silc_2022.csv",
               "silc/silc_2023.csv", "hbs/hbs_2022.dta", "lfs/lfs_2022.sav", "lfs/lfs_2023.sav"]
RUN_OPTIONS = ["--family", "cart", "--replicates", "2"]


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
    from synth_assets.cli import main
    from synth_assets.demo import generate_demo

    base = tmp_path_factory.mktemp("fault_baseline")
    root, home = base / "data", base / "dagster_home"
    generate_demo(root, persons=TINY_PERSONS)
    shutil.rmtree(root / "truth")
    for relative in OLDER_WAVES:
        (root / "incoming" / relative).unlink()
    tiny_catalog(root / "catalog.yaml")
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        code = main(["run", "--data", str(root), *RUN_OPTIONS])
    assert code == 0, "the baseline release of the fault suite was not published"
    release = root / "public" / (root / "public" / "LATEST").read_text().strip()
    return Baseline(root, home, release, public_digest(root))


@pytest.fixture
def broken_copy(baseline: Baseline, tmp_path, monkeypatch) -> Baseline:
    """The baseline's data root and instance, copied for one case to break."""
    root, home = tmp_path / "data", tmp_path / "dagster_home"
    shutil.copytree(baseline.root, root, symlinks=True)
    shutil.copytree(baseline.home, home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return Baseline(root, home, root / "public" / baseline.release.name, public_digest(root))
