"""One model on the original data, on one replicate and combined over all: Goldstein's table.

    from synth_assets import load_release
    from synth_assets.inference import compare_fits

    release = load_release("data/public/LATEST")
    compare_fits(release, "ols", "spend_food ~ household_size + log1p(labour_income) + age",
                 where="relation == 'head'", original=truth)

gives, per term, the estimate and standard error on ``original`` (real data the analyst
holds, or the demo's truth), on one replicate with its naive standard error (what an
analyst using one file as if it were real would report), and combined over every replicate
with the fully synthetic rule (:mod:`~synth_assets.inference.combining`): the augmented
standard error, its degrees of freedom, the interval and whether it covers the original.
The layout is the one of Goldstein's comparisons of original, synthetic and combined fits.

A model is a formula ``"y ~ a + b + log1p(c)"`` (split on ``~`` and on top-level ``+``;
each side a column or a pandas expression; ``I(...)`` is unwrapped; the intercept is always
included) or an outcome and a list of predictors.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from synth_assets.inference.analysis import Release, _model_on_replicates
from synth_assets.inference.models import fit_logit, fit_ols

KINDS = ("ols", "logit")
Kind = Literal["ols", "logit"]


class ModelError(ValueError):
    """A model the data cannot fit: a malformed formula or a name that is no column."""


def _split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split on ``separator`` outside parentheses, brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def _unwrap(term: str) -> str:
    """``I(age ** 2)`` -> ``age ** 2`` (R's "as is"), when the parentheses enclose the whole term."""
    if not (term.startswith("I(") and term.endswith(")")):
        return term
    depth = 0
    for char in term[2:-1]:
        depth += (char == "(") - (char == ")")
        if depth < 0:  # I(a) * I(b): the first parenthesis closes early
            return term
    return term[2:-1].strip()


def parse_formula(formula: str) -> tuple[str, list[str]]:
    """``"y ~ a + b + log1p(c)"`` -> ``("y", ["a", "b", "log1p(c)"])``.

    A ``1`` term (the intercept, always fitted) is dropped; ``0`` or ``-1`` (no intercept)
    and an empty side are refused.
    """
    sides = _split_top_level(formula, "~")
    if len(sides) != 2 or not sides[0] or not sides[1]:
        raise ModelError(f"model {formula!r}: write 'outcome ~ predictor + predictor', one '~'")
    outcome = _unwrap(sides[0])
    terms = [_unwrap(term) for term in _split_top_level(sides[1], "+")]
    if any(not term for term in terms):
        raise ModelError(f"model {formula!r}: an empty term between '+'")
    if any(term in ("0", "-1") or term.replace(" ", "").endswith("-1") for term in terms):
        raise ModelError(f"model {formula!r}: models without an intercept are not supported")
    predictors = [term for term in terms if term != "1"]
    if not predictors:
        raise ModelError(f"model {formula!r}: no predictor")
    return outcome, predictors


def referenced_columns(expressions: Sequence[str]) -> list[str]:
    """The names the expressions read as columns (not the functions they call), in order."""
    found: list[str] = []
    for expression in expressions:
        try:
            tree = ast.parse(expression, mode="eval")
        except SyntaxError as error:
            raise ModelError(f"cannot read {expression!r}: {error.msg}") from None
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and id(node) not in called and node.id not in found:
                found.append(node.id)
    return found


def _as_model(outcome: str, predictors: Sequence[str] | None) -> tuple[str, list[str]]:
    if predictors is None:
        return parse_formula(outcome)
    if "~" in outcome:
        raise ModelError(f"give a formula ({outcome!r}) or an outcome and predictors, not both")
    if isinstance(predictors, str):
        raise ModelError(f"predictors must be a list of columns or expressions, got the string {predictors!r}")
    if not predictors:
        raise ModelError("no predictor")
    return outcome, list(predictors)


def _check_columns(frame: pd.DataFrame, expressions: Sequence[str], where: str | None, role: str) -> list[str]:
    names = referenced_columns(expressions)
    if where:
        # pandas query syntax beyond Python's (`@local`, backticks): left to pandas to judge
        with contextlib.suppress(ModelError):
            names += [name for name in referenced_columns([where]) if name not in names]
    unknown = [name for name in names if name not in frame.columns]
    if unknown:
        raise ModelError(f"{role} has no column {', '.join(map(repr, unknown))}")
    return names


def compare_fits(
    release: Release | Sequence[pd.DataFrame],
    kind: Kind,
    outcome: str,
    predictors: Sequence[str] | None = None,
    *,
    original: pd.DataFrame | None = None,
    where: str | None = None,
    level: float = 0.95,
    replicate: int = 1,
    n_real: float | None = None,
    cov: str = "model",
) -> pd.DataFrame:
    """Fit a model on ``original``, on replicate ``replicate`` (1-based) and on all replicates.

    ``release``: a :class:`Release` (its data card gives ``n_real``, the smallest source
    the model's columns rest on, unless ``n_real`` is given) or the replicates themselves.
    ``outcome``: a formula, or the outcome with ``predictors``. ``where``: a pandas query
    selecting the records, applied to the replicates and ``original`` alike.

    One row per term; columns ``original``, ``original_se`` (with ``original``),
    ``one_replicate``, ``one_replicate_se`` (naive: as if that file were real data),
    ``combined``, ``combined_se`` (augmented: the fully synthetic rule), ``se_ratio``
    (combined over naive), ``df``, ``lower``, ``upper``, ``floor_used`` and ``covers_original``.
    """
    if kind not in KINDS:
        raise ModelError(f"kind must be one of {KINDS}, got {kind!r}")
    if not 0 < level < 1:
        raise ModelError(f"level must be between 0 and 1, got {level}")
    response, terms = _as_model(outcome, predictors)
    replicates = release.replicates if isinstance(release, Release) else list(release)
    if not replicates:
        raise ModelError("no replicate given")
    if not 1 <= replicate <= len(replicates):
        raise ModelError(f"replicate {replicate} is not one of 1..{len(replicates)}")
    columns = _check_columns(replicates[0], [response, *terms], where, "the release")
    if n_real is None and isinstance(release, Release):
        n_real = release.n_real(columns)
    levels: dict[str, list] = {}  # one set of categories for the replicates and the original
    combined = _model_on_replicates(kind, replicates, response, terms, where, cov, n_real, levels)
    low, high = combined.interval(level)
    assert combined.per_replicate_variance is not None
    one = combined.per_replicate.iloc[replicate - 1].to_numpy()
    one_se = np.sqrt(combined.per_replicate_variance.iloc[replicate - 1].to_numpy())
    table = pd.DataFrame(index=pd.Index(combined.names, name="term"))
    if original is not None:
        _check_columns(original, [response, *terms], where, "the original data")
        data = original.query(where, engine="python") if where else original
        fit = (fit_ols if kind == "ols" else fit_logit)(data, response, terms, cov=cov, levels=levels)
        if fit.names != combined.names:
            raise ModelError(f"the original data give other terms than the release: {fit.names} vs {combined.names}")
        table["original"], table["original_se"] = fit.coef, fit.se
    table["one_replicate"], table["one_replicate_se"] = one, one_se
    table["combined"], table["combined_se"] = combined.estimate, combined.se
    table["se_ratio"] = combined.se / one_se
    table["df"], table["lower"], table["upper"] = combined.df, low, high
    table["floor_used"] = np.atleast_1d(combined.combined.fallback)
    if original is not None:
        table["covers_original"] = (table["lower"] <= table["original"]) & (table["original"] <= table["upper"])
    table.attrs.update(model=f"{response} ~ {' + '.join(terms)}", kind=kind, where=where, level=level,
                       m=len(replicates), replicate=replicate, n_real=n_real)
    return table


def comparison_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """The table of :func:`compare_fits` as markdown, with a line saying what it holds."""
    attrs = table.attrs
    head = (f"{attrs.get('kind', '').upper()} {attrs.get('model', '')}"
            + (f" where {attrs['where']}" if attrs.get("where") else "")
            + f": m = {attrs.get('m')} replicates, one replicate = r{attrs.get('replicate')}, "
            f"{attrs.get('level', 0.95):.0%} interval, n_real = "
            + (f"{attrs['n_real']:g}" if attrs.get("n_real") else "not given (T* = mean within variance)"))
    return head + "\n\n" + table.to_markdown(floatfmt=f".{digits}g")


def read_original(path: str | Path) -> pd.DataFrame:
    """An original data file (Parquet or CSV) for ``compare_fits(original=...)``."""
    from synth_assets.common.table_files import read_table

    return read_table(Path(path), "original", require_rows=True)
