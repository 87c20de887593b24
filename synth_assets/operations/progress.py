"""Progress for people: one line per stage of a headless run, with the time since the start.

``synth-assets run`` replaces Dagster's console logger (about 150 lines a release) with the
logger of ``Progress``: it prints one line when a step ends (how long it took) or fails, and
the lines the steps mark as progress (``defs.metadata.log_progress``: each replicate while
sampling, each group of validation metrics). ``--verbose`` keeps Dagster's full log instead.
Every line still reaches the instance's event log, so the UI shows the whole run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import dagster as dg

from synth_assets.dagster_api import log_line
from synth_assets.defs.metadata import PROGRESS_FLAG


class Progress:
    """Prints progress lines through ``echo``, each stamped with the time since ``start``."""

    def __init__(self, echo: Callable[[str], None] | None = None, start: float | None = None):
        self.echo = echo or (lambda text: print(text, flush=True))
        self.start = time.monotonic() if start is None else start

    def stamp(self) -> str:
        seconds = int(time.monotonic() - self.start)
        return f"[{seconds // 60:2d}:{seconds % 60:02d}]"

    def line(self, text: str) -> None:
        self.echo(f"{self.stamp()} {text}")

    def logger_def(self, steps: bool = True) -> dg.LoggerDefinition:
        """A Dagster logger that turns a run's events into progress lines (steps: one per step)."""
        started: dict[str, float] = {}
        progress = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                line = log_line(record)
                if line is None:
                    return
                step = line.step_key or ""
                event = line.event
                if event is None:
                    if getattr(record, PROGRESS_FLAG, False):
                        progress.line(f"  {step}: {line.message}" if step else f"  {line.message}")
                    return
                if not steps:
                    return
                if event.event_type == dg.DagsterEventType.STEP_START:
                    started[step] = time.monotonic()
                elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                    took = time.monotonic() - started.get(step, time.monotonic())
                    progress.line(f"done {step} ({took:.1f} s)")
                elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
                    progress.line(f"FAILED {step}")

        def make(init_context: dg.InitLoggerContext) -> logging.Logger:
            logger = logging.Logger("synth_assets.progress", level=logging.DEBUG)
            logger.addHandler(Handler())
            return logger

        return dg.LoggerDefinition(make, description="one line per step, replicate and metric group")
