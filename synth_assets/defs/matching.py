"""Statistical matching: the register base enriched with every survey's specific variables.

``donor_<survey>`` picks, for release wave W, the survey's latest harmonised wave at or
before W (calendars differ), refusing one whose checks did not pass; the choice is in
its metadata and in the lineage. ``matched_dataset`` fuses them all into the register.
"""

import functools
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.defs.automation import DONOR_AUTOMATION, RELEASE_AUTOMATION
from synth_assets.defs.gating import failed_checks, latest_materialization
from synth_assets.defs.metadata import png_markdown
from synth_assets.defs.partitions import latest_wave_at_or_before, wave_partitions
from synth_assets.defs.resources import ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.ingest import source_path
from synth_assets.matching.diagnostics import missing_shares
from synth_assets.matching.sources import assert_no_survey_ids, fuse_sources
from synth_assets.storage import file_sha256

MATCHING_CODE_VERSION = "1"
UPSTREAM_CHECKS = {"raw": ["delivered_file_is_valid"], "harmonised": ["conforms_to_common_schema"]}
SURVEY_WAVE_ATTR = "survey_wave"


class MatchingConfig(dg.Config):
    """Per-survey method overrides (else the catalog's ``release.matching``) and the seed."""

    methods: dict[str, str] = {}
    seed: int = 0


def refuse_unchecked(context: dg.AssetExecutionContext, source: str, wave: str) -> None:
    """Fail unless the latest ingest and harmonisation checks of this source wave passed."""
    problems: list[str] = []
    for stage, names in UPSTREAM_CHECKS.items():
        problems += failed_checks(context.instance, dg.AssetKey(f"{stage}_{source}"), names, wave)
    if problems:
        raise dg.Failure(
            description="refusing inputs whose checks did not pass:\n" + "\n".join(problems),
            metadata={"failed_upstream_checks": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))},
        )


def delivered_file_problem(
    context: dg.AssetExecutionContext, project: ProjectResource, source_name: str, wave: str
) -> str | None:
    """Why the file of this source wave cannot back a release: gone, or changed since it was ingested.

    The instance remembers every wave it saw; the release must cite only files that exist,
    with the hash that was read.
    """
    source = project.catalog.sources[source_name]
    path = source_path(project.layout.incoming, source, wave)
    if not path.is_file():
        return (f"source {source_name!r} wave {wave}: {path} no longer exists "
                f"(expected {project.layout.incoming / source.path})")
    ingested = latest_materialization(context.instance, dg.AssetKey(f"raw_{source_name}"), wave)
    read = ingested.get("metadata", {}).get("sha256")
    now = file_sha256(path)
    if read and read != now:
        return (f"source {source_name!r} wave {wave}: {path} changed since it was ingested "
                f"(sha256 {read[:12]}... then, {now[:12]}... now); ingest it again")
    return None


def build_donor_asset(catalog: Catalog, survey: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"donor_{survey}",
        group_name="matching",
        partitions_def=wave_partitions(catalog.register_name),
        automation_condition=DONOR_AUTOMATION,
        code_version=MATCHING_CODE_VERSION,
        kinds={"pandas"},
        ins={
            "waves": dg.AssetIn(
                f"harmonised_{survey}",
                partition_mapping=dg.AllPartitionMapping(),
                metadata={"partitions_as_dict": True, "allow_missing_partitions": True},
            )
        },
        description=(
            f"The {survey} donor records for this release: its latest harmonised wave at or before "
            "the release wave (metadata `survey_wave`). Never public."
        ),
    )
    def donor_asset(
        context: dg.AssetExecutionContext, project: ProjectResource, waves: dict[str, pd.DataFrame]
    ) -> dg.Output[pd.DataFrame]:
        release_wave = context.partition_key
        # Choose among the waves delivered, not those that made it through harmonisation: a
        # refused delivery must refuse the release, not let an older wave stand in for it.
        # Delivered means its file is still there: the instance remembers removed ones too.
        source = project.catalog.sources[survey]
        known = context.instance.get_dynamic_partitions(f"{survey}_waves")
        delivered = [w for w in known if source_path(project.layout.incoming, source, w).is_file()]
        wave = latest_wave_at_or_before(delivered, release_wave)
        if wave is None:
            raise dg.Failure(
                f"source {survey!r}: no file for release wave {release_wave}: expected "
                f"{project.layout.incoming / source.path} with a wave at or before {release_wave} "
                f"(present: {', '.join(sorted(delivered)) or 'none'}; known to the instance: "
                f"{', '.join(sorted(known)) or 'none'})"
            )
        problem = delivered_file_problem(context, project, survey, wave)
        if problem:
            raise dg.Failure(problem)
        refuse_unchecked(context, survey, wave)
        if wave not in waves:
            raise dg.Failure(f"survey {survey!r} wave {wave} was delivered but is not harmonised yet")
        table = waves[wave]
        table.attrs[SURVEY_WAVE_ATTR] = wave  # kept in the Parquet metadata for matched_dataset
        return dg.Output(table, metadata={"survey_wave": wave, "release_wave": release_wave, "rows": len(table)})

    return donor_asset


