"""The interface every synthesiser shares: fit, seeded chunked sampling, Parquet streaming, files.

Sampling is reproducible: ``sample(n, seed=s)`` draws chunk ``i`` from a generator spawned
from ``SeedSequence(s)``, so the same seed and chunk size give the same rows, before and
after a save/load round trip. ``sample_to_parquet`` writes chunk by chunk, so memory is
bounded by the chunk size, and only renames the finished file into place.

Model files are one file: a magic line, a JSON header (family, class, format version,
SHA-256 of the payload), an HMAC-SHA256 signature line and a pickle payload.

Why a signature rather than a safe format: a fitted model holds scikit-learn trees
(CART) or SDV/torch objects (CTGAN, TVAE, copula) that have no code-free serialisation
short of re-implementing their internals, so the payload stays a pickle. Pickle runs code
on load, and a SHA-256 in the header only detects accidents: anyone can recompute it. The
signature is keyed with a secret that is not in the file (:func:`model_key`): the
``SYNTH_ASSETS_MODEL_KEY`` environment variable when set (deployments whose steps run on
several machines share it that way), else a per-installation key created on first use with
0600 permissions in ``$SYNTH_ASSETS_HOME`` (default ``~/.config/synth_assets``).
:meth:`Synthesizer.load` verifies the signature over the header and payload before
anything is unpickled and refuses, naming the file, whatever does not verify: a crafted or
altered file, or one written by another installation. A fitted model contains real values
(CART draws from the training records), so treat the file as confidential as the training
data.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import inspect
import json
import logging
import os
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_assets.common.files import atomic_path
from synth_assets.synthesis.transform import TableSchema

LOGGER = logging.getLogger("synth_assets.synthesis")

MAGIC = b"SYNTH_ASSETS_MODEL\n"
FORMAT_VERSION = 2  # 2: signed with HMAC-SHA256; unsigned version-1 files are refused
KEY_ENV = "SYNTH_ASSETS_MODEL_KEY"
HOME_ENV = "SYNTH_ASSETS_HOME"
KEY_FILE = "model.key"


#: Fewest training rows a synthesiser accepts. On a handful of records a CART leaf or a GAN
#: mode is one person, and "synthetic" rows reproduce them: refusing is the safe answer.
#: Override per instance (``synth.min_training_rows = n``) or with :func:`training_row_minimum`.
MIN_TRAINING_ROWS = 50


class TooFewRowsError(ValueError):
    """The training table is too small to synthesise without disclosing its records."""


@contextlib.contextmanager
def training_row_minimum(rows: int) -> Iterator[None]:
    """Temporarily change :data:`MIN_TRAINING_ROWS` (also for models built inside others, e.g. households)."""
    global MIN_TRAINING_ROWS
    previous, MIN_TRAINING_ROWS = MIN_TRAINING_ROWS, int(rows)
    try:
        yield
    finally:
        MIN_TRAINING_ROWS = previous


class NotFittedError(RuntimeError):
    """Sampling or saving was asked of a synthesiser that has not been fitted."""


class ModelFileError(ValueError):
    """A model file is missing, foreign, corrupt or holds the wrong kind of model."""


def key_directory() -> Path:
    """Where the per-installation model key lives: ``$SYNTH_ASSETS_HOME`` or ``~/.config/synth_assets``."""
    home = os.environ.get(HOME_ENV)
    return Path(home) if home else Path.home() / ".config" / "synth_assets"


def model_key() -> bytes:
    """The secret that signs model files: ``$SYNTH_ASSETS_MODEL_KEY``, else the installation's key file.

    The key file is created on first use (32 random bytes, hex, mode 0600); ``O_EXCL``
    makes concurrent first uses agree on one key.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    path = key_directory() / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(os.urandom(32).hex())
    key = path.read_text().strip()
    if not key:
        raise ModelFileError(f"{path}: the model signing key file is empty")
    return key.encode()


def _signature(key: bytes, header_line: bytes, payload: bytes) -> str:
    # The header is signed too, so family and class cannot be swapped either.
    mac = hmac.new(key, header_line, hashlib.sha256)
    mac.update(payload)
    return mac.hexdigest()


