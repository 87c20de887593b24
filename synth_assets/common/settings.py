"""Process-wide settings that must hold before heavy libraries are imported."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def quiet_telemetry() -> None:
    """No library may phone home: the machines this runs on have no network, by design."""
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("SDV_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # SDV writes a logging config under XDG_DATA_HOME on import: keep it inside the project.
    os.environ.setdefault("XDG_DATA_HOME", str(PROJECT_ROOT / ".xdg"))
