"""A minimal catalog reader for the demo tests: plain YAML + pandas.

Deliberately independent of ``synth_assets.catalog`` (the project's loader),
so these tests pin down the *file format* of ``data/catalog.yaml`` and the
generated data, not one implementation of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import yaml

CATALOG = Path(__file__).resolve().parents[2] / "data" / "catalog.yaml"


def load_catalog(path: Path = CATALOG) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def source_path(incoming: Path, source: dict, wave: int) -> Path:
    return incoming / source["path"].format(wave=wave)


def read_raw(path: Path, source: dict, *, labels: bool = True) -> pd.DataFrame:
    """Read a delivered file; ``labels`` picks the value-label flavour for Stata/SPSS."""
    fmt, opts = source["format"], dict(source.get("read_options") or {})
    if fmt == "csv":
        return pd.read_csv(path, **opts)
    if fmt == "parquet":
        return pd.read_parquet(path, **opts)
    if fmt == "stata":
        return pd.read_stata(path, convert_categoricals=labels, **opts)
    if fmt == "spss":
        if labels:
            return pd.read_spss(path, **opts)
        frame, _ = pyreadstat.read_sav(str(path), **opts)
        return frame
    if fmt == "sas":  # SAS transport: pandas' own reader, independent of the project's pyreadstat one
        return pd.read_sas(path, format="xport", **opts)
    raise ValueError(fmt)


def _lookup(codes: dict):
    table: dict = {}
    for raw, value in codes.items():
        table[raw] = value
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            table[float(raw)] = value

    def convert(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return np.nan
        if v in table:
            return table[v]
        raise KeyError(v)

    return convert


def harmonise(raw: pd.DataFrame, source: dict, common: dict) -> pd.DataFrame:
    """Harmonise a raw frame following the catalog rules (codes, missing, special, scale)."""
    out = {}
    for name, spec in source["variables"].items():
        col = raw[spec["column"]]
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.astype(object)
        col = col.copy()
        missing = spec.get("missing_values") or []
        if missing:
            col = col.where(~col.isin(missing), np.nan)
        if "codes" in spec:
            col = col.map(_lookup(spec["codes"]))
        kind = common[name]["type"] if spec["role"] == "common" else spec.get("type")
        if kind in ("integer", "number"):
            col = pd.to_numeric(col)
            special = spec.get("special_values") or []
            scale = spec.get("scale")
            if scale is not None:
                col = col.where(col.isin(special), col * scale)
        out[name] = col
    return pd.DataFrame(out)
