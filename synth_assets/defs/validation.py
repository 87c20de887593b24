"""Validation: the report on utility and privacy, and the blocking checks of the gate."""


import functools
import json
from pathlib import Path

import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.defs.automation import RELEASE_AUTOMATION
from synth_assets.defs.metadata import png_markdown, suite_check_result
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs

VALIDATION_CODE_VERSION = "1"


class ValidationConfig(dg.Config):
    """Evaluation sample size (metrics on a sample keep the report fast) and seed."""

    max_rows: int = 20_000
    seed: int = 0


def report_dir(project: ProjectResource, wave: str) -> Path:
    return project.layout.reports / wave


def _sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return df.sample(n=n, random_state=seed).reset_index(drop=True) if len(df) > n else df.reset_index(drop=True)


def _analysis_columns(df: pd.DataFrame, catalog: Catalog) -> list[str]:
    """Identifiers carry no statistical content: leave them out of every metric."""
    ids = {catalog.register.id_column, catalog.register.household_id_column, "replicate"}
    return [c for c in df.columns if c not in ids]


def build_validation_report(catalog: Catalog) -> dg.AssetsDefinition:
    @dg.asset(
        name="validation_report",
        automation_condition=RELEASE_AUTOMATION,
        group_name="validation",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=VALIDATION_CODE_VERSION,
        kinds={"html"},
        ins={
            "fictitious": dg.AssetIn("fictitious_dataset"),
            "training": dg.AssetIn("training_sample"),
            "holdout": dg.AssetIn("holdout_sample"),
        },
        description=(
            "Utility (per-variable distributions, k-marginal scores, propensity pMSE and AUC, "
            "catalog regressions) and privacy (exact copies, distance to closest record against "
            "the holdout, membership inference) of the fictitious data, each figure next to "
            "what an independent real sample gives. Writes report.html and metrics.json."
        ),
    )
    def validation_report(
        context: dg.AssetExecutionContext, config: ValidationConfig, project: ProjectResource,
        fictitious: pd.DataFrame, training: pd.DataFrame, holdout: pd.DataFrame,
    ) -> dg.MaterializeResult:
        from synth_assets.validation import RegressionSpec, Thresholds, evaluate, headline_markdown, write_report

        release = project.catalog.release
        columns = _analysis_columns(training, project.catalog)
        first = fictitious[fictitious["replicate"] == 1] if "replicate" in fictitious else fictitious
        replicates = [g[columns] for _, g in fictitious.groupby("replicate")] if "replicate" in fictitious else None
        # Equal-sized train and holdout samples: the distance-to-closest-record share is then 0.5
        # for a generator that is no closer to its training records than to unseen people.
        n = min(config.max_rows, len(holdout), len(training))
        result = evaluate(
            _sample(training[columns], n, config.seed),
            _sample(first[columns], n, config.seed),
            holdout=_sample(holdout[columns], n, config.seed),
            quasi_identifiers=[c for c in release.quasi_identifiers if c in columns],
            sensitive=[c for c in release.sensitive if c in columns],
            rules=release.rules,
            regressions=[RegressionSpec(**r.model_dump()) for r in release.regressions],
            replicates=[_sample(r, n, config.seed) for r in replicates] if replicates else None,
            thresholds=Thresholds.default().updated(release.thresholds),
            seed=config.seed,
        )
        out = report_dir(project, context.partition_key)
        write_report(result, out)
        metadata = {
            "report": dg.MetadataValue.path(str(out / "report.html")),
            "metrics_file": dg.MetadataValue.path(str(out / "metrics.json")),
            "passed": result.passed,
            "failed_checks": ", ".join(result.failed) or "none",
            "headline": dg.MetadataValue.md(headline_markdown(result)),
        }
        # The plots people look at first, shown in the UI beside the figures.
        for name in ("privacy:dcr", "association:cramers_v"):
            if name in result.figures:
                metadata[f"plot_{name.split(':')[1]}"] = png_markdown(result.figures[name], name)
        for key in ("kmarginal_1", "kmarginal_2", "kmarginal_3", "pmse_ratio", "propensity_auc",
                    "exact_copy_rate", "dcr_share", "mia_auc"):
            value = result.metrics.get(key)
            if isinstance(value, (int, float)):
                metadata[key] = float(value)
        return dg.MaterializeResult(metadata=metadata)

    return validation_report



