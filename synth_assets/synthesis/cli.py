"""``synth-assets synthesize``: fit a synthesiser on a table and write synthetic rows.

The main CLI calls :func:`add_parser` to register the subcommand and :func:`run` to execute
it. Files are CSV or Parquet, chosen by extension and read through :mod:`synth_assets.common.table_files`.
Output is written chunk by chunk to a temporary file beside the target and moved into place
(:func:`synth_assets.common.files.atomic_path`), so a crash never leaves a half-written file. Unreadable input prints one
line naming the file and returns 2.
Parquet keeps dtypes and category sets exactly; CSV output has the input's columns and,
read back the way the input was read, the same dtypes.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from synth_assets.common.cli_args import int_range, positive_float, positive_int
from synth_assets.common.files import atomic_path
from synth_assets.common.table_files import EXIT_USAGE, InputError, read_table, table_format
from synth_assets.synthesis import base
from synth_assets.synthesis.base import (
    LOGGER,
    MIN_TRAINING_ROWS,
    Synthesizer,
    TooFewRowsError,
    training_row_minimum,
)
from synth_assets.synthesis.factory import BUDGETED_FAMILIES, GAN_ONLY, build_population_synthesizer
from synth_assets.synthesis.families import FAMILIES
from synth_assets.synthesis.transform import SchemaError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``synthesize`` on the main CLI's subparsers; sets ``func=run`` as the handler."""
    parser = subparsers.add_parser(
        "synthesize",
        help="fit a synthesiser on a table and write synthetic rows",
        description="Fit a synthesiser on --input and write --rows synthetic rows with the "
        "input's columns, dtypes and category sets to --output.",
    )
    parser.add_argument("--input", required=True, type=Path, help="training table (CSV or Parquet)")
    parser.add_argument("--output", required=True, type=Path, help="synthetic table (CSV or Parquet)")
    parser.add_argument("--model", choices=FAMILIES, default="cart", help="synthesiser family (default: cart)")
    parser.add_argument("--rows", type=positive_int, help="rows to generate (default: as many as the input)")
    parser.add_argument("--seed", type=int_range(0), default=0)
    parser.add_argument("--epochs", type=positive_int, help="training epochs (neural, gan, ctgan, tvae)")
    parser.add_argument("--max-seconds", type=positive_float, help="training time budget in seconds (neural, gan, ctgan, tvae)")
    parser.add_argument("--household-id", help="household id column: keep households coherent")
    parser.add_argument("--chunk-size", type=positive_int, default=100_000, help="rows generated per chunk")
    parser.add_argument("--save-model", type=Path, help="also write the fitted model to this file")
    parser.add_argument("--min-rows", type=positive_int, default=None,
                        help=f"fewest training rows accepted (default: {MIN_TRAINING_ROWS})")
    parser.set_defaults(func=run)
    return parser


def write_csv(synth: Synthesizer, n: int, path: Path, *, seed: int, chunk_size: int) -> None:
    """Stream synthetic chunks into a CSV file, atomically."""
    with atomic_path(path) as tmp:
        for i, chunk in enumerate(synth.iter_chunks(n, seed=seed, chunk_size=chunk_size)):
            chunk.to_csv(tmp, mode="w" if i == 0 else "a", header=i == 0, index=False)
        if n == 0:
            synth.fitted_schema.empty_frame().to_csv(tmp, index=False)


def _model_params(args: argparse.Namespace) -> dict:
    params = {"epochs": args.epochs, "max_seconds": args.max_seconds}
    params = {k: v for k, v in params.items() if v is not None}
    if params and args.model not in BUDGETED_FAMILIES:
        print(f"note: {', '.join(sorted(params))} apply to neural/gan/ctgan/tvae only; ignored for {args.model}")
        params = {k: v for k, v in params.items() if k not in GAN_ONLY}
    return params


def run(args: argparse.Namespace) -> int:
    """Execute ``synthesize``; returns the exit code (0, or 2 for bad input)."""
    try:
        if args.min_rows is not None and args.min_rows < 1:
            raise InputError(f"--min-rows must be at least 1, not {args.min_rows}")
        output_format = table_format(args.output, "output")
        data = read_table(args.input, "input", require_rows=True)
        minimum = base.MIN_TRAINING_ROWS if args.min_rows is None else args.min_rows
        if len(data) < minimum:
            # Named here with the file; the library refuses the same table without knowing its name.
            raise InputError(
                f"input file {args.input} has {len(data)} rows, fewer than the {minimum} needed to "
                "synthesise without reproducing its records (--min-rows to change)"
            )
        if args.household_id and args.household_id not in data.columns:
            raise InputError(f"{args.input}: household id column {args.household_id!r} not found")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    handler = None
    if not LOGGER.hasHandlers():  # called without the main CLI's logging set-up: still show progress
        handler = logging.StreamHandler(sys.stderr)
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
    try:
        synth = build_population_synthesizer(
            args.model, household_id=args.household_id, seed=args.seed, **_model_params(args)
        )
        print(f"fitting {args.model} on {len(data):,} rows x {data.shape[1]} columns of {args.input}")
        started = time.perf_counter()
        try:
            with training_row_minimum(minimum):
                synth.fit(data)
        except (SchemaError, TooFewRowsError) as exc:
            print(f"error: cannot fit on {args.input}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"fitted in {time.perf_counter() - started:.1f} s")
        if args.save_model:
            synth.save(args.save_model)
            print(f"model saved to {args.save_model}")
        rows = len(data) if args.rows is None else args.rows
        if output_format == "csv":
            write_csv(synth, rows, args.output, seed=args.seed, chunk_size=args.chunk_size)
        else:
            synth.sample_to_parquet(rows, args.output, seed=args.seed, chunk_size=args.chunk_size)
        print(f"wrote {rows:,} synthetic rows to {args.output}")
        return 0
    finally:
        if handler is not None:
            LOGGER.removeHandler(handler)
            LOGGER.setLevel(logging.NOTSET)
