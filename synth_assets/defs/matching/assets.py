"""Statistical matching: the register base enriched with every survey's specific variables.

``donor_<survey>`` picks, for release wave W, the survey's latest harmonised wave at or
before W (calendars differ), refusing one whose checks did not pass; its value is that
wave (a ``WaveTable``: the records, the wave, the file). ``matched_dataset`` fuses them all
into the register; beside it, ``matching_report`` holds the diagnostics page and the
source files fused, which the published data card cites.
"""

import base64
import functools
import html
import time

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from synth_assets.catalog import Catalog
from synth_assets.common.frames import FrameStack, ParquetStack, ParquetTable
from synth_assets.common.hashing import file_sha256
from synth_assets.dagster_api import latest_check_evaluations
from synth_assets.defs import keys, working_sets
from synth_assets.defs.automation.conditions import RELEASE_AUTOMATION, donor_automation
from synth_assets.defs.metadata import log_child_peak, png_markdown
from synth_assets.defs.partitions import latest_wave_at_or_before, partitions_name, wave_partitions
from synth_assets.defs.resources import ComputeResource, ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.defs.values import MatchingReport, SourceWave, WaveFile, WaveTable
from synth_assets.defs.versions import code_version
from synth_assets.ingest import source_path
from synth_assets.matching import METHODS, DonorSpec, fusion_diagnostics
from synth_assets.matching.diagnostics import missing_shares
from synth_assets.matching.parts import PART_PERSONS, combined_fusions, fuse_in_parts, whole_register_surveys
from synth_assets.matching.replicates import stack_fused_replicates
from synth_assets.matching.sources import assert_no_survey_ids

#: A hash of the source this module runs (see ``defs/versions.py``).
MATCHING_CODE_VERSION = code_version(__name__)
#: The blocking checks of ingest and harmonisation a source wave must have passed to be matched.
UPSTREAM_CHECKS = ((keys.raw, keys.DELIVERED_FILE_IS_VALID), (keys.harmonised, keys.CONFORMS_TO_COMMON_SCHEMA))


class MatchingConfig(dg.Config):
    """Per-survey method overrides (else the catalog's ``release.matching``), the seed, and the register
    persons fused at a time (``matching.parts``: whole households, so the step holds a part)."""

    methods: dict[str, str] = {}
    seed: int = Field(default=0, ge=0)
    part_persons: int = Field(default=PART_PERSONS, ge=1)

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: dict[str, str]) -> dict[str, str]:
        unknown = {survey: m for survey, m in methods.items() if m not in METHODS}
        if unknown:
            raise ValueError(", ".join(f"{s}: {m!r}" for s, m in unknown.items())
                             + f" is not a matching method; choose one of {', '.join(sorted(METHODS))}")
        return methods


def refuse_unchecked(context: dg.AssetExecutionContext, source: str, wave: str) -> None:
    """Fail unless the latest ingest and harmonisation checks of this source wave passed."""
    problems: list[str] = []
    for key_of, name in UPSTREAM_CHECKS:
        problems += failed_checks(context.instance, key_of(source), [name], wave)
    if problems:
        raise dg.Failure(
            description="refusing inputs whose checks did not pass:\n" + "\n".join(problems),
            metadata={"failed_upstream_checks": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))},
        )


def failed_checks(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, check_names: list[str], partition: str
) -> list[str]:
    """One line per check whose latest evaluation for this partition did not pass.

    Blocking checks stop later steps of their own run only; ingest and harmonisation run per
    survey wave, in runs of their own, so the release run asks the instance.
    """
    problems = []
    for name, evaluation in latest_check_evaluations(instance, asset_key, check_names, partition).items():
        if evaluation is None:
            problems.append(f"{asset_key.to_user_string()}[{partition}] check {name}: never evaluated")
        elif not evaluation.passed:
            problems.append(f"{asset_key.to_user_string()}[{partition}] check {name}: {evaluation.status}")
    return problems


def delivered_file_problem(project: ProjectResource, table: SourceWave) -> str | None:
    """Why the file a source wave was read from cannot back a release: gone, or changed since.

    The instance remembers every wave it saw; the release must cite only files that exist,
    with the hash that was read.
    """
    source_name, wave = table.origin.source, table.wave
    source = project.catalog.sources[source_name]
    path = source_path(project.layout.incoming, source, wave)
    if not path.is_file():
        return (f"source {source_name!r} wave {wave}: {path} no longer exists "
                f"(expected {project.layout.incoming / source.path})")
    read = table.origin.sha256
    now = file_sha256(path)
    if read and read != now:
        return (f"source {source_name!r} wave {wave}: {path} changed since it was ingested "
                f"(sha256 {read[:12]}... then, {now[:12]}... now); ingest it again")
    return None


