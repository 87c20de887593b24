"""Time and peak resident memory of each library stage at several population sizes, and the slope.

    PYTHONPATH=. .venv/bin/python bench/scale/run.py [--persons 20000 100000] [--replicates 2] [--step-processes | --in-process] [--set KEY=VALUE ...]

Per size, in a fresh temporary data root: ``synth-assets demo-data`` (demo generation) in
one subprocess, then ``data/catalog.yaml`` copied there and ``synth-assets run --data ROOT
--replicates 2 --family cart`` (every other stage) in another. Without ``--step-processes``
or ``--in-process`` the run chooses as a plain ``synth-assets run`` does (each step in a
process of its own from a register of 500,000 persons, else all in one process). In one
process the run executes its steps one after the other and prints one line per step as it
ends (``done <step> (<s> s)``; each wave's ingest and harmonise run as one ``[ok] ingest``
line); a step's time is the wall time since the previous such line (Dagster's own overhead
included), so the stages add up to the whole run. Calibration runs inside
``fictitious_dataset`` (each replicate is sampled then calibrated), so the run's lines cannot
split it from sampling: the row gives both; ``calibration targets`` is the register's margins. Memory is the resident set
(VmRSS from /proc) of the subprocess and its descendants, polled every 0.2 s and attributed
to the step that was running (the one whose line came next), so a stage's peak is the
largest poll within its steps: a spike shorter than the interval can be missed, which is why
the whole run's peak is also given from ``wait4``'s ``ru_maxrss`` (exact, kernel-kept). Each step's
own peak, exact, is on its progress line (the jobs' step hooks read the kernel's high-water mark and
reset it): "largest step MB" is the stage's largest, what a step's process or pod needs. So is its
CPU time (its threads' and its children's processes'): a stage's CPU seconds add up its steps',
"cores busy" divides them by its seconds, and the whole run's come from ``wait4`` (every process
of the run), whose CPU seconds over the machine's cores are the least time the run can take there
without doing less work. Not
tracemalloc: it sees Python allocations only, not NumPy/Arrow buffers, and slows the run.
With ``--step-processes`` the run executes each step in a process of its own, two at a time
(``synth-assets run --step-processes``): a step's time is then approximate (two steps overlap),
the polled peak is the sum of the processes running at once, and ``ru_maxrss`` is the largest
single process (what one step needs). The steps' processes are forked from a fork server that
holds the imports: each one's RSS counts those shared pages again, so the polled proportional set
size (PSS, ``smaps_rollup``), which divides a shared page among its sharers, is what the machine needs.
The slope between two sizes is log(time ratio) / log(size ratio): 1 is linear, 0 flat.
Writes ``results.md`` beside this script (table, machine, command).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.scale.resident import tree_memory_mb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: the memory poll's interval: each poll reads every process's smaps_rollup, a walk of its page
#: tables; at 0.2 s the poll took about 250 CPU seconds of a 1.2-million-person run's 2 cores
#: (a tenth of the machine's samples; bench/README.md, "Forty-sixth pass"): --poll-seconds
POLL_S = 0.2

#: Step-key fragments of each stage, in pipeline order; other steps (checks, publication) go to "other".
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("ingest + harmonise", ("ingest", "harmon", "raw_", "validated_", "register_")),
    ("matching", ("match", "donor", "fusion")),
    ("model fit", ("training_sample", "holdout_sample", "population_model")),
    ("calibration targets", ("calibration_targets",)),
    ("sampling + calibration (1 replicate)", ("fictitious",)),
    ("validation", ("validation",)),
]
#: Lines that end a piece of work: a step (done or failed), or a whole ingest run (ingest and harmonise a wave).
EVENT_LINE = re.compile(r"done (\S+) \(|FAILED (\S+)|\[ok\] ingest (\w+ wave \d+)")
#: A step's own peak on its line, from the kernel's high-water mark (the jobs' step hooks).
STEP_PEAK = re.compile(r"peak ([\d.]+) GB[,)]")
#: A step's CPU time on its line (its threads and its children's processes: the jobs' step hooks).
STEP_CPU = re.compile(r"CPU ([\d.]+) s\)")


@dataclass
class Measured:
    seconds: float = 0.0
    peak_mb: float = 0.0
    pss_mb: float = 0.0  # polled peak of the tree's proportional set size (see tree_memory_mb)
    steps: list[str] = field(default_factory=list)
    step_peak_mb: float = 0.0  # the largest step's own peak (kernel), 0 where no line gave one
    cpu_s: float = 0.0  # CPU seconds (the steps' lines added up; the whole run's from wait4), 0: none given


def stage_of(step: str) -> str:
    for stage, fragments in STAGES:
        if any(fragment in step for fragment in fragments):
            return stage
    return "other (checks, gate, publication)"


def run_measured(command: list[str], env: dict[str, str], poll_s: float = POLL_S
                 ) -> tuple[dict[str, Measured], Measured, int]:
    """Run ``command``; per step: seconds, polled peaks MB, own peak and CPU seconds from its line;
    whole: seconds, ru_maxrss MB, polled PSS peak MB and CPU seconds (``wait4``: the process and
    every descendant it waited for, so every step's process and every child of theirs); exit code."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic(), line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    polls: list[tuple[float, float, float]] = []
    while True:
        done, status, usage = os.wait4(process.pid, os.WNOHANG)
        if done:
            break
        polls.append((time.monotonic(), *tree_memory_mb(process.pid)))
        time.sleep(poll_s)
    reader.join()
    total = time.monotonic() - started
    steps: dict[str, Measured] = {}
    previous = started
    for when, line in lines:
        match = EVENT_LINE.search(line)
        if not match:
            continue
        step = match.group(1) or match.group(2) or f"ingest {match.group(3)}"
        peak = max((mb for t, mb, _ in polls if previous <= t <= when), default=0.0)
        pss = max((mb for t, _, mb in polls if previous <= t <= when), default=0.0)
        own, cpu = STEP_PEAK.search(line), STEP_CPU.search(line)
        # the line's GB are 10^9 bytes; MB here are MiB, as /proc and ru_maxrss count
        steps[step] = Measured(when - previous, peak, pss, [step], float(own[1]) * 1e9 / 2**20 if own else 0.0,
                               float(cpu[1]) if cpu else 0.0)
        previous = when
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print("\n".join(line for _, line in lines[-30:]), file=sys.stderr)
    whole = Measured(total, usage.ru_maxrss / 1024, max((mb for _, _, mb in polls), default=0.0),
                     cpu_s=usage.ru_utime + usage.ru_stime)
    return steps, whole, code


def measure(persons: int, replicates: int, keep: Path | None,
            executor: str | None = None, settings: list[str] | None = None, poll_s: float = POLL_S,
            ) -> tuple[dict[str, Measured], dict[str, Measured]]:
    """Per stage, and per release step."""
    root = keep or Path(tempfile.mkdtemp(prefix=f"scale-{persons}-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(root / "dagster_home")}
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", root / "dagster_home" / "dagster.yaml")  # the instance `make run` uses
    cli = [sys.executable, "-m", "synth_assets.cli"]
    stages: dict[str, Measured] = {}
    _, demo, code = run_measured([*cli, "demo-data", "--output", str(root), "--persons", str(persons)], env, poll_s)
    if code != 0:
        raise SystemExit(f"demo-data failed at {persons} persons (exit {code})")
    stages["demo generation"] = Measured(demo.seconds, demo.peak_mb, cpu_s=demo.cpu_s)
    shutil.copy(ROOT / "data" / "catalog.yaml", root / "catalog.yaml")  # the demo's catalog, as in data/
    steps, whole, code = run_measured(
        [*cli, "run", "--data", str(root), "--replicates", str(replicates), "--family", "cart",
         *([f"--{executor}"] if executor else []),
         *(arg for setting in settings or [] for arg in ("--set", setting))], env, poll_s)
    if code != 0:  # a refused release still measured every stage it reached
        print(f"run refused or failed at {persons} persons (exit {code}): stages after the failure are missing")
    for step, measured in steps.items():
        stage = stages.setdefault(stage_of(step), Measured())
        stage.seconds += measured.seconds
        stage.peak_mb = max(stage.peak_mb, measured.peak_mb)
        stage.pss_mb = max(stage.pss_mb, measured.pss_mb)
        stage.step_peak_mb = max(stage.step_peak_mb, measured.step_peak_mb)
        stage.cpu_s += measured.cpu_s
        stage.steps.append(step)
    stages["whole run (after demo)"] = whole
    return stages, steps


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def slope(small: float, large: float, ratio: float) -> str:
    return f"{math.log(large / small) / math.log(ratio):.2f}" if small > 0 and large > 0 else "–"


def table(results: dict[int, dict[str, Measured]]) -> str:
    sizes = sorted(results)
    order = ["demo generation", *(s for s, _ in STAGES), "other (checks, gate, publication)", "whole run (after demo)"]
    head = ["stage", *(f"{n:,}: s" for n in sizes), *(f"{n:,}: peak MB" for n in sizes),
            *(f"{n:,}: peak PSS MB" for n in sizes),
            *(f"{n:,}: largest step MB" for n in sizes), *(f"{n:,}: CPU s (cores busy)" for n in sizes)]
    if len(sizes) > 1:
        head += [f"time slope {sizes[0]:,}→{sizes[-1]:,}", "memory slope"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for stage in order:
        cells = [results[n].get(stage) for n in sizes]
        if all(c is None for c in cells):
            continue
        row = [stage, *(f"{c.seconds:.1f}" if c else "–" for c in cells),
               *(f"{c.peak_mb:.0f}" if c else "–" for c in cells),
               *(f"{c.pss_mb:.0f}" if c and c.pss_mb else "–" for c in cells),
               *(f"{c.step_peak_mb:.0f}" if c and c.step_peak_mb else "–" for c in cells),
               *(f"{c.cpu_s:.0f} ({c.cpu_s / c.seconds:.2f})" if c and c.cpu_s and c.seconds else "–" for c in cells)]
        if len(sizes) > 1 and cells[0] and cells[-1]:
            ratio = sizes[-1] / sizes[0]
            row += [slope(cells[0].seconds, cells[-1].seconds, ratio), slope(cells[0].peak_mb, cells[-1].peak_mb, ratio)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def cpu_floor(results: dict[int, dict[str, Measured]]) -> list[str]:
    """What the whole run's CPU time says of its wall time: at each size, the least time it can take
    on this machine's cores without doing less work (every core busy throughout)."""
    cores = os.cpu_count() or 1
    lines = []
    for n in sorted(results):
        whole = results[n].get("whole run (after demo)")
        if whole and whole.cpu_s and whole.seconds:
            lines.append(f"At {n:,} persons the run (after the demo) used {whole.cpu_s:,.0f} CPU seconds in "
                         f"{whole.seconds:,.0f} s, {whole.cpu_s / whole.seconds:.2f} of {cores} cores busy on "
                         f"average: on these {cores} cores it cannot take less than {whole.cpu_s / cores:,.0f} s "
                         "without doing less work.")
    return [*lines, ""] if lines else []


def step_table(results: dict[int, dict[str, Measured]]) -> str:
    """Each release step's own peak (MiB) at each size, largest first, the rise per 100,000 persons
    between the smallest and largest size, and that line carried to 1.2 and 12 million persons."""
    sizes = sorted(results)
    largest = results[sizes[-1]]
    names = sorted((s for s, m in largest.items() if m.step_peak_mb), key=lambda s: -largest[s].step_peak_mb)
    head = ["step", *(f"{n:,}: s" for n in sizes), *(f"{n:,}: own peak MiB" for n in sizes),
            *(f"{n:,}: CPU s" for n in sizes)]
    if len(sizes) > 1:
        head += ["MiB per 100,000 persons", "1.2M, linear", "12M, linear"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [results[n].get(name) for n in sizes]
        row = [f"`{name}`", *(f"{c.seconds:.1f}" if c else "–" for c in cells),
               *(f"{c.step_peak_mb:.0f}" if c and c.step_peak_mb else "–" for c in cells),
               *(f"{c.cpu_s:.1f}" if c and c.cpu_s else "–" for c in cells)]
        if len(sizes) > 1:
            first, last = cells[0], cells[-1]
            if first and last and first.step_peak_mb and last.step_peak_mb:
                per = (last.step_peak_mb - first.step_peak_mb) / (sizes[-1] - sizes[0])
                row += [f"{per * 100_000:.0f}", *(f"{last.step_peak_mb + per * (n - sizes[-1]):.0f}"
                                                  for n in (1_200_000, 12_000_000))]
            else:
                row += ["–"] * 3
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _positive_seconds(text: str) -> float:
    seconds = float(text)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[20_000, 100_000])
    # 2: the fewest replicates the gate validates (one is refused before validation); the
    # results.md of 1 replicate, measured before that refusal, gives its own command.
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    executor = parser.add_mutually_exclusive_group()  # neither: the run's own choice, as a plain run makes it
    executor.add_argument("--step-processes", dest="executor", action="store_const", const="step-processes",
                          help="synth-assets run --step-processes")
    executor.add_argument("--in-process", dest="executor", action="store_const", const="in-process",
                          help="synth-assets run --in-process")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a run setting, passed on as `synth-assets run --set` (model.params.n_jobs=2)")
    parser.add_argument("--poll-seconds", type=_positive_seconds, default=POLL_S,
                        help="the memory poll's interval (each poll costs CPU the run then lacks)")
    args = parser.parse_args()
    results, per_step = {}, {}
    for persons in args.persons:
        print(f"{persons:,} persons ...", flush=True)
        results[persons], per_step[persons] = measure(persons, args.replicates, None, args.executor, args.set,
                                                            args.poll_seconds)
        print(table({persons: results[persons]}), flush=True)
    steps = {stage: m.steps for stage, m in results[max(results)].items() if m.steps}
    machine = (f"{cpu_model()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}, load average at the end {os.getloadavg()[0]:.1f}")
    text = "\n".join([
        "# Time and peak memory per stage",
        "",
        f"Command: `PYTHONPATH=. .venv/bin/python bench/scale/run.py --persons {' '.join(map(str, args.persons))}"
        f" --replicates {args.replicates}{f' --{args.executor}' if args.executor else ''}"
        + "".join(f" --set {setting}" for setting in args.set) + "`",
        f"Machine: {machine}.",
        "",
        table(results),
        "",
        *cpu_floor(results),
        "Each release step's own peak and CPU time (its progress line: the kernel's high-water mark of its "
        "process, and the CPU seconds of its process and its children's):",
        "",
        step_table(per_step),
        "",
        "Steps in each stage (largest size): " + "; ".join(f"{s}: {', '.join(v)}" for s, v in steps.items()),
        "",
    ])
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
