"""Write a validation result as ``metrics.json`` and a self-contained ``report.html``.

The HTML embeds its figures as base64 PNG and its CSS inline: it opens from a file
share or an e-mail attachment with no network and no JavaScript. Files are written to
a temporary name in the target folder and moved into place with ``os.replace``, so a
reader (or a Dagster sensor) never sees a half-written report.
"""

from __future__ import annotations

import base64
import html
import math
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from synth_assets.validation.evaluate import ValidationResult
from synth_assets.validation.thresholds import CHECKABLE

if TYPE_CHECKING:  # annotations only: the comparison module imports this one
    from synth_assets.validation.comparison import ModelComparison

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1 .pass{color:#1a7f37}h1 .fail{color:#cf222e}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.fail td{background:#ffebe9}tr.pass td.v{background:#dafbe1}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid img{border:1px solid #ddd}
.note{color:#555;font-size:0.9em}
"""

_HEADLINE = [
    "kmarginal_1",
    "kmarginal_2",
    "kmarginal_3",
    "pmse_ratio",
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


def format_value(value: object) -> str:
    """A cell as plain text: numbers to 4 significant digits, yes/no, "–" for missing."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "–"
        return f"{value:.4g}"
    return str(value)


def _fmt(value: object) -> str:
    return html.escape(format_value(value))


def html_table(frame: pd.DataFrame, left: Iterable[str] = ()) -> str:
    """A table with numbers to 4 significant digits, right-aligned except the ``left`` (text) columns."""
    left = set(left)
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{_fmt(v)}</td>' for c, v in zip(frame.columns, record)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def html_image(png: bytes, alt: str) -> str:
    """A PNG embedded as base64, so the page needs no file beside it."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _checks_html(result: ValidationResult) -> str:
    rows = []
    for c in result.checks:
        bound = "≤" if c.direction == "max" else "≥"
        rows.append(
            f'<tr class="{"pass" if c.passed else "fail"}"><td class="l">{html.escape(c.name)}</td>'
            f'<td class="l">{c.metric}</td><td class="v">{_fmt(c.value)}</td><td>{bound} {_fmt(c.threshold)}</td>'
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
        rows.append({"metric": metric, "meaning": label, "synthetic": result.metrics[metric], "baseline (holdout)": base})
    return pd.DataFrame(rows, columns=["metric", "meaning", "synthetic", "baseline (holdout)"])


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


def html_document(title: str, body: str) -> str:
    """A self-contained page: inline CSS, no scripts, nothing fetched when opened."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def render_html(
    result: ValidationResult, title: str = "Synthetic data validation", comparison: ModelComparison | None = None
) -> str:
    """The whole report as one HTML string; with ``comparison``, a section comparing model families."""
    verdict = '<span class="pass">PASSED</span>' if result.passed else '<span class="fail">FAILED</span>'
    sections = [
        f"<h1>{html.escape(title)}: {verdict}</h1>",
        "<h2>Checks</h2>",
        _checks_html(result),
        "<h2>Headline metrics</h2>",
        html_table(_headline_frame(result), left=["metric", "meaning"]),
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
    population = {k: v for k, v in result.tables.items() if k.startswith("population:")}
    if population:
        sections.append("<h2>The population: calibration to the register, missing values</h2>")
        for name, table in population.items():
            sections += [f"<h3>{html.escape(name.removeprefix('population: '))}</h3>",
                         html_table(table, left=[c for c in ("margin", "variable") if c in table])]
        sections += [html_image(png, name) for name, png in result.figures.items() if name.startswith("population:")]
    sections += ["<h2>Privacy</h2>", _privacy_html(result)]
    if comparison is not None:
        sections += ["<h2>Model families compared</h2>", comparison.to_html()]
    timings = result.details.get("timings_s", {})
    if timings:
        sections.append(f'<p class="note">Seconds per step: {html.escape(", ".join(f"{k} {v}" for k, v in timings.items()))}</p>')
    return html_document(title, "\n".join(sections))


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename over it (atomic on one file system).

    Opened with mode "x" rather than ``mkstemp`` so the file gets the usual umask
    permissions instead of 0600.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_report(
    result: ValidationResult,
    output_dir: str | Path,
    title: str = "Synthetic data validation",
    comparison: ModelComparison | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json`` and ``report.html`` into ``output_dir`` (created if needed).

    With ``comparison``, the report gets its section and ``comparison.csv`` and
    ``comparison.html`` are written beside it (keys ``comparison_csv``, ``comparison_html``).
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": output / "metrics.json", "report": output / "report.html"}
    if comparison is not None:
        paths.update(comparison.write(output))
    write_atomically(paths["metrics"], result.to_json())
    write_atomically(paths["report"], render_html(result, title, comparison))
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
        lines.append(
            f"| {c.name} | `{c.metric}` | {c.value:.4g} | {bound} {c.threshold:.4g} ({c.basis}) | "
            f"{'pass' if c.passed else '**FAIL**'} |"
        )
    if result.skipped:
        lines += ["", f"Not checked: {', '.join(result.skipped)}"]
    return "\n".join(lines)
