"""Linked tables: each record survey's diary days or trips, generated for the fictitious persons.

Per record survey (the catalog's sources with ``records``), partitioned by register wave like
the rest of the release:

* ``survey_records_<source>``: the survey's harmonised episodes or trips, of the very file
  the release fused (the donor's wave). Never public.
* ``linked_<source>``: for every replicate, the days and their records generated from each
  fictitious person's aggregates (``synth_assets.synthesis.linked``), keyed by replicate,
  person and household.

Its checks take the table as their input: ``no_real_day_copied`` and
``aggregates_agree_with_persons`` block (the gate publishes a table only when both passed on
its very bytes, the latter on the very persons too); ``distributions_against_survey`` reports.
"""


import functools
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetStack, ParquetTable
from synth_assets.defs import keys, working_sets
from synth_assets.defs.automation.conditions import RELEASE_AUTOMATION, donor_automation
from synth_assets.defs.metadata import JUDGED_HASH, evaluation_problem, judged, png_markdown
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.defs.values import WaveTable
from synth_assets.defs.versions import code_version
from synth_assets.harmonise import harmonise_record_rows
from synth_assets.synthesis.linked import (
    aggregate_differences,
    copied_days,
    copy_columns,
    distribution_columns,
    distributions_plot,
    linked_distributions,
    linked_records,
)

#: A hash of the source this module runs (see ``defs/versions.py``).
LINKED_CODE_VERSION = code_version(__name__)

#: Metadata key under which the linked table's checks record the hash of the table they judged.
LINKED_HASH = "linked_sha256"


class LinkedConfig(dg.Config):
    """Seed of the generated days (replicate r draws with ``seed + r``)."""

    seed: int = Field(default=0, ge=0)


def record_surveys(catalog: Catalog) -> list[str]:
    """The surveys whose rows are diary episodes or trips."""
    return [name for name, source in catalog.surveys.items() if source.records is not None]


def build_survey_records(catalog: Catalog, survey: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.survey_records(survey),
        group_name="matching",
        partitions_def=wave_partitions(catalog.register_name),
        automation_condition=donor_automation(keys.donor(survey)),  # its donor rebuilt, not every raw wave
        code_version=LINKED_CODE_VERSION,
        kinds={"pandas"},
        ins={
            "donor": dg.AssetIn(keys.donor(survey)),
            "raw": dg.AssetIn(keys.raw(survey), partition_mapping=dg.AllPartitionMapping(),
                              metadata={"partitions_as_dict": True, "allow_missing_partitions": True}),
        },
        description=(
            f"The {survey} survey's {catalog.sources[survey].records.unit}s (harmonised, derived "  # type: ignore[union-attr]
            "variables included) of the file this release fused: the donor's wave. What the linked "
            "table is generated from and checked against. Never public."
        ),
    )
    def survey_records(donor: WaveTable, raw: dict[str, WaveTable]) -> dg.Output[WaveTable]:
        delivered = raw.get(donor.wave)
        if delivered is None or delivered.origin.sha256 != donor.origin.sha256:
            raise dg.Failure(f"survey {survey!r} wave {donor.wave}: the raw file read is not the one the donor "
                             f"was harmonised from (sha256 {donor.origin.sha256})")
        rows = harmonise_record_rows(delivered.data, catalog, survey, file=delivered.origin.file,
                                     value_labels=delivered.value_labels)
        return dg.Output(WaveTable(rows, delivered.origin),
                         metadata={"survey_wave": donor.wave, "rows": len(rows),
                                   "days": int(rows[[catalog.sources[survey].id_column or "person_id", "day_id"]]
                                               .drop_duplicates().shape[0])})

    return survey_records


def _distribution_metadata(table: pd.DataFrame, survey: str) -> dict[str, Any]:
    return {"distributions": dg.MetadataValue.md(table.round(4).to_markdown(index=False)),
            "plot_distributions": png_markdown(distributions_plot(table, f"{survey}: generated vs survey"),
                                               f"{survey} distributions")}


