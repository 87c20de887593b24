"""``synth-assets fuse``: statistical matching from the command line.

The main CLI calls :func:`add_parser` to register the subcommand and
:func:`run` to execute it.  Files are CSV or Parquet, chosen by extension, and
read and written through :mod:`synth_assets.common.table_files`: the output appears in one
atomic rename, so a crash never leaves a half-written file that a later
pipeline step would take for a result.  Input errors print one line naming the
file and the column and return exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from synth_assets.common.cli_args import int_range
from synth_assets.common.table_files import EXIT_USAGE, InputError, read_table, table_format, write_table
from synth_assets.matching.api import fuse
from synth_assets.matching.methods import METHODS
from synth_assets.matching.problem import DISTANCES, describe_columns


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``fuse`` on the main CLI's subparsers; sets ``func=run`` as the handler."""
    parser = subparsers.add_parser(
        "fuse",
        help="impute donor-survey variables into a recipient file (statistical matching)",
        description="Impute the --impute columns of the donor file into the recipient file through "
        "the common --on columns, and write the recipient with the imputed columns.",
    )
    parser.add_argument("--recipient", required=True, type=Path, help="recipient file (CSV or Parquet)")
    parser.add_argument("--donor", required=True, type=Path, help="donor file (CSV or Parquet)")
    parser.add_argument("--on", required=True, help="common variables X, comma-separated")
    parser.add_argument("--impute", required=True, help="donor variables Z to impute, comma-separated")
    parser.add_argument("--recipient-weight", help="recipient weight column")
    parser.add_argument("--donor-weight", help="donor weight column")
    parser.add_argument("--donation-classes", help="donation class columns, comma-separated")
    parser.add_argument(
        "--method", choices=sorted(METHODS), help="default: aux_hotdeck with --auxiliary, else nnd_hotdeck"
    )
    parser.add_argument("--distance", choices=DISTANCES, default="gower")
    parser.add_argument("--auxiliary", type=Path, help="auxiliary file observing Y and Z together")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="method option (JSON value), repeatable"
    )
    parser.add_argument("--seed", type=int_range(0), default=0)
    parser.add_argument("--output", required=True, type=Path, help="output file (CSV or Parquet)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Execute ``fuse``; returns the exit code (0, or 2 for bad input)."""
    try:
        table_format(args.output, "output")
        recipient = read_table(args.recipient, "recipient")
        donor = read_table(args.donor, "donor")
        auxiliary = read_table(args.auxiliary, "auxiliary") if args.auxiliary else None
        on, impute, classes = _names(args.on), _names(args.impute), _names(args.donation_classes)
        _require(recipient, args.recipient, "recipient", on + classes + _names(args.recipient_weight))
        _require(donor, args.donor, "donor", on + impute + classes + _names(args.donor_weight))
        result = fuse(
            recipient,
            donor,
            on=on,
            impute=impute,
            recipient_weight=args.recipient_weight,
            donor_weight=args.donor_weight,
            donation_classes=classes,
            method=args.method or ("aux_hotdeck" if auxiliary is not None else "nnd_hotdeck"),
            distance=args.distance,
            seed=args.seed,
            auxiliary=auxiliary,
            **_options(args.option),
        )
        write_table(result.data, args.output)
    except (ValueError, OSError) as exc:
        print(f"synth-assets fuse: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(result.diagnostics.summary())
    print(f"wrote {len(result.data)} rows to {args.output}")
    return 0


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _require(frame: pd.DataFrame, path: Path, role: str, columns: list[str]) -> None:
    for col in columns:
        if col not in frame.columns:
            raise InputError(f"{role} file {path} has no column {col!r} (columns: {describe_columns(frame)})")


def _options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values parsed as JSON when they are JSON (``k=5``), else kept as text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
