"""The shared preprocessing: what goes in comes out (states, codes, missing values, dtypes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from synth_assets.synthesis.transform import (
    MISSING_STATE,
    VALUE_STATE,
    CategoricalCodec,
    IdCodec,
    NumericCodec,
    SchemaError,
    TableTransformer,
)


def test_round_trip_is_exact(persons: pd.DataFrame) -> None:
    transformer = TableTransformer().fit(persons)
    back = transformer.inverse(transformer.transform(persons), np.random.default_rng(0))
    pd.testing.assert_frame_equal(back, persons)


def test_semi_continuous_income_is_split_into_state_and_value(persons: pd.DataFrame) -> None:
    transformer = TableTransformer().fit(persons)
    codec = transformer.codecs["income"]
    assert isinstance(codec, NumericCodec)
    assert codec.masses == [0.0] and codec.has_missing
    frame = transformer.transform(persons)
    state = frame[codec.state_column]
    assert (state == "=0.0").mean() == pytest.approx((persons["income"] == 0).mean())
    assert (state == MISSING_STATE).mean() == pytest.approx(persons["income"].isna().mean())
    assert frame.loc[state != VALUE_STATE, "income"].isna().all()
    assert (frame.loc[state == VALUE_STATE, "income"] > 0).all()


def test_negative_codes_are_detected_or_given() -> None:
    rng = np.random.default_rng(1)
    hours = rng.integers(1, 60, 500).astype(float)
    hours[:60] = -8
    hours[60:75] = -9
    data = pd.DataFrame({"hours": hours})
    auto = TableTransformer().fit(data).codecs["hours"]
    assert auto.masses == [-9.0, -8.0]
    given = TableTransformer(special_codes={"hours": [-8]}).fit(data).codecs["hours"]
    assert -8.0 in given.masses and -9.0 not in given.masses  # -9 (3%) stays a value
    with pytest.raises(SchemaError, match="unknown columns"):
        TableTransformer(special_codes={"nope": [-8]}).fit(data)


def test_decode_trusts_state_and_clips_and_rounds() -> None:
    data = pd.DataFrame({"x": np.r_[np.zeros(50), np.arange(1, 151)].astype(np.int64)})
    transformer = TableTransformer().fit(data)
    codec = transformer.codecs["x"]
    model_out = pd.DataFrame(
        {"x": [0.4, 7.6, 1e6, np.nan], codec.state_column: ["=0.0", VALUE_STATE, VALUE_STATE, VALUE_STATE]}
    )
    out = transformer.inverse(model_out, np.random.default_rng(0))
    assert out["x"].dtype == np.int64
    assert out["x"].iloc[0] == 0 and out["x"].iloc[1] == 8 and out["x"].iloc[2] == 150
    assert 1 <= out["x"].iloc[3] <= 150  # a gap under "value" is drawn from the continuous part


def test_column_kinds_and_dtypes(persons: pd.DataFrame) -> None:
    transformer = TableTransformer().fit(persons)
    kinds = {name: type(codec) for name, codec in transformer.codecs.items()}
    assert kinds["household_size"] is CategoricalCodec  # few distinct integers
    assert kinds["employed"] is CategoricalCodec
    assert kinds["age"] is NumericCodec
    assert transformer.codecs["education"].missing_label is not None
    schema = transformer.schema
    assert list(schema.empty_frame().columns) == list(persons.columns)
    assert schema.empty_frame()["region"].cat.categories.tolist() == persons["region"].cat.categories.tolist()
    assert schema.arrow_schema().field("tenure").type == pa.string()


def test_identifiers_are_regenerated_never_real() -> None:
    data = pd.DataFrame({"pid": [f"p{i}" for i in range(40)], "num": np.arange(40), "x": [1.0, 2.0] * 20})
    transformer = TableTransformer(id_columns=["num", "absent"]).fit(data)
    assert isinstance(transformer.codecs["pid"], IdCodec)  # distinct strings: detected
    assert isinstance(transformer.codecs["num"], IdCodec)  # named
    out = transformer.inverse(transformer.transform(data), np.random.default_rng(0), offset=5)
    assert not set(out["pid"]) & set(data["pid"])
    assert out["num"].min() > data["num"].max() and out["num"].is_unique


def test_unsupported_dtype_and_unseen_values_are_clear_errors() -> None:
    with pytest.raises(SchemaError, match="'when'.*not supported"):
        TableTransformer().fit(pd.DataFrame({"when": pd.date_range("2020-01-01", periods=5)}))
    transformer = TableTransformer().fit(pd.DataFrame({"c": ["a", "b"] * 5}))
    with pytest.raises(SchemaError, match="'c'.*'z' not seen"):
        transformer.transform(pd.DataFrame({"c": ["z"]}))


def _labels_as_codes(transformer: TableTransformer, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    labels = transformer.categorical_labels
    return {column: pd.Categorical(values, categories=labels[column]).codes if column in labels else values
            for column, values in transformer.encoded_columns(frame)}


def test_codes_are_the_labels_positions(persons: pd.DataFrame) -> None:
    # CART takes a label column as codes: encoded_codes must give what encoding, then coding the labels, gives
    data = persons.assign(
        kind=pd.Categorical(np.where(persons.index % 3 == 0, "x", "y"), categories=["z", "y", "x"]),  # an unused one
        small=np.where(persons.index % 4 == 0, None, persons.index % 5).astype(object),  # numbers, missing
        flag=pd.array(np.where(persons.index % 7 == 0, pd.NA, persons.index % 2 == 0), dtype="boolean"),
    )
    transformer = TableTransformer().fit(data)
    expected = _labels_as_codes(transformer, data)
    got = dict(transformer.encoded_codes(data))
    assert list(got) == list(expected)
    assert set(transformer.categorical_labels) <= set(got)
    for column, values in expected.items():
        np.testing.assert_array_equal(got[column], values, err_msg=column)
    # rows in another order, a categorical column read with other categories, ints where floats were fitted
    shuffled = data.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled["kind"] = shuffled["kind"].cat.reorder_categories(["x", "y", "z"])
    for column, values in _labels_as_codes(transformer, shuffled).items():
        np.testing.assert_array_equal(dict(transformer.encoded_codes(shuffled))[column], values, err_msg=column)


def test_codes_raise_what_encoding_raises() -> None:
    transformer = TableTransformer().fit(pd.DataFrame({"c": ["a", "b"] * 50, "x": np.linspace(0.0, 1.5, 100)}))
    with pytest.raises(SchemaError, match="'c'.*'z' not seen"):
        dict(transformer.encoded_codes(pd.DataFrame({"c": ["a", "z"], "x": [0.0, 1.0]})))
    with pytest.raises(SchemaError, match="'c'.*'z' not seen"):  # a categorical's unknown category, used
        dict(transformer.encoded_codes(pd.DataFrame({"c": pd.Categorical(["a", "z"]), "x": [0.0, 1.0]})))
    # an unknown category no row holds is no error
    dict(transformer.encoded_codes(pd.DataFrame({"c": pd.Categorical(["a", "b"], categories=["a", "b", "z"]),
                                                 "x": [0.0, 1.0]})))
    with pytest.raises(SchemaError, match="'c' has missing values"):
        dict(transformer.encoded_codes(pd.DataFrame({"c": ["a", None], "x": [0.0, 1.0]})))
    with pytest.raises(SchemaError, match="'x' has missing values"):
        dict(transformer.encoded_codes(pd.DataFrame({"c": ["a", "b"], "x": [0.0, None]})))


def test_frames_are_made_of_their_columns_not_merged_copies(persons: pd.DataFrame) -> None:
    """The model frame and a frame put to the schema keep the columns they were made of: pandas'
    default for a dict merges every column of a dtype into one copied block (a fifth of a drawn
    chunk's time); the values are the same either way."""
    transformer = TableTransformer().fit(persons)
    encoded = dict(transformer.encoded_columns(persons))
    frame = transformer.transform(persons)
    for name, values in encoded.items():
        np.testing.assert_array_equal(frame[name].to_numpy(), values)
    assert frame._mgr.nblocks == frame.shape[1]  # a block per column: none merged
    enforced = transformer.fitted_schema.enforce(persons)
    pd.testing.assert_frame_equal(enforced, persons)
    kept = [c for c in persons.columns if isinstance(persons[c].dtype, np.dtype)]  # numpy columns, already of their dtype
    assert kept and all(np.shares_memory(enforced[c].to_numpy(), persons[c].to_numpy()) for c in kept)


def test_label_columns_handed_over_as_categoricals_are_decoded_by_their_codes(persons: pd.DataFrame, monkeypatch) -> None:
    """A model that holds codes (CART) hands its label columns over as categoricals of their labels: the
    transformer takes their codes as they are and puts a categorical column of the schema straight into
    its dtype, no categorical built from text (the round trip through the labels' text was a tenth of a
    replicate's drawing); the same frame as from the labels as text, the state columns' masses included."""
    data = persons.assign(
        kind=pd.Categorical(np.where(persons.index % 3 == 0, "x", "y"), categories=["z", "y", "x"]),  # an unused one
        small=np.where(persons.index % 4 == 0, None, persons.index % 5).astype(object),  # numbers, missing
    )
    transformer = TableTransformer().fit(data)
    labels = transformer.categorical_labels
    assert any(isinstance(c, NumericCodec) and c.masses for c in transformer.codecs.values())  # a state column
    as_text = transformer.transform(data)
    as_codes = as_text.assign(**{c: pd.Categorical(as_text[c], categories=labels[c]) for c in labels})
    expected = transformer.inverse(as_text, np.random.default_rng(0))
    pd.testing.assert_frame_equal(expected, data)
    built: list[object] = []
    construct = pd.Categorical.__init__

    def recorded(self, values, *args, **kwargs):
        built.append(values)
        construct(self, values, *args, **kwargs)

    monkeypatch.setattr(pd.Categorical, "__init__", recorded)
    decoded = transformer.inverse(as_codes, np.random.default_rng(0))
    monkeypatch.undo()
    pd.testing.assert_frame_equal(decoded, expected)
    assert not built
