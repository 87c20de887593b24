"""Release thresholds: which metric values a synthetic file must reach to be published.

A threshold is absolute, or relative to the baseline (the same metric computed for an
independent real sample, the holdout, against the training data) when a baseline
exists. Relative limits are preferred for utility: how much fidelity is achievable
depends on the data (ses's holdout reaches k3 = 855, eusilc's 933), and "80% of what
a second real sample would give" means the same thing on both. Privacy limits are
absolute because their ideal value (0.5 AUC, 0.5 DCR share, 0 risk) does not depend
on the data.

The defaults, and why a statistical office can defend them:

kmarginal_1 >= 0.95 × baseline (900 without)
    One-way tables are what most users tabulate first; losing more than 5% of what a
    real sample achieves means visibly wrong frequencies.
kmarginal_2 >= 0.90 × baseline (800 without)
kmarginal_3 >= 0.80 × baseline (700 without)
    Higher-order tables are harder for every generator and are sparser, so more
    sampling noise is tolerated. On eusilc at their defaults, synthpop 1.9-2's CART
    reaches 1.00 × baseline (k3 938 vs 933) and SDV 2.0's models 0.15-0.40 × (they fail,
    as they should: their zero-inflated incomes are wrong); reference runs in bench/README.md.
s_pmse <= 4 × baseline (10 without)
    S_pMSE, CART propensity, as synthpop. Clustered data (households) inflate it even
    for a real holdout (eusilc baseline ≈ 7-11 here, 14 in synthpop; 3.4 on the 50,000-
    person demo), hence relative. With replicates, the mean over them: one replicate's
    value is noisy (7.8 to 14.0 across the five replicates of one demo release).
    A proper replicate carries the holdout's sampling noise plus that of its own
    parameter draw, so even a perfect proper model sits near 2 × baseline; 4 × leaves as
    much again for model error. History, since this limit was set after measuring: first
    2 ×, then 3 × after one demo release of the default CART model scored 2.7 ×; measured
    over five releases that differ only by the fictitious seed
    (``bench/validation/gate_stability.py``), its mean over replicates lies at 2.8-3.2 ×
    baseline, so 3 × refused 2 of the 5 by chance. A model far
    from the data stays far above: CTGAN households on the demo scored 6.6 ×.
worst_1way_distance <= 2 × baseline (0.10 without)
    Averages hide one wrong variable (a 9-point shift of one-person households moved
    kmarginal_1 by a few points), so the variable furthest from the training data, by TVD
    for categories and KS for numbers, is judged on its own, against the furthest variable
    of the holdout, an independent real sample of the same size: a generator as good as
    that sample sits near 1 × baseline; the failure names the variable.
rules_excess <= 0.01
    Synthetic records may break a plausibility rule at most 1 point more often than
    the real data do (children with earnings, negative ages...).
regression_ci_overlap >= 0.7 × baseline (0.5 without)
    Mean Karr et al. interval overlap; ≈ 0.71 is expected from two independent samples
    of equal size (so 0.7 × baseline ≈ 0.5), 0.5 means estimates about two standard errors
    apart on average. Relative, because small or clustered samples overlap less even
    between two real samples (0.49 for the 1,500-person demo's holdout).
exact_copy_rate <= binomial 95% upper bound of the baseline rate (0 without)
    No more synthetic rows identical to a training record than an independent real
    sample shares with the training data by chance. The baseline is itself a count in
    a sample (k copies among the holdout's n rows), so "1 × baseline" judged a rate of
    0 of n as if the chance rate were exactly 0, and refused an independent real sample
    for one chance duplicate. The limit is instead the one-sided 95% Clopper-Pearson upper bound of
    that rate: the highest chance rate the holdout's k of n does not rule out. With
    k = 0 it is 1 - 0.05^(1/n) ≈ 3/n (the rule of three): 0.15% for a 2,000-row holdout,
    so a chance duplicate or two pass and a generator copying 1% of its rows does not.
    The price is a looser limit on small holdouts (3% for 100 rows). With no holdout,
    no copies at all.
dcr_share <= 0.60
    0.5 is "no closer to train than to unseen people"; with 5,000 records the sampling
    error is ±0.014, so 0.60 is a systematic pull towards the training records
    (reference runs in bench/README.md: synthpop 1.9-2's CART, 0.68 on eusilc and 0.82 on
    ses, would fail; SDV 2.0's models, 0.48-0.55, pass, except TVAE on ses at 0.67).
mia_auc <= 0.60
    A distance attacker telling members from non-members. The sampling error at 2,000
    members is about ±0.02, so 0.6 is a real, if modest, advantage for the attacker.
inference_risk, singling_out_risk, linkability_risk <= 0.10
    anonymeter's residual risks: the attacker gains at most 10% of the possible
    improvement over what the population patterns (control) already give. Their
    95% intervals are ±0.03-0.1 depending on how many attacks could be built
    (reported with each risk).

propensity_auc is reported but not checked by default: the discriminator AUC saturates
near 1 for every generator of the reference runs in bench/README.md (SDV 2.0 1.00),
including the most faithful one (synthpop's CART 0.98 on eusilc), and the holdout
baseline itself reaches 0.86-0.95 on clustered data, so a limit would
fail every model without ranking them. Add ``propensity_auc: {max: ...}`` to a
thresholds file to check it anyway.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from scipy.stats import beta

Direction = Literal["min", "max"]
Group = Literal["utility", "privacy"]
Tolerance = Literal["binomial"]

#: Confidence of the binomial upper bound a ``tolerance: binomial`` threshold allows.
BINOMIAL_CONFIDENCE = 0.95


@dataclass(frozen=True)
class MetricInfo:
    direction: Direction
    group: Group
    label: str


#: Every metric a threshold may refer to, with the side that is good.
CHECKABLE: dict[str, MetricInfo] = {
    "kmarginal_1": MetricInfo("min", "utility", "1-way marginals (k-marginal score)"),
    "kmarginal_2": MetricInfo("min", "utility", "2-way marginals (k-marginal score)"),
    "kmarginal_3": MetricInfo("min", "utility", "3-way marginals (k-marginal score)"),
    "s_pmse": MetricInfo("max", "utility", "propensity S_pMSE (CART)"),
    "propensity_auc": MetricInfo("max", "utility", "propensity AUC (gradient boosting)"),
    "worst_1way_distance": MetricInfo("max", "utility", "worst variable's distance (TVD or KS)"),
    "mean_tvd": MetricInfo("max", "utility", "mean TVD of categories"),
    "mean_ks": MetricInfo("max", "utility", "mean KS of numbers"),
    "correlation_diff": MetricInfo("max", "utility", "mean |Spearman difference|"),
    "cramers_v_diff": MetricInfo("max", "utility", "mean |Cramér's V difference|"),
    "pca_subspace_cosine": MetricInfo("min", "utility", "PCA subspace alignment"),
    "rules_excess": MetricInfo("max", "utility", "plausibility rules broken beyond real"),
    "regression_ci_overlap": MetricInfo("min", "utility", "regression CI overlap"),
    "exact_copy_rate": MetricInfo("max", "privacy", "exact copies of training records"),
    "replicated_uniques_share": MetricInfo("max", "privacy", "replicated unique records"),
    "dcr_share": MetricInfo("max", "privacy", "DCR share closer to train"),
    "mia_auc": MetricInfo("max", "privacy", "membership inference AUC"),
    "inference_risk": MetricInfo("max", "privacy", "attribute inference risk"),
    "singling_out_risk": MetricInfo("max", "privacy", "singling-out risk"),
    "linkability_risk": MetricInfo("max", "privacy", "linkability risk"),
}


def binomial_upper_bound(successes: int, trials: int, confidence: float = BINOMIAL_CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound of a rate observed as ``successes`` of ``trials``."""
    if successes >= trials:
        return 1.0
    return float(beta.ppf(confidence, successes + 1, trials - successes))


