"""Independent pieces of work run a few at a time, results in order: on threads, or in forked processes.

For work whose time goes to code that releases the GIL (scikit-learn's tree building, NumPy's
element-wise arithmetic, sorts and partitions), :func:`ordered_map` on threads: the pieces share
their inputs (a design matrix, a reference table) without a copy or a pickle. Measured on 2 cores, 2 threads against 1 (``bench/validation/threads.py``, tables
of 20,000 rows): the Gower DCR 2.0 times as fast, the membership attack 1.8, the propensity pMSE
with its permutations and folds 1.3 (its trees' pruning is Python); CART's fit 1.75 at 300,000
persons, about 1.4 at 1.2 million with its blocks one at a time (``bench/README.md``, "Fifteenth pass").

Work whose time goes to Python itself (pandas calls, a sampler's loops) holds the GIL, and threads
take turns on it: drawing the next chunk of candidates on a second thread gained 3% (same pass).
:func:`forked_imap` runs such pieces in child processes forked from the calling one: a child sees
the caller's memory as it was at the fork (a fitted model, reference indexes), shared page by page
until written, so nothing large is pickled on the way in; each piece's result is pickled back, so a
piece that makes data writes it to a file and returns the path.

``n_jobs`` follows scikit-learn's convention: ``None`` or 1 one piece at a time in the calling
thread, -1 as many as the cores this process may use, k > 1 that many.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any, TypeVar, cast

from synth_assets.common.memory import peak_resident_bytes, reset_peak

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """The cores this process may use: its CPU affinity (``taskset``), and a container's CPU quota
    (a Kubernetes pod's ``limits.cpu``, which leaves the affinity at the node's every core), as
    joblib (scikit-learn's) counts them."""
    from joblib import cpu_count

    return max(1, int(cpu_count()))


def resolved_jobs(n_jobs: int | None) -> int:
    """The number of threads ``n_jobs`` asks for: ``None`` is 1, -1 every available core."""
    if n_jobs is None:
        return 1
    if n_jobs == -1:
        return available_cores()
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be -1, None or at least 1, got {n_jobs}")
    return n_jobs


def ordered_map(function: Callable[[T], R], items: Iterable[T], n_jobs: int | None = None,
                name: str = "synth-assets") -> list[R]:
    """``[function(item) for item in items]``, up to ``n_jobs`` items at a time on threads.

    The results come in the items' order whatever finishes first, so a caller whose pieces are
    each seeded gets the same answer for every ``n_jobs``. The first exception raised is raised
    here, once the pieces already started have ended.
    """
    items = list(items)
    workers = min(resolved_jobs(n_jobs), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        return list(pool.map(function, items))



#: Loggers whose records a forked child sends back to be logged again by its parent, so a Dagster
#: step's log (which manages the ``synth_assets`` logger) shows the children's progress.
RELAYED_LOGGERS: tuple[str, ...] = ("synth_assets",)


class _RelayHandler(logging.Handler):
    """In a forked child: each record of a relayed logger sent to the parent, as (name, level, text)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.connection.send(("log", (record.name, record.levelno, record.getMessage())))
        except Exception:  # a log line is never worth the piece's result
            self.handleError(record)


def _die_with_parent() -> None:
    """Linux: this process is killed when its parent dies (a step killed for memory or cancelled
    leaves no orphan drawing on). Elsewhere nothing: the parent still stops its children on error."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(AttributeError, OSError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run_child(function: Callable[[T], R], item: T, connection: Connection, loggers: Sequence[str]) -> None:
    _die_with_parent()
    reset_peak()  # the child's own high-water mark, not the parent's at the fork
    # the parent's handlers write where the parent writes (a Dagster step's event log): not from here
    handler = _RelayHandler(connection)
    for name in loggers:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        # INFO at least: the parent decides what it keeps (a step's context.log keeps INFO whatever
        # level the Python loggers have where no instance setting manages them)
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
    logging.getLogger().handlers = []
    if "torch" in sys.modules:  # OpenMP's thread pool does not survive a fork: one thread, as DataLoader's workers
        sys.modules["torch"].set_num_threads(1)
    try:
        result = function(item)
        message: tuple[str, Any] = ("result", (result, peak_resident_bytes()))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        message = ("error", (exc, traceback.format_exc()))
    try:
        connection.send(message)
    except Exception as exc:  # an unpicklable result or exception: its text, at least
        error = message[1][1] if message[0] == "error" else ""
        connection.send(("error", (RuntimeError(f"the piece's {message[0]} could not be sent back: {exc}"), error)))


def _fork(function: Callable[[T], R], item: T, loggers: Sequence[str]) -> tuple[int, Connection]:
    reader, writer = Pipe(duplex=False)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: run the piece, send what came of it, leave without the parent's exit handlers
        code = 0
        try:
            reader.close()
            _run_child(function, item, writer, loggers)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            try:
                writer.close()
            finally:
                os._exit(code)
    writer.close()
    return pid, reader


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def forked_imap(function: Callable[[T], R], items: Iterable[T], processes: int | None = None, *,
                loggers: Sequence[str] = RELAYED_LOGGERS,
                on_log: Callable[[str, int, str], None] | None = None,
                on_peak: Callable[[int, int | None], None] | None = None) -> Iterator[R]:
    """``function(item)`` for each item, up to ``processes`` at a time, each in a child process
    forked from this one; the results yielded in the items' order, each as soon as it and those
    before it are done.

    An item is taken from ``items`` only when a child is free to run it, so a generator that builds
    each (a replicate's model) has at most ``processes`` alive. The records of ``loggers`` that a
    child logs are logged again here as they come, by the logger of their name, or handed to
    ``on_log(name, level, message)`` (a Dagster step's ``context.log``). ``on_peak(position, bytes)``
    hears each child's peak resident memory as its result arrives (from the fork on, the parent's
    pages it touched counted; None where the kernel does not say): what a child needs beside the
    caller, which the caller's own peak leaves out. A piece's exception is raised here (the same
    exception, when it pickles; its traceback text in the message otherwise) once the other
    children are stopped; a child that ends without a result (killed: out of memory) raises
    ``ChildProcessError`` naming the item's position. ``processes`` follows ``n_jobs`` (-1 every
    core); one process, or a platform without ``fork``, runs the pieces here, one after the other.
    """
    workers = resolved_jobs(processes)
    if workers <= 1 or not hasattr(os, "fork"):
        for item in items:
            result = function(item)
            del item  # not held while the next item is made (a generator frees its own on resuming)
            yield result
        return
    pending = iter(items)
    running: dict[Connection, tuple[int, int]] = {}  # the child's pipe -> (item position, pid)
    done: dict[int, R] = {}
    position = 0  # the next item's
    handed = 0  # results yielded
    exhausted = False
    # objects allocated so far are left out of the collector's passes: a collection in a child would
    # otherwise touch (and so copy) every page the parent's objects sit on
    gc.freeze()
    try:
        while True:
            while not exhausted and len(running) < workers:
                try:
                    item = next(pending)
                except StopIteration:
                    exhausted = True
                    break
                pid, reader = _fork(function, item, loggers)
                del item  # the child has its own; this process need not keep it while the child runs
                running[reader] = (position, pid)
                position += 1
            while handed in done:
                yield done.pop(handed)
                handed += 1
            if not running:
                if exhausted:
                    return
                continue
            for ready in wait(list(running)):
                reader = cast(Connection, ready)
                try:
                    kind, payload = reader.recv()
                except EOFError:
                    index, pid = running.pop(reader)
                    reader.close()
                    code = _exit_code(pid)
                    raise ChildProcessError(
                        f"the process of item {index} ended with exit code {code} and no result"
                        + (" (killed: out of memory?)" if code == -signal.SIGKILL else "")) from None
                if kind == "log":
                    name, level, text = payload
                    if on_log is None:
                        logging.getLogger(name).log(level, text)
                    else:
                        on_log(name, level, text)
                    continue
                index, pid = running.pop(reader)
                reader.close()
                _exit_code(pid)
                if kind == "error":
                    exc, text = payload
                    if isinstance(exc, BaseException):
                        raise exc from ChildProcessError(f"in the process of item {index}:\n{text}")
                    raise ChildProcessError(f"in the process of item {index}:\n{text}")
                result, peak = payload
                if on_peak is not None:
                    on_peak(index, peak)
                done[index] = result
    finally:
        for reader, (_, pid) in running.items():
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            reader.close()
        gc.unfreeze()