def build_validation_checks(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    partitions = wave_partitions(catalog.register_name)

    @dg.asset_check(
        asset="validation_report",
        name="thresholds_pass",
        blocking=True,
        partitions_def=partitions,
        description="Every utility and privacy threshold of the catalog passes (metric, value, threshold).",
    )
    def thresholds_pass(context: dg.AssetCheckExecutionContext, project: ProjectResource) -> dg.AssetCheckResult:
        path = report_dir(project, context.partition_key) / "metrics.json"
        metrics = json.loads(path.read_text())
        failed = [c for c in metrics.get("checks", []) if not c.get("passed")]
        lines = [c["message"] for c in failed]
        return dg.AssetCheckResult(
            passed=not failed,
            description="; ".join(lines) if lines else None,
            metadata={"failed": dg.MetadataValue.md("\n".join(f"- {x}" for x in lines) or "none")},
        )

    # Asset checks ignore partition mappings, so the survey records come through the
    # per-release donor assets rather than from every harmonised wave.
    ins = {"matched": dg.AssetIn("matched_dataset")}
    ins.update({f"donor_{name}": dg.AssetIn(f"donor_{name}") for name in catalog.surveys})

    @dg.asset_check(  # type: ignore[misc]
        asset="fictitious_dataset",
        name="no_real_record_copied",
        blocking=True,
        partitions_def=partitions,
        additional_ins=ins,
        description=(
            "No fictitious record is identical to a record of the matched dataset or of any "
            "survey (on the variables they share), and no record unique in the register "
            "reappears on the register's variables (replicated uniques)."
        ),
    )
    @functools.partial(with_keyword_inputs, names=[n for n in ins if n != "matched"])
    def no_real_record_copied(
        context: dg.AssetCheckExecutionContext, fictitious_dataset: pd.DataFrame, matched: pd.DataFrame, **donors
    ) -> dg.AssetCheckResult:
        from synth_assets.validation.privacy.copies import exact_copy_rate

        ids = {catalog.register.id_column, catalog.register.household_id_column, "replicate"}
        rates = {"matched_dataset": exact_copy_rate(fictitious_dataset.drop(columns=[c for c in ids if c in fictitious_dataset]),
                                                    matched.drop(columns=[c for c in ids if c in matched]))}
        for key, table in donors.items():
            name = key.removeprefix("donor_")
            source = catalog.sources[name]
            skip = {source.id_column, source.household_id_column, source.weight_column}
            shared = [c for c in table.columns if c in fictitious_dataset.columns and c not in skip]
            if shared:
                rates[f"{name}[{table.attrs.get('survey_wave', '?')}]"] = exact_copy_rate(
                    fictitious_dataset[shared], table[shared]
                )
        from synth_assets.validation.privacy.copies import replicated_uniques

        register_columns = [c for c in catalog.register.variables if c in matched.columns and c not in ids]
        uniques = replicated_uniques(fictitious_dataset[register_columns], matched[register_columns])
        rates["register unique records replicated"] = uniques["n_replicated"]
        copied = {k: v for k, v in rates.items() if v > 0}
        return dg.AssetCheckResult(
            passed=not copied,
            description=("records copied: " + ", ".join(
                f"{k} ({v:.2%})" if isinstance(v, float) else f"{k}: {v}" for k, v in copied.items()))
            if copied else None,
            metadata={"exact_copy_rates": dg.MetadataValue.json(rates)},
        )

    @dg.asset_check(
        asset="fictitious_dataset",
        name="rules_and_categories_hold",
        blocking=True,
        partitions_def=partitions,
        description="Great Expectations suite: catalog rules, category sets and ranges hold in every record.",
    )
    def rules_and_categories_hold(
        context: dg.AssetCheckExecutionContext, fictitious_dataset: pd.DataFrame
    ) -> dg.AssetCheckResult:
        from synth_assets.catalog.expectations import fictitious_suite_spec
        from synth_assets.catalog.expectations import validate_table

        result = validate_table(fictitious_dataset, fictitious_suite_spec(catalog, fictitious_dataset))
        return suite_check_result(result)

    return [thresholds_pass, no_real_record_copied, rules_and_categories_hold]
