"""The one Definitions object of the code location, built from ``data/catalog.yaml`` (see ``defs/definitions.py``)."""

from synth_assets.defs.definitions import build_definitions

defs = build_definitions(code_location=__name__)
