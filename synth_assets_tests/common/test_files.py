import pandas as pd
import pytest

from synth_assets.common.files import atomic_path, write_parquet
from synth_assets.common.hashing import dataframe_sha256, file_sha256


def test_atomic_file_write_keeps_previous_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert pd.read_parquet(target)["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]  # no temp left behind


def test_atomic_folder_replace(tmp_path):
    target = tmp_path / "release"
    for content in ("one", "two"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "f.txt").write_text(content)
    assert (target / "f.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]


def test_hashes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    df = pd.DataFrame({"a": [1, 2]})
    assert dataframe_sha256(df) == dataframe_sha256(df.copy())
    assert dataframe_sha256(df) != dataframe_sha256(df.assign(a=[1, 3]))