def build_matched_dataset(catalog: Catalog) -> dg.AssetsDefinition:
    register_name = catalog.register_name
    ins = {
        "register": dg.AssetIn(f"harmonised_{register_name}"),
        **{f"donor_{name}": dg.AssetIn(f"donor_{name}") for name in catalog.surveys},
    }

    def decorate(fn):
        return with_keyword_inputs(fn, [n for n in ins if n != "register"])

    @dg.asset(  # type: ignore[misc]
        name="matched_dataset",
        group_name="matching",
        partitions_def=wave_partitions(register_name),
        automation_condition=RELEASE_AUTOMATION,
        code_version=MATCHING_CODE_VERSION,
        kinds={"pandas", "scikit-learn"},
        ins=ins,
        description=(
            "The register base with every survey's specific variables imputed by statistical "
            "matching through the common variables (by default `neural_draw`: a network's predicted "
            "distributions as the matching space, a real donor's whole block drawn; household "
            "surveys matched household to household). Metadata: distances to the donors and the "
            "Fréchet bounds of cross-source cells. Records are "
            "chimeras: right for the population, wrong for any person. Never public."
        ),
    )
    @decorate
    def matched_dataset(
        context: dg.AssetExecutionContext, config: MatchingConfig, project: ProjectResource, register: pd.DataFrame,
        **donors: pd.DataFrame,
    ) -> dg.Output[pd.DataFrame]:
        problem = delivered_file_problem(context, project, register_name, context.partition_key)
        if problem:
            raise dg.Failure(problem)
        refuse_unchecked(context, register_name, context.partition_key)
        chosen = {
            name: (donors[f"donor_{name}"].attrs.get(SURVEY_WAVE_ATTR, "?"), donors[f"donor_{name}"])
            for name in catalog.surveys
        }
        matched, fusions = fuse_sources(project.catalog, register, chosen, methods=config.methods, seed=config.seed)
        assert_no_survey_ids(matched, project.catalog)
        report = _diagnostics(project.catalog, register, matched, chosen, fusions)
        section = _write_matching_section(project.layout.reports / context.partition_key, report)
        summary = pd.DataFrame(
            [
                {"survey": f.survey, "wave": f.wave, "method": f.method, "unit": f.unit, "donors": f.donors,
                 "imputed": ", ".join(f.imputed)}
                for f in fusions
            ]
        )
        return dg.Output(
            matched,
            metadata={
                "release_wave": context.partition_key,
                "survey_waves_used": dg.MetadataValue.json({f.survey: f.wave for f in fusions}),
                "fusion_summary": dg.MetadataValue.md(summary.to_markdown(index=False) if len(summary) else "-"),
                "diagnostics": dg.MetadataValue.json({f.survey: f.diagnostics for f in fusions}),
                "frechet_bounds": dg.MetadataValue.md(report.to_markdown()),
                # Survey item non-response and universes should leave no missing value here.
                "missing_shares": dg.MetadataValue.md(
                    missing_shares({register_name: register, **{n: d for n, (_, d) in chosen.items()}}, matched)
                    .to_markdown(floatfmt=".4f")
                ),
                "frechet_bounds_plot": png_markdown(report.plot_png(), "Frechet bounds"),
                "report_section": dg.MetadataValue.path(str(section)),
                "rows": len(matched),
            },
        )

    return matched_dataset


