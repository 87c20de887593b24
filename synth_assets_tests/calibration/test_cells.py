"""Cell keys from integer codes: the same keys as one string per row, for every kind of column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_assets.calibration.margins import KEY_SEPARATOR, MISSING_LABEL, cell_codes, cell_keys


def string_keys(frame: pd.DataFrame, variables: list[str], bands: dict[str, tuple[float, ...]]) -> np.ndarray:
    """The keys as the previous version built them: a label string per row and variable, joined."""
    from synth_assets.calibration.margins import band_labels

    parts = []
    for v in variables:
        values = frame[v]
        if v in bands:
            edges = np.asarray(bands[v], dtype=float)
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            position = np.searchsorted(edges, x, side="right") - 1
            labels = band_labels(list(bands[v]))
            parts.append(np.asarray([*labels, MISSING_LABEL], dtype=object)[np.where(np.isfinite(x), position,
                                                                                      len(labels))])
        else:
            parts.append(values.astype(object).where(values.notna(), MISSING_LABEL).astype(str).to_numpy(dtype=object))
    keys = parts[0].astype(str)
    for part in parts[1:]:
        keys = np.char.add(np.char.add(keys.astype(str), KEY_SEPARATOR), part.astype(str))
    return keys.astype(object)


def test_cell_keys_equal_one_string_per_row_for_every_column_kind():
    rng = np.random.default_rng(3)
    n = 2_000
    frame = pd.DataFrame({
        "region": pd.Categorical(rng.choice(["north", "south", None], n), categories=["north", "south", "west"]),
        "size": pd.array(rng.choice([1, 2, 3, None], n), dtype="Int64"),
        "age": np.where(rng.random(n) < 0.05, np.nan, rng.integers(0, 95, n).astype(float)),
        "code": rng.choice([1.0, 2.5, np.nan], n),
        "name": rng.choice(["a", "b", None], n).astype(object),
        "flag": rng.choice([True, False], n),
    })
    bands = {"age": (0.0, 15.0, 65.0)}
    for variables in (["region"], ["age"], ["region", "size", "age"], ["code", "name", "flag"], list(frame.columns)):
        keys, positions = cell_codes(frame, variables, bands)
        assert len(set(keys)) == len(keys)  # one key per distinct cell
        np.testing.assert_array_equal(cell_keys(frame, variables, bands).astype(str),
                                      string_keys(frame, variables, bands).astype(str))
        np.testing.assert_array_equal(keys[positions].astype(str), string_keys(frame, variables, bands).astype(str))
