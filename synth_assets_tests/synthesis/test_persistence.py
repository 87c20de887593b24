"""Model files and Parquet streaming: same rows after a round trip, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from synth_assets.synthesis import (
    CARTSynthesizer,
    ModelFileError,
    NotFittedError,
    Synthesizer,
    load_synthesizer,
    make_synthesizer,
)


@pytest.fixture(scope="module")
def cart(persons: pd.DataFrame) -> CARTSynthesizer:
    return make_synthesizer("cart", seed=4).fit(persons)


def test_save_load_gives_the_same_rows_for_the_same_seed(cart: CARTSynthesizer, tmp_path: Path) -> None:
    path = cart.save(tmp_path / "cart.model")
    loaded = load_synthesizer(path)
    assert isinstance(loaded, CARTSynthesizer)
    pd.testing.assert_frame_equal(loaded.sample(300, seed=9), cart.sample(300, seed=9))
    assert loaded.training_log == cart.training_log
    assert [p.name for p in tmp_path.iterdir()] == ["cart.model"]  # no temporary left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04 a zip file, not a model", "not a synth_assets model file"),
        (b"SYNTH_ASSETS_MODEL\n{broken json\n", "unreadable header"),
    ],
)
def test_foreign_or_corrupt_files_name_the_path(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as info:
        Synthesizer.load(path)
    assert str(path) in str(info.value)


def test_truncated_model_file_is_detected(cart: CARTSynthesizer, tmp_path: Path) -> None:
    path = cart.save(tmp_path / "cart.model")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="checksum mismatch") as info:
        Synthesizer.load(path)
    assert str(path) in str(info.value)


def test_missing_file_and_wrong_class(cart: CARTSynthesizer, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read model file"):
        Synthesizer.load(tmp_path / "absent.model")
    path = cart.save(tmp_path / "cart.model")
    from synth_assets.synthesis import HouseholdSynthesizer

    with pytest.raises(ModelFileError, match="not a HouseholdSynthesizer"):
        HouseholdSynthesizer.load(path)


def test_unfitted_model_cannot_sample_or_save(tmp_path: Path) -> None:
    synth = make_synthesizer("cart")
    with pytest.raises(NotFittedError):
        synth.sample(5)
    with pytest.raises(NotFittedError):
        synth.save(tmp_path / "x.model")


def test_parquet_streaming_matches_chunked_sample(cart: CARTSynthesizer, persons: pd.DataFrame, tmp_path: Path) -> None:
    path = cart.sample_to_parquet(1000, tmp_path / "out.parquet", seed=3, chunk_size=256)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4  # written chunk by chunk
    back = pd.read_parquet(path)
    expected = cart.sample(1000, seed=3, chunk_size=256)
    pd.testing.assert_frame_equal(back, expected)
    assert back.dtypes.equals(persons.dtypes)
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_zero_rows(cart: CARTSynthesizer, persons: pd.DataFrame, tmp_path: Path) -> None:
    empty = cart.sample(0)
    assert empty.empty and empty.dtypes.equals(persons.dtypes)
    assert pd.read_parquet(cart.sample_to_parquet(0, tmp_path / "none.parquet")).empty


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: the shape of a malicious model file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _crafted_file(path: Path, payload: bytes) -> Path:
    # A forger can copy a real header and recompute its checksum; only the key is out of reach.
    import hashlib
    import json

    from synth_assets.synthesis.base import FORMAT_VERSION, MAGIC

    header = {
        "format_version": FORMAT_VERSION,
        "family": "cart",
        "class": "synth_assets.synthesis.cart.CARTSynthesizer",
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
    }
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + b"0" * 64 + b"\n" + payload)
    return path


def test_crafted_model_file_runs_no_code_on_load(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pwned"
    path = _crafted_file(tmp_path / "evil.model", pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelFileError, match="signature does not verify") as info:
        load_synthesizer(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_tampered_byte_is_refused_and_valid_file_still_loads(cart: CARTSynthesizer, tmp_path: Path) -> None:
    import hashlib
    import json

    path = cart.save(tmp_path / "cart.model")
    assert isinstance(load_synthesizer(path), CARTSynthesizer)
    raw = bytearray(path.read_bytes())
    raw[-50] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_synthesizer(path)
    # Same tampered byte with the checksum recomputed: the signature still refuses it.
    from synth_assets.synthesis.base import MAGIC

    body = bytes(raw)[len(MAGIC):]
    header_line, signature, payload = body.split(b"\n", 2)
    header = json.loads(header_line)
    header["sha256"] = hashlib.sha256(payload).hexdigest()
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + signature + b"\n" + payload)
    with pytest.raises(ModelFileError, match="signature does not verify") as info:
        load_synthesizer(path)
    assert str(path) in str(info.value)


def test_another_installations_key_is_refused(
    cart: CARTSynthesizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    monkeypatch.delenv("SYNTH_ASSETS_MODEL_KEY", raising=False)
    monkeypatch.setenv("SYNTH_ASSETS_HOME", str(tmp_path / "home_a"))
    path = cart.save(tmp_path / "cart.model")
    key_file = tmp_path / "home_a" / "model.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert isinstance(load_synthesizer(path), CARTSynthesizer)
    monkeypatch.setenv("SYNTH_ASSETS_HOME", str(tmp_path / "home_b"))
    with pytest.raises(ModelFileError, match="signature does not verify"):
        load_synthesizer(path)
    monkeypatch.setenv("SYNTH_ASSETS_MODEL_KEY", key_file.read_text())
    assert isinstance(load_synthesizer(path), CARTSynthesizer)


def test_the_training_log_is_read_from_the_header_verified_and_without_the_model(
    cart: CARTSynthesizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data card needs the training log, not the model (a CART model holds its donors): it is
    read from the signed header, the payload hashed as read and never unpickled."""
    import json
    import pickle

    import numpy as np

    from synth_assets.synthesis.base import MAGIC

    cart.training_log["card"] = {"family": "cart", "rows": np.int64(7), "share": np.float32(0.5)}
    path = cart.save(tmp_path / "cart.model")
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("the model was unpickled"))
    log = Synthesizer.read_training_log(path)
    assert log is not None and set(log) == set(cart.training_log)
    assert (log["family"], log["rows"]) == (cart.training_log["family"], cart.training_log["rows"])
    assert log["card"] == {"family": "cart", "rows": 7, "share": 0.5}  # NumPy numbers as numbers
    monkeypatch.undo()
    # a byte of the payload changed: refused, as load refuses it
    raw = bytearray(path.read_bytes())
    raw[-50] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        Synthesizer.read_training_log(path)
    # the header's log changed (a forged card): the signature refuses it
    raw[-50] ^= 0x01
    header_line, rest = bytes(raw)[len(MAGIC):].split(b"\n", 1)
    header = json.loads(header_line)
    header["training_log"]["card"]["family"] = "neural"
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + rest)
    with pytest.raises(ModelFileError, match="signature does not verify"):
        Synthesizer.read_training_log(path)
