"""What a release's replicates mean and how to combine them: the text of the data card and report.

One text, in Markdown (data card) and HTML (validation report), with the coverage figures
of the last run of ``bench/inference/coverage.py`` (:data:`BENCH_COVERAGE`, copied from
``bench/inference/results.md`` when the bench is rerun). :func:`inference_card` gives the
data card's machine-readable ``inference`` entry: per source its kind, respondents and
columns, which :meth:`synth_assets.inference.Release.n_real` reads for the floor.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from synth_assets.catalog import Catalog

RULE = "fully synthetic (Raghunathan, Reiter & Rubin 2003), floor T* = (n_syn / n_real) ū, df m − 1"

#: Coverage of combined 95% intervals on the demo (bench/inference/results.md): class ->
#: (coefficients, covered, mean interval width over a real survey's of that size).
BENCH_COVERAGE: dict[str, tuple[int, int, float]] = {
    "register only": (24, 11, 2.1),
    "register × survey": (36, 34, 1.8),
    "within one survey": (12, 10, 1.6),
    "across two surveys (no target: conditional independence)": (12, 9, 1.1),
}
BENCH_SOURCE = "bench/inference/results.md"

EXAMPLE = """from synth_assets.inference import load_release, ols_on_replicates
release = load_release("data/public/LATEST")
fit = ols_on_replicates(release.replicates, "spend_food",
                        ["household_size", "log1p(labour_income)", "age"],
                        where="relation == 'head'",
                        n_real=release.n_real(["spend_food"]))
print(fit.table())   # estimate, se, df, 95% interval per term"""

PARAGRAPHS = [
    "Each replicate is one draw of the whole chain that made this release: every survey was "
    "redrawn by its design bootstrap (whole households, weights rescaled), fused into the "
    "register with a matching draw of its own, the model taught that matched data with "
    "a draw of its parameters, and a population drawn from it and calibrated to the "
    "register's margins. The differences between replicates are therefore the uncertainty of "
    "the surveys' samples (a survey variable rests on its 750 to 2,000 respondents, not on the "
    "population), of the matching and of the model.",
    "Analyse each replicate as if it were real data, then combine: the estimate is the mean "
    "over replicates; its variance T = max(T_f, T*) with T_f = (1 + 1/m) b − ū (b: variance "
    "between replicates, ū: mean variance reported within them) and the floor T* = (n_syn / "
    "n_real) ū, n_real being the size of the smallest source the estimate rests on (the "
    "register's persons, or a survey's respondents); intervals use a t distribution with "
    "m − 1 degrees of freedom. A single replicate's standard errors are far too small for "
    "anything involving a survey variable: never report them.",
    "Relations between variables of two different surveys were never observed together: the "
    "matching assumes them independent given the common variables (conditional independence), "
    "and no interval can cover a relation the sources do not hold.",
]


def inference_card(catalog: Catalog, persons: Mapping[str, int | None]) -> dict[str, Any]:
    """The data card's ``inference`` entry: the rule and, per source, kind, respondents, columns."""
    sources = {}
    for name, source in catalog.sources.items():
        columns = source.common + source.specific if source.kind == "register" else source.specific
        sources[name] = {"kind": source.kind, "persons": persons.get(name), "columns": list(columns)}
    return {"rule": RULE, "sources": sources}


def _coverage_rows() -> list[tuple[str, str, str, str]]:
    return [(klass, f"{covered}/{n}", f"{covered / n:.0%}", f"{width:.1f}×")
            for klass, (n, covered, width) in BENCH_COVERAGE.items() if n]


def guide_markdown() -> str:
    lines = ["## Using the replicates: what they mean, how to combine them", ""]
    lines += [p + "\n" for p in PARAGRAPHS]
    lines += ["```python", EXAMPLE, "```", ""]
    rows = _coverage_rows()
    if rows:
        lines += [f"Coverage of combined 95% intervals on the demo population (three demo seeds of 20,000 "
                  f"persons, {BENCH_SOURCE}); register-only coefficients are missed because the model "
                  "flattens some effects (age profile of incomes, citizenship), not because of the rule:", "",
                  "| models | covered | coverage | interval width / a real survey's |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        lines.append("")
    return "\n".join(lines)


def guide_html() -> str:
    parts = [f"<p>{html.escape(p)}</p>" for p in PARAGRAPHS]
    parts.append(f"<pre>{html.escape(EXAMPLE)}</pre>")
    rows = _coverage_rows()
    if rows:
        parts.append(f"<p>Coverage of combined 95% intervals on the demo population (three demo seeds of "
                     f"20,000 persons, {html.escape(BENCH_SOURCE)}); register-only coefficients are missed because "
                     "the model flattens some effects (age profile of incomes, citizenship), not because of the "
                     "rule:</p>")
        parts.append("<table><tr><th class='l'>models</th><th>covered</th><th>coverage</th>"
                     "<th>interval width / a real survey's</th></tr>"
                     + "".join(f"<tr><td class='l'>{html.escape(a)}</td><td>{b}</td><td>{c}</td><td>{d}</td></tr>"
                               for a, b, c, d in rows) + "</table>")
    return "\n".join(parts)
