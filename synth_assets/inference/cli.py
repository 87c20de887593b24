"""``synth-assets analyse``: a model on a release's replicates, combined, beside the original.

Fits the model (``--model "y ~ a + log1p(b)"``, OLS or logit) on every replicate of the
release and combines with the fully synthetic rule; prints, per term, one replicate's
estimate with its naive standard error, the combined estimate with its augmented standard
error, degrees of freedom and interval, and with ``--original`` (real data, or the demo's
truth) the original estimate and whether the interval covers it. Markdown on stdout;
``--csv`` also writes the table.

Exit status: 0 the table was printed, 2 the inputs are unusable (no release there, a
malformed model, a name that is no column, an unreadable original file), with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synth_assets.common.cli_args import fail, float_range, positive_float, positive_int
from synth_assets.common.table_files import EXIT_USAGE, InputError
from synth_assets.inference.compare import KINDS, ModelError, compare_fits, comparison_markdown, read_original
from synth_assets.inference.glm import COVARIANCES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``analyse`` sub-command (``synth_assets.cli`` then calls ``run``)."""
    parser = subparsers.add_parser(
        "analyse",
        help="fit a model on every replicate of a release and combine (original, one replicate, combined)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--release", type=Path, default=Path("data/public"),
                        help="a release folder, its LATEST file or the public folder (default: data/public, its LATEST)")
    parser.add_argument("--model", required=True, help="formula: \"outcome ~ predictor + log1p(column) + ...\"")
    parser.add_argument("--kind", choices=KINDS, default="ols", help="ols (default) or logit (0/1 or true/false outcome)")
    parser.add_argument("--where", default=None, help="pandas query selecting the records, e.g. \"relation == 'head'\"")
    parser.add_argument("--original", type=Path, default=None,
                        help="original data (Parquet or CSV: real data you hold, or the demo's truth) to compare with")
    parser.add_argument("--replicate", type=positive_int, default=1, help="the replicate shown alone (default: 1)")
    parser.add_argument("--level", type=float_range(0, 0.999, low_open=True), default=0.95,
                        help="interval level (default: 0.95)")
    parser.add_argument("--n-real", type=positive_float, default=None,
                        help="real size behind the estimate (default: from the data card, the smallest source)")
    parser.add_argument("--cov", choices=COVARIANCES, default="model", help="within-replicate variance (default: model)")
    parser.add_argument("--csv", type=Path, default=None, help="also write the table to this CSV file")
    return parser


def run(args: argparse.Namespace) -> int:
    from synth_assets.inference.analysis import load_release

    try:
        release = load_release(args.release)
    except (FileNotFoundError, NotADirectoryError, OSError) as error:
        return fail(f"no release at {args.release}: {error}", EXIT_USAGE)
    try:
        original = read_original(args.original) if args.original else None
        table = compare_fits(release, args.kind, args.model, original=original, where=args.where,
                             level=args.level, replicate=args.replicate, n_real=args.n_real, cov=args.cov)
    except (InputError, ModelError) as error:
        return fail(str(error), EXIT_USAGE)
    except Exception as error:  # pandas' own errors on an expression (a wrong type, a bad query)
        return fail(f"cannot fit {args.model!r}{f' where {args.where!r}' if args.where else ''}: "
                    f"{type(error).__name__}: {error}", EXIT_USAGE)
    print(f"release: {release.path}")
    print(comparison_markdown(table))
    if args.csv:
        table.to_csv(args.csv)
        print(f"\ntable: {args.csv}")
    return 0
