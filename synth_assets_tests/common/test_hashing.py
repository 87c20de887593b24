"""Content and row hashes computed by blocks of rows give the hashes of the whole table."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from synth_assets.common import hashing
from synth_assets.common.hashing import TableSha256, dataframe_sha256, in_sorted, row_hashes


def _table(n: int = 1_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 1, n)
    income[::7] = np.nan
    return pd.DataFrame({
        "person_id": np.arange(n),
        "sex": pd.Categorical(rng.choice(["female", "male"], n)),
        "activity": pd.Series(rng.choice(["work", "sleep", None], n), dtype=object),
        "age": pd.array(rng.integers(0, 99, n), dtype="Int64"),
        "income": income,
    })


def _whole_sha256(df: pd.DataFrame) -> str:
    """The content hash as it was computed before blocks: every row hashed at once."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    digest.update("|".join(map(str, df.columns)).encode())
    return digest.hexdigest()


def test_dataframe_sha256_by_blocks_is_the_whole_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table()
    table.loc[3, "age"] = pd.NA
    monkeypatch.setattr(hashing, "HASH_ROWS", 64)  # 16 blocks, the last one partial
    assert dataframe_sha256(table) == _whole_sha256(table)
    assert dataframe_sha256(table.iloc[:0]) == _whole_sha256(table.iloc[:0])


def test_table_sha256_over_pieces_equals_the_joined_table() -> None:
    table = _table()
    hasher = TableSha256()
    for start in range(0, len(table), 300):  # pieces as row groups read back, categories of their own
        piece = table.iloc[start:start + 300].reset_index(drop=True)
        piece["sex"] = piece["sex"].astype(str).astype("category")
        hasher.update(piece)
    assert hasher.hexdigest() == dataframe_sha256(table)
    with pytest.raises(ValueError, match="differ from the first block"):
        hasher.update(table[["person_id"]])


def test_row_hashes_by_blocks_are_the_whole_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    table, other = _table(), _table(seed=1)
    columns = ["sex", "activity", "age", "income"]
    whole = row_hashes([table, other], columns)
    monkeypatch.setattr(hashing, "HASH_ROWS", 100)
    blocks = row_hashes([table, other], columns)
    assert all(np.array_equal(a, b) for a, b in zip(whole, blocks))
    assert len(np.unique(blocks[0])) > 900  # distinct rows, distinct hashes: the test would see a constant


def test_categorical_columns_hash_as_their_values_written_as_text() -> None:
    """Categoricals take a faster path (categories hashed once); the hashes must be those of the
    values as text, so a categorical release still matches a survey read as text."""
    table = _table()
    with_missing = table.assign(sex=table["sex"].where(np.arange(len(table)) % 5 != 0))  # NaN in a categorical
    numbers = pd.DataFrame({"size": pd.Categorical([1, 2, 3, 1, None]), "kind": pd.Categorical(["1", "a", "b", "a", "a"])})
    clash = pd.DataFrame({"code": pd.Categorical([1, "1", "2", 1, "2"])})  # two categories write "1"
    for categorical in (table, with_missing, numbers, clash):
        text = categorical.apply(lambda c: c.astype(object) if isinstance(c.dtype, pd.CategoricalDtype) else c)
        got, want = row_hashes([categorical, text], list(categorical.columns))
        np.testing.assert_array_equal(got, want)
    # and a missing category is not the text "nan"
    missing, written = row_hashes([with_missing[["sex"]], pd.DataFrame({"sex": ["nan"] * len(table)})], ["sex"])
    assert not np.isin(missing[::5], written).any()


def test_row_hashes_are_pandas_hashes_of_the_normalised_frame() -> None:
    """Hashed column by column with no frame made, the hashes are pandas' of the normalised frame
    (numbers as mantissa and exponent, other values as text): those of the version that made it."""
    table = _table().assign(flag=lambda t: t["age"].fillna(0) > 50, big=np.r_[np.inf, -np.inf, 0.0, np.arange(997.0)])
    columns = ["sex", "activity", "age", "income", "flag", "big"]
    numeric = hashing.numeric_in_all([table], columns)
    assert {"age", "income", "big"} <= numeric and "sex" not in numeric
    parts = {}
    for column in columns:
        if column in numeric:
            parts[f"{column}:m"], parts[f"{column}:e"] = hashing._number_parts(table[column])
        else:
            parts[column] = hashing._as_text(table[column])
    expected = pd.util.hash_pandas_object(pd.DataFrame(parts), index=False).to_numpy()
    np.testing.assert_array_equal(row_hashes([table], columns)[0], expected)


