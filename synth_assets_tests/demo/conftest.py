from __future__ import annotations

from pathlib import Path

import pytest

from synth_assets.demo import generate_demo

PERSONS = 3000
WAVES = (2022, 2023, 2024)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """One generated demo (3,000 persons, default waves and seed) shared by the tests."""
    out = tmp_path_factory.mktemp("demo")
    manifest = generate_demo(out, persons=PERSONS, waves=WAVES)
    return manifest


@pytest.fixture(scope="session")
def demo_dir(demo) -> Path:
    return demo.output_dir
