"""Shared fixtures. Tests run on 2 cores: one torch thread per worker, telemetry off."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SDV_DISABLE_TELEMETRY", "1")
os.environ.setdefault("XDG_DATA_HOME", str(Path(__file__).resolve().parents[1] / ".xdg"))
# The model signing key of the test runs stays in the ignored .xdg/, not in the user's home.
os.environ.setdefault("SYNTH_ASSETS_HOME", str(Path(__file__).resolve().parents[1] / ".xdg" / "synth_assets"))

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_stale_dagster_instance():
    yield
    from synth_assets.dagster_api import forget_closed_instance

    forget_closed_instance()


@pytest.fixture
def mini_catalog_path(tmp_path: Path) -> Path:
    target = tmp_path / "catalog.yaml"
    shutil.copy(FIXTURES / "mini_catalog.yaml", target)
    return target


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "eusilc.csv").exists():
        pytest.skip(f"shared microdata not found at {SHARED_DATA} (only present beside a CI checkout)")
    return SHARED_DATA
