"""The gate: the public dataset, written only when every check upstream has passed."""


import json

import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.defs.gating import failed_checks, latest_materialization
from synth_assets.defs.automation import RELEASE_AUTOMATION
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.validation import report_dir
from synth_assets.publication import publish_release

PUBLICATION_CODE_VERSION = "1"
GATE_CHECKS = {
    "fictitious_dataset": ["no_real_record_copied", "rules_and_categories_hold", "calibrated_to_register"],
    "validation_report": ["thresholds_pass"],
}


def build_public_dataset(catalog: Catalog) -> dg.AssetsDefinition:
    @dg.asset(
        name="public_dataset",
        automation_condition=RELEASE_AUTOMATION,
        group_name="publication",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=PUBLICATION_CODE_VERSION,
        kinds={"parquet"},
        ins={"fictitious": dg.AssetIn("fictitious_dataset")},
        deps=["validation_report", "gan_model"],
        description=(
            "The public release under data/public/<release>/: fictitious replicates, the validation "
            "report and a data card (provenance, model, metrics, thresholds, checksums). "
            "Materialises only when every blocking check passed; a refusal leaves the previous "
            "release in place."
        ),
    )
    def public_dataset(
        context: dg.AssetExecutionContext, project: ProjectResource, fictitious: pd.DataFrame
    ) -> dg.MaterializeResult:
        wave = context.partition_key
        # Blocking checks stop later steps of their own run; re-check here so a release
        # materialised on its own (from the UI, say) cannot skip them.
        problems = [
            p for asset, names in GATE_CHECKS.items()
            for p in failed_checks(context.instance, dg.AssetKey(asset), names, wave)
        ]
        if problems:
            raise dg.Failure(description="publication refused:\n" + "\n".join(problems))
        reports = report_dir(project, wave)
        metrics = json.loads((reports / "metrics.json").read_text())
        matched = latest_materialization(context.instance, dg.AssetKey("matched_dataset"), wave)
        used = matched.get("metadata", {}).get("survey_waves_used", {})
        provenance = {}
        for source_name in catalog.sources:
            source_wave = wave if source_name == catalog.register_name else used.get(source_name)
            raw = latest_materialization(context.instance, dg.AssetKey(f"raw_{source_name}"), source_wave)
            meta = raw.get("metadata", {})
            provenance[source_name] = {
                "wave": source_wave, "file": meta.get("source_file"), "sha256": meta.get("sha256"),
                "ingest_run": raw.get("run_id"),
            }
        model = latest_materialization(context.instance, dg.AssetKey("gan_model"), wave)
        model_meta = model.get("metadata", {})
        target, card = publish_release(
            fictitious,
            public_dir=project.layout.public,
            wave=wave,
            report_dir=reports,
            provenance=provenance,
            model={k: model_meta.get(k) for k in ("family", "person_family", "parameters", "training_seconds", "epochs_run", "device")}
            | {"run_id": model.get("run_id")},
            metrics={k: v for k, v in metrics.get("metrics", {}).items() if isinstance(v, (int, float))},
            checks=metrics.get("checks", []),
        )
        context.log.info(f"published release {card.release} to {target}")
        return dg.MaterializeResult(
            metadata={
                "release": card.release,
                "path": dg.MetadataValue.path(str(target)),
                "data_card": dg.MetadataValue.md(card.to_markdown()),
                "checksums": dg.MetadataValue.json(card.checksums),
            }
        )

    return public_dataset
