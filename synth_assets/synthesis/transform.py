"""Shared preprocessing: turn an input table into a model-ready frame and back.

Every family (CART, GAN, VAE, copula) models the same *model frame*, so semi-continuous
variables, not-applicable codes, missing values and category sets come out as they went in
whatever the model:

* categorical columns (object/string, bool, pandas Categorical, and numeric columns with at
  most ``max_levels`` distinct values) become one string column of labels; missing values
  are an explicit label, so their rate, also conditional on other columns, is modelled like
  any other category;
* continuous numeric columns with point masses (exact zeros, special codes such as -8/-9,
  any value held by more than ``mass_share`` of the rows, missing values) are split into a
  ``<col>#state`` label column ("value", "=0.0", "=-8.0", "NA") and the continuous part
  (NaN where the state is not "value"); recombining takes the state as authoritative, so a
  model cannot blur the zeros into small positive numbers;
* identifier columns are not modelled; fresh identifiers that never equal a real one are
  generated instead.

The :class:`TableSchema` captured at fit is enforced on the output: the input's columns in
their order, with their dtypes and, for Categorical columns, their full category sets.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

VALUE_STATE = "value"
MISSING_STATE = "NA"
STATE_SUFFIX = "#state"


class SchemaError(ValueError):
    """The data handed to a fitted synthesiser does not match the schema seen at fit."""


@dataclass
class TableSchema:
    """Columns, dtypes and categories of the training table, enforced on every output."""

    columns: list[str]
    dtypes: dict[str, Any]
    arrow_types: dict[str, pa.DataType] = field(default_factory=dict)

    @classmethod
    def capture(cls, data: pd.DataFrame) -> TableSchema:
        """Record the columns and dtypes of ``data`` (Categorical dtypes keep their categories)."""
        columns = [str(c) for c in data.columns]
        if len(set(columns)) != len(columns):
            raise SchemaError("column names must be unique strings")
        dtypes = {str(c): data[c].dtype for c in data.columns}
        arrow_types = {str(c): _arrow_type(data[c]) for c in data.columns if data[c].dtype == object}
        return cls(columns, dtypes, arrow_types)

    def enforce(self, data: pd.DataFrame) -> pd.DataFrame:
        """Return ``data`` with exactly the schema's columns, in order, cast to their dtypes.

        A column already of its dtype is ``data``'s own (not a copy): every caller hands over a
        frame it has just drawn and keeps only the result.
        """
        missing = [c for c in self.columns if c not in data.columns]
        if missing:
            raise SchemaError(f"missing columns: {missing}")
        out = {}
        for c in self.columns:
            col = data[c]
            dtype = self.dtypes[c]
            out[c] = col if col.dtype == dtype else col.astype(dtype)
        return pd.DataFrame(out, index=pd.RangeIndex(len(data)), copy=False)

    def empty_frame(self) -> pd.DataFrame:
        """A zero-row frame with the schema's columns and dtypes."""
        return pd.DataFrame({c: pd.Series([], dtype=self.dtypes[c]) for c in self.columns})

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema every Parquet chunk is written with, so chunks always agree."""
        schema = pa.Schema.from_pandas(self.empty_frame(), preserve_index=False)
        for name, arrow_type in self.arrow_types.items():
            schema = schema.set(schema.get_field_index(name), pa.field(name, arrow_type))
        return schema


def _arrow_type(series: pd.Series) -> pa.DataType:
    """Arrow type of an object column (strings unless its values say otherwise)."""
    sample = series.dropna().iloc[:1000].tolist()
    try:
        return pa.array(sample).type if sample else pa.string()
    except (pa.ArrowException, TypeError, ValueError):  # mixed Python types
        return pa.string()


def _sorted_levels(values: Iterable[Any]) -> list[Any]:
    """Sort levels naturally (numbers numerically); fall back to text order for mixed types."""
    values = list(values)
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def label_codes(column: pd.Series, labels: Sequence[str]) -> np.ndarray:
    """Positions in ``labels`` of a label column's values (-1: none of them).

    A model that holds codes (CART's matrix) hands its label columns over as categoricals of exactly
    these labels: their codes are taken as they are, no label looked up again (the text round trip,
    codes to labels to codes, was about a tenth of a replicate's drawing at 1.2 million persons:
    bench/README.md, "Forty-fourth pass")."""
    if isinstance(column.dtype, pd.CategoricalDtype) and column.cat.categories.equals(pd.Index(labels)):
        return column.cat.codes.to_numpy()
    return pd.Categorical(column, categories=list(labels)).codes


def allowed_codes(codec: Any, labels: Sequence[str] | None, values: Collection[str]) -> np.ndarray | None:
    """Positions in ``labels`` (a label column's model labels) of the original values whose text is one
    of ``values`` (a restriction to a region, ``HouseholdSynthesizer.restricted_to``); None when the
    column is not a label column (``codec`` not a :class:`CategoricalCodec`)."""
    if not isinstance(codec, CategoricalCodec) or labels is None:
        return None
    wanted = {label for level, label in zip(codec.levels, codec.labels, strict=True) if str(level) in values}
    return np.flatnonzero([label in wanted for label in labels])


@dataclass
class CategoricalCodec:
    """A column modelled as one label column; labels map one-to-one to original values."""

    name: str
    levels: list[Any]
    labels: list[str]
    missing_label: str | None

    @classmethod
    def fit(cls, name: str, series: pd.Series) -> CategoricalCodec:
        if isinstance(series.dtype, pd.CategoricalDtype):
            present = set(series.dropna().unique())
            levels = [c for c in series.cat.categories if c in present]
        else:
            levels = _sorted_levels(series.dropna().unique())
        labels = [str(v) for v in levels]
        if len(set(labels)) != len(labels):
            labels = [f"{i}:{v}" for i, v in enumerate(levels)]
        missing_label = None
        if series.isna().any():
            missing_label = "<NA>"
            while missing_label in labels:
                missing_label += "#"
        return cls(name, levels, labels, missing_label)

    @property
    def model_columns(self) -> list[str]:
        return [self.name]

    @property
    def all_labels(self) -> list[str]:
        """Labels in modelling order: the natural order of the levels, missing last."""
        return self.labels + ([self.missing_label] if self.missing_label else [])

    def encode(self, series: pd.Series) -> dict[str, np.ndarray]:
        """Each value's label (text), the missing label for a missing value: :meth:`codes`, taken in
        :attr:`all_labels` (each distinct value looked up once, not each row's)."""
        return {self.name: np.asarray(self.all_labels, dtype=object)[self.codes(series)[self.name]]}

    def codes(self, series: pd.Series) -> dict[str, np.ndarray]:
        """:meth:`encode` as positions in :attr:`all_labels` (what a model holding codes takes), the same
        errors: each distinct value looked up once, not each row's value and then its label."""
        isna = series.isna().to_numpy()
        if isna.any() and self.missing_label is None:
            raise SchemaError(f"column {self.name!r} has missing values but had none at fit")
        if isinstance(series.dtype, pd.CategoricalDtype):
            value_codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
        else:
            value_codes, uniques = pd.factorize(series)
        position = {v: i for i, v in enumerate(self.levels)}
        # a category the rows do not hold may be unknown (-2 until a row has it)
        mapped = np.array([position.get(v, -2) for v in uniques] + [len(self.levels)], dtype=np.int64)
        out = mapped[value_codes]  # a missing value's code, -1, takes the last: the missing label
        unknown = np.flatnonzero(out == -2)
        if len(unknown):
            raise SchemaError(f"column {self.name!r}: value {uniques[value_codes[unknown[0]]]!r} not seen at fit")
        return {self.name: out}

    def decode(self, frame: pd.DataFrame, rng: np.random.Generator, dtype: Any = None) -> pd.Series:
        """The original values of the label column; of ``dtype`` when it is a categorical one (the
        schema's), taken by code: what ``astype(dtype)`` of the values gives, without hashing them."""
        codes = label_codes(frame[self.name], self.all_labels)
        unknown = codes < 0
        if unknown.any():  # a model emitted a label it never saw; draw a known one instead
            codes = codes.copy()
            codes[unknown] = rng.integers(0, len(self.all_labels), unknown.sum())
        if isinstance(dtype, pd.CategoricalDtype):
            # each level's category (-1: none, as astype makes a value the categories lack missing)
            position = dtype.categories.get_indexer(pd.Index(self.levels, dtype=object))
            position = np.append(position, -1) if self.missing_label is not None else position
            return pd.Series(pd.Categorical.from_codes(position[codes], dtype=dtype))
        values = np.array(self.levels + [None], dtype=object)
        if self.missing_label is None:
            values = values[:-1]
        return pd.Series(values[codes], dtype=object)


@dataclass
class NumericCodec:
    """A continuous column, optionally split into a state label column and its continuous part."""

    name: str
    state_column: str | None
    masses: list[float]
    has_missing: bool
    is_integer: bool
    lo: float
    hi: float
    quantiles: np.ndarray

    @property
    def model_columns(self) -> list[str]:
        return [self.name] + ([self.state_column] if self.state_column else [])

    @property
    def state_labels(self) -> list[str]:
        """State labels: the continuous part first, then the point masses, missing last."""
        labels = [VALUE_STATE] + [f"={m!r}" for m in self.masses]
        return labels + ([MISSING_STATE] if self.has_missing else [])

    def encode(self, series: pd.Series) -> dict[str, np.ndarray]:
        x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if self.state_column is None:
            if np.isnan(x).any():
                raise SchemaError(f"column {self.name!r} has missing values but had none at fit")
            return {self.name: x}
        state = np.full(len(x), VALUE_STATE, dtype=object)
        for mass, label in zip(self.masses, self.state_labels[1:]):
            state[x == mass] = label
        isna = np.isnan(x)
        if isna.any() and not self.has_missing:
            raise SchemaError(f"column {self.name!r} has missing values but had none at fit")
        state[isna] = MISSING_STATE
        value = np.where(state == VALUE_STATE, x, np.nan)
        return {self.name: value, self.state_column: state}

    def codes(self, series: pd.Series) -> dict[str, np.ndarray]:
        """:meth:`encode` with the state as positions in :attr:`state_labels` (the continuous part 0,
        the point masses next, missing last), the same errors."""
        if self.state_column is None:
            return self.encode(series)
        x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        state = np.zeros(len(x), dtype=np.int64)
        for k, mass in enumerate(self.masses, start=1):
            state[x == mass] = k
        isna = np.isnan(x)
        if isna.any() and not self.has_missing:
            raise SchemaError(f"column {self.name!r} has missing values but had none at fit")
        state[isna] = len(self.masses) + 1
        return {self.name: np.where(state == 0, x, np.nan), self.state_column: state}

    def draw_continuous(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw from the continuous part's marginal (interpolated quantiles of the training data)."""
        grid = np.linspace(0.0, 1.0, len(self.quantiles))
        return np.interp(rng.random(n), grid, self.quantiles)

    def decode(self, frame: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
        value = pd.to_numeric(frame[self.name], errors="coerce").to_numpy(dtype=float)
        out = np.full(len(frame), np.nan)
        if self.state_column is None:
            is_value = np.ones(len(frame), dtype=bool)
        else:
            # by position in state_labels: 0 the continuous part, then the masses, missing last; a
            # label none of them (-1) counts as the continuous part
            state = label_codes(frame[self.state_column], self.state_labels)
            is_value = state <= 0
            for k, mass in enumerate(self.masses, start=1):
                out[state == k] = mass
        v = value[is_value]
        gaps = np.isnan(v)
        if gaps.any():  # a model left the continuous part empty where its state says "value"
            v[gaps] = self.draw_continuous(int(gaps.sum()), rng)
        v = np.clip(v, self.lo, self.hi)
        out[is_value] = np.round(v) if self.is_integer else v
        return pd.Series(out)


@dataclass
class IdCodec:
    """An identifier column: not modelled; fresh values that never equal a real identifier."""

    name: str
    integer: bool
    start: int
    prefix: str

    @classmethod
    def fit(cls, name: str, series: pd.Series) -> IdCodec:
        integer = pd.api.types.is_integer_dtype(series.dtype)
        start = int(series.max()) + 1 if integer and len(series) else 1
        texts = series.astype(str)
        prefix = "syn-"
        while texts.str.startswith(prefix).any():
            prefix = "x" + prefix
        return cls(name, integer, start, prefix)

    @property
    def model_columns(self) -> list[str]:
        return []

    def generate(self, n: int, offset: int) -> pd.Series:
        numbers = np.arange(offset, offset + n, dtype=np.int64)
        if self.integer:
            return pd.Series(self.start + numbers)
        return pd.Series([f"{self.prefix}{i:09d}" for i in numbers], dtype=object)


Codec = CategoricalCodec | NumericCodec | IdCodec


class TableTransformer:
    """Fit per-column codecs on a table; map it to the model frame and model output back.

    Parameters
    ----------
    special_codes:
        Per column, numeric codes that are categories rather than quantities (e.g.
        ``{"income": [-8, -9]}`` for "not applicable" and "missing"). Without an entry,
        negative integers each held by at least ``code_share`` of rows are taken as codes.
    id_columns:
        Columns holding identifiers (names absent from the data are ignored, so one
        configuration serves tables with and without them). Besides these, string columns
        with a distinct value on every row are taken as identifiers (such a column cannot
        be modelled anyway).
    max_levels:
        Numeric columns with at most this many distinct values are modelled as categories.
    mass_share, zero_share:
        Any value held by more than ``mass_share`` of the rows, and zero when held by more
        than ``zero_share``, is split off as a point mass.
    """

    def __init__(
        self,
        *,
        special_codes: Mapping[str, Sequence[float]] | None = None,
        id_columns: Sequence[str] = (),
        max_levels: int = 20,
        mass_share: float = 0.05,
        zero_share: float = 0.01,
        code_share: float = 0.01,
    ) -> None:
        self.special_codes = {k: [float(v) for v in vs] for k, vs in (special_codes or {}).items()}
        self.id_columns = list(id_columns)
        self.max_levels = max_levels
        self.mass_share = mass_share
        self.zero_share = zero_share
        self.code_share = code_share
        self.schema: TableSchema | None = None
        self.codecs: dict[str, Codec] = {}

    @property
    def fitted_schema(self) -> TableSchema:
        """The schema of the table :meth:`fit` saw; an error before it."""
        if self.schema is None:
            raise RuntimeError("the TableTransformer has not been fitted")
        return self.schema

    # ----------------------------------------------------------------- fitting
    def fit(self, data: pd.DataFrame) -> TableTransformer:
        if data.empty:
            raise SchemaError("cannot fit a synthesiser on an empty table")
        schema = self.schema = TableSchema.capture(data)
        unknown = set(self.special_codes) - set(schema.columns)
        if unknown:
            raise SchemaError(f"special_codes name unknown columns: {sorted(unknown)}")
        taken = set(schema.columns)
        self.codecs = {}
        for name in schema.columns:
            codec = self._fit_column(name, data[name], taken)
            taken.update(codec.model_columns)
            self.codecs[name] = codec
        return self

    def _fit_column(self, name: str, series: pd.Series, taken: set[str]) -> Codec:
        dtype = series.dtype
        if name in self.id_columns:
            return IdCodec.fit(name, series)
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            raise SchemaError(f"column {name!r}: dtype {dtype} is not supported; convert it to numbers")
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        if not numeric:
            if len(series) > self.max_levels and series.nunique(dropna=False) == len(series) and not (
                pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
            ):
                return IdCodec.fit(name, series)
            return CategoricalCodec.fit(name, series)
        x = series.to_numpy(dtype=float, na_value=np.nan)
        observed = x[~np.isnan(x)]
        if observed.size == 0 or np.unique(observed).size <= self.max_levels:
            return CategoricalCodec.fit(name, series)
        return self._fit_numeric(name, series, x, observed, taken)

    def _fit_numeric(
        self, name: str, series: pd.Series, x: np.ndarray, observed: np.ndarray, taken: set[str]
    ) -> NumericCodec:
        n = len(x)
        values, counts = np.unique(observed, return_counts=True)
        share = counts / n
        if name in self.special_codes:
            masses = set(self.special_codes[name])
        else:
            is_code = (values < 0) & (values == np.round(values)) & (share >= self.code_share)
            masses = set(values[is_code & (counts >= 5)].tolist())
        masses |= set(values[share > self.mass_share].tolist())
        zero_share = share[values == 0].sum()
        if zero_share > self.zero_share:
            masses.add(0.0)
        mass_points = sorted(float(m) for m in masses)
        continuous = observed[~np.isin(observed, mass_points)]
        has_missing = bool(np.isnan(x).any())
        state_column = None
        if mass_points or has_missing:
            state_column = name + STATE_SUFFIX
            while state_column in taken:
                state_column += "#"
        is_integer = pd.api.types.is_integer_dtype(series.dtype) or bool(
            np.all(observed == np.round(observed))
        )
        return NumericCodec(
            name=name,
            state_column=state_column,
            masses=mass_points,
            has_missing=has_missing,
            is_integer=is_integer,
            lo=float(continuous.min()),
            hi=float(continuous.max()),
            quantiles=np.quantile(continuous, np.linspace(0, 1, 1001)),
        )

    # ------------------------------------------------------------- model frame
    def model_columns_of(self, columns: Iterable[str]) -> list[str]:
        """Model-frame columns of some input columns (a continuous part before its state)."""
        return [c for name in columns for c in self.codecs[name].model_columns]

    @property
    def categorical_labels(self) -> dict[str, list[str]]:
        """Every label column of the model frame with its labels in modelling order."""
        out: dict[str, list[str]] = {}
        for codec in self.codecs.values():
            if isinstance(codec, CategoricalCodec):
                out[codec.name] = codec.all_labels
            elif isinstance(codec, NumericCodec) and codec.state_column:
                out[codec.state_column] = codec.state_labels
        return out

    @property
    def continuous_columns(self) -> dict[str, NumericCodec]:
        """Every continuous column of the model frame with its codec."""
        return {c.name: c for c in self.codecs.values() if isinstance(c, NumericCodec)}

    @property
    def id_column_names(self) -> list[str]:
        return [c.name for c in self.codecs.values() if isinstance(c, IdCodec)]

    def transform(self, data: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Map (some of) the input columns to the model frame."""
        # copy=False: the columns as made, not copied and merged into one block per dtype (pandas'
        # default for a dict), which was about a fifth of a household chunk's drawing time
        return pd.DataFrame(dict(self.encoded_columns(data, columns)), index=pd.RangeIndex(len(data)), copy=False)

    def encoded_columns(self, data: pd.DataFrame, columns: Sequence[str] | None = None
                      ) -> Iterator[tuple[str, np.ndarray]]:
        """The model frame's columns of :meth:`transform`, one input column's at a time: a model that
        keeps its own encoding (CART's matrix) then never holds the frame."""
        return self._per_column(data, columns, codes=False)

    def encoded_codes(self, data: pd.DataFrame, columns: Sequence[str] | None = None
                      ) -> Iterator[tuple[str, np.ndarray]]:
        """:meth:`encoded_columns` with each label column as positions in its labels
        (:attr:`categorical_labels`): a model that holds codes (CART's matrix) takes them as they are."""
        return self._per_column(data, columns, codes=True)

    def _per_column(self, data: pd.DataFrame, columns: Sequence[str] | None, codes: bool
                    ) -> Iterator[tuple[str, np.ndarray]]:
        columns = self.fitted_schema.columns if columns is None else list(columns)
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise SchemaError(f"missing columns: {missing}")
        return (item for name in columns if not isinstance(codec := self.codecs[name], IdCodec)
                for item in (codec.codes(data[name]) if codes else codec.encode(data[name])).items())

    def inverse(self, frame: pd.DataFrame, rng: np.random.Generator, offset: int = 0) -> pd.DataFrame:
        """Map a model frame back to the input's schema; ``offset`` keeps new ids unique."""
        out = {}
        # once, not per column: a copy of the whole model frame each (a quarter of CART's sampling time)
        frame = frame if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 \
            and frame.index.step == 1 else frame.reset_index(drop=True)
        for name, codec in self.codecs.items():
            if isinstance(codec, IdCodec):
                out[name] = codec.generate(len(frame), offset)
            elif isinstance(codec, CategoricalCodec):
                out[name] = codec.decode(frame, rng, self.fitted_schema.dtypes.get(name))
            else:
                out[name] = codec.decode(frame, rng)
        return self.fitted_schema.enforce(pd.DataFrame(out, index=pd.RangeIndex(len(frame)), copy=False))

    def fill_continuous_gaps(self, frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Fill the continuous part where a point mass applies with draws from its marginal.

        Models without a notion of "not applicable" (GAN, VAE, copula) then see complete
        columns; the filled values carry no information and are discarded by :meth:`inverse`
        because the state column decides.
        """
        frame = frame.copy()
        for name, codec in self.continuous_columns.items():
            gaps = frame[name].isna().to_numpy()
            if gaps.any():
                values = frame[name].to_numpy(dtype=float).copy()
                values[gaps] = codec.draw_continuous(int(gaps.sum()), rng)
                frame[name] = values
        return frame

