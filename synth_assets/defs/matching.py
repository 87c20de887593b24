"""Statistical matching: the register base enriched with every survey's specific variables."""


import functools

import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.defs.gating import failed_checks
from synth_assets.defs.automation import RELEASE_AUTOMATION
from synth_assets.defs.partitions import latest_wave_at_or_before, wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.matching.sources import assert_no_survey_ids, fuse_sources

MATCHING_CODE_VERSION = "1"
UPSTREAM_CHECKS = {"raw": ["delivered_file_is_valid"], "harmonised": ["conforms_to_common_schema"]}


class MatchingConfig(dg.Config):
    """Per-survey method overrides (else the catalog's ``release.matching``) and the seed."""

    methods: dict[str, str] = {}
    seed: int = 0


def _verify_inputs(context: dg.AssetExecutionContext, used: dict[str, str]) -> None:
    problems: list[str] = []
    for source, wave in used.items():
        for stage, names in UPSTREAM_CHECKS.items():
            problems += failed_checks(context.instance, dg.AssetKey(f"{stage}_{source}"), names, wave)
    if problems:
        raise dg.Failure(
            description="refusing to fuse inputs whose checks did not pass:\n" + "\n".join(problems),
            metadata={"failed_upstream_checks": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))},
        )


def build_matched_dataset(catalog: Catalog) -> dg.AssetsDefinition:
    register_name = catalog.register_name
    ins = {
        "register": dg.AssetIn(f"harmonised_{register_name}"),
        **{
            f"survey_{name}": dg.AssetIn(
                f"harmonised_{name}",
                partition_mapping=dg.AllPartitionMapping(),
                metadata={"partitions_as_dict": True, "allow_missing_partitions": True},
            )
            for name in catalog.surveys
        },
    }

    @dg.asset(  # type: ignore[misc]
        name="matched_dataset",
        automation_condition=RELEASE_AUTOMATION,
        group_name="matching",
        partitions_def=wave_partitions(register_name),
        code_version=MATCHING_CODE_VERSION,
        kinds={"pandas", "scikit-learn"},
        ins=ins,
        description=(
            "The register base with every survey's specific variables imputed by statistical "
            "matching through the common variables (distance hot deck within donation classes "
            "by default). Records are chimeras: right for the population, wrong for any person. "
            "Per survey, the latest wave at or before the release wave is used. Never public."
        ),
    )
    @functools.partial(with_keyword_inputs, names=[n for n in ins if n != "register"])
    def matched_dataset(
        context: dg.AssetExecutionContext, config: MatchingConfig, project: ProjectResource, register: pd.DataFrame,
        **surveys: dict[str, pd.DataFrame],
    ) -> dg.Output[pd.DataFrame]:
        release_wave = context.partition_key
        chosen: dict[str, tuple[str, pd.DataFrame]] = {}
        for name in catalog.surveys:
            waves = surveys[f"survey_{name}"]
            wave = latest_wave_at_or_before(list(waves), release_wave)
            if wave is None:
                raise dg.Failure(f"survey {name!r} has no harmonised wave at or before {release_wave} "
                                 f"(available: {sorted(waves) or 'none'})")
            chosen[name] = (wave, waves[wave])
        _verify_inputs(context, {register_name: release_wave, **{n: w for n, (w, _) in chosen.items()}})
        matched, fusions = fuse_sources(project.catalog, register, chosen, methods=config.methods, seed=config.seed)
        assert_no_survey_ids(matched, project.catalog)
        table = pd.DataFrame(
            [
                {"survey": f.survey, "wave": f.wave, "method": f.method, "unit": f.unit, "donors": f.donors,
                 "imputed": ", ".join(f.imputed),
                 **{k: v for k, v in f.diagnostics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}
                for f in fusions
            ]
        )
        return dg.Output(
            matched,
            metadata={
                "release_wave": release_wave,
                "survey_waves_used": dg.MetadataValue.json({f.survey: f.wave for f in fusions}),
                "fusion_summary": dg.MetadataValue.md(table.to_markdown(index=False) if len(table) else "-"),
                "diagnostics": dg.MetadataValue.json({f.survey: f.diagnostics for f in fusions}),
                "rows": len(matched),
            },
        )

    return matched_dataset
