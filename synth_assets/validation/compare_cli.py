"""``synth-assets compare``: fit several model families on one table and compare them.

Each family is fitted on --train, samples as many rows (or --rows) and is scored against
the training data and --holdout exactly as ``synth-assets evaluate`` scores a synthetic
file, with the default thresholds. The table is printed and written, with a plot, to
comparison.csv and comparison.html in --output. A family whose fit fails gets its error
in its row; the others are still compared.

Exit status: 0 at least one family passed every threshold, 1 none did (the comparison is
still written), 2 the inputs are unusable (unknown family, unreadable or empty file,
differing columns, unknown column names) — with a message naming the family, file or
column, before anything is fitted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from synth_assets.common.cli_args import choice_list, int_range, positive_float, positive_int
from synth_assets.common.html import format_value
from synth_assets.common.table_files import EXIT_USAGE, InputError, read_table
from synth_assets.synthesis.families import FAMILIES
from synth_assets.validation.cli import EXIT_FAILED, EXIT_PASSED, names, require_named_columns, require_same_columns
from synth_assets.validation.comparison import check_families, compare_models


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``compare`` sub-command (``synth_assets.cli`` then calls ``run``)."""
    parser = subparsers.add_parser(
        "compare",
        help="fit several model families on one table and compare their utility, privacy and time",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train", required=True, type=Path, help="training data (CSV or Parquet)")
    parser.add_argument("--holdout", required=True, type=Path, help="real records not used for training")
    parser.add_argument("--models", required=True, type=choice_list(FAMILIES), help="comma-separated families: cart,copula,tvae,ctgan")
    parser.add_argument("--output", required=True, type=Path, help="folder for comparison.csv and comparison.html")
    parser.add_argument("--seed", type=int_range(0), default=0)
    parser.add_argument("--max-seconds", type=positive_float, help="training time budget per family in seconds (ctgan, tvae)")
    parser.add_argument("--epochs", type=positive_int, help="training epochs (ctgan, tvae)")
    parser.add_argument("--rows", type=positive_int, help="rows sampled per family (default: as many as --train)")
    parser.add_argument("--quasi-identifiers", type=names, default=[], help="comma-separated columns an attacker may know")
    parser.add_argument("--sensitive", type=names, default=[], help="comma-separated columns to protect from inference")
    return parser


def _load(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = read_table(args.train, "training", require_rows=True)
    holdout = read_table(args.holdout, "holdout", require_rows=True)
    require_same_columns(holdout, args.holdout, "holdout", train, args.train)
    require_named_columns([*args.quasi_identifiers, *args.sensitive], train, args.train)
    return train, holdout


def _fit_params(args: argparse.Namespace) -> dict:
    """The neural families' training budget; CART ignores it."""
    params = {"epochs": args.epochs, "max_seconds": args.max_seconds}
    return {name: value for name, value in params.items() if value is not None}


def run(args: argparse.Namespace) -> int:
    """Compare, write comparison.csv and comparison.html, print the table; return the exit status."""
    try:
        families = check_families(args.models)
        train, holdout = _load(args)
    except (InputError, ValueError) as error:
        print(f"synth-assets compare: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    comparison = compare_models(
        train, holdout, families, fit_params=_fit_params(args), n_rows=args.rows, seed=args.seed,
        quasi_identifiers=args.quasi_identifiers, sensitive=args.sensitive, progress=print,
    )
    paths = comparison.write(args.output)
    print(comparison.table.map(format_value).to_string(index=False))
    passing = comparison.passing_families
    print(f"passing every threshold: {', '.join(passing) or 'none'}")
    print(f"comparison: {paths['comparison_csv']}\n            {paths['comparison_html']}")
    return EXIT_PASSED if passing else EXIT_FAILED
