"""The one Definitions object of the code location, built from ``data/catalog.yaml``."""

from synth_assets.defs.build import build_definitions

defs = build_definitions()