def build_linked(catalog: Catalog, survey: str) -> dg.AssetsDefinition:
    source = catalog.sources[survey]
    register = catalog.register
    person_id = register.id_column or "person_id"

    @dg.asset(
        key=keys.linked(survey),
        op_tags=working_sets.STREAMED,
        automation_condition=RELEASE_AUTOMATION,
        group_name="synthesis",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=LINKED_CODE_VERSION,
        kinds={"pandas"},
        ins={"fictitious": dg.AssetIn(keys.FICTITIOUS_DATASET), "records": dg.AssetIn(keys.survey_records(survey))},
        description=(
            f"Generated {source.records.unit}s of the fictitious persons' days, every replicate "  # type: ignore[union-attr]
            f"(columns replicate, {person_id}, {register.household_id_column}, day_id, record_id, ...): "
            f"built from each person's {survey} aggregates, never copied from a real day. Candidate for publication."
        ),
    )
    def linked_table(context: dg.AssetExecutionContext, config: LinkedConfig, fictitious: ParquetTable,
                     records: WaveTable) -> dg.Output[ParquetTable]:
        # one row group of a replicate's persons and their records in memory at a time, each written as it is made
        stack = ParquetStack()
        real = days = 0
        for part in linked_records(person_blocks(fictitious), records.data, source, person_id=person_id,
                                   household_id=register.household_id_column, seed=config.seed):
            stack.append(part)
            real += int(pd.to_numeric(part["record_id"]).gt(0).sum())
            days += int(part[[person_id, "day_id"]].drop_duplicates().shape[0])  # days lie within a replicate
            del part
        table = stack.finish()
        # Its distributions beside the survey's are its check's report (distributions_against_survey),
        # computed there from the very bytes: not a second read of the table here.
        return dg.Output(table, metadata={
            "rows": table.num_rows, f"{source.records.unit}s": real,  # type: ignore[union-attr]
            "days": days, "survey_wave": records.wave, **judged(fictitious)})

    return linked_table


