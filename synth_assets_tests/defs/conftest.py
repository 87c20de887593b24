"""A tiny demo population in a temporary data root, shared by the Dagster tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY_PERSONS = 3000


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    from synth_assets.demo import generate_demo

    root = tmp_path_factory.mktemp("demo_source")
    generate_demo(root, persons=TINY_PERSONS)
    return root


#: Calibration margins for the tiny demo: its 1,300 households spread over 19 municipalities
#: would leave municipality cells merged across sizes and types, so the tests calibrate to
#: the city-wide tables a population of this size supports.
TINY_MARGINS = [
    {"unit": "person", "variables": ["sex", "age"]},
    {"unit": "household", "variables": ["household_type", "household_size"]},
]


def tiny_catalog(target: Path) -> None:
    """The project catalog with the tiny demo's calibration margins."""
    raw = yaml.safe_load((REPO / "data" / "catalog.yaml").read_text(encoding="utf-8"))
    raw.setdefault("release", {}).setdefault("calibration", {})["margins"] = TINY_MARGINS
    target.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture
def data_root(tmp_path, tiny_demo) -> Path:
    """A fresh copy of the tiny demo (tests may break its files) with the project catalog."""
    root = tmp_path / "data"
    shutil.copytree(tiny_demo / "incoming", root / "incoming")
    tiny_catalog(root / "catalog.yaml")
    return root