def build_donor_asset(catalog: Catalog, survey: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.donor(survey),
        group_name="matching",
        partitions_def=wave_partitions(catalog.register_name),
        automation_condition=donor_automation(keys.harmonised(catalog.register_name)),
        code_version=MATCHING_CODE_VERSION,
        kinds={"pandas"},
        # The release wave's register: what triggers the donors (automation) and what they serve.
        deps=[keys.harmonised(catalog.register_name)],
        ins={
            "waves": dg.AssetIn(
                keys.harmonised(survey),
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
        context: dg.AssetExecutionContext, project: ProjectResource, waves: dict[str, WaveTable]
    ) -> dg.Output[WaveTable]:
        release_wave = context.partition_key
        # Choose among the waves delivered, not those that made it through harmonisation: a
        # refused delivery must refuse the release, not let an older wave stand in for it.
        # Delivered means its file is still there: the instance remembers removed ones too.
        source = project.catalog.sources[survey]
        known = context.instance.get_dynamic_partitions(partitions_name(survey))
        delivered = [w for w in known if source_path(project.layout.incoming, source, w).is_file()]
        wave = latest_wave_at_or_before(delivered, release_wave)
        if wave is None:
            raise dg.Failure(
                f"source {survey!r}: no file for release wave {release_wave}: expected "
                f"{project.layout.incoming / source.path} with a wave at or before {release_wave} "
                f"(present: {', '.join(sorted(delivered)) or 'none'}; known to the instance: "
                f"{', '.join(sorted(known)) or 'none'})"
            )
        if wave not in waves:
            raise dg.Failure(f"survey {survey!r} wave {wave} was delivered but is not harmonised yet")
        table = waves[wave]
        problem = delivered_file_problem(project, table)
        if problem:
            raise dg.Failure(problem)
        refuse_unchecked(context, survey, wave)
        return dg.Output(table, metadata={"survey_wave": wave, "release_wave": release_wave, "rows": len(table.data)})

    return donor_asset


def build_matched_dataset(catalog: Catalog) -> dg.AssetsDefinition:
    register_name = catalog.register_name
    ins = {
        "register": dg.AssetIn(keys.harmonised(register_name)),
        **{keys.name(keys.donor(name)): dg.AssetIn(keys.donor(name)) for name in catalog.surveys},
    }

    def decorate(fn):
        return with_keyword_inputs(fn, [n for n in ins if n != "register"])

    @dg.multi_asset(
        group_name="matching",
        op_tags=working_sets.POPULATION,
        partitions_def=wave_partitions(register_name),
        can_subset=False,
        outs={
            keys.name(keys.MATCHED_DATASET): dg.AssetOut(
                key=keys.MATCHED_DATASET,
                automation_condition=RELEASE_AUTOMATION,
                code_version=MATCHING_CODE_VERSION,
                kinds={"pandas", "scikit-learn"},
                description=(
                    "The register base with every survey's specific variables imputed by statistical "
                    "matching through the common variables (by default `neural_draw`: a network's predicted "
                    "distributions as the matching space, a real donor's whole block drawn; household "
                    "surveys matched household to household). Metadata: distances to the donors and the "
                    "Fréchet bounds of cross-source cells. The register is fused a part of whole households "
                    "at a time (config `part_persons`), each part written as it is fused. Records are "
                    "chimeras: right for the population, wrong for any person. Never public."
                ),
            ),
            keys.name(keys.MATCHING_REPORT): dg.AssetOut(
                key=keys.MATCHING_REPORT,
                automation_condition=RELEASE_AUTOMATION,
                code_version=MATCHING_CODE_VERSION,
                io_manager_key="report_io_manager",
                kinds={"html"},
                description=(
                    "The matching section of the release's reports (reports/matching_report/<wave>.html): "
                    "distances to the donors, the Fréchet bounds of cross-source cells and their plot; "
                    "beside it (.json) the source files fused (wave, path, sha256, ingest run), which "
                    "the published data card cites."
                ),
            ),
        },
        ins=ins,
    )
    @decorate
    def matched_dataset(
        context: dg.AssetExecutionContext, config: MatchingConfig, project: ProjectResource,
        compute: ComputeResource, register: WaveFile, **donors: WaveTable,
    ):
        problem = delivered_file_problem(project, register)
        if problem:
            raise dg.Failure(problem)
        refuse_unchecked(context, register_name, register.wave)
        chosen = {name: donors[keys.name(keys.donor(name))] for name in catalog.surveys}
        persons = register.table.num_rows
        # surveys fused side by side below the size where two fusions' children pass the run's memory
        processes = working_sets.child_processes(compute.processes, min(persons, config.part_persons), len(chosen),
                                                 fork_below=working_sets.MATCHING_FORK_BELOW_PERSONS)
        if processes > 1:
            context.log.info(f"{len(chosen)} surveys, {processes} at a time in processes of their own "
                             "where none reads another's variables")
        sampled = diagnosed_rows(persons)
        stack, samples, by_part, done = ParquetStack(), FrameStack(), [], 0
        for matched, fusions in fuse_in_parts(
                project.catalog, register.table, {n: (t.wave, t.data) for n, t in chosen.items()},
                part_persons=config.part_persons, methods=config.methods, seed=config.seed, processes=processes,
                on_log=lambda _, level, text: context.log.log(level, text),
                on_peak=lambda position, peak: log_child_peak(context, f"fusion of {list(chosen)[position]}", peak)):
            assert_no_survey_ids(matched, project.catalog)
            stack.append(matched)
            # the diagnostics' seeded sample of the register: this part's records of it
            local = None if sampled is None else sampled[(sampled >= done) & (sampled < done + len(matched))] - done
            samples.append(matched if local is None else matched.iloc[local])
            by_part.append(fusions)
            done += len(matched)
            if persons > config.part_persons:
                context.log.info(f"matched {done:,} of {persons:,} register persons ({len(by_part)} parts)")
            del matched
        fusions = combined_fusions(by_part)
        table = stack.finish()
        diagnosed = samples.to_pandas()
        report = _diagnostics(project.catalog, diagnosed[register.table.columns], diagnosed, chosen, fusions)
        bounds_plot = report.plot_png()  # drawn once for the metadata and the report's page (1.5 s a drawing)
        summary = pd.DataFrame(
            [
                {"survey": f.survey, "wave": f.wave, "method": f.method, "unit": f.unit, "donors": f.donors,
                 "imputed": ", ".join(f.imputed)}
                for f in fusions
            ]
        )
        yield dg.Output(
            table,
            output_name=keys.name(keys.MATCHED_DATASET),
            metadata={
                "release_wave": context.partition_key,
                "survey_waves_used": dg.MetadataValue.json({f.survey: f.wave for f in fusions}),
                "fusion_summary": dg.MetadataValue.md(summary.to_markdown(index=False) if len(summary) else "-"),
                "diagnostics": dg.MetadataValue.json({f.survey: f.diagnostics for f in fusions}),
                "frechet_bounds": dg.MetadataValue.md(report.to_markdown()),
                # Survey item non-response and universes should leave no missing value here.
                "missing_shares": dg.MetadataValue.md(
                    missing_shares({register_name: register.table, **{n: t.data for n, t in chosen.items()}}, table)
                    .to_markdown(floatfmt=".4f")
                ),
                "frechet_bounds_plot": png_markdown(bounds_plot, "Frechet bounds"),
                "diagnosed_records": len(diagnosed),
                "register_parts": len(by_part),
                "rows": table.num_rows,
            },
        )
        sources = {register_name: register.origin, **{n: t.origin for n, t in chosen.items()}}
        yield dg.Output(
            MatchingReport(_matching_page(report, persons, bounds_plot), sources,
                           {register_name: persons, **{n: len(t.data) for n, t in chosen.items()}}),
            output_name=keys.name(keys.MATCHING_REPORT),
            metadata={"sources": dg.MetadataValue.json({n: o.to_dict() for n, o in sources.items()})},
        )

    return matched_dataset


class MatchedReplicatesConfig(dg.Config):
    """How many whole-chain replicates (as many as ``fictitious_dataset`` draws) and their seed."""

    replicates: int = Field(default=5, ge=1, le=100)
    seed: int = 1
    methods: dict[str, str] = {}
    part_persons: int = Field(default=PART_PERSONS, ge=1)


def build_matched_replicates(catalog: Catalog) -> dg.AssetsDefinition:
    """Replicate r's matched data: its own bootstrap of every survey and its own fusion draw."""
    register_name = catalog.register_name
    ins = {
        "register": dg.AssetIn(keys.harmonised(register_name)),
        "training": dg.AssetIn(keys.TRAINING_SAMPLE),
        **{keys.name(keys.donor(name)): dg.AssetIn(keys.donor(name)) for name in catalog.surveys},
    }

    @dg.asset(
        key=keys.MATCHED_REPLICATES,
        op_tags=working_sets.POPULATION,
        group_name="matching",
        partitions_def=wave_partitions(register_name),
        automation_condition=RELEASE_AUTOMATION,
        code_version=MATCHING_CODE_VERSION,
        kinds={"pandas"},
        ins=ins,
        description=(
            "One matched dataset per replicate of the release (column `replicate`): replicate r "
            "fuses a design bootstrap of every survey (whole households, weights rescaled) with a "
            "fusion seed of its own, so the fictitious replicates carry the surveys' sampling and "
            "the matching's uncertainty (synth_assets.inference.combining). It holds the training "
            "sample's households, the records replicate r's model learns from and the validation "
            "compares it with. Never public."
        ),
    )
    @functools.partial(with_keyword_inputs, names=[n for n in ins if n not in ("register", "training")])
    def matched_replicates(
        context: dg.AssetExecutionContext, config: MatchedReplicatesConfig, compute: ComputeResource,
        register: WaveFile, training: ParquetTable, **donors: WaveTable,
    ) -> dg.Output[ParquetTable]:
        chosen = {name: donors[keys.name(keys.donor(name))] for name in catalog.surveys}
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        # the training sample's households: the records a release reads of its replicates, at most
        # split.max_training_persons persons whatever the register (stack_fused_replicates)
        key = catalog.register.household_id_column or catalog.register.id_column
        if key is None:
            raise ValueError(f"register {register_name!r}: the catalog names no id or household id column")
        households = training.read([key])[key].unique()

        def joined(r: int) -> None:
            seconds[f"r{r}"] = round(time.perf_counter() - started, 1)
            context.log.info(f"matched replicate {r} of {config.replicates} ({seconds[f'r{r}']} s)")

        # a child holds one part of the register at a time
        whole = whole_register_surveys(catalog, list(chosen), config.methods)
        processes = working_sets.child_processes(
            compute.processes, min(register.table.num_rows if whole else training.num_rows, config.part_persons),
            config.replicates, fork_below=working_sets.MATCHING_FORK_BELOW_PERSONS)
        if processes > 1:
            context.log.info(f"{config.replicates} replicates, {processes} at a time in processes of their own")
        context.log.info(f"each replicate fused into the {len(households):,} training households' "
                         f"{training.num_rows:,} records" + (f" (the register fused whole for {', '.join(whole)})"
                                                             if whole else ""))
        data = stack_fused_replicates(
            catalog, register.table, {n: (t.wave, t.data) for n, t in chosen.items()}, m=config.replicates,
            seed=config.seed, methods=config.methods, part_persons=config.part_persons, recipients=households,
            processes=processes, check=lambda matched: assert_no_survey_ids(matched, catalog), on_replicate=joined,
            on_log=lambda _, level, text: context.log.log(level, text),
            on_peak=lambda position, peak: log_child_peak(context, f"matched replicate {position + 1}", peak))
        return dg.Output(data, metadata={
            "replicates": config.replicates, "rows": data.num_rows, "recipient_households": len(households),
            "seconds_cumulative": dg.MetadataValue.json(seconds),
            "survey_respondents": dg.MetadataValue.json({n: len(t.data) for n, t in chosen.items()}),
        })

    return matched_replicates


#: The matching diagnostics read at most this many register records (a seeded sample of them):
#: their cells' shares then carry a sampling error under 0.0011 (one binomial standard error
#: at a share of 0.5), and a whole city's register is not copied once per survey.
DIAGNOSED_RECORDS = 200_000


def diagnosed_rows(records: int, limit: int = DIAGNOSED_RECORDS, seed: int = 0) -> np.ndarray | None:
    """Positions of the records the diagnostics read, in order; None for all of them."""
    if records <= limit:
        return None
    return np.sort(np.random.default_rng(seed).choice(records, size=limit, replace=False))


def _diagnostics(catalog: Catalog, register: pd.DataFrame, matched: pd.DataFrame, chosen, fusions):
    """Distances to the donors and the Fréchet bounds of cross-source cells (StatMatch's view), on the
    register's records ``diagnosed_rows`` picks (``register`` as they went in, ``matched`` fused)."""
    donors = {
        f.survey: DonorSpec(chosen[f.survey].data, catalog.sources[f.survey].weight_column, f.on, f.imputed,
                            catalog.sources[f.survey].universe)
        for f in fusions
    }
    return fusion_diagnostics(register, matched, donors, register_y=catalog.register.specific)


def _matching_page(report, records: int, bounds_plot: bytes) -> str:
    """The matching section of the release's reports: distances, Fréchet bounds and their plot
    (``bounds_plot``: ``report.plot_png()``)."""
    diagnosed = min(records, DIAGNOSED_RECORDS)
    scope = (f"All {records:,} matched records." if diagnosed == records else
             f"A seeded random sample of {diagnosed:,} of the {records:,} matched records.")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Statistical matching</title></head>"
        "<body style='font-family:system-ui,sans-serif;margin:2em'><h1>Statistical matching diagnostics</h1>"
        f"<p>{scope}</p>"
        f"<pre style='white-space:pre-wrap'>{html.escape(report.to_markdown())}</pre>"
        f"<img alt='Fréchet bounds' src='data:image/png;base64,{base64.b64encode(bounds_plot).decode()}'>"
        "</body></html>"
    )