def build_linked_checks(catalog: Catalog, survey: str) -> list[dg.AssetChecksDefinition]:
    source = catalog.sources[survey]
    person_id = catalog.register.id_column or "person_id"
    partitions = wave_partitions(catalog.register_name)
    records_in = {"records": dg.AssetIn(keys.survey_records(survey))}
    unit = source.records.unit  # type: ignore[union-attr]
    checked = keys.name(keys.linked(survey))  # the checked table reaches each check under its asset's name

    @dg.asset_check(
        asset=keys.linked(survey), name=keys.NO_REAL_DAY_COPIED, blocking=True, partitions_def=partitions,
        op_tags=working_sets.STREAMED,
        additional_ins=records_in,
        description=(f"No generated day equals a real {survey} day {unit} for {unit}: a hash join of each day's "
                     f"sequence of ({', '.join(copy_columns(source))}), numbers rounded to the minute or 100 m, "
                     "against every day of the survey file the release fused."),
    )
    @functools.partial(with_keyword_inputs, names=[checked], annotations={checked: ParquetTable})
    def no_real_day_copied(records: WaveTable, **inputs: ParquetTable) -> dg.AssetCheckResult:
        asset_value = inputs[checked]
        copied = copied_days(asset_value, records.data, person_id, copy_columns(source),
                             ["replicate", person_id, "day_id"])
        return dg.AssetCheckResult(
            passed=copied == 0,
            description=f"{copied} generated days equal a real {survey} day" if copied else None,
            metadata={"copied_days": copied, "survey_wave": records.wave, LINKED_HASH: asset_value.sha256()})

    @dg.asset_check(
        asset=keys.linked(survey), name=keys.AGGREGATES_AGREE, blocking=True, partitions_def=partitions,
        op_tags=working_sets.STREAMED,
        additional_ins={"fictitious": dg.AssetIn(keys.FICTITIOUS_DATASET)},
        description=(f"Every fictitious person in the {survey} universe has {unit}s whose aggregates, recomputed "
                     "with the catalog's aggregation, equal the person's (within 1e-6: float rounding)."),
    )
    @functools.partial(with_keyword_inputs, names=[checked], annotations={checked: ParquetTable})
    def aggregates_agree(fictitious: ParquetTable, **inputs: ParquetTable) -> dg.AssetCheckResult:
        asset_value = inputs[checked]
        # the persons beside their records, a row group of each at a time (both sorted by person)
        table = aggregate_differences(asset_value, fictitious, source, person_id=person_id)
        off = table.loc[table["persons_off"] > 0]
        return dg.AssetCheckResult(
            passed=off.empty,
            description=("persons whose linked records disagree with their aggregates: "
                         + ", ".join(f"{r.aggregate} {r.persons_off} (max {r.max_difference:.4g})"
                                     for r in off.itertuples())) if not off.empty else None,
            metadata={"aggregates": dg.MetadataValue.md(table.to_markdown(index=False)),
                      LINKED_HASH: asset_value.sha256(), **judged(fictitious)})

    @dg.asset_check(
        asset=keys.linked(survey), name=keys.DISTRIBUTIONS_REPORTED, blocking=False, partitions_def=partitions,
        op_tags=working_sets.STREAMED,
        additional_ins=records_in,
        description=(f"Reports the generated {unit}s' distributions beside the survey's days passing the catalog's "
                     "checks (unweighted): records per day, mode shares and departure times, or minutes per "
                     "activity group. Passes whatever they are: a report, not a gate."),
    )
    @functools.partial(with_keyword_inputs, names=[checked], annotations={checked: ParquetTable})
    def distributions(records: WaveTable, **inputs: ParquetTable) -> dg.AssetCheckResult:
        table = linked_distributions(linked_parts(inputs[checked], source, person_id), records.data, source,
                                     person_id=person_id)
        largest = float((table["generated"] - table["survey"]).abs().max()) if len(table) else 0.0
        return dg.AssetCheckResult(passed=True, metadata={"largest_difference": largest,
                                                          **_distribution_metadata(table, survey)})

    return [no_real_day_copied, aggregates_agree, distributions]


def person_blocks(release: ParquetTable, replicate: str = "replicate") -> Iterator[pd.DataFrame]:
    """The release's persons a row group at a time, replicate after replicate (a block never mixes two)."""
    for value in release.values(replicate):
        yield from release.where(replicate, [value]).frames()


def linked_parts(table: ParquetTable, source: Any, person_id: str) -> Iterator[pd.DataFrame]:
    """A linked table read for ``linked_distributions``, only its columns, in parts of whole days: a row
    group at a time where the rows come sorted by day (as ``linked_<survey>`` writes them), else one
    replicate at a time (diaries hold about 60 rows a person: a replicate of a city is tens of millions)."""
    wanted = [c for c in distribution_columns(source, person_id=person_id) if c in table.columns]
    yield from table.whole_parts([c for c in ("replicate", person_id, "day_id") if c in table.columns], wanted)


def linked_gate_problems(latest: dict[str, Any], survey: str, wave: str, received: str, fictitious: str) -> list[str]:
    """Why the linked table of ``survey`` with hash ``received`` may not be published beside the
    fictitious persons with hash ``fictitious`` (``latest``: each gate check's latest evaluation)."""
    problems = []
    linked = keys.linked(survey).to_user_string()
    for name, evaluation in latest.items():
        judged_hashes = {LINKED_HASH: (linked, received)}
        if name == keys.AGGREGATES_AGREE:
            judged_hashes[JUDGED_HASH] = ("fictitious_dataset", fictitious)
        if (problem := evaluation_problem(f"{linked}[{wave}] check {name}", evaluation, judged_hashes)):
            problems.append(problem)
    return problems
