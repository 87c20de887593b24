"""Process settings: NumPy's huge-page advice off in the pipeline's processes, unless the user set it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from synth_assets.common.settings import NUMPY_HUGE_PAGES

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="NumPy advises huge pages on Linux only")

# prints whether NumPy advises huge pages (the switch returns its previous state) and the variable
_REPORT = ("import os, numpy; core = getattr(numpy, '_core', None) or numpy.core; "
           "print(core.multiarray._set_madvise_hugepage(False), os.environ.get('NUMPY_MADVISE_HUGEPAGE'))")


def _python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != NUMPY_HUGE_PAGES}
    return subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def _advised_by_default() -> bool:
    """NumPy's own choice on this kernel (off before Linux 4.6): the tests below mean something only
    where it is on."""
    return _python(_REPORT).split()[0] == "True"


needs_advice_by_default = pytest.mark.skipif(not _advised_by_default(), reason="NumPy advises no huge pages here")


@needs_advice_by_default
def test_switched_off_when_numpy_was_imported_first() -> None:
    code = ("import numpy\nfrom synth_assets.common.settings import prepare_process\nprepare_process()\n"
            + _REPORT.replace("; ", "\n"))
    assert _python(code) == "False 0"


@needs_advice_by_default
def test_processes_started_afterwards_import_numpy_without_it() -> None:
    code = ("import subprocess, sys\nfrom synth_assets.common.settings import prepare_process\nprepare_process()\n"
            f"print(subprocess.run([sys.executable, '-c', {_REPORT!r}], capture_output=True, text=True).stdout)")
    assert _python(code) == "False 0"


@needs_advice_by_default
def test_the_users_own_setting_is_kept() -> None:
    code = "import numpy\nfrom synth_assets.common.settings import prepare_process\nprepare_process()\n" + \
        _REPORT.replace("; ", "\n")
    assert _python(code, NUMPY_MADVISE_HUGEPAGE="1") == "True 1"


@needs_advice_by_default
def test_the_cli_switches_it_off() -> None:
    code = ("import numpy\nfrom synth_assets.cli import main\nassert main(['--help']) == 0\n"
            + _REPORT.replace("; ", "\n"))
    assert _python(code).splitlines()[-1] == "False 0"


@needs_advice_by_default
def test_the_definitions_switch_it_off(mini_catalog_path) -> None:
    """A code location's process (``dagster dev``, a step's process, a pod) builds the definitions."""
    code = ("import numpy\nfrom synth_assets.defs.definitions import build_definitions\n"
            f"build_definitions({str(mini_catalog_path.parent)!r})\n" + _REPORT.replace("; ", "\n"))
    assert _python(code).splitlines()[-1] == "False 0"


@needs_advice_by_default
def test_the_test_processes_run_as_the_pipeline_does() -> None:
    """conftest applies the settings: the tests measure what the pipeline runs."""
    if os.environ.get(NUMPY_HUGE_PAGES) not in (None, "0"):
        pytest.skip("NUMPY_MADVISE_HUGEPAGE set for this test run: the user's own choice")
    core = getattr(np, "_core", None) or np.core
    previous = core.multiarray._set_madvise_hugepage(False)
    core.multiarray._set_madvise_hugepage(previous)
    assert previous is False
    assert os.environ[NUMPY_HUGE_PAGES] == "0"
