"""The Parquet IO manager writes row group by row group and reads back the very table."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from synth_assets.defs.io_managers import _ParquetIOManager, _write_parquet
from synth_assets.defs.values import SourceFile, WaveTable


def _table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "household_id": pd.array(np.arange(rows) // 3, dtype="Int64"),
        "age": pd.array(np.where(rng.random(rows) < 0.1, None, rng.integers(0, 90, rows)), dtype="Int64"),
        "sex": pd.Categorical(rng.choice(["f", "m"], rows), categories=["f", "m", "x"]),
        # missing in the first row groups only: their slices alone would make it a null column
        "note": [None] * (rows - min(rows, 5)) + ["late"] * min(rows, 5),
        "income": np.where(rng.random(rows) < 0.2, np.nan, rng.lognormal(10, 1, rows)),
    })


def test_row_groups_hold_the_same_table_as_one_write(tmp_path):
    data = _table(1003)
    _write_parquet(data, str(tmp_path / "chunked.parquet"), row_group_rows=100)
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), tmp_path / "whole.parquet")
    assert pq.ParquetFile(tmp_path / "chunked.parquet").metadata.num_row_groups == 11
    manager = _ParquetIOManager(base_path=UPath(tmp_path))
    loaded = manager.load_from_path(None, UPath(tmp_path / "chunked.parquet"))  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(loaded, pd.read_parquet(tmp_path / "whole.parquet"))
    pd.testing.assert_frame_equal(loaded, data)
    assert pq.read_table(tmp_path / "chunked.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))


def test_a_wave_table_keeps_its_facts_and_an_empty_table_its_columns(tmp_path):
    origin = SourceFile("silc", "2024", "silc_2024.csv", "ab" * 32, "run-1")
    table = WaveTable(_table(250), origin, {"sex": {"f": "female", "m": "male"}})
    _write_parquet(table, str(tmp_path / "wave.parquet"), row_group_rows=100)
    manager = _ParquetIOManager(base_path=UPath(tmp_path))
    loaded = manager.load_from_path(None, UPath(tmp_path / "wave.parquet"))  # type: ignore[arg-type]
    assert isinstance(loaded, WaveTable) and loaded.facts() == table.facts()
    pd.testing.assert_frame_equal(loaded.data, table.data)
    _write_parquet(_table(0), str(tmp_path / "empty.parquet"))
    assert list(pd.read_parquet(tmp_path / "empty.parquet").columns) == list(_table(0).columns)


def test_an_input_annotated_parquet_table_gets_the_file_not_the_frame(tmp_path):
    import functools

    import dagster as dg

    from synth_assets.common.frames import ParquetTable
    from synth_assets.common.hashing import dataframe_sha256
    from synth_assets.defs.io_managers import ParquetIOManager
    from synth_assets.defs.signatures import with_keyword_inputs

    data = _table(250)
    seen: dict[str, object] = {}

    @dg.asset
    def release() -> pd.DataFrame:
        return data

    @dg.asset
    def frame_user(release: pd.DataFrame) -> None:
        seen["frame"] = release

    @dg.asset
    def scanner(release: ParquetTable) -> None:
        seen["table"] = release
        seen["sha256"] = release.sha256()

    @dg.asset_check(asset=release)
    @functools.partial(with_keyword_inputs, names=["release"], annotations={"release": ParquetTable})
    def scanned(**inputs: ParquetTable) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=isinstance(inputs["release"], ParquetTable))

    result = dg.materialize([release, frame_user, scanner, scanned],
                            resources={"io_manager": ParquetIOManager(base_path=str(tmp_path))})
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert isinstance(seen["table"], ParquetTable) and isinstance(seen["frame"], pd.DataFrame)
    assert seen["sha256"] == dataframe_sha256(data)  # the hash the checks record of the loaded table
    pd.testing.assert_frame_equal(pd.concat(seen["table"].frames(), ignore_index=True), seen["frame"])  # type: ignore[attr-defined]


def test_an_input_annotated_model_file_gets_the_model_when_the_step_asks(tmp_path):
    """A step that holds the fitted model only while it needs it: the input is a handle that loads it."""
    import dagster as dg

    from synth_assets.defs.io_managers import ModelIOManager
    from synth_assets.defs.values import ModelFile
    from synth_assets.synthesis.cart import CARTSynthesizer

    data = _table(200)[["age", "sex", "income"]].dropna()
    seen: dict[str, object] = {}

    @dg.asset(io_manager_key="model_io_manager")
    def model() -> CARTSynthesizer:
        return CARTSynthesizer(seed=0).fit(data)

    @dg.asset
    def eager(model: CARTSynthesizer) -> None:
        seen["eager"] = model

    @dg.asset
    def lazy(model: ModelFile) -> None:
        seen["handle"] = model
        seen["log"] = model.training_log  # from the file's header, before any load
        seen["loaded"] = model.load()

    manager = ModelIOManager(base_path=str(tmp_path))
    result = dg.materialize([model, eager, lazy], resources={"model_io_manager": manager, "io_manager": dg.mem_io_manager})
    assert result.success
    assert isinstance(seen["handle"], ModelFile) and isinstance(seen["eager"], CARTSynthesizer)
    assert str(seen["handle"].path).endswith("model.model")  # type: ignore[attr-defined]
    drawn = [m.sample(50, seed=1) for m in (seen["eager"], seen["loaded"])]  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(*drawn)
    assert seen["log"]["rows"] == len(data) and seen["log"]["family"] == "cart"  # type: ignore[index]


def test_the_data_card_reads_the_models_training_log_without_loading_it(tmp_path, monkeypatch):
    """The gate takes the model as a ``ModelFile`` and reads its card from the file's header: never
    the model itself (a CART model holds its donors, the training data)."""
    import inspect
    from pathlib import Path

    import dagster as dg
    import pytest

    from synth_assets.catalog import load_catalog
    from synth_assets.defs.io_managers import ModelIOManager
    from synth_assets.defs.publication.assets import build_public_dataset
    from synth_assets.defs.synthesis.assets import model_card
    from synth_assets.defs.values import ModelFile
    from synth_assets.synthesis.base import Synthesizer
    from synth_assets.synthesis.cart import CARTSynthesizer

    cards: list[dict] = []

    @dg.asset(io_manager_key="model_io_manager")
    def model() -> CARTSynthesizer:
        fitted = CARTSynthesizer(seed=0).fit(_table(200)[["age", "sex", "income"]].dropna())
        fitted.training_log["card"] = {"family": "cart", "run_id": "r1"}
        return fitted

    @dg.asset
    def card(model: ModelFile) -> None:
        cards.append(model_card(model))

    monkeypatch.setattr(Synthesizer, "load", classmethod(lambda cls, path: pytest.fail("the model was loaded")))
    result = dg.materialize([model, card], resources={"model_io_manager": ModelIOManager(base_path=str(tmp_path)),
                                                      "io_manager": dg.mem_io_manager})
    assert result.success
    assert cards[0]["family"] == "cart" and cards[0]["run_id"] == "r1"
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.yaml")
    gate = build_public_dataset(catalog).op.compute_fn.decorated_fn  # type: ignore[union-attr]
    assert inspect.signature(gate).parameters["model"].annotation in (ModelFile, "ModelFile")


def _staged_pieces() -> list[pd.DataFrame]:
    """Replicates with categories of their own and an integer column missing in the first one."""
    pieces = []
    for i, categories in ((1, ["f", "m"]), (2, ["x", "f"])):
        frame = _table(120).assign(replicate=i)
        frame["sex"] = pd.Categorical(np.resize(categories, 120), categories=categories)
        frame["children"] = pd.Series([None] * 120 if i == 1 else list(range(120)), dtype=object)
        pieces.append(frame)
    return pieces


def test_a_staged_table_is_moved_into_place_with_the_metadata_of_the_frame(tmp_path):
    import gc

    import dagster as dg

    from synth_assets.common.frames import FrameStack, ParquetStack, ParquetTable
    from synth_assets.defs.io_managers import ParquetIOManager

    staged_folders: list[str] = []

    @dg.asset
    def from_frame() -> pd.DataFrame:  # today's route: the replicates joined in memory
        stack = FrameStack()
        for piece in _staged_pieces():
            stack.append(piece)
        return stack.to_pandas()

    @dg.asset
    def from_stack() -> ParquetTable:  # each replicate written as it is made
        stack = ParquetStack(row_group_rows=50)
        for piece in _staged_pieces():
            stack.append(piece)
        staged = stack.finish()
        staged_folders.append(str(UPath(staged.path).parent))
        return staged

    result = dg.materialize([from_frame, from_stack], resources={"io_manager": ParquetIOManager(base_path=str(tmp_path))})
    assert result.success
    manager = _ParquetIOManager(base_path=UPath(tmp_path))
    frame = manager.load_from_path(None, UPath(tmp_path / "from_frame.parquet"))  # type: ignore[arg-type]
    staged = manager.load_from_path(None, UPath(tmp_path / "from_stack.parquet"))  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(staged, frame)  # the same frame, dtypes included
    assert list(staged["sex"].cat.categories) == ["f", "m", "x"] and str(staged["children"].dtype) == "float64"
    assert pq.ParquetFile(tmp_path / "from_stack.parquet").metadata.num_row_groups == 6  # as staged: moved, not rewritten
    metadata = {m.asset_key.path[-1]: m.metadata for m in result.get_asset_materialization_events()
                for m in [m.materialization]}
    for key in ("dagster/row_count", "dagster/column_schema"):
        assert metadata["from_stack"][key] == metadata["from_frame"][key]
    assert metadata["from_stack"]["dagster/row_count"].value == 240
    gc.collect()
    assert not any(UPath(f).exists() for f in staged_folders)  # nothing left in the temporary folder


def test_a_staged_table_goes_to_object_storage_whole(tmp_path):
    from synth_assets.common.frames import ParquetStack

    stack = ParquetStack(tmp_path)
    for piece in _staged_pieces():
        stack.append(piece)
    staged = stack.finish()
    expected = staged.read()
    target = UPath("memory://bucket/warehouse/release/2024.parquet")
    manager = _ParquetIOManager(base_path=UPath("memory://bucket/warehouse"))
    manager.dump_to_path(None, staged, target)  # type: ignore[arg-type]
    assert staged.path == target and staged.num_rows == 240  # the table reads the stored object now
    pd.testing.assert_frame_equal(manager.load_from_path(None, target), expected)  # type: ignore[arg-type]
    target.fs.rm(target.path)


def test_another_assets_stored_file_is_refused_not_moved(tmp_path):
    import dagster as dg

    from synth_assets.common.frames import ParquetTable
    from synth_assets.defs.io_managers import ParquetIOManager

    @dg.asset
    def release() -> pd.DataFrame:
        return _table(30)

    @dg.asset
    def passed_on(release: ParquetTable) -> ParquetTable:
        return release  # the stored file of another asset: moving it would take that asset's data away

    resources = {"io_manager": ParquetIOManager(base_path=str(tmp_path))}
    assert dg.materialize([release], resources=resources).success
    result = dg.materialize([release, passed_on], selection=[passed_on], resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "expected a DataFrame, a WaveTable or a StagedTable, got ParquetTable" in message
    assert "ParquetStack" in message
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "release.parquet"), _table(30))  # left in place
    assert not (tmp_path / "passed_on.parquet").exists()
