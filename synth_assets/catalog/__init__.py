"""The catalog of sources and their harmonisation (``data/catalog.yaml``)."""

from synth_assets.catalog.loader import CatalogError, load_catalog, parse_catalog
from synth_assets.catalog.model import Catalog, CommonVariable, Release, Source, SourceVariable

__all__ = [
    "Catalog",
    "CatalogError",
    "CommonVariable",
    "Release",
    "Source",
    "SourceVariable",
    "load_catalog",
    "parse_catalog",
]
