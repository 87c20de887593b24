"""A tiny demo population in a temporary data root, shared by the Dagster tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY_PERSONS = 3000


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    from synth_assets.demo import generate_demo

    root = tmp_path_factory.mktemp("demo_source")
    generate_demo(root, persons=TINY_PERSONS)
    return root


@pytest.fixture
def data_root(tmp_path, tiny_demo) -> Path:
    """A fresh copy of the tiny demo (tests may break its files) with the project catalog."""
    root = tmp_path / "data"
    shutil.copytree(tiny_demo / "incoming", root / "incoming")
    shutil.copy(REPO / "data" / "catalog.yaml", root / "catalog.yaml")
    return root