class MatchedReplicatesConfig(dg.Config):
    """How many whole-chain replicates (as many as ``fictitious_dataset`` draws) and their seed."""

    replicates: int = 5
    seed: int = 1
    methods: dict[str, str] = {}


def build_matched_replicates(catalog: Catalog) -> dg.AssetsDefinition:
    """Replicate r's matched data: its own bootstrap of every survey and its own fusion draw (issue 12)."""
    register_name = catalog.register_name
    ins = {
        "register": dg.AssetIn(f"harmonised_{register_name}"),
        **{f"donor_{name}": dg.AssetIn(f"donor_{name}") for name in catalog.surveys},
    }

    @dg.asset(  # type: ignore[misc]
        name="matched_replicates",
        group_name="matching",
        partitions_def=wave_partitions(register_name),
        automation_condition=RELEASE_AUTOMATION,
        code_version=MATCHING_CODE_VERSION,
        kinds={"pandas"},
        ins=ins,
        deps=["matched_dataset"],  # same inputs, judged (checks, files) by matched_dataset
        description=(
            "One matched dataset per replicate of the release (column `replicate`): replicate r "
            "fuses a design bootstrap of every survey (whole households, weights rescaled) with a "
            "fusion seed of its own, so the fictitious replicates carry the surveys' sampling and "
            "the matching's uncertainty (synth_assets.inference.combining). Never public."
        ),
    )
    @functools.partial(with_keyword_inputs, names=[n for n in ins if n != "register"])
    def matched_replicates(
        context: dg.AssetExecutionContext, config: MatchedReplicatesConfig, register: pd.DataFrame,
        **donors: pd.DataFrame,
    ) -> dg.Output[pd.DataFrame]:
        from synth_assets.matching.replicates import fuse_replicates, stack_replicates

        chosen = {name: (donors[f"donor_{name}"].attrs.get(SURVEY_WAVE_ATTR, "?"), donors[f"donor_{name}"])
                  for name in catalog.surveys}
        frames, seconds, started = [], {}, time.perf_counter()
        for r, matched, _ in fuse_replicates(catalog, register, chosen, m=config.replicates, seed=config.seed,
                                             methods=config.methods):
            assert_no_survey_ids(matched, catalog)
            frames.append(matched)
            seconds[f"r{r}"] = round(time.perf_counter() - started, 1)
            context.log.info(f"matched replicate {r} of {config.replicates} ({seconds[f'r{r}']} s)")
        data = stack_replicates(frames)
        return dg.Output(data, metadata={
            "replicates": config.replicates, "rows": len(data), "seconds_cumulative": dg.MetadataValue.json(seconds),
            "survey_respondents": dg.MetadataValue.json({n: len(d) for n, (_, d) in chosen.items()}),
        })

    return matched_replicates


def _diagnostics(catalog: Catalog, register: pd.DataFrame, matched: pd.DataFrame, chosen, fusions):
    """Distances to the donors and the Fréchet bounds of cross-source cells (StatMatch's view)."""
    from synth_assets.matching import DonorSpec, fusion_diagnostics

    donors = {
        f.survey: DonorSpec(chosen[f.survey][1], catalog.sources[f.survey].weight_column, f.on, f.imputed,
                            catalog.sources[f.survey].universe)
        for f in fusions
    }
    return fusion_diagnostics(register, matched, donors, register_y=catalog.register.specific)


def _write_matching_section(folder: Path, report) -> Path:
    """The matching section of the release's reports: distances, Fréchet bounds and their plot."""
    import base64
    import html

    from synth_assets.storage import atomic_path

    path = folder / "matching.html"
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Statistical matching</title></head>"
        "<body style='font-family:system-ui,sans-serif;margin:2em'><h1>Statistical matching diagnostics</h1>"
        f"<pre style='white-space:pre-wrap'>{html.escape(report.to_markdown())}</pre>"
        f"<img alt='Fréchet bounds' src='data:image/png;base64,{base64.b64encode(report.plot_png()).decode()}'>"
        "</body></html>"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(body)
    return path

