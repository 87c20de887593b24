"""A tiny demo population in a temporary data root, and prepared states of it, shared by the Dagster tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY_PERSONS = 3000


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    from synth_assets.demo import generate_demo

    root = tmp_path_factory.mktemp("demo_source")
    generate_demo(root, persons=TINY_PERSONS)
    return root


#: Calibration margins for the tiny demo: its 1,300 households spread over 19 municipalities
#: would leave municipality cells merged across sizes and types, so the tests calibrate to
#: the city-wide tables a population of this size supports.
TINY_MARGINS = [
    {"unit": "person", "variables": ["sex", "age"]},
    {"unit": "household", "variables": ["household_type", "household_size"]},
]


def tiny_catalog(target: Path) -> None:
    """The project catalog with the tiny demo's calibration margins."""
    raw = yaml.safe_load((REPO / "data" / "catalog.yaml").read_text(encoding="utf-8"))
    raw.setdefault("release", {}).setdefault("calibration", {})["margins"] = TINY_MARGINS
    target.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture
def data_root(tmp_path, tiny_demo) -> Path:
    """A fresh copy of the tiny demo (tests may break its files) with the project catalog."""
    root = tmp_path / "data"
    shutil.copytree(tiny_demo / "incoming", root / "incoming")
    tiny_catalog(root / "catalog.yaml")
    return root


#: The tiny demo's files the 2024 release does not read (each survey's latest wave at or before
#: 2024 is: register, silc, lfs, hbs, mobility 2024; hfcs and tus 2023). Ingesting one costs
#: about as much as a release step (an in-process run with its checks and Data Docs).
OLDER_WAVES = ["register/register_2022.parquet", "register/register_2023.parquet", "silc/silc_2022.csv",
               "silc/silc_2023.csv", "hbs/hbs_2022.dta", "lfs/lfs_2022.sav", "lfs/lfs_2023.sav",
               "mobility/mobility_2022.csv"]


def drop_older_waves(root: Path) -> None:
    """Leave under ``root/incoming`` only the files the 2024 release reads."""
    for relative in OLDER_WAVES:
        (root / "incoming" / relative).unlink()


@pytest.fixture
def release_inputs_root(data_root: Path) -> Path:
    """``data_root`` with only the files the 2024 release reads: 7 ingest runs, not 15."""
    drop_older_waves(data_root)
    return data_root


# --------------------------------------------------------------------------- prepared states
# Many tests need the tiny demo already ingested (every source wave: 12 runs, about half of a
# whole pipeline's time) or a release already published, and then test what follows. Each
# state is built once per test session, shared by the xdist workers through a file lock, and
# every test gets its own copy of the data root and of the instance's storage (both are small).
# A copied instance needs no re-ingest: a delivery is ingested again only when its sha256
# differs from the one its raw_<source> was built from, whatever the file's path.

#: The release every prepared-release test judges: CART (the default family), two replicates
#: (the combining rule of fully synthetic data needs m >= 2: with one, the regression intervals
#: are the within-replicate ones, too narrow, and the gate refuses by chance). Two matched
#: replicates too, as ``synth-assets run --replicates 2`` sets them (operations/settings.py):
#: replicate r is drawn from matched replicate r, and the default five would fuse three unused.
#: No sampling-error subsamples: every table of the tiny demo is smaller than
#: ``validation.max_rows``, so each is used whole and every error comes out 0 (README,
#: "Validation costs a sample"); computing them refits the utility metrics twice for nothing.
#: ``test_run_cli.py`` keeps a run with real subsamples (``validation.max_rows=2000``).
#: A fallback family is named and never used: the release passes, so it is published without
#: one (``test_fallback.py`` checks that on this release rather than building another).
FAST_RELEASE = {"ops": {"population_model": {"config": {"family": "cart", "seed": 0, "fallback_family": "neural"}},
                        "matched_replicates": {"config": {"replicates": 2}},
                        "fictitious_dataset": {"config": {"replicates": 2}},
                        "validation_report": {"config": {"error_subsamples": 0}}}}
#: The same for ``synth-assets run`` (``--replicates`` sets the matched replicates too).
FAST_RUN_OPTIONS = ["--family", "cart", "--replicates", "2", "--set", "validation.error_subsamples=0"]


