"""Model families side by side: fitted on the same data, scored by the same ``evaluate``.

The pipeline releases one family (``population_model``'s config), and the gate judges that one
model, pass or fail. Choosing the family is a trade-off the gate does not show: fidelity
against privacy against training time. :func:`compare_models` fits each requested family
on the same training table, samples as many rows, and scores the sample with
:func:`~synth_assets.validation.evaluate` called with the validation report's own options,
so a row reads like the report a release of that family would get. Fit and sample times
are part of each row, because a family 2% better that trains for an hour is another choice
than one that trains in a second.

The first row, ``baseline (holdout)``, scores the holdout as if it were synthetic: what an
independent real sample of the same population reaches (the report's baseline column, and
the 100% of the k3 share). Its distance and membership figures stay empty, since those use
the holdout as their control, and so does its verdict: it is the yardstick, not a candidate.

A family that fails (fit, sampling or scoring) gets a row naming its error and the others
are still compared: one family's bug should not cost the minutes the others trained.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synth_assets.common.files import write_text
from synth_assets.common.html import format_value, html_document, html_image, html_table
from synth_assets.synthesis import FAMILIES, Synthesizer, build_population_synthesizer
from synth_assets.validation import plots
from synth_assets.validation.evaluate import ValidationResult, evaluate
from synth_assets.validation.thresholds import Thresholds
from synth_assets.validation.utility.regression import RegressionSpec

#: Makes a new, unfitted synthesiser of the named family.
Builder = Callable[[str], Synthesizer]
#: Draws ``n`` records from a fitted model with a seed (default: ``model.sample``).
Draw = Callable[[Synthesizer, int, int], pd.DataFrame]
#: Receives one line of progress per step (a logger's ``info``, ``print``).
Progress = Callable[[str], None]

BASELINE = "baseline (holdout)"

#: The synthesis benchmark's targets (bench/synthesis/README.md), drawn on the plot as the
#: goal to reach. They are stricter than the gate's limits, which ``passed`` reports.
K3_TARGET_PCT = 95.0
DCR_TARGET = 0.55

#: Metrics of ``evaluate`` copied into the table, in table order.
SCORES = ("kmarginal_1", "kmarginal_2", "kmarginal_3", "s_pmse", "propensity_auc",
          "exact_copy_rate", "dcr_share", "mia_auc")
COLUMNS = ("family", "fit_seconds", "sample_seconds", "kmarginal_1", "kmarginal_2", "kmarginal_3",
           "kmarginal_3_pct_of_baseline", "s_pmse", "propensity_auc", "exact_copy_rate", "dcr_share",
           "mia_auc", "passed", "failed_checks", "error")
_TEXT_COLUMNS = ("family", "failed_checks", "error")


@dataclass
class ModelComparison:
    """One row per family after the baseline row (see :data:`COLUMNS`), and the plot.

    ``passed`` applies every threshold of the gate to the family's scores; ``failed_checks``
    names the metrics that missed theirs. ``figures`` maps a name to PNG bytes.
    """

    table: pd.DataFrame
    figures: dict[str, bytes] = field(repr=False)
    training_rows: int
    sampled_rows: int

    @property
    def passing_families(self) -> list[str]:
        """The families that passed every threshold of the gate, in table order."""
        return list(self.table.loc[self.table["passed"].eq(True), "family"])

    def _note(self) -> str:
        return (
            f"Each family fitted on the same {self.training_rows:,} training records and sampled "
            f"{self.sampled_rows:,}, scored as the report scores the release. The baseline row is the "
            f"holdout scored the same way. Plot targets: k3 at least {K3_TARGET_PCT:g}% of the baseline, "
            f"DCR share at most {DCR_TARGET:g} (the benchmark's); 'passed' applies the gate's thresholds."
        )

    def to_html(self) -> str:
        """The table, the plot and how to read them, as an HTML fragment (no page around it)."""
        images = "".join(html_image(png, name) for name, png in self.figures.items())
        return f'{html_table(self.table, left=_TEXT_COLUMNS)}{images}<p class="note">{self._note()}</p>'

    def to_markdown(self) -> str:
        """The table in markdown, e.g. for Dagster metadata."""
        def cell(value: Any) -> str:
            return format_value(value).replace("|", "\\|")

        lines = ["| " + " | ".join(self.table.columns) + " |", "|" + "---|" * len(self.table.columns)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.table.itertuples(index=False)]
        return "\n".join([*lines, "", self._note()])

    def write(self, output_dir: str | Path) -> dict[str, Path]:
        """Write ``comparison.csv`` and a standalone ``comparison.html``, each atomically."""
        output = Path(output_dir)
        output.mkdir(parents=True, exist_ok=True)
        paths = {"comparison_csv": output / "comparison.csv", "comparison_html": output / "comparison.html"}
        write_text(paths["comparison_csv"], self.table.to_csv(index=False))
        page = html_document("Model families compared", f"<h1>Model families compared</h1>\n{self.to_html()}")
        write_text(paths["comparison_html"], page)
        return paths


def check_families(families: Sequence[str]) -> list[str]:
    """The families in the order given, once each; unknown names raise a ValueError listing the valid ones.

    :func:`compare_models` calls it before fitting anything, so a typo in the last name does
    not surface after the first families have trained for minutes.
    """
    unknown = [name for name in families if name not in FAMILIES]
    if unknown or not families:
        problem = f"unknown model family {', '.join(map(repr, unknown))}" if unknown else "no model family given"
        raise ValueError(f"{problem}; valid families: {', '.join(FAMILIES)}")
    return list(dict.fromkeys(families))


def compare_models(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    families: Sequence[str],
    *,
    build: Builder | None = None,
    fit_params: dict[str, Any] | None = None,
    fit_data: pd.DataFrame | None = None,
    draw: Draw | None = None,
    n_rows: int | None = None,
    seed: int = 0,
    quasi_identifiers: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    rules: Sequence[str] = (),
    regressions: Sequence[RegressionSpec] = (),
    thresholds: Thresholds | None = None,
    progress: Progress | None = None,
) -> ModelComparison:
    """Fit each of ``families`` on ``train``, sample, and score against ``train`` and ``holdout``.

    ``build`` makes the unfitted synthesiser of a family (default: the factory's flat-table
    synthesiser with ``fit_params``, e.g. ``epochs``, ``max_seconds``; CART ignores the
    training-budget ones). ``fit_data``, when given, is what the families learn from instead
    of ``train``: the pipeline fits on whole households, with their ids, and scores on a
    sample of persons, as its report does; a synthetic table is scored on ``train``'s
    columns. ``draw(model, n, seed)`` samples a fitted family (default ``model.sample``); the
    pipeline passes the rule enforcement ``fictitious_dataset`` applies, so each row reads
    like that family's release. ``n_rows``: rows sampled per family (default: as many as ``train``). The
    scoring options and ``seed`` go to ``evaluate`` as the report passes them, and ``seed``
    also seeds the default builder and the sampling. Raises ValueError for an unknown
    family, before anything is fitted.
    """
    families = check_families(families)
    if build is not None and fit_params:
        raise TypeError("fit_params configure the default builder: pass them to your own build instead")
    build = build or _default_builder(seed, fit_params or {})
    fit_data = train if fit_data is None else fit_data
    draw = draw or (lambda model, n, seed: model.sample(n, seed=seed))
    n_rows = len(train) if n_rows is None else n_rows
    tell = progress or (lambda message: None)
    score = functools.partial(
        evaluate, quasi_identifiers=quasi_identifiers, sensitive=sensitive, rules=rules,
        regressions=regressions, thresholds=thresholds, seed=seed, figures=False,
    )
    tell(f"model comparison: scoring the holdout as the baseline ({len(holdout):,} records)")
    rows = [_baseline_row(score(train, holdout))]
    for number, family in enumerate(families, start=1):
        tell(f"model comparison {number}/{len(families)}: fitting {family} on {len(fit_data):,} records")
        row = _family_row(
            family, build, fit_data, draw, n_rows, seed,
            lambda synthetic: score(train, synthetic[list(train.columns)], holdout=holdout),
        )
        rows.append(row)
        tell(f"model comparison {number}/{len(families)}: {_summary(row, rows[0])}")
    table = _table(rows)
    return ModelComparison(table, {"model_comparison": _plot(table)}, len(fit_data), n_rows)


def _default_builder(seed: int, fit_params: dict[str, Any]) -> Builder:
    return lambda family: build_population_synthesizer(family, seed=seed, **fit_params)


def _scores(result: ValidationResult) -> dict[str, float | None]:
    return {name: result.metrics.get(name) for name in SCORES}


def _baseline_row(result: ValidationResult) -> dict[str, Any]:
    """No distance or membership figures: without the holdout as control they are not computed."""
    return {"family": BASELINE, **_scores(result), "passed": None, "failed_checks": "", "error": ""}


def _family_row(
    family: str, build: Builder, fit_data: pd.DataFrame, draw: Draw, n_rows: int, seed: int,
    score: Callable[[pd.DataFrame], ValidationResult],
) -> dict[str, Any]:
    """Fit, sample and score one family, timing each; any failure becomes the row's error."""
    try:
        started = time.perf_counter()
        model = build(family).fit(fit_data)
        fitted = time.perf_counter()
        synthetic = draw(model, n_rows, seed).iloc[:n_rows]  # whole households may overshoot
        sampled = time.perf_counter()
        result = score(synthetic)
    except Exception as error:  # one family's failure must not lose the others' results
        return {"family": family, "passed": False, "failed_checks": "", "error": f"{type(error).__name__}: {error}"}
    return {
        "family": family,
        "fit_seconds": fitted - started,
        "sample_seconds": sampled - fitted,
        **_scores(result),
        "passed": result.passed,
        "failed_checks": ", ".join(check.metric for check in result.checks if not check.passed),
        "error": "",
    }


