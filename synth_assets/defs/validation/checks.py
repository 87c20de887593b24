"""Validation's blocking checks: the report's thresholds pass, no real record copied, rules hold.

Each takes what it judges as an input: ``thresholds_pass`` the report's value (the verdict),
the others the fictitious dataset and the real tables they compare it with.
"""

import functools
from typing import Any

import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.catalog.expectations import fictitious_suite_spec, validate_table
from synth_assets.defs import keys
from synth_assets.defs.metadata import JUDGED_HASH, data_docs, judged, suite_check_result
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.defs.values import WaveTable
from synth_assets.validation.privacy.copies import exact_copy_rate, replicated_uniques


def build_validation_checks(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    partitions = wave_partitions(catalog.register_name)

    @dg.asset_check(
        asset=keys.VALIDATION_REPORT,
        name=keys.THRESHOLDS_PASS,
        blocking=True,
        partitions_def=partitions,
        description="Every utility and privacy threshold of the catalog passes (metric, value, threshold).",
    )
    def thresholds_pass(validation_report: dict[str, Any]) -> dg.AssetCheckResult:
        failed = [c for c in validation_report.get("checks", []) if not c.get("passed")]
        lines = [c["message"] for c in failed]
        return dg.AssetCheckResult(
            passed=not failed and bool(validation_report.get("passed")),
            description="; ".join(lines) if lines else None,
            # the report's judged hash, so the gate knows which data this verdict is about
            metadata={"failed": dg.MetadataValue.md("\n".join(f"- {x}" for x in lines) or "none"),
                      JUDGED_HASH: validation_report.get(JUDGED_HASH, "none")},
        )

    # Asset checks ignore partition mappings, so the survey records come through the
    # per-release donor assets rather than from every harmonised wave.
    ins = {"matched": dg.AssetIn(keys.MATCHED_DATASET)}
    ins.update({keys.name(keys.donor(name)): dg.AssetIn(keys.donor(name)) for name in catalog.surveys})

    @dg.asset_check(
        asset=keys.FICTITIOUS_DATASET,
        name=keys.NO_REAL_RECORD_COPIED,
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
        context: dg.AssetCheckExecutionContext, fictitious_dataset: pd.DataFrame, matched: pd.DataFrame,
        **donors: WaveTable,
    ) -> dg.AssetCheckResult:
        ids = {catalog.register.id_column, catalog.register.household_id_column, "replicate"}
        rates: dict[str, float] = {"matched_dataset": exact_copy_rate(fictitious_dataset.drop(columns=[c for c in ids if c in fictitious_dataset]),
                                                    matched.drop(columns=[c for c in ids if c in matched]))}
        for donor in donors.values():
            source = catalog.sources[donor.origin.source]
            skip = {source.id_column, source.household_id_column, source.weight_column}
            shared = [c for c in donor.data.columns if c in fictitious_dataset.columns and c not in skip]
            if shared:
                rates[f"{donor.origin.source}[{donor.wave}]"] = exact_copy_rate(
                    fictitious_dataset[shared], donor.data[shared]
                )
        register_columns = [c for c in catalog.register.variables if c in matched.columns and c not in ids]
        uniques = replicated_uniques(fictitious_dataset[register_columns], matched[register_columns])
        rates["register unique records replicated"] = uniques["n_replicated"]
        copied = {k: v for k, v in rates.items() if v > 0}
        return dg.AssetCheckResult(
            passed=not copied,
            description=("records copied: " + ", ".join(
                f"{k} ({v:.2%})" if isinstance(v, float) else f"{k}: {v}" for k, v in copied.items()))
            if copied else None,
            metadata={"exact_copy_rates": dg.MetadataValue.json(rates), **judged(fictitious_dataset)},
        )

    @dg.asset_check(
        asset=keys.FICTITIOUS_DATASET,
        name=keys.RULES_AND_CATEGORIES_HOLD,
        blocking=True,
        partitions_def=partitions,
        description="Great Expectations suite: catalog rules, category sets and ranges hold in every record.",
    )
    def rules_and_categories_hold(
        context: dg.AssetCheckExecutionContext, project: ProjectResource, fictitious_dataset: pd.DataFrame
    ) -> dg.AssetCheckResult:
        result = validate_table(fictitious_dataset, fictitious_suite_spec(catalog, fictitious_dataset),
                                docs=data_docs(project, context))
        return suite_check_result(result, judged(fictitious_dataset))

    return [thresholds_pass, no_real_record_copied, rules_and_categories_hold]