@dataclass(frozen=True)
class Prepared:
    """A data root and the home (DAGSTER_HOME) of the instance that processed it."""

    root: Path
    home: Path

    def copy_to(self, target: Path) -> Prepared:
        copy = Prepared(target / "data", target / "dagster_home")
        shutil.copytree(self.root, copy.root, symlinks=True)
        shutil.copytree(self.home, copy.home)
        return copy

    @contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        """The instance on this home, as ``instance_for_test`` gives it (its own dagster.yaml)."""
        with dg.instance_for_test(temp_dir=str(self.home)) as instance:
            yield instance

    def use_repo_instance_settings(self) -> None:
        """The repository's dagster.yaml (queued runs, pools) for a CLI or daemon run on this home."""
        shutil.copy(REPO / "dagster.yaml", self.home / "dagster.yaml")

    @property
    def release(self) -> Path:
        public = self.root / "public"
        return public / (public / "LATEST").read_text().strip()


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Prepared], None]) -> Prepared:
    """``build`` run once per session: the xdist workers share pytest's base temporary folder."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the folder every worker's base lies in, this session's alone
    folder = base / f"prepared_{name}"
    prepared = Prepared(folder / "data", folder / "dagster_home")
    with FileLock(str(folder) + ".lock"):
        if not (folder / "complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            prepared.home.mkdir(parents=True)
            build(prepared)
            (folder / "complete").touch()
    return prepared


def ingest_everything(prepared: Prepared) -> None:
    """Every delivered wave of every source ingested, as ``run_pipeline`` does before a release."""
    from synth_assets.catalog import load_catalog
    from synth_assets.common.layout import DataLayout
    from synth_assets.defs.automation.jobs import ingest_job_name
    from synth_assets.defs.definitions import build_definitions
    from synth_assets.defs.deliveries import observe_deliveries, record_deliveries
    from synth_assets.operations.runner import execute, register_waves

    layout = DataLayout(prepared.root)
    catalog = load_catalog(layout.catalog)
    defs = build_definitions(prepared.root)
    with prepared.instance() as instance:
        waves = register_waves(instance, catalog, layout)
        record_deliveries(instance, observe_deliveries(instance, catalog, layout.incoming))
        for name, source_waves in waves.items():
            for wave in source_waves:
                assert execute(defs, ingest_job_name(name), wave, instance).success, (name, wave)


@pytest.fixture(scope="session")
def prepared_ingested(tmp_path_factory) -> Prepared:
    """The tiny demo (waves 2022-2024) with the project catalog, every wave ingested."""

    def build(prepared: Prepared) -> None:
        from synth_assets.demo import generate_demo

        demo = prepared.root.parent / "demo"
        generate_demo(demo, persons=TINY_PERSONS)
        shutil.copytree(demo / "incoming", prepared.root / "incoming")
        shutil.rmtree(demo)
        tiny_catalog(prepared.root / "catalog.yaml")
        ingest_everything(prepared)

    return built_once(tmp_path_factory, "ingested", build)


@pytest.fixture(scope="session")
def prepared_release(tmp_path_factory, prepared_ingested: Prepared) -> Prepared:
    """``prepared_ingested`` then the 2024 release with ``FAST_RELEASE``, published."""

    def build(prepared: Prepared) -> None:
        from synth_assets.catalog import load_catalog
        from synth_assets.common.layout import DataLayout
        from synth_assets.defs.definitions import build_definitions
        from synth_assets.operations.runner import run_pipeline

        shutil.rmtree(prepared.home)
        prepared_ingested.copy_to(prepared.root.parent)
        layout = DataLayout(prepared.root)
        with prepared.instance() as instance:
            outcome = run_pipeline(build_definitions(prepared.root), load_catalog(layout.catalog), layout, instance,
                                   release_config=FAST_RELEASE, echo=lambda _: None)
        assert outcome.success and outcome.release is not None, [r.failures for r in outcome.runs]
        assert [r.job for r in outcome.runs] == ["release"], "the prepared waves were ingested again"

    return built_once(tmp_path_factory, "release", build)


@pytest.fixture
def ingested_copy(prepared_ingested: Prepared, tmp_path: Path) -> Prepared:
    """A copy of the ingested tiny demo and of its instance, for one test to change."""
    return prepared_ingested.copy_to(tmp_path)


@pytest.fixture
def release_copy(prepared_release: Prepared, tmp_path: Path) -> Prepared:
    """A copy of the published tiny release and of its instance, for one test to change."""
    return prepared_release.copy_to(tmp_path)


@pytest.fixture(scope="session")
def wave_2025(tmp_path_factory) -> Path:
    """The tiny demo's 2025 deliveries (register, silc, lfs): the same city one wave on.

    Generated with the waves 2022-2025, whose first three equal the tiny demo's (same seed, same
    base wave; the SPSS files differ only in their header's time stamp), so only the 2025 files
    are taken from it. Once per session, shared by the xdist workers like the prepared states.
    """

    def build(prepared: Prepared) -> None:
        from synth_assets.demo import generate_demo

        generate_demo(prepared.root, persons=TINY_PERSONS, waves=(2022, 2023, 2024, 2025))

    return built_once(tmp_path_factory, "demo2025", build).root / "incoming"


def deliver_2025(wave_2025: Path, incoming: Path, sources: tuple[str, ...] | None = None) -> list[Path]:
    """Copy the 2025 files (of ``sources``, or all) into ``incoming``; the copied paths."""
    copied = []
    for path in sorted(wave_2025.rglob("*2025*")):
        relative = path.relative_to(wave_2025)
        if sources is None or relative.parts[0] in sources:
            target = incoming / relative
            shutil.copy(path, target)
            copied.append(target)
    return copied
