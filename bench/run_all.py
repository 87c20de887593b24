"""Run every benchmark of the project, one after another (``make bench``).

Each writes its own ``results.md`` beside its script; ``bench/README.md`` summarises them.
Benchmarks that need ``../shared/data`` say so and skip that part when it is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# release/truth.py reads the release of the last `make run` under data/ and skips without one.
SCRIPTS = [
    "matching/run.py",
    "synthesis/run.py",
    "validation/run.py",
    "validation/gate_stability.py",
    "release/truth.py",
]


def main() -> int:
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    failed = []
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        if subprocess.call([sys.executable, str(BENCH / script), *sys.argv[1:]], env=env, cwd=BENCH.parent):
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
