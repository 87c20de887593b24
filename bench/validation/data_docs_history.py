"""A validation with Data Docs in a project that keeps its history: the index built from each result's
summary (``SummarisedSiteIndexBuilder``) against Great Expectations' own index builder, which loads
every stored result at every validation.

    PYTHONPATH=. .venv/bin/python bench/validation/data_docs_history.py [--history 100 1000] [--validations 5]

For each history size, one project is made: a real validation of a 3,000-row table against a
43-expectation suite, stored again under that many runs (three suite names in turn) with their pages
rendered, as a deployment holds after some releases (about forty results a release). Each way then
runs ``--validations`` more validations (``run_suite`` with ``docs``) on its own copy of the project,
in a fresh process of its own, the two ways one after the other for each size. Prints the median
seconds of a validation each way, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = 10
ROWS = 3000


def _spec(name: str) -> dict:
    columns = [f"x{i}" for i in range(COLUMNS)]
    return {"name": name, "required_columns": ["person_id", *columns], "not_null": ["person_id", *columns],
            "types": {c: "integer" for c in columns}, "ranges": {c: {"min": 0, "max": 100} for c in columns},
            "unique": ["person_id"]}


def _frame():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame({"person_id": np.arange(ROWS), **{f"x{i}": rng.integers(0, 100, ROWS) for i in range(COLUMNS)}})


def make_project(root: Path, history: int) -> None:
    """A project holding ``history`` stored validation results of three suites, with their pages."""
    from great_expectations.core.run_identifier import RunIdentifier

    from synth_assets.common import expectations

    frame = _frame()
    for suite in range(3):
        expectations.run_suite(frame, expectations.table_suite(_spec(f"persons_{suite}")),
                               docs=expectations.DataDocs(root, run_name="first"))
    context = expectations._context(expectations.DataDocs(root))
    store = context.validation_results_store
    made = {key.expectation_suite_identifier.name: store.get(key) for key in store.list_keys()}
    keys = []
    for i in range(history - 3):
        name = f"persons_{i % 3}"
        result = made[name]
        result.meta["run_id"] = RunIdentifier(run_name=f"history {i}", run_time=f"2026-01-01T00:{i // 60 % 60:02d}:"
                                                                                  f"{i % 60:02d}.{i:06d}+00:00")
        key = expectations._result_key(name, result)
        store.store_validation_results(suite_validation_result=result, suite_validation_result_identifier=key,
                                       expectation_suite_identifier=key.expectation_suite_identifier)
        keys.append(key)
    if keys:
        context.build_data_docs(resource_identifiers=keys, build_index=False)


def validations(root: Path, count: int, summarised: bool) -> list[float]:
    """Seconds of each of ``count`` ``run_suite`` calls with Data Docs on the project at ``root``."""
    from synth_assets.common import expectations

    if not summarised:  # GE's own index builder, as a project GE makes names it
        expectations.INDEX_BUILDER = {"module_name": "great_expectations.render.renderer.site_builder",
                                      "class_name": "DefaultSiteIndexBuilder"}
    frame = _frame()
    seconds = []
    for i in range(count):
        started = time.perf_counter()
        report = expectations.run_suite(frame, expectations.table_suite(_spec(f"persons_{i % 3}")),
                                        docs=expectations.DataDocs(root, run_name=f"new run {i}"))
        seconds.append(time.perf_counter() - started)
        assert report.success
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--validations", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.make:
            make_project(Path(args.child), args.history[0])
            return
        way, root = args.child.split(":", 1)
        print(json.dumps(validations(Path(root), args.validations, way == "summaries")))
        return
    rows = []
    for history in args.history:
        with tempfile.TemporaryDirectory() as work:
            made = Path(work) / "made"
            subprocess.run([sys.executable, __file__, "--history", str(history), "--child", str(made), "--make"],
                           check=True)
            found = {}
            for way in ("own", "summaries"):
                copy = Path(work) / way
                shutil.copytree(made, copy)
                out = subprocess.run([sys.executable, __file__, "--validations", str(args.validations),
                                      "--child", f"{way}:{copy}"], check=True, capture_output=True, text=True).stdout
                found[way] = statistics.median(json.loads(out.strip().splitlines()[-1]))
            rows.append((history, found["own"], found["summaries"]))
    print(f"{args.validations} validations each way, {ROWS:,} rows, {COLUMNS + 1} columns, each way in a fresh process\n")
    print("| results stored before | GE's own index builder: s a validation | index from summaries: s a validation "
          "| ratio |\n|---|---|---|---|")
    for history, own, summaries in rows:
        print(f"| {history:,} | {own:.2f} | {summaries:.2f} | {own / summaries:.2f} |")


if __name__ == "__main__":
    main()
