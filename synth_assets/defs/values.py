"""Typed values that flow between assets, so a signature says what an asset depends on.

``WaveTable`` replaces the ``DataFrame.attrs`` side channel: a source wave's records with
the wave they are, the file they were read from (path, sha256, ingest run) and, for the
raw table, the file's value labels. ``MatchingReport`` is the matching diagnostics page
and the provenance of the sources fused, which the gate's data card cites.
Both are stored by the IO managers (``defs/io_managers.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from synth_assets.common.frames import ParquetStack, ParquetTable

#: Parquet key-value metadata holding a wave's facts (origin, value labels) beside its records.
FACTS_KEY = b"synth_assets.wave_table"


@dataclass(frozen=True)
class SourceFile:
    """Which delivered file a table of one source wave was read from."""

    source: str
    wave: str
    file: str
    sha256: str
    ingest_run: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SourceWave:
    """What a wave of one source holds beside its records, however they are held (a frame: a
    ``WaveTable``; its file: a ``WaveFile``): the file it was read from and its value labels."""

    origin: SourceFile
    value_labels: dict[str, dict[str, str]]

    @property
    def wave(self) -> str:
        return self.origin.wave

    def facts(self) -> dict[str, Any]:
        """Everything but the records, as JSON (stored beside them)."""
        return {"origin": self.origin.to_dict(), "value_labels": self.value_labels}


@dataclass(frozen=True)
class WaveTable(SourceWave):
    """One wave of one source: its records and where they came from."""

    data: pd.DataFrame
    origin: SourceFile
    value_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_facts(cls, data: pd.DataFrame, facts: dict[str, Any]) -> WaveTable:
        return cls(data, SourceFile(**facts["origin"]), facts.get("value_labels") or {})


@dataclass(frozen=True)
class WaveFile(SourceWave):
    """One wave of one source left in its Parquet file, with where it came from: what the ingest
    steps hand on (the delivered wave to harmonisation, each to its check), read a row group at a
    time, so no step of the ingest holds a register's wave whole. Stored as a ``WaveTable`` is (an
    input annotated ``WaveTable`` reads the same file whole).

    A step makes one by writing the records to :meth:`stack` and wrapping the finished table.
    """

    table: ParquetTable
    origin: SourceFile
    value_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @staticmethod
    def stack(origin: SourceFile, value_labels: dict[str, dict[str, str]] | None = None) -> ParquetStack:
        """A staged table for a wave's records, its facts in the file: finished, the table of a ``WaveFile``."""
        facts = {"origin": origin.to_dict(), "value_labels": value_labels or {}}
        return ParquetStack(metadata={FACTS_KEY: json.dumps(facts, allow_nan=False).encode()})

    @classmethod
    def of_file(cls, table: ParquetTable) -> WaveFile:
        """The wave stored in ``table``'s file (its facts from the file's metadata)."""
        facts = table.schema_metadata.get(FACTS_KEY)
        if facts is None:
            raise ValueError(f"{table.path}: not a stored wave (no {FACTS_KEY.decode()} metadata)")
        loaded = json.loads(facts)
        return cls(table, SourceFile(**loaded["origin"]), loaded.get("value_labels") or {})


@dataclass(frozen=True)
class MatchingReport:
    """The matching diagnostics of a release (an HTML page) and the source files it fused."""

    html: str
    sources: dict[str, SourceFile]
    respondents: dict[str, int] = field(default_factory=dict)  # records of each source fused

    def facts(self) -> dict[str, Any]:
        return {"sources": {name: origin.to_dict() for name, origin in self.sources.items()},
                "respondents": self.respondents}

    @classmethod
    def from_facts(cls, html: str, facts: dict[str, Any]) -> MatchingReport:
        return cls(html, {name: SourceFile(**origin) for name, origin in facts["sources"].items()},
                   facts.get("respondents") or {})


@dataclass(frozen=True)
class RegionDraw:
    """One region's share of the fictitious dataset (``release.regions``): its households in every
    replicate, and the counts its step reports (JSON-able), which the step joining the regions adds up."""

    region: str
    table: ParquetTable
    summary: dict[str, Any]


@dataclass(frozen=True)
class ModelFile:
    """A stored population model, read when the step asks (:meth:`load`). What an input annotated
    ``ModelFile`` gets instead of the model: a step that needs the fitted model only for a moment
    (a family refitted per replicate) then holds it that moment, not for the whole step
    (at 1.2 million persons a CART model, its leaves' donors, is over a gigabyte)."""

    path: Any
    reader: Callable[[], Any]
    #: the training log from the file's header (None for a file written before it held one)
    log_reader: Callable[[], dict[str, Any] | None] = lambda: None

    def load(self) -> Any:
        return self.reader()

    @property
    def training_log(self) -> dict[str, Any]:
        """The model's training log (its data card's family, parameters, run), without the model:
        the gate's data card needs these lines, not the model's donors."""
        log = self.log_reader()
        return log if log is not None else self.load().training_log
