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

from synth_assets.common.cli_args import int_range, n_jobs
from synth_assets.common.table_files import EXIT_USAGE, InputError, read_table
from synth_assets.validation.evaluate import evaluate
from synth_assets.validation.report import write_report
from synth_assets.validation.thresholds import Thresholds

EXIT_PASSED, EXIT_FAILED = 0, 1


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
    parser.add_argument("--quasi-identifiers", type=names, default=[], help="comma-separated columns an attacker may know")
    parser.add_argument("--sensitive", type=names, default=[], help="comma-separated columns to protect from inference")
    parser.add_argument("--thresholds", type=Path, help="YAML file overriding default thresholds")
    parser.add_argument("--output", required=True, type=Path, help="folder for metrics.json and report.html")
    parser.add_argument("--seed", type=int_range(0), default=0)
    parser.add_argument("--jobs", type=n_jobs, default=-1,
                        help="threads for the propensity models and distance searches (-1: every core; same figures)")
    return parser


def names(text: str) -> list[str]:
    """A comma-separated list from the command line, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]


def require_same_columns(
    table: pd.DataFrame, path: Path, role: str, reference: pd.DataFrame, reference_path: Path
) -> None:
    """An :class:`InputError` naming both files unless ``table`` has ``reference``'s columns."""
    missing = [c for c in reference.columns if c not in table.columns]
    extra = [c for c in table.columns if c not in reference.columns]
    if missing or extra:
        raise InputError(
            f"{role} file {path}: columns differ from {reference_path} "
            f"(missing: {', '.join(map(str, missing)) or '-'}; extra: {', '.join(map(str, extra)) or '-'})"
        )


def require_named_columns(columns: list[str], table: pd.DataFrame, path: Path) -> None:
    """An :class:`InputError` for columns named on the command line that ``table`` lacks."""
    unknown = [c for c in columns if c not in table.columns]
    if unknown:
        raise InputError(f"column(s) {', '.join(unknown)} named on the command line are not in {path}")


def _load(args: argparse.Namespace):
    real = read_table(args.real, "real")
    synthetic = read_table(args.synthetic, "synthetic")
    holdout = read_table(args.holdout, "holdout") if args.holdout else None
    require_same_columns(synthetic, args.synthetic, "synthetic", real, args.real)
    if holdout is not None:
        require_same_columns(holdout, args.holdout, "holdout", real, args.real)
    require_named_columns([*args.quasi_identifiers, *args.sensitive], real, args.real)
    try:
        thresholds = Thresholds.from_yaml(args.thresholds) if args.thresholds else Thresholds.default()
    except (OSError, ValueError) as error:
        raise InputError(f"thresholds file {args.thresholds}: {error}") from error
    return real, synthetic, holdout, thresholds


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the report, and return the exit status."""
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
            n_jobs=args.jobs,
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
