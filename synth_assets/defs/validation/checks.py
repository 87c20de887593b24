"""Validation's blocking checks: the report's thresholds pass, no real record copied, rules hold.

Each takes what it judges as an input: ``thresholds_pass`` the report's value (the verdict),
the others the fictitious dataset and the real tables they compare it with.
"""

import functools
from typing import Any

import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.catalog.expectations import fictitious_suite_spec, validate_chunks
from synth_assets.common.frames import ParquetTable
from synth_assets.defs import keys, working_sets
from synth_assets.defs.metadata import JUDGED_HASH, data_docs, judged, suite_check_result
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ComputeResource, ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.defs.values import WaveTable
from synth_assets.validation.privacy.copies import disclosive_copies_by_blocks


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
        op_tags=working_sets.POPULATION,
        blocking=True,
        partitions_def=partitions,
        additional_ins=ins,
        description=(
            "No fictitious record discloses a real one: none equals a record of the matched dataset "
            "on every variable, and none reproduces (on the variables they share) a record of the "
            "matched dataset, a survey or the register that fewer than `release.disclosure.k` records "
            "share the quasi-identifiers with (replicated rare records)."
        ),
    )
    @functools.partial(with_keyword_inputs, names=[n for n in ins if n != "matched"])
    def no_real_record_copied(
        context: dg.AssetCheckExecutionContext, compute: ComputeResource, fictitious_dataset: ParquetTable,
        matched: ParquetTable, **donors: WaveTable,
    ) -> dg.AssetCheckResult:
        ids = {catalog.register.id_column, catalog.register.household_id_column}
        columns = [c for c in matched.columns if c not in ids and c in fictitious_dataset.columns]
        release = catalog.release
        # the matched data hashed a row group at a time (DisclosureIndex): its hashes held, not its rows
        references: dict[str, pd.DataFrame | ParquetTable] = {"matched_dataset": matched.select(columns)}
        for donor in donors.values():
            source = catalog.sources[donor.origin.source]
            skip = {source.id_column, source.household_id_column, source.weight_column}
            references[f"{donor.origin.source}[{donor.wave}]"] = donor.data.drop(
                columns=[c for c in skip if c in donor.data])
        register_columns = [c for c in catalog.register.variables if c in columns]
        references["register"] = matched.select(register_columns)
        # every record of every replicate judged, a row group of the release at a time
        found = disclosive_copies_by_blocks(fictitious_dataset.frames(columns), references, columns,
                                            list(release.quasi_identifiers), release.disclosure.k,
                                            processes=working_sets.piece_processes(compute.processes))
        copied = {f"{name}: {kind}": n for name, counts in found.items() for kind, n in counts.items() if n}
        return dg.AssetCheckResult(
            passed=not copied,
            description=("records disclosing a real record (copy filters, k = "
                         f"{release.disclosure.k} on {', '.join(release.quasi_identifiers) or 'every variable'}): "
                         + ", ".join(f"{k}: {v}" for k, v in copied.items())) if copied else None,
            metadata={"disclosive_records": dg.MetadataValue.json(found), "k": release.disclosure.k,
                      "quasi_identifiers": dg.MetadataValue.json(list(release.quasi_identifiers)),
                      **judged(fictitious_dataset)},
        )

    @dg.asset_check(
        asset=keys.FICTITIOUS_DATASET,
        name=keys.RULES_AND_CATEGORIES_HOLD,
        op_tags=working_sets.POPULATION,
        blocking=True,
        partitions_def=partitions,
        description="Great Expectations suite: catalog rules, category sets and ranges hold in every record.",
    )
    def rules_and_categories_hold(
        context: dg.AssetCheckExecutionContext, project: ProjectResource, compute: ComputeResource,
        fictitious_dataset: ParquetTable,
    ) -> dg.AssetCheckResult:
        # the release's row groups in batches of validate_chunks' size, not every replicate at once;
        # the batches side by side in forked children, each holding its own (GE's pandas holds the GIL).
        # A population step, not a streamed one: its children's batches with GE's copies (about 0.5 GB
        # each) beside a population check took a 2-million-person run to 4,247 MiB (bench/README.md,
        # "Twenty-second pass")
        result = validate_chunks(fictitious_dataset.frames(), fictitious_suite_spec(catalog, fictitious_dataset.empty()),
                                 docs=data_docs(project, context),
                                 processes=working_sets.piece_processes(compute.processes))
        return suite_check_result(result, {"table": dg.MetadataValue.path(str(fictitious_dataset.path)),
                                           **judged(fictitious_dataset)})

    return [thresholds_pass, no_real_record_copied, rules_and_categories_hold]