@dataclass(frozen=True)
class Threshold:
    """``limit`` is used as is, or ``relative × baseline`` when a baseline value exists.

    ``tolerance="binomial"`` (for rates counted in the baseline sample) replaces the
    baseline rate by its binomial upper bound, given how many rows the baseline counted.
    """

    metric: str
    limit: float
    relative: float | None = None
    tolerance: Tolerance | None = None

    @property
    def direction(self) -> Direction:
        return CHECKABLE[self.metric].direction

    @property
    def group(self) -> Group:
        return CHECKABLE[self.metric].group

    def resolve(self, baseline: Mapping[str, float] | None, baseline_rows: int | None = None) -> tuple[float, str]:
        """The limit in force and how it was obtained (for the report).

        ``baseline_rows``: how many rows the baseline rates were counted on (the holdout's).
        """
        base = (baseline or {}).get(self.metric)
        if self.relative is not None and base is not None and math.isfinite(base):
            if self.tolerance == "binomial" and baseline_rows:
                count = int(round(base * baseline_rows))
                upper = binomial_upper_bound(count, baseline_rows)
                factor = "" if self.relative == 1 else f"{self.relative:g} × "
                return self.relative * upper, (
                    f"{factor}{BINOMIAL_CONFIDENCE:.0%} upper bound of baseline {base:.4g} "
                    f"({count} of {baseline_rows:,} holdout rows)"
                )
            return self.relative * base, f"{self.relative:g} × baseline {base:.4g}"
        return self.limit, "absolute"


