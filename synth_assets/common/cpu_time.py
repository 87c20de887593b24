"""The CPU time a process has used, its reaped children's included: how much of the cores a step held.

A step's wall time says how long it took; its CPU time, how many core-seconds it used (every
thread, and every forked child once waited for). Their ratio is the cores it kept busy on average,
and a run's CPU seconds over the machine's cores are the least time the run can take there without
doing less work: the figure that says whether a slow run waits or computes.
"""

from __future__ import annotations

try:
    import resource
except ImportError:  # not POSIX: no CPU time to report
    resource = None  # type: ignore[assignment]


def cpu_seconds() -> float | None:
    """User and system CPU seconds of this process and of its children it has waited for, since it
    started; None where the platform does not say (no ``resource`` module)."""
    if resource is None:
        return None
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuLaps:
    """CPU seconds lap by lap: each ``lap()`` gives those used since the previous one (the first,
    since the process started), so one process running steps one after another reports each step's."""

    def __init__(self) -> None:
        self._mark = 0.0

    def lap(self) -> float | None:
        now = cpu_seconds()
        if now is None:
            return None
        used, self._mark = now - self._mark, now
        return used
