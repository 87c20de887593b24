"""NumPy's huge-page advice on or off: one command's wall, user and system seconds, runs alternated.

    PYTHONPATH=. .venv/bin/python bench/scale/huge_pages.py --repeats 3 -- COMMAND [ARGS...]

Runs ``COMMAND`` ``--repeats`` times with ``NUMPY_MADVISE_HUGEPAGE=1`` (NumPy's default on Linux 4.6
and later: huge pages advised for every array of 4 MB or more) and as many times with ``=0`` (NumPy's
own switch to leave them out), alternately, each in a fresh process; prints each run's seconds (the
kernel's accounting of the process and its children, ``os.wait4``), the huge pages the kernel
faulted in meanwhile (``/proc/vmstat``), the medians and their ratio. The command's own output goes to a file per run under ``--logs``: compare
them to check both settings computed the same thing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

SETTINGS = ("1", "0")


def _vmstat(name: str) -> int | None:
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            key, value = line.split()
            if key == name:
                return int(value)
    except OSError:
        return None
    return None


def _kernel_setting(name: str) -> str:
    try:
        return Path(f"/sys/kernel/mm/transparent_hugepage/{name}").read_text().strip()
    except OSError:
        return "unknown"


def _run(command: list[str], setting: str, log: Path) -> dict[str, float]:
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": setting}
    faults = _vmstat("thp_fault_alloc")
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed with NUMPY_MADVISE_HUGEPAGE={setting}: see {log}")
    after = _vmstat("thp_fault_alloc")
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
            "huge_faults": float(after - faults) if faults is not None and after is not None else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--logs", type=Path, default=Path("/tmp/huge_pages"), help="each run's output")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command to time")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to time is needed, after --")
    args.logs.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, float]]] = {setting: [] for setting in SETTINGS}
    print(f"Command: `{' '.join(command)}`")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, kernel "
          f"{platform.release()}; transparent huge pages: enabled {_kernel_setting('enabled')}, "
          f"defrag {_kernel_setting('defrag')}\n")
    print("| run | NUMPY_MADVISE_HUGEPAGE | wall s | user s | system s | huge pages faulted |")
    print("|---|---|---|---|---|---|")
    for repeat in range(args.repeats):
        for setting in SETTINGS:
            run = _run(command, setting, args.logs / f"run{repeat + 1}-hugepage{setting}.log")
            runs[setting].append(run)
            print(f"| {repeat + 1} | {setting} | {run['wall']:.1f} | {run['user']:.1f} | {run['sys']:.1f} | "
                  f"{run['huge_faults']:,.0f} |", flush=True)
    print("\n| NUMPY_MADVISE_HUGEPAGE | wall s (median) | user s | system s |")
    print("|---|---|---|---|")
    medians = {s: {k: statistics.median(r[k] for r in runs[s]) for k in ("wall", "user", "sys")} for s in SETTINGS}
    for setting in SETTINGS:
        m = medians[setting]
        print(f"| {setting} | {m['wall']:.1f} | {m['user']:.1f} | {m['sys']:.1f} |")
    on, off = medians["1"], medians["0"]
    print(f"\nwithout the advice: wall x{off['wall'] / on['wall']:.2f}, "
          f"user + system x{(off['user'] + off['sys']) / (on['user'] + on['sys']):.2f}")


if __name__ == "__main__":
    main()
