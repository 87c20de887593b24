"""A step's CPU time: its process's threads and the children it waited for, lap by lap."""

import os
import threading
import time

import pytest

from synth_assets.common.cpu_time import CpuLaps, cpu_seconds


def _spin(seconds: float) -> None:
    """Hold a core for ``seconds`` of this thread's CPU time."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked children: POSIX only")
def test_a_lap_counts_the_threads_and_the_children_waited_for():
    laps = CpuLaps()
    laps.lap()
    worker = threading.Thread(target=_spin, args=(0.3,))
    worker.start()
    _spin(0.3)
    worker.join()
    pid = os.fork()
    if pid == 0:  # the child: its own CPU time, counted once the parent has waited for it
        try:
            _spin(0.4)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    used = laps.lap()
    assert used is not None and used >= 0.95  # 0.3 + 0.3 on threads, 0.4 in the child
    time.sleep(0.3)  # asleep: the next lap counts only what was used since this one
    idle = laps.lap()
    assert idle is not None and idle < 0.2


def test_cpu_seconds_only_grow():
    first = cpu_seconds()
    assert first is not None and first > 0
    _spin(0.1)
    second = cpu_seconds()
    assert second is not None and second >= first + 0.09
