"""``synth-assets evaluate``: validate a synthetic file like a test runner.

Exit status: 0 all checks passed, 1 a threshold failed (the report is still written),
2 the inputs are unusable (unreadable file, differing columns, unknown column names,
bad thresholds file) — with a message naming the file or column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class InputError(Exception):
    """An input the command cannot use; the message names the file or column."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command (``synth_assets.cli`` then calls ``run``)."""
    parser = subparsers.add_parser(
        "evaluate",
        help="validate synthetic data against the real data (utility, privacy, thresholds)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--real", required=True, type=Path, help="training data (CSV or Parquet)")
    parser.add_argument("--synthetic", required=True, type=Path, help="synthetic data (CSV or Parquet)")
    parser.add_argument("--holdout", type=Path, help="real records not used for training: enables baseline and attacks")
    parser.add_argument("--quasi-identifiers", type=_names, default=[], help="comma-separated columns an attacker may know")
    parser.add_argument("--sensitive", type=_names, default=[], help="comma-separated columns to protect from inference")
    parser.add_argument("--thresholds", type=Path, help="YAML file overriding default thresholds")
    parser.add_argument("--output", required=True, type=Path, help="folder for metrics.json and report.html")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def read_table(path: Path, role: str) -> pd.DataFrame:
    """CSV or Parquet by extension; any failure becomes an ``InputError`` naming the file."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet", ".pq"}:
        raise InputError(f"{role} file {path}: unsupported extension {suffix or '(none)'} (use .csv or .parquet)")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except Exception as error:  # parsers raise many types; all mean "unreadable"
        raise InputError(f"{role} file {path} cannot be read: {error}") from error


def _load(args: argparse.Namespace):
    from synth_assets.validation.thresholds import Thresholds

    real = read_table(args.real, "real")
    synthetic = read_table(args.synthetic, "synthetic")
    holdout = read_table(args.holdout, "holdout") if args.holdout else None
    for role, table, path in (("synthetic", synthetic, args.synthetic), ("holdout", holdout, args.holdout)):
        if table is None:
            continue
        missing = [c for c in real.columns if c not in table.columns]
        extra = [c for c in table.columns if c not in real.columns]
        if missing or extra:
            raise InputError(
                f"{role} file {path}: columns differ from {args.real} "
                f"(missing: {', '.join(map(str, missing)) or '-'}; extra: {', '.join(map(str, extra)) or '-'})"
            )
    unknown = [c for c in [*args.quasi_identifiers, *args.sensitive] if c not in real.columns]
    if unknown:
        raise InputError(f"column(s) {', '.join(unknown)} named on the command line are not in {args.real}")
    try:
        thresholds = Thresholds.from_yaml(args.thresholds) if args.thresholds else Thresholds.default()
    except (OSError, ValueError) as error:
        raise InputError(f"thresholds file {args.thresholds}: {error}") from error
    return real, synthetic, holdout, thresholds


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the report, and return the exit status."""
    from synth_assets.validation.evaluate import evaluate
    from synth_assets.validation.report import write_report

    try:
        real, synthetic, holdout, thresholds = _load(args)
        result = evaluate(
            real,
            synthetic,
            holdout=holdout,
            quasi_identifiers=args.quasi_identifiers or None,
            sensitive=args.sensitive or None,
            thresholds=thresholds,
            seed=args.seed,
        )
    except (InputError, ValueError) as error:  # ColumnMismatchError is a ValueError
        print(f"synth-assets evaluate: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    paths = write_report(result, args.output)
    verdict = "PASSED" if result.passed else "FAILED"
    print(f"{verdict}: {sum(c.passed for c in result.checks)}/{len(result.checks)} checks; report {paths['report']}")
    for message in result.failed:
        print(f"  {message}")
    return EXIT_PASSED if result.passed else EXIT_FAILED
