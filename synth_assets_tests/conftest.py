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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules of slow tests (whole pipelines, real models) first, in their order, each whole
    (its module fixtures built once): with ``-n 2 --dist worksteal`` each worker starts on its share
    and steals from the other's end, so the long ones no longer come last to a worker that has
    nothing else left (idle, on a fresh clone: 17 min 55 s with 160% of the 2 cores)."""
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    slow = {module(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: module(item) not in slow)


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
