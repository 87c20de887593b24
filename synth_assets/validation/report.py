"""Write a validation result as ``metrics.json`` and a self-contained ``report.html``.

The HTML embeds its figures as base64 PNG and its CSS inline (:mod:`synth_assets.common.html`):
it opens from a file share or an e-mail attachment with no network and no JavaScript. Files
are written atomically (:func:`synth_assets.common.files.write_text`), so a reader (or a
Dagster sensor) never sees a half-written report.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from synth_assets.common.files import write_text
from synth_assets.common.html import html_document, html_image, html_table, html_value
from synth_assets.validation.comparison import ModelComparison
from synth_assets.validation.evaluate import ValidationResult
from synth_assets.validation.thresholds import CHECKABLE

_HEADLINE = [
    "kmarginal_1",
    "kmarginal_2",
    "kmarginal_3",
    "s_pmse",
    "propensity_auc",
    "mean_tvd",
    "mean_ks",
    "correlation_diff",
    "cramers_v_diff",
    "pca_subspace_cosine",
    "exact_copy_rate",
    "dcr_share",
    "mia_auc",
    "inference_risk",
    "singling_out_risk",
    "linkability_risk",
]


def _checks_html(result: ValidationResult) -> str:
    rows = []
    for c in result.checks:
        bound = "≤" if c.direction == "max" else "≥"
        rows.append(
            f'<tr class="{"pass" if c.passed else "fail"}"><td class="l">{html.escape(c.name)}</td>'
            f'<td class="l">{c.metric}</td><td class="v">{html_value(c.value)}</td><td>{bound} {html_value(c.threshold)}</td>'
            f'<td class="l">{html.escape(c.basis)}</td><td class="l">{"pass" if c.passed else "FAIL"}</td></tr>'
        )
    skipped = (
        f'<p class="note">Not checked (metric not computed: needs a holdout, quasi-identifiers, rules or '
        f'regressions): {", ".join(result.skipped)}</p>'
        if result.skipped
        else ""
    )
    return (
        "<table><tr><th class='l'>check</th><th class='l'>metric</th><th>value</th><th>threshold</th>"
        f"<th class='l'>basis</th><th class='l'>result</th></tr>{''.join(rows)}</table>{skipped}"
    )


def _headline_frame(result: ValidationResult) -> pd.DataFrame:
    rows = []
    for metric in [m for m in _HEADLINE if m in result.metrics]:
        base = (result.baseline or {}).get(metric)
        label = CHECKABLE[metric].label if metric in CHECKABLE else metric
        rows.append({"metric": metric, "meaning": label, "synthetic": result.metrics[metric],
                     "sampling error (sd)": result.sampling_error.get(metric), "baseline (holdout)": base})
    return pd.DataFrame(rows, columns=["metric", "meaning", "synthetic", "sampling error (sd)", "baseline (holdout)"])


def _sample_note(result: ValidationResult) -> list[str]:
    sample = result.details.get("sample")
    if not sample:
        return []
    return [f'<p class="note">Sampled figures: {sample["rows"]:,} rows per table drawn with seed {sample["seed"]} '
            f'(of {sample["rows_real"]:,} real and {sample["rows_synthetic"]:,} synthetic); their sampling error '
            f'is the standard deviation over {1 + sample["error_subsamples"]} seeded samples. Exact copies and '
            "replicated uniques are counted over every record.</p>"]


def _privacy_html(result: ValidationResult) -> str:
    parts = []
    names = ["exact_copy_rate", "replicated_uniques_share", "dcr_share", "dcr_p5_synthetic", "dcr_p5_holdout",
             "nndr_p5_synthetic", "nndr_p5_holdout", "mia_auc"]
    rows = [{"metric": n, "value": result.metrics[n]} for n in names if n in result.metrics]
    parts.append(html_table(pd.DataFrame(rows, columns=["metric", "value"]), left=["metric"]))
    attacks = []
    for name in ("singling_out", "linkability"):
        if name in result.details:
            attacks.append({"attack": name, **_flatten_risk(result.details[name])})
    for secret, risk in result.details.get("inference", {}).items():
        attacks.append({"attack": f"inference: {secret}", **_flatten_risk(risk)})
    if attacks:
        parts.append("<h3>Attacks (anonymeter method): success on training targets vs control</h3>")
        parts.append(html_table(pd.DataFrame(attacks), left=["attack"]))
    if "privacy:dcr" in result.figures:
        parts.append(html_image(result.figures["privacy:dcr"], "distance to closest record"))
    return "".join(parts)


def _flatten_risk(risk: dict) -> dict:
    return {
        "risk": risk["risk"],
        "ci_low": risk["ci_low"],
        "ci_high": risk["ci_high"],
        "attacks": risk["attack"]["n_total"],
        "success_train": risk["attack"]["value"],
        "success_control": risk["control"]["value"],
    }


def render_html(
    result: ValidationResult, title: str = "Synthetic data validation", comparison: ModelComparison | None = None,
    links: Mapping[str, str] | None = None,
) -> str:
    """The whole report as one HTML string; with ``comparison``, a section comparing model families.

    ``links`` (text -> href) are listed under the title, e.g. the Great Expectations Data Docs.
    """
    verdict = '<span class="pass">PASSED</span>' if result.passed else '<span class="fail">FAILED</span>'
    sections = [f"<h1>{html.escape(title)}: {verdict}</h1>"]
    if links:
        sections.append('<p class="note">' + " · ".join(
            f'<a href="{html.escape(href)}">{html.escape(text)}</a>' for text, href in links.items()) + "</p>")
    sections += [
        "<h2>Checks</h2>",
        _checks_html(result),
        "<h2>Headline metrics</h2>",
        html_table(_headline_frame(result), left=["metric", "meaning"]),
        *_sample_note(result),
        "<h2>Variables</h2>",
        html_table(result.tables["columns"], left=["column", "kind"]),
        '<div class="grid">',
        *(html_image(png, name) for name, png in result.figures.items() if name.startswith("variable:")),
        "</div>",
        "<h2>Associations</h2>",
        *(html_image(png, name) for name, png in result.figures.items() if name.startswith("association:")),
    ]
    if "rules" in result.tables:
        sections += ["<h2>Plausibility rules (share of records breaking each)</h2>",
                     html_table(result.tables["rules"], left=["rule"])]
    regression_tables = {k: v for k, v in result.tables.items() if k.startswith("regression")}
    from synth_assets.inference.guide import guide_html

    sections += ["<h2>Using the replicates: what they mean, how to combine them</h2>", guide_html()]
    if regression_tables:
        sections.append("<h2>Regressions: real vs synthetic (combined replicates), CI overlap (Karr et al.)</h2>")
        for name, table in regression_tables.items():
            sections += [f"<h3>{html.escape(name)}</h3>", html_table(table, left=["term"])]
        for label, terms in result.details.get("regression_excluded_terms", {}).items():
            sections.append(f"<p>Not scored in {html.escape(label)}: " + "; ".join(
                f"{html.escape(term)} ({html.escape(reason)})" for term, reason in terms.items()) + "</p>")
        sections.append("<p>A term degenerate in a synthetic replicate (separated or aliased there, "
                        "estimable in the real data) scores an overlap of 0 "
                        "(column <code>synthetic_degenerate</code>).</p>")
    population = {k: v for k, v in result.tables.items() if k.startswith("population:")}
    if population:
        sections.append("<h2>The population: calibration to the register, missing values</h2>")
        for name, table in population.items():
            sections += [f"<h3>{html.escape(name.removeprefix('population: '))}</h3>",
                         html_table(table, left=[c for c in ("margin", "variable") if c in table])]
        sections += [html_image(png, name) for name, png in result.figures.items() if name.startswith("population:")]
    linked = {k: v for k, v in result.tables.items() if k.startswith("linked:")}
    if linked:
        sections.append("<h2>Linked tables: generated diary days and trips beside the survey's days</h2>")
        for name, table in linked.items():
            sections += [f"<h3>{html.escape(name.removeprefix('linked: '))}</h3>",
                         html_table(table, left=["variable", "statistic"])]
        sections += [html_image(png, name) for name, png in result.figures.items() if name.startswith("linked:")]
    sections += ["<h2>Privacy</h2>", _privacy_html(result)]
    if comparison is not None:
        sections += ["<h2>Model families compared</h2>", comparison.to_html()]
    timings = result.details.get("timings_s", {})
    if timings:
        sections.append(f'<p class="note">Seconds per step: {html.escape(", ".join(f"{k} {v}" for k, v in timings.items()))}</p>')
    return html_document(title, "\n".join(sections))


def write_report(
    result: ValidationResult,
    output_dir: str | Path,
    title: str = "Synthetic data validation",
    comparison: ModelComparison | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json`` and ``report.html`` into ``output_dir`` (created if needed).

    ``links`` (text -> href) are listed under the report's title.

    With ``comparison``, the report gets its section and ``comparison.csv`` and
    ``comparison.html`` are written beside it (keys ``comparison_csv``, ``comparison_html``).
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": output / "metrics.json", "report": output / "report.html"}
    if comparison is not None:
        paths.update(comparison.write(output))
    write_text(paths["metrics"], result.to_json())
    write_text(paths["report"], render_html(result, title, comparison, links))
    return paths


def headline_markdown(result: ValidationResult) -> str:
    """Short markdown summary (verdict and checks), e.g. for Dagster metadata."""
    lines = [
        f"**{'PASSED' if result.passed else 'FAILED'}** ({sum(c.passed for c in result.checks)}/{len(result.checks)} checks)",
        "",
        "| check | metric | value | threshold | result |",
        "|---|---|---|---|---|",
    ]
    for c in result.checks:
        bound = "≤" if c.direction == "max" else "≥"
        error = result.sampling_error.get(c.metric)
        value = f"{c.value:.4g}" + (f" ± {error:.2g}" if error is not None else "")
        lines.append(
            f"| {c.name} | `{c.metric}` | {value} | {bound} {c.threshold:.4g} ({c.basis}) | "
            f"{'pass' if c.passed else '**FAIL**'} |"
        )
    if result.skipped:
        lines += ["", f"Not checked: {', '.join(result.skipped)}"]
    sample = result.details.get("sample")
    if sample:
        lines += ["", f"Sampled figures on {sample['rows']:,} rows per table (seed {sample['seed']}); ± is their "
                  f"standard deviation over {1 + sample['error_subsamples']} seeded samples. Exact copies and "
                  "replicated uniques: every record."]
    return "\n".join(lines)
