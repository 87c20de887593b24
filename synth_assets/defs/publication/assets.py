"""The gate: the public dataset, written only when every check upstream has passed.

Passed on what? Each blocking check of ``fictitious_dataset`` and ``validation_report``
records the content hash of the fictitious data it judged; the gate publishes only the
data it receives when its hash is the one every check and the report judged. A
fictitious dataset drawn again (another seed), or a warehouse table replaced by hand,
therefore needs a fresh validation before it can be published.

Everything the gate cites arrives as an input: the fictitious data, the report's verdict
(``validation_report``), the source files fused (``matching_report``) and the model
(``population_model``). Only the checks' evaluations come from the instance, since a
check's result is not an asset value.
"""

import functools
from pathlib import Path
from typing import Any

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.dagster_api import latest_check_evaluations
from synth_assets.defs import keys, working_sets
from synth_assets.defs.automation.conditions import RELEASE_AUTOMATION
from synth_assets.defs.metadata import JUDGED_HASH, evaluation_problem
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.defs.synthesis.assets import model_card
from synth_assets.defs.synthesis.linked import linked_gate_problems, record_surveys
from synth_assets.defs.values import MatchingReport, ModelFile
from synth_assets.defs.versions import code_version
from synth_assets.inference.guide import inference_card
from synth_assets.publication import LinkedTable, describe_columns, describe_records, publish_release, release_id

#: A hash of the source this module runs (see ``defs/versions.py``).
PUBLICATION_CODE_VERSION = code_version(__name__)


def gate_problems(instance: dg.DagsterInstance, wave: str, received: str, report: dict[str, Any]) -> list[str]:
    """Why ``fictitious`` with hash ``received`` may not be published (empty: it may).

    A check counts only if its latest evaluation passed AND judged these very bytes; the
    report only if it passed and judged them too.
    """
    problems = []
    for asset, names in keys.GATE_CHECKS.items():
        for name, evaluation in latest_check_evaluations(instance, asset, names, wave).items():
            problem = evaluation_problem(f"{asset.to_user_string()}[{wave}] check {name}", evaluation,
                                         {JUDGED_HASH: ("fictitious_dataset", received)})
            if problem:
                problems.append(problem)
    if report.get(JUDGED_HASH) != received:
        problems.append(f"validation_report[{wave}] judged fictitious_dataset sha256 {report.get(JUDGED_HASH)}, "
                        f"not the one received ({received}): validate this fictitious_dataset again")
    if not report.get("passed"):
        problems.append(f"validation_report[{wave}] did not pass: {'; '.join(report.get('failed', [])) or 'no verdict'}")
    return problems