def _summary(row: dict[str, Any], baseline: dict[str, Any]) -> str:
    """One progress line: how long the family took and where it stands."""
    if row["error"]:
        return f"{row['family']} failed: {row['error']}"
    share = _pct_of_baseline(row["kmarginal_3"], baseline["kmarginal_3"])
    verdict = "pass" if row["passed"] else f"fail ({row['failed_checks']})"
    return (f"{row['family']} fitted in {row['fit_seconds']:.1f} s, sampled in {row['sample_seconds']:.1f} s; "
            f"k3 {format_value(row['kmarginal_3'])} ({format_value(share)}% of baseline), "
            f"DCR share {format_value(row['dcr_share'])}; gate thresholds {verdict}")


def _pct_of_baseline(value: float | None, baseline: float | None) -> float:
    """``value`` as a percentage of the baseline's; NaN where either is missing (k3 needs 3 columns)."""
    if value is None or baseline is None or pd.isna(value) or pd.isna(baseline):
        return float("nan")
    return 100 * value / baseline


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in :data:`COLUMNS` order, the baseline first; scores a failed family lacks are NaN."""
    table = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    baseline_k3 = rows[0]["kmarginal_3"]
    table["kmarginal_3_pct_of_baseline"] = [_pct_of_baseline(k3, baseline_k3) for k3 in table["kmarginal_3"]]
    return table


def _plot(table: pd.DataFrame) -> bytes:
    candidates = table[table["family"] != BASELINE]
    return plots.comparison_plot(
        list(candidates["family"]),
        list(candidates["kmarginal_3_pct_of_baseline"]),
        list(pd.to_numeric(candidates["dcr_share"], errors="coerce")),
        k3_target_pct=K3_TARGET_PCT,
        dcr_target=DCR_TARGET,
    )
