"""``synth-assets run`` sizes a run by the register's largest delivered wave, before any ingest."""

import pandas as pd

from synth_assets.catalog import load_catalog
from synth_assets.operations.sizing import largest_register_wave


def test_largest_register_wave_reads_the_delivered_files(tmp_path, mini_catalog_path):
    catalog = load_catalog(mini_catalog_path)
    incoming = tmp_path / "incoming"
    assert largest_register_wave(catalog, incoming) is None  # nothing delivered
    (incoming / "register").mkdir(parents=True)
    for wave, rows in ((2022, 5), (2023, 8), (2024, 3)):
        pd.DataFrame({"pid": range(rows)}).to_parquet(incoming / "register" / f"register_{wave}.parquet")
    (incoming / "living").mkdir()
    pd.DataFrame({"pid": range(50)}).to_csv(incoming / "living" / "living_2023.csv", index=False)  # a survey's
    assert largest_register_wave(catalog, incoming) == 8
    (incoming / "register" / "register_2025.parquet").write_bytes(b"not parquet")  # left to its ingest to refuse
    assert largest_register_wave(catalog, incoming) == 8
