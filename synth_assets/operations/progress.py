"""Progress for people: one line per stage of a headless run, with the time since the start.

``synth-assets run`` replaces Dagster's console logger (about 150 lines a release) with the
logger of ``Progress``: it prints one line when a step ends (how long it took and, once the
step's hook has logged them, its peak resident memory and CPU time) or fails, and
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
from synth_assets.defs.metadata import CPU_FLAG, PEAK_FLAG, PROGRESS_FLAG


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
        # a step's line waits for its peak, which its success hook logs after STEP_SUCCESS; without
        # one (a platform without the kernel's mark) it goes out when that hook has completed (a
        # hook skipped is the failure hook: not a sign), or when the run ends (a job without hooks)
        ended: dict[str, str] = {}
        cpu: dict[str, str] = {}  # the step's CPU time, which its hook logs just before its peak
        progress = self

        def flush(step: str, peak: str = "") -> None:
            if step in ended:
                progress.line(f"done {step} ({ended.pop(step)}{peak}{cpu.pop(step, '')})")

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                line = log_line(record)
                if line is None:
                    return
                step = line.step_key or ""
                event = line.event
                if event is None:
                    peak = getattr(record, PEAK_FLAG, None)
                    seconds = getattr(record, CPU_FLAG, None)
                    if seconds is not None:
                        cpu[step] = f", CPU {seconds:.1f} s"
                    elif peak is not None and steps:
                        flush(step, f", peak {peak / 1e9:.2f} GB")
                    elif getattr(record, PROGRESS_FLAG, False):
                        progress.line(f"  {step}: {line.message}" if step else f"  {line.message}")
                    return
                if not steps:
                    return
                kind = event.event_type
                if kind == dg.DagsterEventType.STEP_START:
                    started[step] = time.monotonic()
                elif kind == dg.DagsterEventType.STEP_SUCCESS:
                    ended[step] = f"{time.monotonic() - started.get(step, time.monotonic()):.1f} s"
                elif kind == dg.DagsterEventType.STEP_FAILURE:
                    progress.line(f"FAILED {step}")
                elif kind in (dg.DagsterEventType.HOOK_COMPLETED, dg.DagsterEventType.HOOK_ERRORED):
                    flush(step)
                elif event.is_run_failure or kind in (dg.DagsterEventType.RUN_SUCCESS,
                                                      dg.DagsterEventType.RUN_CANCELED):
                    for pending in list(ended):
                        flush(pending)

        def make(init_context: dg.InitLoggerContext) -> logging.Logger:
            logger = logging.Logger("synth_assets.progress", level=logging.DEBUG)
            logger.addHandler(Handler())
            return logger

        return dg.LoggerDefinition(make, description="one line per step, replicate and metric group")
