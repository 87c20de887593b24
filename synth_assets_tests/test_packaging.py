"""Packaging: the library works without the pipeline's and the neural models' extras, and the
lock file pins every dependency pyproject.toml declares."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

# What the `pipeline` and `neural` extras bring: a library install must not need any of it.
EXTRAS_ONLY = ("dagster", "dagster_webserver", "torch", "sdv", "ctgan", "rdt", "copulas")

_WITHOUT_EXTRAS = textwrap.dedent(
    f"""
    import importlib.abc, sys
    BLOCKED = {EXTRAS_ONLY!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: an extra)")

    sys.meta_path.insert(0, Blocker())
    """
)


#: Ends the child once its code ran: pyarrow's threads can abort the interpreter's teardown
#: (SIGABRT, "terminate called without an active exception", apache/arrow#34314), after the
#: work under test is done; a failing assertion above it still exits non-zero.
_EXIT_AFTER_CODE = "\nimport os as _os, sys as _sys\n_sys.stdout.flush(); _sys.stderr.flush(); _os._exit(0)\n"


def _run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRAS + textwrap.dedent(code) + _EXIT_AFTER_CODE],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_the_blocker_blocks() -> None:
    # Guards the test below: if the blocker let dagster through, that test could not fail.
    result = _run_without_extras("import dagster")
    assert result.returncode != 0
    assert "blocked: an extra" in result.stderr


def test_library_imports_and_synthesises_without_pipeline_or_neural_extras() -> None:
    result = _run_without_extras(
        """
        import numpy as np, pandas as pd
        import synth_assets.catalog, synth_assets.ingest, synth_assets.harmonise
        import synth_assets.matching, synth_assets.synthesis, synth_assets.calibration
        import synth_assets.inference, synth_assets.validation, synth_assets.publication
        import synth_assets.audit, synth_assets.demo
        from synth_assets.synthesis import make_synthesizer
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"age": rng.integers(18, 90, 300),
                              "sex": rng.choice(["F", "M"], 300),
                              "income": rng.gamma(2.0, 1000.0, 300)})
        fictitious = make_synthesizer("cart").fit(frame).sample(200, seed=1)
        assert len(fictitious) == 200 and set(fictitious.columns) == set(frame.columns)
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = [Requirement(r) for r in project["dependencies"]]
    for extra in ("pipeline", "neural", "test"):  # what `make install` installs
        declared += [Requirement(r) for r in extras[extra] if not r.startswith("synth_assets")]
    return declared


def test_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = _locked()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is declared in pyproject.toml but not pinned in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {requirement.name}=={pins[name]}, outside pyproject's {requirement.specifier}"
        )


def test_this_environment_is_the_locked_one() -> None:
    # make install builds .venv from the lock; a drift here means the tests ran on other versions.
    drifted = []
    for name, version in _locked().items():
        try:
            installed = metadata.version(name).split("+")[0]
        except metadata.PackageNotFoundError:
            drifted.append(f"{name} (not installed)")
            continue
        if installed != version:
            drifted.append(f"{name} {installed} != {version}")
    assert not drifted, "installed packages differ from requirements.lock: " + ", ".join(drifted)