def test_column_hashes_are_row_hashes_of_each_set_of_columns_made_what_it_compares() -> None:
    """``ColumnHashes`` gives, for each set of columns, :func:`row_hashes` of the frame those columns
    made numbers (text read as numbers) or text (numbers written out) as the comparison asks, with
    each column's hashes computed once and kept however many sets name it."""
    table = _table().assign(age_text=lambda t: t["age"].astype("string"))
    hashes = hashing.ColumnHashes(table)
    for columns, numbers in ((["sex", "age", "income"], {"age", "income"}),
                             (["age", "activity"], {"age"}),
                             (["age_text", "sex"], {"age_text"}),  # text read as numbers
                             (["income", "sex"], set())):  # numbers written out as text
        frame = table[columns].copy()
        for column in columns:
            if column in numbers and not pd.api.types.is_numeric_dtype(frame[column]):
                frame[column] = pd.to_numeric(frame[column].astype("string"), errors="coerce")
            elif column not in numbers and pd.api.types.is_numeric_dtype(frame[column]):
                frame[column] = frame[column].astype(object)
        np.testing.assert_array_equal(hashes.rows(columns, numbers), row_hashes([frame], columns)[0], err_msg=str(columns))
    # age as a number in three sets, hashed once; income as a number and as text
    assert sorted(hashes._hashes) == sorted([("sex", False), ("age", True), ("income", True), ("activity", False),
                                             ("age_text", True), ("income", False)])
    assert hashes.rows(["age_text"], {"age_text"}).tolist() == hashes.rows(["age"], {"age"}).tolist()


@pytest.mark.parametrize("reference_size", [0, 1, 7, 5_000])
def test_in_sorted_is_isin_against_a_sorted_reference(reference_size: int) -> None:
    rng = np.random.default_rng(reference_size)
    reference = np.unique(rng.integers(0, 2**64 - 1, size=reference_size, dtype=np.uint64))
    # values in the reference, beside it, below its smallest and above its largest
    values = np.concatenate([rng.choice(reference, 50) if len(reference) else reference,
                             rng.integers(0, 2**64 - 1, size=200, dtype=np.uint64),
                             np.array([0, 2**64 - 1], dtype=np.uint64)])
    found = in_sorted(values, reference)
    assert found.dtype == bool and len(found) == len(values)
    np.testing.assert_array_equal(found, np.isin(values, reference))
    if len(reference):
        assert found[:50].all()
    assert not in_sorted(values[:0], reference).size


def _number_parts_value_by_value(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The parts as computed before the whole-column version: boolean indexing and a power per value."""
    x = values.to_numpy(dtype=float)
    finite = np.isfinite(x) & (x != 0)
    exponent = np.zeros(x.shape, dtype=np.int64)
    exponent[finite] = np.floor(np.log10(np.abs(x[finite]))).astype(np.int64) - 5
    mantissa = np.zeros(x.shape, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        scaled = x[finite] / 10.0 ** exponent[finite]
    mantissa[finite] = np.sign(scaled) * np.floor(np.abs(scaled) + hashing._ROUNDING_OFFSET)
    carried = np.abs(mantissa) >= 10**6
    mantissa[carried] /= 10
    exponent[carried] += 1
    mantissa[np.isnan(x)] = np.inf
    mantissa[np.isinf(x)] = np.sign(x[np.isinf(x)]) * 2.0**60
    return mantissa, exponent


def test_number_parts_are_those_computed_value_by_value() -> None:
    """The same parts, so the same row hashes, as before: at the edges (zero, missing, infinities,
    the smallest and largest floats, a carried digit, cents on the rounding boundary) and at random."""
    rng = np.random.default_rng(3)
    edges = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, -5e-324, 2.2250738585072014e-308,
                      1.7976931348623157e308, -1.7976931348623157e308, 9.999995, 9.9999949, -9.999995,
                      12345.65, 12345.6637, 34.0, 34, 1e-300, 123456789.0, -0.5, 1.0, 999999.5])
    random = np.concatenate([rng.lognormal(5, 4, 5_000) * rng.choice([-1, 1], 5_000),
                             np.round(rng.normal(0, 1e6, 5_000), 2), 10.0 ** rng.uniform(-320, 308, 5_000)])
    for values in (pd.Series(edges), pd.Series(random), pd.Series(pd.array([1, None, 7], dtype="Int64")),
                   pd.Series(edges[:0])):
        got, want = hashing._number_parts(values), _number_parts_value_by_value(values)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[0].dtype == np.float64 and got[1].dtype == np.int64