def _json_value(value: Any) -> Any:
    """A training log's value as JSON: NumPy numbers and arrays as numbers and lists, else text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


_READ_BYTES = 1 << 20


def _verified(path: Path, *, keep_payload: bool) -> tuple[dict[str, Any], bytes | None]:
    """The header of a model file, and its payload if ``keep_payload``, once its checksum and
    signature verify; :class:`ModelFileError` otherwise. Without the payload, it is hashed as read."""
    key = model_key()
    try:
        with open(path, "rb") as fh:
            magic = fh.read(len(MAGIC))
            if magic != MAGIC:
                raise ModelFileError(f"{path}: not a synth_assets model file (unknown header)")
            header_line = fh.readline()
            try:
                header = json.loads(header_line)
            except ValueError:
                raise ModelFileError(f"{path}: corrupt model file (unreadable header)") from None
            if not isinstance(header, dict):
                raise ModelFileError(f"{path}: corrupt model file (unreadable header)")
            signature = fh.readline().strip()
            if header.get("format_version") != FORMAT_VERSION:
                raise ModelFileError(
                    f"{path}: model file format {header.get('format_version')} is not supported "
                    f"(expected {FORMAT_VERSION}, signed; refit the model)"
                )
            checksum, mac = hashlib.sha256(), hmac.new(key, header_line, hashlib.sha256)
            payload = fh.read() if keep_payload else None
            for block in ([payload] if payload is not None else iter(lambda: fh.read(_READ_BYTES), b"")):
                checksum.update(block)
                mac.update(block)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model file ({exc.strerror or exc})") from exc
    if checksum.hexdigest() != header.get("sha256"):
        raise ModelFileError(f"{path}: corrupt model file (checksum mismatch, truncated or altered)")
    # Nothing is unpickled before this: the checksum above can be forged, the key cannot.
    if not hmac.compare_digest(mac.hexdigest().encode(), signature):
        raise ModelFileError(
            f"{path}: model file signature does not verify (altered, crafted, or written with "
            f"another key; set {KEY_ENV} or {HOME_ENV} to the key that wrote it); refusing to load it"
        )
    return header, payload


class Synthesizer(ABC):
    """Base class: subclasses implement :meth:`fit` and :meth:`_generate`.

    Constructor arguments are stored under their own names (as in scikit-learn), which
    gives :meth:`get_params` and :meth:`clone` for free.
    """

    family: str
    #: Whether :meth:`replicate_draw` starts from this fitted model instead of refitting.
    warm_replicates: bool = False

    #: None: :data:`MIN_TRAINING_ROWS` at fit time. Not a constructor argument, so saved
    #: parameters and clones are unchanged.
    min_training_rows: int | None = None

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.schema: TableSchema | None = None
        self.training_log: dict[str, Any] = {}

    # ------------------------------------------------------------- interface
    @abstractmethod
    def fit(self, data: pd.DataFrame) -> Synthesizer:
        """Learn the distribution of ``data``; sets ``schema`` and ``training_log``."""

    @abstractmethod
    def _generate(self, n: int, rng: np.random.Generator, offset: int) -> pd.DataFrame:
        """Draw about ``n`` rows in the training schema.

        ``offset`` is the number of rows drawn before in the same call, so identifiers stay
        unique across chunks. Flat tables return exactly ``n`` rows; household data returns
        whole households, hence possibly a few more.
        """

    def _begin_chunk(self, n: int, rng: np.random.Generator, offset: int) -> tuple[int, Callable[[], pd.DataFrame]]:
        """A chunk of :meth:`_generate` begun: its number of rows, and what draws it. What the next
        chunk's offset needs is drawn here; a model may leave the rest to the callable, which a caller
        can run elsewhere (another process, with ``rng``'s state as it is left here). By default the
        whole chunk is drawn here."""
        chunk = self._generate(n, rng, offset)
        return len(chunk), lambda: chunk

    def check_training_rows(self, data: pd.DataFrame, what: str = "training table") -> None:
        """Raise :class:`TooFewRowsError` when ``data`` has fewer rows than the minimum."""
        minimum = MIN_TRAINING_ROWS if self.min_training_rows is None else self.min_training_rows
        if len(data) < minimum:
            raise TooFewRowsError(
                f"{self.family}: the {what} has {len(data)} rows, fewer than the {minimum} needed to "
                "synthesise without reproducing its records"
            )

    # ---------------------------------------------------------------- params
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments of this synthesiser."""
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind is not p.VAR_KEYWORD
        ]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> Self:
        """An unfitted synthesiser with the same parameters."""
        return type(self)(**self.get_params())

    @property
    def has_posterior_draw(self) -> bool:
        """Whether :meth:`posterior_draw` is available for this family."""
        return False

    def posterior_draw(self, seed: int) -> Self:
        """A copy whose parameters are one draw from their posterior given the training data.

        Replicates drawn from separate posterior draws are "proper", as the combining rules
        for fully synthetic data require (see :mod:`synth_assets.synthesis.replicates`).
        """
        raise NotImplementedError(f"{type(self).__name__} has no posterior draw")

    def replicate_template(self) -> Self:
        """What :meth:`replicate_draw` starts from, for a chain of replicates to hold between draws
        (families with ``warm_replicates``): this fitted model less what only its own draws need.
        Default: itself; CART leaves out its leaves' donors, its training records again."""
        return self

    def replicate_draw(self, data: pd.DataFrame, seed: int) -> Self:
        """A posterior draw given ``data`` (a replicate's own training records, same columns).

        By default a clone fitted on ``data``, then its :meth:`posterior_draw`. Families whose
        fit is costly (the neural one) override it with a draw warm-started from this model.
        """
        fitted = self.clone()
        fitted.fit(data)
        return fitted.posterior_draw(seed)

    @property
    def is_fitted(self) -> bool:
        return self.schema is not None

    @property
    def fitted_schema(self) -> TableSchema:
        """The schema of the training table; :class:`NotFittedError` before :meth:`fit`."""
        if self.schema is None:
            raise NotFittedError(f"{type(self).__name__} has not been fitted")
        return self.schema

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} has not been fitted")

    # --------------------------------------------------------------- sampling
    def iter_chunks(
        self, n: int, *, seed: int | None = None, chunk_size: int | None = None
    ) -> Iterator[pd.DataFrame]:
        """Yield synthetic chunks of at most ``chunk_size`` rows until ``n`` rows are drawn."""
        for draw in self.iter_chunk_draws(n, seed=seed, chunk_size=chunk_size):
            yield draw()

    def iter_chunk_draws(
        self, n: int, *, seed: int | None = None, chunk_size: int | None = None
    ) -> Iterator[Callable[[], pd.DataFrame]]:
        """:meth:`iter_chunks`' chunks begun (:meth:`_begin_chunk`), each as what draws it: the
        same chunks, wherever and in whatever order the callables run. A household model draws
        here only the households' rows (their sizes give the next chunk's identifiers), so
        that the members and what follows (the enforcement) can be drawn in other processes,
        several chunks at a time (:func:`~synth_assets.synthesis.constraints.enforced_chunks`)."""
        self._check_fitted()
        if n < 0:
            raise ValueError("n must be >= 0")
        chunk_size = chunk_size or max(n, 1)
        seeds = np.random.SeedSequence(self.seed if seed is None else seed)
        done = 0
        while done < n:
            rng = np.random.default_rng(seeds.spawn(1)[0])
            rows, draw = self._begin_chunk(min(chunk_size, n - done), rng, done)
            LOGGER.info("%s: rows %d to %d of %d begun", self.family, done + 1, min(done + rows, n), n)
            yield functools.partial(_indexed, draw, done)
            done += rows

    def sample(self, n: int, *, seed: int | None = None, chunk_size: int | None = None) -> pd.DataFrame:
        """Draw ``n`` synthetic rows (whole households for household data, so perhaps a few more).

        ``seed`` defaults to the constructor's seed; the same seed and ``chunk_size`` give the
        same rows.
        """
        chunks = list(self.iter_chunks(n, seed=seed, chunk_size=chunk_size))
        if not chunks:
            return self.fitted_schema.empty_frame()
        return pd.concat(chunks, ignore_index=True)

    def sample_to_parquet(
        self, n: int, path: str | os.PathLike[str], *, seed: int | None = None, chunk_size: int = 100_000
    ) -> Path:
        """Stream ``n`` synthetic rows to a Parquet file chunk by chunk; atomic replace at the end."""
        self._check_fitted()
        path = Path(path)
        schema = self.fitted_schema.arrow_schema()
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            for chunk in self.iter_chunks(n, seed=seed, chunk_size=chunk_size):
                writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
        return path

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted synthesiser to one file (atomically). Its header, signed with it, holds
        the training log too (:meth:`read_training_log`: read without the model)."""
        self._check_fitted()
        path = Path(path)
        payload = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        header = {
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "sha256": hashlib.sha256(payload).hexdigest(),
            "bytes": len(payload),
            "training_log": getattr(self, "training_log", None),
        }
        header_line = json.dumps(header, default=_json_value).encode() + b"\n"
        signature = _signature(model_key(), header_line, payload)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fh.write(MAGIC)
            fh.write(header_line)
            fh.write(signature.encode() + b"\n")
            fh.write(payload)
        return path

    @classmethod
    def read_training_log(cls, path: str | os.PathLike[str]) -> dict[str, Any] | None:
        """The training log in the header of a file written by :meth:`save`, the file verified as
        :meth:`load` verifies it but nothing unpickled, the payload read a megabyte at a time (a
        CART model holds its donors: at 1.2 million persons, gigabytes loaded for a few lines of
        data card). None for a file written before the header held it."""
        header, _ = _verified(Path(path), keep_payload=False)
        log = header.get("training_log")
        return log if isinstance(log, dict) else None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Synthesizer:
        """Read a synthesiser written by :meth:`save`; clear :class:`ModelFileError` otherwise."""
        path = Path(path)
        _, payload = _verified(path, keep_payload=True)
        assert payload is not None
        try:
            model = pickle.loads(payload)
        except Exception as exc:  # any unpickling failure means the file is unusable
            raise ModelFileError(f"{path}: corrupt model file ({type(exc).__name__}: {exc})") from exc
        if not isinstance(model, cls):
            raise ModelFileError(
                f"{path}: holds a {type(model).__name__}, not a {cls.__name__}"
            )
        return model


def _indexed(draw: Callable[[], pd.DataFrame], start: int) -> pd.DataFrame:
    """A begun chunk drawn, its rows numbered from ``start`` (the rows drawn before it)."""
    chunk = draw()
    chunk.index = pd.RangeIndex(start, start + len(chunk))
    return chunk
