"""``generate_demo``: write the demo population, its sources and its truth.

Layout under ``output_dir`` (normally ``data/``)::

    incoming/register/register_<wave>.parquet   every wave
    incoming/silc/silc_<wave>.csv               every wave
    incoming/lfs/lfs_<wave>.sav                 every wave
    incoming/hbs/hbs_<wave>.dta                 2022, 2024, ... (every 2 years)
    incoming/hfcs/hfcs_<wave>.parquet           2023, 2026, ... (every 3 years)
    incoming/tus/tus_<wave>.xpt                 2023, 2026, ... (time use: one row per diary episode, SAS transport)
    incoming/mobility/mobility_<wave>.csv       2022, 2024, ... (travel: one row per trip)
    truth/population_<wave>.parquet             every person, every variable
    truth/samples/<source>_<wave>.parquet       survey id -> population id, pi, weights
    truth/manifest.json                         parameters and file list

The pipeline reads ``incoming/`` through ``data/catalog.yaml``; ``truth/`` is
for evaluating matching and synthesis only.

The population is drawn once (base wave = the first wave) and then aged: the
same persons with the same ids, one year older per wave, incomes +3 %/year,
prices +4 %/year and employment drifting upwards.  No births, deaths or moves:
this keeps person ids stable and the waves comparable, which is all the
pipeline needs.  Waves are processed one at a time, so memory is bounded by one
wave (peak resident memory about 0.9 GB at 1 million persons, 1.6 GB at 2
million).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .diaries import DIARY_TABLES, generate_diaries
from .incomes import generate_incomes
from .mess import FILE_NAMES, SURVEY_TABLES, register_table
from .outcomes import survey_variables
from .population import generate_population
from .surveys import SURVEYS, draw_sample
from .truth import build_truth
from .writers import write_json, write_parquet, write_table

log = logging.getLogger("synth_assets.demo")

MIN_PERSONS = 1_000
MAX_PERSONS = 2_000_000
MIN_WAVE, MAX_WAVE = 1990, 2100
MAX_WAVE_SPAN = 10
SOURCES = ("register",) + tuple(d.name for d in SURVEYS)


@dataclass(frozen=True)
class DemoFile:
    """One written file."""

    path: Path  # absolute path
    source: str  # register | silc | hbs | lfs | hfcs | population
    wave: int
    kind: str  # "incoming" (read by the pipeline) or "truth"
    fmt: str  # parquet | csv | stata | spss | json
    rows: int

    def relative_to(self, root: Path) -> str:
        return self.path.relative_to(root).as_posix()


@dataclass
class DemoManifest:
    """What :func:`generate_demo` wrote."""

    output_dir: Path
    persons: int
    households: int
    waves: tuple[int, ...]
    seed: int
    files: list[DemoFile] = field(default_factory=list)

    def incoming(self, source: str | None = None, wave: int | None = None) -> list[DemoFile]:
        return [
            f
            for f in self.files
            if f.kind == "incoming" and (source is None or f.source == source) and (wave is None or f.wave == wave)
        ]

    def truth(self, wave: int | None = None) -> list[DemoFile]:
        return [f for f in self.files if f.kind == "truth" and (wave is None or f.wave == wave)]

    def waves_of(self, source: str) -> list[int]:
        return sorted({f.wave for f in self.incoming(source)})

    def to_dict(self) -> dict:
        return {
            "persons": self.persons,
            "households": self.households,
            "waves": list(self.waves),
            "seed": self.seed,
            "files": [
                {
                    "path": f.relative_to(self.output_dir),
                    "source": f.source,
                    "wave": f.wave,
                    "kind": f.kind,
                    "format": f.fmt,
                    "rows": f.rows,
                }
                for f in self.files
            ],
        }


def survey_calendar(waves: Iterable[int]) -> dict[str, list[int]]:
    """Waves in which each source is delivered."""
    waves = sorted(waves)
    cal = {"register": list(waves)}
    for d in SURVEYS:
        cal[d.name] = [w for w in waves if d.runs_in(w)]
    return cal


def _validate(persons: object, waves: object, seed: object) -> tuple[int, tuple[int, ...], int]:
    if isinstance(persons, bool) or not isinstance(persons, (int, np.integer)):
        raise ValueError(f"persons must be an integer, got {persons!r}")
    if not MIN_PERSONS <= persons <= MAX_PERSONS:
        raise ValueError(
            f"persons must be between {MIN_PERSONS:,} and {MAX_PERSONS:,} (got {persons:,}): "
            "smaller populations cannot support the survey designs, larger ones are not supported"
        )
    try:
        wave_list = list(waves)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(f"waves must be a sequence of years, got {waves!r}") from None
    if not wave_list:
        raise ValueError("waves must not be empty")
    for w in wave_list:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not MIN_WAVE <= w <= MAX_WAVE:
            raise ValueError(f"waves must be years between {MIN_WAVE} and {MAX_WAVE}, got {w!r}")
    if len(set(wave_list)) != len(wave_list):
        raise ValueError(f"waves must be distinct, got {tuple(wave_list)}")
    if max(wave_list) - min(wave_list) > MAX_WAVE_SPAN:
        raise ValueError(f"waves must span at most {MAX_WAVE_SPAN} years (the population is only aged, not renewed)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(persons), tuple(sorted(int(w) for w in wave_list)), int(seed)


def generate_demo(
    output_dir: Path,
    *,
    persons: int = 50_000,
    waves: tuple[int, ...] = (2022, 2023, 2024),
    seed: int = 20240101,
) -> DemoManifest:
    """Generate the demo city and write its sources and truth into ``output_dir``.

    Deterministic for given arguments.  Existing files of the same names are
    replaced (atomically); other files are left alone.
    Raises ``ValueError`` for ``persons`` outside 1,000..2,000,000 or bad waves.
    """
    persons, waves, seed = _validate(persons, waves, seed)
    output_dir = Path(output_dir).resolve()
    incoming, truth_dir = output_dir / "incoming", output_dir / "truth"
    t0 = time.perf_counter()
    pop = generate_population(seed, persons)
    log.info("demo: %d persons in %d households (seed %d), waves %s", persons, pop.n_households, seed, waves)
    manifest = DemoManifest(output_dir, persons, pop.n_households, waves, seed)

    def record(path: Path, source: str, wave: int, kind: str, fmt: str, rows: int) -> None:
        manifest.files.append(DemoFile(path, source, wave, kind, fmt, rows))
        log.debug("demo: wrote %s (%d rows)", path.relative_to(output_dir).as_posix(), rows)

    base = waves[0]
    for wave in waves:
        dt = wave - base
        inc = generate_incomes(pop, seed, wave, dt)
        household, person, _ = survey_variables(pop, inc, seed, wave, dt)
        diaries = generate_diaries(pop, inc, seed, wave)
        truth = build_truth(pop, inc, household, person, wave, diaries)
        del household, person

        path = truth_dir / f"population_{wave}.parquet"
        write_parquet(truth, path)
        record(path, "population", wave, "truth", "parquet", len(truth))

        path = incoming / "register" / FILE_NAMES["register"].format(wave=wave)
        table = register_table(truth, wave)
        write_table(table, path)
        record(path, "register", wave, "incoming", table.fmt, len(table.frame))
        del table

        for design in SURVEYS:
            if not design.runs_in(wave):
                continue
            sample = draw_sample(design, pop, inc, seed, wave)
            rows = truth.iloc[sample.persons].reset_index(drop=True)
            if design.name in DIARY_TABLES:
                table = DIARY_TABLES[design.name](rows, sample, diaries, seed, wave)
            else:
                table = SURVEY_TABLES[design.name](rows, sample, seed, wave)
            path = incoming / design.name / FILE_NAMES[design.name].format(wave=wave)
            write_table(table, path)
            record(path, design.name, wave, "incoming", table.fmt, len(table.frame))

            links = pd.DataFrame(
                {
                    "survey_person_id": sample.person_id,
                    "survey_household_id": sample.household_id,
                    "person_id": rows["person_id"].to_numpy(),
                    "household_id": rows["household_id"].to_numpy(),
                    "inclusion_prob": sample.inclusion_prob,
                    "design_weight": sample.design_weight,
                    "weight": sample.weight,
                }
            )
            path = truth_dir / "samples" / f"{design.name}_{wave}.parquet"
            write_parquet(links, path)
            record(path, design.name, wave, "truth", "parquet", len(links))
        del truth, inc, diaries
        log.info(
            "demo: wave %d written (%s) after %.1f s",
            wave,
            ", ".join(f.source for f in manifest.incoming(wave=wave)),
            time.perf_counter() - t0,
        )

    write_json(manifest.to_dict(), truth_dir / "manifest.json")
    log.info("demo: done in %.1f s", time.perf_counter() - t0)
    return manifest
