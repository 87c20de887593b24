"""``demo-data`` subcommand: generate the demo city into a data folder.

Wired into the main CLI with ``add_parser(subparsers)``; the parser's
``func`` default is :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from synth_assets.common.cli_args import int_range

from .generate import MAX_PERSONS, MIN_PERSONS, generate_demo, survey_calendar


def _waves(text: str) -> tuple[int, ...]:
    try:
        waves = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"waves must be comma-separated years, e.g. 2022,2023,2024 (got {text!r})") from None
    if not waves:
        raise argparse.ArgumentTypeError("at least one wave is required")
    return waves


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``demo-data`` subcommand."""
    parser = subparsers.add_parser(
        "demo-data",
        help="generate the demo population, its register and surveys, and the truth",
        description=(
            "Generate the fictional demo city: register and survey files under OUTPUT/incoming "
            "(described by data/catalog.yaml) and the complete truth under OUTPUT/truth."
        ),
    )
    parser.add_argument("--output", type=Path, default=Path("data"), metavar="DIR", help="data folder (default: data)")
    parser.add_argument(
        "--persons",
        type=int_range(MIN_PERSONS, MAX_PERSONS),
        default=50_000,
        metavar="N",
        help=f"population size, {MIN_PERSONS:,} to {MAX_PERSONS:,} (default: 50,000)",
    )
    parser.add_argument(
        "--waves", type=_waves, default=(2022, 2023, 2024), metavar="Y,Y,...", help="waves (default: 2022,2023,2024)"
    )
    parser.add_argument("--seed", type=int_range(0), default=20240101, metavar="S", help="random seed (default: 20240101)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Generate the demo data and print what was written; returns the exit code."""
    started = time.perf_counter()
    try:
        manifest = generate_demo(args.output, persons=args.persons, waves=tuple(args.waves), seed=args.seed)
    except ValueError as exc:
        print(f"demo-data: {exc}", file=sys.stderr)
        return 2
    root = manifest.output_dir
    print(
        f"Demo city: {manifest.persons:,} persons in {manifest.households:,} households, "
        f"waves {', '.join(map(str, manifest.waves))}, seed {manifest.seed}"
    )
    print(f"Written under {root}:")
    for source in survey_calendar(manifest.waves):
        for f in manifest.incoming(source):
            print(f"  {f.relative_to(root):<40} {f.rows:>10,} rows  ({f.fmt})")
    truth = manifest.truth()
    print(f"  truth/: population_<wave>.parquet, samples/<source>_<wave>.parquet ({len(truth)} files), manifest.json")
    print("  (truth/ is for evaluation only; the pipeline reads incoming/ through data/catalog.yaml)")
    print(f"Done in {time.perf_counter() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience entry point
    parser = argparse.ArgumentParser(prog="synth-assets")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
