"""Where a process's resident memory peaks: the main thread's stack at each new high, polled.

    PEAKPROF=/tmp/prof PYTHONPATH=bench/scale/peak_stacks:. .venv/bin/python bench/scale/release_steps.py \
        --data ROOT --replicates 2 --child fictitious_dataset

Python imports this module at start-up from ``PYTHONPATH`` (``sitecustomize``). With ``PEAKPROF``
set, a thread reads the resident set (``/proc/self/status``) every 0.1 s and, each time it rises
40 MB above the highest seen (and every 15 s), appends a line to ``$PEAKPROF.<pid>``: seconds since
start, the resident set, and the innermost frames of the main thread in this project, scikit-learn
or pandas. Unlike tracemalloc it sees NumPy and Arrow buffers and costs nothing measurable; a spike
shorter than 0.1 s can be missed (the process's ``ru_maxrss`` is exact: run under ``/usr/bin/time -v``).
"""

import os
import sys
import threading
import time
import traceback

if os.environ.get("PEAKPROF"):
    _OUT = f"{os.environ['PEAKPROF']}.{os.getpid()}"
    _MAIN = threading.main_thread().ident
    _KEPT = ("synth_assets", "sklearn", "pandas")

    def _rss_mb() -> float:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))

    def _poll() -> None:
        best, last, start = 0.0, 0.0, time.time()
        while True:
            rss, now = _rss_mb(), time.time()
            if rss > best + 40 or now - last > 15:
                frame = sys._current_frames().get(_MAIN)
                stack = traceback.extract_stack(frame) if frame else []
                where = [f"{os.path.basename(s.filename)}:{s.lineno}:{s.name}" for s in stack
                         if any(k in s.filename for k in _KEPT)][-8:]
                with open(_OUT, "a") as out:
                    out.write(f"{now - start:8.1f}s {rss:8.0f}MB {'PEAK' if rss > best else '    '} "
                              f"{' > '.join(where)}\n")
                last, best = now, max(best, rss)
            time.sleep(0.1)

    threading.Thread(target=_poll, daemon=True, name="peak-stacks").start()
