"""One call that validates a synthetic file: utility, privacy, thresholds, figures.

``evaluate`` computes the metrics of ``utility`` and ``privacy`` for a synthetic table
against the real (training) table, the same utility metrics for the holdout against
the training table (the baseline: what an independent real sample achieves), and
applies ``Thresholds``. Privacy attacks need the holdout as their control; without
one they are skipped and say so.

With ``max_rows``, every metric that is a statistic of a sample (k-marginal scores,
propensity, per-variable distances, associations, rules, regressions, DCR, membership
inference, the anonymeter attacks) runs on a seeded sample of at most ``max_rows`` rows per
table, so its cost is flat in the population size; exact copies and replicated uniques stay
exhaustive (a copy is one record: a sample would miss it), as 64-bit row-hash joins over
every record. The sampling error of each sampled headline figure is the standard deviation
of that figure over the main sample and ``error_subsamples`` further seeded samples drawn
without replacement from the full tables. Not a bootstrap of the sample: a bootstrap repeats
rows, which puts synthetic records at distance 0 from their own duplicates and inflates the
k-marginal tables' cells; fresh subsamples measure directly what the figure would read on
another sample of the same size.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from synth_assets.common.columns import is_numeric
from synth_assets.common.frames import ParquetTable
from synth_assets.common.parallel import forked_imap, resolved_jobs
from synth_assets.validation import plots
from synth_assets.validation.preparation import (
    ColumnMismatchError,
    Table,
    align_columns,
    check_label_overlap,
    sample_rows,
    seeded_sample,
    table_empty,
    table_rows,
)
from synth_assets.validation.privacy.copies import exact_copy_rate, replicated_uniques
from synth_assets.validation.privacy.distance import dcr, membership_inference_auc
from synth_assets.validation.privacy.inference import attribute_inference
from synth_assets.validation.privacy.linkability import linkability_risk
from synth_assets.validation.privacy.singling_out import singling_out_risk
from synth_assets.validation.thresholds import CheckOutcome, Thresholds
from synth_assets.validation.utility.association import association_differences, pca_alignment
from synth_assets.validation.utility.kmarginal import kmarginal_scores
from synth_assets.validation.utility.propensity import pmse
from synth_assets.validation.utility.regression import RegressionSpec, compare_regressions
from synth_assets.validation.utility.univariate import (
    compare_columns,
    plausibility,
    summarise_columns,
    worst_variable,
)

T = TypeVar("T")

_LOG = logging.getLogger(__name__)

#: Propensity models are the costly utility metrics; beyond this many rows per table
#: they run on a random sample (their sampling error is negligible by then).
PROPENSITY_MAX_ROWS = 50_000

#: Further seeded samples that give the sampling error of the figures computed on a sample.
ERROR_SUBSAMPLES = 2


@dataclass
class ValidationResult:
    """Everything ``evaluate`` found. ``failed`` holds one message per failed check."""

    metrics: dict[str, float | None]
    baseline: dict[str, float] | None
    checks: list[CheckOutcome]
    skipped: list[str]
    figures: dict[str, bytes] = field(repr=False)
    tables: dict[str, pd.DataFrame] = field(repr=False)
    details: dict[str, Any] = field(repr=False)
    #: Standard deviation of each sampled figure over seeded samples (empty when nothing was sampled).
    sampling_error: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.message for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content (figures by name only; NaN and infinities become null)."""
        return _jsonable(
            {
                "passed": self.passed,
                "failed": self.failed,
                "checks": [{**vars(c), "message": c.message} for c in self.checks],
                "skipped": self.skipped,
                "metrics": self.metrics,
                "sampling_error": self.sampling_error,
                "baseline": self.baseline,
                "tables": {name: table.to_dict(orient="records") for name, table in self.tables.items()},
                "details": self.details,
                "figures": sorted(self.figures),
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


class _Timer:
    """Records the wall time of each metric, for the bench and the report."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress

    def run(self, name: str, function: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return function()
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)
            if self.progress is not None:
                self.progress(f"metrics: {name} ({self.seconds[name]:.1f} s)")


def utility_metrics(
    real: pd.DataFrame, other: pd.DataFrame, seed: int, timer: _Timer, prefix: str = "",
    n_jobs: int | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Headline utility metrics of ``other`` against ``real`` and the objects behind them
    (``n_jobs``: threads for the propensity models)."""
    rng = np.random.default_rng(seed)
    metrics: dict[str, float] = {}
    ks = [k for k in (1, 2, 3) if k <= real.shape[1]]
    k = timer.run(f"{prefix}kmarginal", lambda: kmarginal_scores(real, other, ks, seed=seed))
    metrics.update({f"kmarginal_{i}": v for i, v in k.items()})
    real_p, other_p = sample_rows(real, PROPENSITY_MAX_ROWS, rng), sample_rows(other, PROPENSITY_MAX_ROWS, rng)
    p = timer.run(f"{prefix}propensity", lambda: pmse(real_p, other_p, "cart", seed=seed, n_jobs=n_jobs))
    metrics.update({"pmse": p["pmse"], "pmse_null": p["pmse_null"], "s_pmse": p["s_pmse"]})
    metrics["propensity_auc"] = p["propensity_auc"]
    columns = timer.run(f"{prefix}columns", lambda: compare_columns(real, other))
    metrics.update(summarise_columns(columns))
    association = timer.run(f"{prefix}association", lambda: association_differences(real, other))
    metrics["correlation_diff"] = association.correlation_diff
    metrics["cramers_v_diff"] = association.cramers_v_diff
    metrics.update(timer.run(f"{prefix}pca", lambda: pca_alignment(real, other)))
    return metrics, {"columns": columns, "association": association}


def propensity_ratio(real: pd.DataFrame, other: pd.DataFrame, seed: int, n_jobs: int | None = None) -> float:
    """S_pMSE of ``other`` against ``real``, on the same row samples as :func:`utility_metrics` draws."""
    rng = np.random.default_rng(seed)
    real_p, other_p = sample_rows(real, PROPENSITY_MAX_ROWS, rng), sample_rows(other, PROPENSITY_MAX_ROWS, rng)
    return float(pmse(real_p, other_p, "cart", seed=seed, with_auc=False, n_jobs=n_jobs)["s_pmse"])


def _check_columns(names: Sequence[str] | None, table: pd.DataFrame, role: str) -> list[str]:
    names = list(names or [])
    unknown = [n for n in names if n not in table.columns]
    if unknown:
        raise ValueError(f"{role} not in the data: {', '.join(unknown)}")
    return names


def evaluate(
    real: Table,
    synthetic: Table,
    *,
    holdout: Table | None = None,
    quasi_identifiers: Sequence[str] | None = None,
    sensitive: Sequence[str] | None = None,
    rules: Sequence[str] | None = None,
    regressions: Sequence[RegressionSpec] | None = None,
    replicates: Sequence[pd.DataFrame] | None = None,
    replicate_reals: Sequence[Table] | None = None,
    thresholds: Thresholds | None = None,
    seed: int = 0,
    figures: bool = True,
    progress: Callable[[str], None] | None = None,
    max_rows: int | None = None,
    error_subsamples: int = ERROR_SUBSAMPLES,
    n_jobs: int | None = None,
    processes: int | None = None,
) -> ValidationResult:
    """Validate ``synthetic`` against ``real`` (the data the generator was trained on).

    ``holdout``: real records the generator did not see; enables the baseline, DCR,
    membership inference and the anonymeter attacks. ``quasi_identifiers``: what an
    attacker may know (replicated uniques; inference attack, with ``sensitive``).
    ``regressions`` are fitted on ``replicates`` (default: just ``synthetic``) and
    combined with the fully-synthetic rules. ``replicate_reals``: for whole-chain replicates
    (issue 12), the data each replicate's model was trained on (replicate r's own survey
    bootstraps and fusion); the utility of ``synthetic`` (the first replicate) and each
    replicate's S_pMSE are then measured against its own, since the differences between
    matched replicates are the sampling uncertainty the replicates must carry, not a fault of
    the generator (a matched replicate against the one matched dataset scores S_pMSE 18 on
    the demo). Privacy and the baseline keep ``real``. Raises ``ColumnMismatchError`` (a
    ValueError) when the tables do not have the same columns, and its subclass
    ``LabelMismatchError`` when a categorical column's labels do not overlap at all.
    ``progress`` receives one line per group of metrics as it ends (name and seconds).
    ``max_rows``: sample size of the sampled metrics (module docstring); real and holdout get
    the same size, so the DCR share is 0.5 for a generator no closer to its training records
    than to unseen people. None: every metric on the whole tables, no sampling error.

    ``real``, ``synthetic``, ``holdout`` and ``replicate_reals`` may be left in their Parquet
    files (``ParquetTable``, a view of the columns to compare): with ``max_rows`` the samples
    are then taken a row group at a time (the same rows, so the same figures, as from the
    tables in memory) and the exhaustive copy counts hash them a row group at a time, so
    memory is the samples' and one row group's, whatever the population.

    ``n_jobs``: threads for the propensity models and the distance searches, scikit-learn's
    convention (-1: every core this process may use); the figures are the same whatever it is.
    ``processes``: with 2 or more (``n_jobs`` convention), three groups of figures are computed side
    by side, each in a forked child: the utility figures (with the baseline's), the privacy figures
    (copies, distances, attacks) and the sampling errors' further samples (the same figures).
    """
    if max_rows is None:  # every metric on the whole tables: read them
        real, synthetic = _whole(real), _whole(synthetic)
        holdout = _whole(holdout) if holdout is not None else None
        replicate_reals = [_whole(r) for r in replicate_reals] if replicate_reals is not None else None
    synthetic = _aligned(real, synthetic, ("real", "synthetic"))
    check_label_overlap(real, synthetic)
    if holdout is not None:
        holdout = _aligned(real, holdout, ("real", "holdout"))
        check_label_overlap(real, holdout, names=("real", "holdout"))
    for i, replicate in enumerate(replicates or [], start=1):
        check_label_overlap(real, replicate, names=("real", f"replicate {i}"))
    real_columns = table_empty(real)
    qis = _check_columns(quasi_identifiers, real_columns, "quasi-identifier(s)")
    secrets = _check_columns(sensitive, real_columns, "sensitive column(s)")
    thresholds = thresholds or Thresholds.default()
    timer = _Timer(progress)
    details: dict[str, Any] = {}

    own = list(replicate_reals) if replicate_reals is not None else None
    if own is not None and replicates is not None and len(own) != len(replicates):
        raise ValueError(f"{len(own)} replicate_reals for {len(replicates)} replicates")
    own = [_aligned(real, r, ("real", "replicate's real")) for r in own] if own else None
    full_real, full_synthetic, full_holdout, full_own = real, synthetic, holdout, own
    # the tables the sampled metrics see: seeded samples, or (max_rows None) the tables read whole above
    sample_size: int | None = None
    take: Callable[[Table], pd.DataFrame] = _whole
    if max_rows is not None:
        sample_size = min(max_rows, table_rows(real), *([table_rows(holdout)] if holdout is not None else []))
        n = sample_size
        take = functools.partial(seeded_sample, n=n, seed=seed)
        details["sample"] = {"rows": n, "seed": seed, "error_subsamples": error_subsamples,
                             "rows_real": table_rows(full_real), "rows_synthetic": table_rows(full_synthetic)}
        replicates = [take(r) for r in replicates] if replicates is not None else None
    real_s = take(real)
    synthetic_s = align_columns(real_s, take(synthetic))
    holdout_s = align_columns(real_s, take(holdout), names=("real", "holdout")) if holdout is not None else None
    own_s = [align_columns(real_s, take(r), names=("real", "replicate's real")) for r in own] if own else None

    def utility_figures() -> tuple[Any, ...]:
        """The utility figures, the baseline's and the copy rate of the holdout (the baseline's)."""
        tables: dict[str, pd.DataFrame] = {}
        found: dict[str, Any] = {}
        utility_real = own_s[0] if own_s else real_s
        metrics, utility = utility_metrics(utility_real, synthetic_s, seed, timer, n_jobs=n_jobs)

        def replicate_ratio(i: int, replicate: pd.DataFrame) -> float:
            real_i, other = own_s[i] if own_s else real_s, align_columns(real_s, replicate)
            # the release's first replicate is ``synthetic`` itself, sampled alike: its 11 trees again
            # would give the S_pMSE just computed (16 of the validation step's 293 CPU s at 1.2 million)
            if real_i is utility_real and other.equals(synthetic_s):
                return metrics["s_pmse"]
            return propensity_ratio(real_i, other, seed, n_jobs)

        if replicates is not None and len(replicates) > 1:
            # One replicate's S_pMSE swings widely (7.8 to 14 across the five replicates of one
            # demo release): the release is all of them, so the gate judges their mean.
            ratios = timer.run("propensity_replicates", lambda: [
                replicate_ratio(i, r) for i, r in enumerate(replicates)])
            metrics["s_pmse_first_replicate"] = metrics["s_pmse"]
            metrics["s_pmse"] = float(np.mean(ratios))
            found["s_pmse_by_replicate"] = ratios
        tables["columns"] = utility["columns"]
        baseline: dict[str, float] | None = None
        if holdout_s is not None:
            baseline, _ = utility_metrics(real_s, holdout_s, seed, timer, prefix="baseline_", n_jobs=n_jobs)
            assert full_holdout is not None
            baseline["exact_copy_rate"] = timer.run("baseline_exact_copy_rate",
                                                    lambda: exact_copy_rate(full_holdout, full_real))

        if rules:
            table = timer.run("rules", lambda: plausibility(real_s, synthetic_s, rules))
            tables["rules"] = table
            metrics["rules_excess"] = float(table["excess"].max())

        if regressions:
            comparisons = timer.run("regressions", lambda: compare_regressions(real_s, replicates or [synthetic_s], regressions))
            for i, comparison in enumerate(comparisons, start=1):
                tables[f"regression {i}: {comparison.spec.label}"] = comparison.table
            excluded = {c.spec.label: c.excluded for c in comparisons if c.excluded}
            if excluded:  # said in the report: a term the real data cannot estimate is not scored
                found["regression_excluded_terms"] = excluded
            overlaps = pd.concat([c.table for c in comparisons])["ci_overlap"]
            if len(overlaps):
                metrics["regression_ci_overlap"] = float(overlaps.mean())
            if holdout_s is not None and baseline is not None and len(overlaps):
                reference = compare_regressions(real_s, [holdout_s], regressions)
                baseline["regression_ci_overlap"] = float(pd.concat([c.table for c in reference])["ci_overlap"].mean())
        found["worst_1way_variable"] = worst_variable(utility["columns"])
        rendered: dict[str, bytes] = {}
        if figures:
            rendered = timer.run("figures", lambda: _utility_figures(real_s, synthetic_s, utility["association"]))
        return metrics, baseline, tables, found, rendered, timer.seconds

    def privacy_figures() -> tuple[Any, ...]:
        """The copies (exhaustive), the distances and the attacks, which need no utility figure."""
        metrics: dict[str, Any] = {}
        found: dict[str, Any] = {}
        # Exhaustive, whatever max_rows: one copied record is a disclosure a sample would miss.
        metrics["exact_copy_rate"] = timer.run("exact_copy_rate", lambda: exact_copy_rate(full_synthetic, full_real))
        if qis:
            unique = timer.run("replicated_uniques", lambda: replicated_uniques(full_synthetic, full_real, qis))
            found["replicated_uniques"] = unique
            metrics["replicated_uniques_share"] = unique["share_of_records"]
        rendered: dict[str, bytes] = {}
        if holdout_s is not None:
            dcr_result = timer.run("dcr", lambda: dcr(synthetic_s, real_s, holdout_s, seed=seed, n_jobs=n_jobs))
            metrics.update(dcr_result.metrics())
            metrics["mia_auc"] = timer.run("mia", lambda: membership_inference_auc(synthetic_s, real_s, holdout_s, seed=seed,
                                                                                    n_jobs=n_jobs))
            # the release is every replicate: their predicates pooled (one replicate's ~190 swing widely)
            singling = timer.run("singling_out", lambda: singling_out_risk(
                replicates or [synthetic_s], real_s, holdout_s, seed=seed))
            linking = timer.run("linkability", lambda: linkability_risk(synthetic_s, real_s, holdout_s, seed=seed))
            metrics["singling_out_risk"], metrics["linkability_risk"] = singling.risk, linking.risk
            found["singling_out"], found["linkability"] = singling.to_dict(), linking.to_dict()
            if qis and secrets:
                inference = timer.run(
                    "inference", lambda: attribute_inference(synthetic_s, real_s, holdout_s, qis, secrets, seed=seed)
                )
                found["inference"] = {name: risk.to_dict() for name, risk in inference.items()}
                metrics["inference_risk"] = max(
                    (r.risk for r in inference.values() if math.isfinite(r.risk)), default=float("nan")
                )
            if figures:
                rendered = {"privacy:dcr": timer.run("dcr_figure", lambda: plots.dcr_plot(
                    dcr_result.synthetic_to_train, dcr_result.holdout_to_train))}
        return metrics, found, rendered, timer.seconds

    def subsample_draws() -> tuple[Any, ...]:
        assert sample_size is not None
        return timer.run("sampling_error", lambda: subsample_figures(
            full_own[0] if full_own else full_real, full_synthetic, full_real, full_holdout,
            sample_size, seed, error_subsamples, n_jobs)), timer.seconds

    # Three independent groups of figures: the utility figures, the privacy figures and the sampling
    # errors' further samples. With processes, each in a forked child, as many at a time as the groups
    # (each alone holds at most 1.4 of 2 cores, and their lengths differ: bench/README.md, "Twenty-third
    # pass"); one process: one after the other, here. The children's progress lines come back through
    # the ``synth_assets`` logger and reach ``progress`` here.
    pieces: list[Callable[[], tuple[Any, ...]]] = [utility_figures, privacy_figures]
    if sample_size is not None and error_subsamples > 0:
        pieces.append(subsample_draws)
    forked = resolved_jobs(processes) > 1 and hasattr(os, "fork")
    if forked and progress is not None:
        timer.progress = _LOG.info
    results = list(forked_imap(lambda piece: piece(), pieces, len(pieces) if forked else 1,
                               on_log=(lambda name, level, text: progress(text)) if progress else None))
    metrics, baseline, tables, found, rendered, seconds = results[0]
    privacy_metrics, privacy_found, privacy_rendered, privacy_seconds = results[1]
    # the utility metrics first, then the privacy ones: the order of the report's tables as before
    metrics.update(privacy_metrics)
    details.update(found)
    details.update(privacy_found)
    rendered.update(privacy_rendered)
    seconds = {**seconds, **privacy_seconds}
    errors: dict[str, float] = {}
    if len(results) > 2:
        draws, error_seconds = results[2]
        seconds = {**seconds, **error_seconds}
        errors = sampling_errors(metrics, draws)
    where = {"worst_1way_distance": details["worst_1way_variable"]}
    checks, skipped = thresholds.check(metrics, baseline, where=where,
                                       # the rows the baseline's copy rate was counted on: every holdout row
                                       baseline_rows=table_rows(full_holdout) if full_holdout is not None else None)
    details["thresholds"] = thresholds.to_dict()
    details["timings_s"] = seconds
    return ValidationResult(dict(metrics), baseline, checks, skipped, rendered, tables, details, errors)


def subsample_figures(
    real: Table, synthetic: Table, train: Table, holdout: Table | None, n: int, seed: int, subsamples: int,
    n_jobs: int | None = None,
) -> list[dict[str, float]]:
    """The sampled headline figures on each of ``subsamples`` further seeded samples (for
    :func:`sampling_errors`): sample ``d`` draws ``n`` rows of each full table with seed ``seed + d``
    and recomputes the utility metrics of ``synthetic`` against ``real`` and, with a holdout, DCR and
    membership inference against ``train``."""
    quiet = _Timer()
    draws: list[dict[str, float]] = []
    for d in range(1, subsamples + 1):
        real_d = seeded_sample(real, n, seed + d)
        syn = align_columns(real_d, seeded_sample(synthetic, n, seed + d))
        figures, _ = utility_metrics(real_d, syn, seed, quiet, n_jobs=n_jobs)
        if holdout is not None:
            train_d = seeded_sample(train, n, seed + d)
            holdout_d = align_columns(train_d, seeded_sample(holdout, n, seed + d), names=("real", "holdout"))
            figures.update(dcr(syn, train_d, holdout_d, seed=seed, n_jobs=n_jobs).metrics())
            figures["mia_auc"] = membership_inference_auc(syn, train_d, holdout_d, seed=seed, n_jobs=n_jobs)
        draws.append(figures)
    return draws


def sampling_errors(metrics: Mapping[str, float | None], draws: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Standard deviation of each sampled headline figure over the main sample (``metrics``, seed
    ``seed``) and the further samples' figures (``draws``, :func:`subsample_figures`).

    A table no larger than ``n`` is used whole every time, so its figures come out with error 0:
    they are exact. With several replicates the gate's ``s_pmse`` is their mean; its error is not
    estimated (it would refit a propensity model per replicate and sample), ``s_pmse_first_replicate``'s is.
    """
    if not draws:
        return {}
    renamed = {"s_pmse": "s_pmse_first_replicate"} if "s_pmse_first_replicate" in metrics else {}
    errors: dict[str, float] = {}
    for name in draws[0]:
        key = renamed.get(name, name)
        main = metrics.get(key)
        if main is None or not isinstance(main, (int, float)):
            continue
        values = np.array([main, *(figures.get(name, np.nan) for figures in draws)], dtype=float)
        if np.isfinite(values).all():
            errors[key] = float(np.std(values, ddof=1))
    return errors


def _whole(table: Table) -> pd.DataFrame:
    return table.read() if isinstance(table, ParquetTable) else table


def _aligned(real: Table, other: Table, names: tuple[str, str]) -> Table:
    """``align_columns`` of a table in memory; of a file, its columns checked against ``real``'s
    (the rows are aligned as they are read: samples), its numeric columns numeric in the file."""
    if not isinstance(other, ParquetTable):
        return align_columns(table_empty(real), other, names=names)
    reference, stored = table_empty(real), other.empty()
    align_columns(reference, stored, names=names)  # missing or extra columns
    text = [c for c in reference.columns if is_numeric(reference[c]) and not is_numeric(stored[c])]
    if text:  # a file keeps its dtypes: text there is a fault of whoever wrote it
        raise ColumnMismatchError(
            f"{other.path}: column(s) {', '.join(map(repr, text))} numeric in {names[0]} but stored as "
            f"{', '.join(str(stored[c].dtype) for c in text)} in {names[1]}; write them as numbers")
    return other if list(stored.columns) == list(reference.columns) else other.select(list(reference.columns))


def _utility_figures(real, synthetic, association) -> dict[str, bytes]:
    figures = plots.variable_plots(real, synthetic)
    figures["association:cramers_v"] = plots.association_plot(
        association.cramers_v_real, association.cramers_v_synthetic, "|Cramér's V real − synthetic|"
    )
    return figures
