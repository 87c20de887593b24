"""The gate: the public dataset, written only when every check upstream has passed.

Passed on what? Each blocking check of ``fictitious_dataset`` and ``validation_report``
records the content hash of the fictitious data it judged; the gate publishes only the
data it receives when its hash is the one every check and the report judged. A
fictitious dataset drawn again (another seed), or a warehouse table replaced by hand,
therefore needs a fresh validation before it can be published.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.defs.automation import RELEASE_AUTOMATION
from synth_assets.defs.gating import latest_check_evaluations, latest_materialization
from synth_assets.defs.metadata import JUDGED_HASH
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.inference.guide import inference_card
from synth_assets.publication import publish_release, release_id
from synth_assets.storage import dataframe_sha256

PUBLICATION_CODE_VERSION = "2"
GATE_CHECKS = {
    "fictitious_dataset": ["no_real_record_copied", "rules_and_categories_hold", "calibrated_to_register",
                           "amounts_top_coded"],
    "validation_report": ["thresholds_pass"],
}


def gate_problems(instance: dg.DagsterInstance, wave: str, received: str, report: dict) -> list[str]:
    """Why ``fictitious`` with hash ``received`` may not be published (empty: it may).

    A check counts only if its latest evaluation passed AND judged these very bytes; the
    report only if it passed and judged them too.
    """
    problems = []
    for asset, names in GATE_CHECKS.items():
        for name, evaluation in latest_check_evaluations(instance, dg.AssetKey(asset), names, wave).items():
            where = f"{asset}[{wave}] check {name}"
            if evaluation is None:
                problems.append(f"{where}: never evaluated")
            elif not evaluation.passed:
                problems.append(f"{where}: {evaluation.status}")
            elif evaluation.metadata.get(JUDGED_HASH) != received:
                problems.append(f"{where} judged fictitious_dataset sha256 {evaluation.metadata.get(JUDGED_HASH)}, "
                                f"not the one received ({received})")
    if report.get(JUDGED_HASH) != received:
        problems.append(f"validation_report[{wave}] judged fictitious_dataset sha256 {report.get(JUDGED_HASH)}, "
                        f"not the one received ({received}): validate this fictitious_dataset again")
    if not report.get("passed"):
        problems.append(f"validation_report[{wave}] did not pass: {'; '.join(report.get('failed', [])) or 'no verdict'}")
    return problems


def build_public_dataset(catalog: Catalog) -> dg.AssetsDefinition:
    @dg.asset(
        name="public_dataset",
        automation_condition=RELEASE_AUTOMATION,
        group_name="publication",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=PUBLICATION_CODE_VERSION,
        kinds={"parquet"},
        ins={"fictitious": dg.AssetIn("fictitious_dataset"), "report": dg.AssetIn("validation_report")},
        deps=["gan_model"],
        description=(
            "The public release under data/public/<release>/: fictitious replicates, the validation "
            "report and a data card (provenance, model, metrics, thresholds, checksums). "
            "Materialises only when every blocking check passed on these very data (same content "
            "hash as each check and the report judged); a refusal leaves the previous release in place."
        ),
    )
    def public_dataset(
        context: dg.AssetExecutionContext, project: ProjectResource, fictitious: pd.DataFrame, report: dict
    ) -> dg.MaterializeResult:
        wave = context.partition_key
        # Blocking checks stop later steps of their own run only, and know nothing of what was
        # materialised since: re-check here, on the hash of the data actually received.
        received = dataframe_sha256(fictitious)
        problems = gate_problems(context.instance, wave, received, report)
        if problems:
            raise dg.Failure(description="publication refused:\n" + "\n".join(problems))
        matched = latest_materialization(context.instance, dg.AssetKey("matched_dataset"), wave)
        used = matched.get("metadata", {}).get("survey_waves_used", {})
        provenance = {}
        for source_name in catalog.sources:
            source_wave = wave if source_name == catalog.register_name else used.get(source_name)
            raw = latest_materialization(context.instance, dg.AssetKey(f"raw_{source_name}"), source_wave)
            meta = raw.get("metadata", {})
            provenance[source_name] = {
                "wave": source_wave, "file": meta.get("source_file"), "sha256": meta.get("sha256"),
                "ingest_run": raw.get("run_id"), "persons": meta.get("rows"),
            }
        model = latest_materialization(context.instance, dg.AssetKey("gan_model"), wave)
        model_meta = model.get("metadata", {})
        target, card = publish_release(
            fictitious,
            public_dir=project.layout.public,
            wave=wave,
            release=release_id(wave, unique=context.run_id[:8]),
            report_dir=Path(report["report_dir"]),
            report_checksums=report.get("files"),
            provenance=provenance,
            model={k: model_meta.get(k) for k in ("family", "person_family", "parameters", "training_seconds", "epochs_run", "device")}
            | {"run_id": model.get("run_id")},
            metrics={k: v for k, v in report.get("metrics", {}).items() if isinstance(v, (int, float))},
            checks=report.get("checks", []),
            inference=inference_card(catalog, {k: v.get("persons") for k, v in provenance.items()}),
            validation={JUDGED_HASH: received, "report": str(Path(report["report_dir"]) / "report.html"),
                        "report_run_id": report.get("run_id")},
        )
        context.log.info(f"published release {card.release} to {target}")
        return dg.MaterializeResult(
            metadata={
                "release": card.release,
                "path": dg.MetadataValue.path(str(target)),
                "data_card": dg.MetadataValue.md(card.to_markdown()),
                "checksums": dg.MetadataValue.json(card.checksums),
                JUDGED_HASH: received,
            }
        )

    return public_dataset
