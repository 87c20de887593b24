"""Helpers to run ``dagster dev`` / ``dagster-webserver`` as a subprocess in tests (UI and daemon tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

SERVER_STOP_TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_signals() -> None:
    # Started in the background from a script, `dagster dev` (1.13) inherits an ignored
    # SIGINT (a shell gives background jobs SIG_IGN) and ignores SIGTERM, as measured on
    # this project's machines; give the child default dispositions so SIGINT stops it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen, group_grace_s: float = 15) -> None:
    """SIGINT to the webserver itself; SIGKILL if it has not gone within the timeout.

    It runs in a session of its own (start_new_session), so its process group holds only
    what it started (the code server, run workers): those get ``group_grace_s`` to shut
    down, then whatever is left of that group is killed. A run worker still computing does
    not stop with the server: it uses the whole grace.
    """
    group = process.pid
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    deadline = time.monotonic() + group_grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.25)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