def build_public_dataset(catalog: Catalog) -> dg.AssetsDefinition:
    linked_inputs = {keys.name(keys.linked(s)): s for s in record_surveys(catalog)}  # input name -> survey
    person_keys = [c for c in (catalog.register.id_column, catalog.register.household_id_column) if c]

    @dg.asset(
        key=keys.PUBLIC_DATASET,
        op_tags=working_sets.STREAMED,
        automation_condition=RELEASE_AUTOMATION,
        group_name="publication",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=PUBLICATION_CODE_VERSION,
        kinds={"parquet"},
        ins={
            "fictitious": dg.AssetIn(keys.FICTITIOUS_DATASET),
            "report": dg.AssetIn(keys.VALIDATION_REPORT),
            "matching": dg.AssetIn(keys.MATCHING_REPORT),
            "model": dg.AssetIn(keys.POPULATION_MODEL),
            **{name: dg.AssetIn(keys.linked(s)) for name, s in linked_inputs.items()},
        },
        description=(
            "The public release under data/public/<release>/: fictitious replicates (beside each, its "
            "linked diary and trip tables), the validation "
            "report and a data card (provenance, model, metrics, thresholds, checksums). "
            "Materialises only when every blocking check passed on these very data (same content "
            "hash as each check and the report judged); a refusal leaves the previous release in place."
        ),
    )
    # The release and its linked tables arrive as ParquetTable (left on disk, read a row group at a
    # time): the gate hashes them and copies them out by replicate, and holds no table whole.
    @functools.partial(with_keyword_inputs, names=list(linked_inputs), annotations=dict.fromkeys(linked_inputs, ParquetTable))
    def public_dataset(
        context: dg.AssetExecutionContext, project: ProjectResource, fictitious: ParquetTable,
        report: dict[str, Any], matching: MatchingReport, model: ModelFile, **linked: ParquetTable,
    ) -> dg.MaterializeResult:
        wave = context.partition_key
        # Blocking checks stop later steps of their own run only, and know nothing of what was
        # materialised since: re-check here, on the hash of the data actually received. Said first:
        # hashing a city's release and its diaries takes seconds to tens of seconds
        context.log.info(f"the gate: hashing the release ({fictitious.num_rows:,} records) and its linked tables "
                         f"({', '.join(f'{t.num_rows:,} {linked_inputs[n]} records' for n, t in linked.items()) or 'none'}) "
                         "to compare them with what every check and the report judged")
        received = fictitious.sha256()  # dataframe_sha256 of the table, as each check computed it
        problems = gate_problems(context.instance, wave, received, report)
        for name, table in linked.items():
            survey = linked_inputs[name]
            latest = latest_check_evaluations(context.instance, keys.linked(survey), keys.LINKED_GATE_CHECKS, wave)
            problems += linked_gate_problems(latest, survey, wave, table.sha256(), received)
        if problems:
            raise dg.Failure(description="publication refused:\n" + "\n".join(problems))
        card_of_model = model_card(model)  # its run id is for auditors (metadata), not the public card
        provenance = {
            name: {"wave": origin.wave, "file": origin.file, "sha256": origin.sha256, "ingest_run": origin.ingest_run}
            for name, origin in matching.sources.items()
        }
        context.log.info("the gate: every judgement is about this data; writing the release's replicates, "
                         "linked tables, report and data card")
        target, card = publish_release(
            fictitious,
            public_dir=project.layout.public,
            wave=wave,
            release=release_id(wave, unique=context.run_id[:8]),
            report_dir=Path(report["report_dir"]),
            report_checksums=report.get("files"),
            provenance=provenance,
            model={k: v for k, v in card_of_model.items() if k != "run_id"},
            metrics={k: v for k, v in report.get("metrics", {}).items() if isinstance(v, (int, float))},
            checks=report.get("checks", []),
            validation={JUDGED_HASH: received},
            columns=describe_columns(fictitious.empty().drop(columns=["replicate"], errors="ignore"), catalog),
            title=catalog.release.title,
            licence=catalog.release.licence.model_dump(),
            inference=inference_card(catalog, matching.respondents),
            linked={f"{s}_{catalog.sources[s].records.unit}s": LinkedTable(  # type: ignore[union-attr]
                linked[name], catalog.sources[s].records.unit, person_keys,  # type: ignore[union-attr]
                describe_records(linked[name].empty().drop(columns=["replicate"]), catalog, s))
                for name, s in linked_inputs.items()},
        )
        context.log.info(f"published release {card.release} to {target}")
        return dg.MaterializeResult(
            metadata={
                "release": card.release,
                "path": dg.MetadataValue.path(str(target)),
                "data_card": dg.MetadataValue.md(card.to_markdown()),
                "checksums": dg.MetadataValue.json(card.checksums),
                JUDGED_HASH: received,
                # internal provenance, for auditors: the public card keeps only waves and sha256s
                "provenance": dg.MetadataValue.json(provenance),
                "report": dg.MetadataValue.path(str(Path(report["report_dir"]) / "report.html")),
                "model_run_id": card_of_model.get("run_id") or "",
            }
        )

    return public_dataset