@dataclass(frozen=True)
class CheckOutcome:
    """One threshold applied to one metric value."""

    name: str
    metric: str
    value: float
    threshold: float
    direction: Direction
    passed: bool
    group: Group
    basis: str
    where: str = ""  # the variable or cell behind the value, when one is

    @property
    def message(self) -> str:
        bound = "at most" if self.direction == "max" else "at least"
        verdict = "passed" if self.passed else "FAILED"
        at = f" [{self.where}]" if self.where else ""
        return (f"{self.name}: {self.metric} = {self.value:.4g}{at} {verdict}: must be {bound} "
                f"{self.threshold:.4g} ({self.basis})")


@dataclass(frozen=True)
class Thresholds:
    """The set of thresholds applied by ``evaluate``; see the module docstring."""

    items: Mapping[str, Threshold] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Thresholds:
        rules = [
            Threshold("kmarginal_1", 900.0, 0.95),
            Threshold("kmarginal_2", 800.0, 0.90),
            Threshold("kmarginal_3", 700.0, 0.80),
            Threshold("worst_1way_distance", 0.10, 2.0),
            Threshold("s_pmse", 10.0, 4.0),
            Threshold("rules_excess", 0.01),
            Threshold("regression_ci_overlap", 0.5, 0.7),
            Threshold("exact_copy_rate", 0.0, 1.0, tolerance="binomial"),
            Threshold("dcr_share", 0.60),
            Threshold("mia_auc", 0.60),
            Threshold("inference_risk", 0.10),
            Threshold("singling_out_risk", 0.10),
            Threshold("linkability_risk", 0.10),
        ]
        return cls({t.metric: t for t in rules})

    def updated(self, mapping: Mapping[str, Any]) -> Thresholds:
        """These thresholds with entries changed by a mapping (as read from YAML).

        ``metric: null`` removes a check; ``metric: 0.55`` sets an absolute limit (and
        drops any relative one); ``metric: {max|min: x, relative: r}`` sets both, and
        ``tolerance: binomial`` (or null) says whether the baseline is widened to its
        binomial upper bound (kept from the current threshold when not given). The key
        min/max must match the metric's good side, to catch inverted limits.
        """
        items = dict(self.items)
        for metric, spec in mapping.items():
            if metric not in CHECKABLE:
                raise ValueError(f"unknown metric {metric!r} in thresholds (known: {', '.join(CHECKABLE)})")
            direction = CHECKABLE[metric].direction
            if spec is None:
                items.pop(metric, None)
            elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
                items[metric] = Threshold(metric, float(spec))
            elif isinstance(spec, Mapping):
                wrong = set(spec) - {direction, "relative", "tolerance"}
                if wrong or direction not in spec:
                    raise ValueError(
                        f"threshold for {metric!r} takes keys {direction!r} and optionally 'relative' and "
                        f"'tolerance', got {sorted(spec)}"
                    )
                tolerance = spec["tolerance"] if "tolerance" in spec else getattr(items.get(metric), "tolerance", None)
                if tolerance not in (None, "binomial"):
                    raise ValueError(f"threshold for {metric!r}: tolerance must be 'binomial' or null, got {tolerance!r}")
                relative = spec.get("relative")
                items[metric] = Threshold(metric, float(spec[direction]), None if relative is None else float(relative),
                                          tolerance)
            else:
                raise ValueError(f"threshold for {metric!r} must be null, a number or a mapping, got {spec!r}")
        return replace(self, items=items)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Thresholds:
        """Defaults updated by a YAML file (optionally under a top-level ``thresholds`` key)."""
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
        if isinstance(loaded, Mapping) and "thresholds" in loaded:
            loaded = loaded["thresholds"] or {}
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{path}: expected a mapping of metric names to thresholds")
        return cls.default().updated(loaded)

    def check(
        self, metrics: Mapping[str, float | None], baseline: Mapping[str, float] | None,
        where: Mapping[str, str] | None = None,
        baseline_rows: int | None = None,
    ) -> tuple[list[CheckOutcome], list[str]]:
        """Apply every threshold whose metric was computed; list the others as skipped.

        ``baseline_rows``: the holdout's size, for thresholds with a binomial tolerance.
        """
        outcomes, skipped = [], []
        for metric, threshold in self.items.items():
            value = metrics.get(metric)
            if value is None or not math.isfinite(value):
                skipped.append(metric)
                continue
            limit, basis = threshold.resolve(baseline, baseline_rows)
            passed = value <= limit if threshold.direction == "max" else value >= limit
            outcomes.append(
                CheckOutcome(CHECKABLE[metric].label, metric, float(value), float(limit), threshold.direction,
                             bool(passed), threshold.group, basis, (where or {}).get(metric, ""))
            )
        return outcomes, skipped

    def to_dict(self) -> dict[str, dict]:
        return {metric: asdict(t) for metric, t in self.items.items()}
