"""Validation: the report on utility and privacy, whose value (the verdict) the gate takes as an input."""

import functools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd
from pydantic import Field, field_validator

from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.common.hashing import file_sha256
from synth_assets.common.parallel import forked_imap
from synth_assets.defs import keys, working_sets
from synth_assets.defs.automation.conditions import RELEASE_AUTOMATION
from synth_assets.defs.calibration.assets import household_key
from synth_assets.defs.metadata import JUDGED_HASH, data_docs, judged, log_child_peak, log_progress, png_markdown
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ComputeResource, ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.defs.synthesis.assets import check_family
from synth_assets.defs.synthesis.linked import linked_parts, record_surveys
from synth_assets.defs.values import WaveTable
from synth_assets.defs.versions import code_version

if TYPE_CHECKING:
    from synth_assets.validation import ModelComparison

#: A hash of the source this module runs (see ``defs/versions.py``).
VALIDATION_CODE_VERSION = code_version(__name__)
#: Where the validation's forked children say what they are doing (relayed to the step's log).
_PROGRESS = logging.getLogger("synth_assets.validation.progress")


class ValidationConfig(dg.Config):
    """Evaluation sample size (metrics on a sample keep the report fast), seed, and model comparison.

    ``max_rows``: rows per table of the sampled metrics, whatever the population's size (exact
    copies and replicated uniques are counted over every record); ``error_subsamples``: further
    seeded samples whose spread gives each sampled figure's sampling error (0: none).

    ``compare_families`` (e.g. ``["cart", "copula", "ctgan"]``) fits each family on
    ``training_sample`` as ``population_model`` fits its own, households kept coherent, scores it on
    the report's samples as the release is scored, and adds the comparison to the report,
    ``comparison.csv`` and the metadata. Empty by default, because a GAN's fit costs
    minutes. As in ``ModelConfig``, the family generates households and
    ``compare_person_family`` their members (None: the family itself).
    ``compare_max_seconds`` and ``compare_epochs`` bound each neural family's training.
    Households that break a catalog rule are redrawn (members given their household, else a
    household of the same structure), as ``fictitious_dataset`` does, so each row reads like
    that family's release. The comparison never touches the
    gate: ``passed`` and the checks judge the released model only.
    """

    max_rows: int = Field(default=20_000, ge=100)
    error_subsamples: int = Field(default=2, ge=0)
    seed: int = Field(default=0, ge=0)
    compare_families: list[str] = []  # families; Dagster's config types take no list[Literal]
    compare_person_family: str | None = "cart"
    compare_max_seconds: float = Field(default=120.0, gt=0)
    compare_epochs: int = Field(default=300, ge=1)

    @field_validator("compare_families")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        for family in value:
            check_family(family)
        return value

    @field_validator("compare_person_family")
    @classmethod
    def _person_family(cls, value: str | None) -> str | None:
        return check_family(value)


def report_dir(project: ProjectResource, wave: str, run_id: str) -> Path:
    """``reports/<wave>/<run id>/``: each run's report apart, so a refused run can never
    change the report a published release links (nor one an auditor is reading)."""
    return project.layout.reports / wave / run_id


def _analysis_columns(df: pd.DataFrame, catalog: Catalog) -> list[str]:
    """Identifiers carry no statistical content: leave them out of every metric."""
    ids = {catalog.register.id_column, catalog.register.household_id_column, "replicate"}
    return [c for c in df.columns if c not in ids]


def _compare_families(
    context: dg.AssetExecutionContext, config: ValidationConfig, compute: ComputeResource, catalog: Catalog,
    training: pd.DataFrame, training_sample: pd.DataFrame, holdout_sample: pd.DataFrame, scoring: dict,
) -> "ModelComparison":
    """Each configured family fitted as ``population_model`` fits its own and scored as the release is.

    Fitted on the whole training asset, because a household model needs whole households (a
    sample of persons leaves households with members missing), with the comparison's budget;
    scored on the report's samples, so its baseline row is the report's baseline.
    """
    from synth_assets.synthesis import build_population_synthesizer
    from synth_assets.synthesis.constraints import enforce_rules
    from synth_assets.validation import compare_models

    register = catalog.register
    compute.configure_torch()

    def build(family: str):
        return build_population_synthesizer(
            family=family,
            person_family=config.compare_person_family,
            household_id=register.household_id_column,
            person_id=register.id_column,
            seed=config.seed,
            epochs=config.compare_epochs,
            max_seconds=config.compare_max_seconds,
            enable_gpu=compute.use_gpu(),
        )

    rules = catalog.plausibility_rules()

    def draw_valid(model, n: int, seed: int) -> pd.DataFrame:
        sample = model.sample(n, seed=seed)
        household_id = register.household_id_column
        # as a calibrated release draws: a household no redraw fixes is left out, not the family
        # (a 5-epoch neural model's one unfixable household had failed its whole comparison)
        return enforce_rules(sample, rules, lambda k, s: model.sample(k, seed=s), household_id=household_id,
                             households=model if household_id and hasattr(model, "redraw_members") else None,
                             drop_unfixable=catalog.release.calibration.enabled, seed=seed).data

    return compare_models(
        training_sample, holdout_sample, config.compare_families, build=build, draw=draw_valid,
        fit_data=training.drop(columns=[c for c in [register.id_column] if c in training]),
        progress=context.log.info, **scoring,
    )


def _comparison_metadata(comparison: "ModelComparison", config: ValidationConfig, out: Path) -> dict[str, Any]:
    members = f"members by {config.compare_person_family}" if config.compare_person_family else "members too"
    return {
        "model_comparison": dg.MetadataValue.md(
            f"Households modelled by each family, {members}; households breaking a catalog rule "
            f"redrawn given their household or structure, and left out where no redraw fixes them, as in a "
            f"calibrated release.\n\n{comparison.to_markdown()}"
        ),
        "plot_model_comparison": png_markdown(comparison.figures["model_comparison"], "model families compared"),
        "comparison_file": dg.MetadataValue.path(str(out / "comparison.csv")),
    }


def _population_section(catalog: Catalog, fictitious: ParquetTable, targets: pd.DataFrame, matched: ParquetTable,
                        register: ParquetTable, donors: dict[str, WaveTable]):
    """Calibration residuals per margin and replicate; missing shares of sources, matched, release
    (the register and the matched data, population-sized, counted from their files by row groups)."""
    from synth_assets.calibration import Targets, spec_from_catalog
    from synth_assets.validation.population import population_tables

    sources: dict[str, pd.DataFrame | ParquetTable] = {catalog.register_name: register}
    for donor in donors.values():
        source = catalog.sources[donor.origin.source]
        sources[donor.origin.source] = donor.data[[c for c in source.specific if c in donor.data]]
    return population_tables(Targets.from_frame(spec_from_catalog(catalog), targets), fictitious,
                             household_key(catalog), sources, matched)


def _linked_section(catalog: Catalog, tables: dict[str, Any]) -> tuple[dict[str, pd.DataFrame], dict[str, bytes]]:
    """Each linked table's distributions beside its survey's (tables and a plot per survey).

    A linked table arrives on disk (``ParquetTable``) and is read one replicate at a time, only
    the columns the distributions need: the diary episodes are about 60 rows a person.
    """
    from synth_assets.synthesis.linked import distributions_plot, linked_distributions

    out: dict[str, pd.DataFrame] = {}
    figures: dict[str, bytes] = {}
    person_id = catalog.register.id_column or "person_id"
    for survey in record_surveys(catalog):
        source = catalog.sources[survey]
        parts = linked_parts(tables[keys.name(keys.linked(survey))], source, person_id)
        table = linked_distributions(parts, tables[keys.name(keys.survey_records(survey))].data, source,
                                     person_id=person_id)
        out[f"linked: {survey}"] = table.round(4)
        figures[f"linked:{survey}"] = distributions_plot(table, f"{survey}: generated vs survey")
    return out, figures


def refuse_single_replicate(fictitious: pd.DataFrame | ParquetTable, wave: str) -> None:
    """Refuse, before any metric, a release of fewer than two replicates.

    The gate's regression CI overlap takes the synthetic intervals from the fully synthetic
    combining rule, whose between-replicate variance has m - 1 degrees of freedom: with one
    replicate there is none, the intervals are the replicate's own (too narrow) and the gate
    refuses by chance. Its threshold stays; the release must carry the replicates it needs.
    """
    if "replicate" not in fictitious.columns:
        count = 1
    elif isinstance(fictitious, ParquetTable):
        count = len(fictitious.values("replicate"))
    else:
        count = int(fictitious["replicate"].nunique())
    if count < 2:
        raise dg.Failure(
            f"fictitious_dataset[{wave}] has {count} replicate (fictitious.replicates = {count}): the gate's "
            "regression CI overlap combines the replicates' estimates (fully synthetic rule, m - 1 degrees of "
            "freedom) and needs at least 2; run the release again with fictitious.replicates >= 2 (default 5)"
        )


def _relayed(context, level: int, text: str) -> None:
    """A line a child logged: a progress line at info level, a warning or error as it came."""
    if level <= logging.INFO:
        log_progress(context, text)
    else:
        context.log.log(level, text)


def build_validation_report(catalog: Catalog) -> dg.AssetsDefinition:
    linked_ins = {keys.name(key): dg.AssetIn(key) for survey in record_surveys(catalog)
                  for key in (keys.linked(survey), keys.survey_records(survey))}
    # the linked tables arrive as ParquetTable: read one replicate at a time (_linked_section)
    on_disk = {keys.name(keys.linked(survey)): ParquetTable for survey in record_surveys(catalog)}

    @dg.asset(
        key=keys.VALIDATION_REPORT,
        op_tags=working_sets.POPULATION,
        automation_condition=RELEASE_AUTOMATION,
        group_name="validation",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=VALIDATION_CODE_VERSION,
        kinds={"html", "json"},
        io_manager_key="json_io_manager",
        ins={
            "fictitious": dg.AssetIn(keys.FICTITIOUS_DATASET),
            "training": dg.AssetIn(keys.TRAINING_SAMPLE),
            "holdout": dg.AssetIn(keys.HOLDOUT_SAMPLE),
            "targets": dg.AssetIn(keys.CALIBRATION_TARGETS),
            "matched": dg.AssetIn(keys.MATCHED_DATASET),
            "matched_replicates": dg.AssetIn(keys.MATCHED_REPLICATES),
            "register": dg.AssetIn(keys.harmonised(catalog.register_name)),
            **{keys.name(keys.donor(name)): dg.AssetIn(keys.donor(name)) for name in catalog.surveys},
            **linked_ins,
        },
        description=(
            "Utility (per-variable distributions, k-marginal scores, propensity pMSE and AUC, "
            "catalog regressions) and privacy (exact copies, distance to closest record against "
            "the holdout, membership inference) of the fictitious data, each figure next to "
            "what an independent real sample gives. Writes report.html and metrics.json under "
            "reports/<wave>/<run id>/; with "
            "`compare_families` in its config, also compares model families (comparison.csv). "
            "Its value, the verdict (metrics, checks, passed, the sha256 of the fictitious data "
            "judged, the report's files and their sha256), is what `thresholds_pass` and "
            "`public_dataset` read."
        ),
    )
    @functools.partial(with_keyword_inputs, names=[*(keys.name(keys.donor(name)) for name in catalog.surveys),
                                                   *linked_ins], annotations=on_disk)
    def validation_report(
        context: dg.AssetExecutionContext, config: ValidationConfig, project: ProjectResource,
        compute: ComputeResource, fictitious: ParquetTable, training: ParquetTable, holdout: ParquetTable,
        targets: pd.DataFrame, matched: ParquetTable, matched_replicates: ParquetTable, register: ParquetTable,
        **inputs: Any,
    ) -> dg.Output[dict[str, Any]]:
        from synth_assets.synthesis.replicates import replicate_training_views
        from synth_assets.validation import (
            RegressionSpec,
            Thresholds,
            check_families,
            evaluate,
            headline_markdown,
            write_report,
        )
        from synth_assets.validation.preparation import replicate_samples, seeded_sample

        if config.compare_families:  # a misspelt family fails the step now, not after the others trained
            person_family = [config.compare_person_family] if config.compare_person_family else []
            check_families([*config.compare_families, *person_family])
        donors: dict[str, WaveTable] = {k: v for k, v in inputs.items() if k not in linked_ins}
        refuse_single_replicate(fictitious, context.partition_key)
        release = project.catalog.release
        columns = _analysis_columns(training.empty(), project.catalog)
        # Equal-sized train and holdout samples: the distance-to-closest-record share is then 0.5
        # for a generator that is no closer to its training records than to unseen people.
        n = min(config.max_rows, holdout.num_rows, training.num_rows)
        # Every table stays in its file (ParquetTable) as a view of the columns compared: evaluate
        # reads its seeded samples (the rows the frames in memory would give) and hashes every
        # record for the exhaustive copy counts, a row group at a time. Replicate 1 of the
        # release is a view; the others arrive as their samples (the same rows).
        stacked = "replicate" in fictitious.columns
        first = (fictitious.where("replicate", [1]) if stacked else fictitious).select(columns)
        replicates = replicate_samples(fictitious, columns, n, config.seed) if stacked else None
        scoring: dict[str, Any] = dict(
            quasi_identifiers=[c for c in release.quasi_identifiers if c in columns],
            sensitive=[c for c in release.sensitive if c in columns],
            rules=project.catalog.plausibility_rules(),
            regressions=[RegressionSpec(**r.model_dump()) for r in release.regressions],
            thresholds=Thresholds.default().updated(release.thresholds),
            seed=config.seed,
        )
        replicate_reals = None
        if replicates:  # replicate r against the matched data its own model learnt from (issue 12)
            # matched replicate r's rows of the training households, a view of the file
            key = household_key(catalog)
            households = training.select([key]).read()[key].to_numpy()
            replicate_reals = [view.select(columns) for view in
                               replicate_training_views(matched_replicates, households, key, len(replicates))]
        processes = working_sets.piece_processes(compute.processes)
        # The population and linked tables (one core, about 25 s at 1.2 million persons) are made in a
        # forked child beside the figures' (themselves in children of their own), not after them.
        # A child's progress lines come back through the synth_assets logger.
        beside = processes > 1 and hasattr(os, "fork")
        progress = _PROGRESS.info if beside else (lambda line: log_progress(context, line))

        def figures() -> Any:
            return evaluate(
                training.select(columns),
                first,
                holdout=holdout.select(columns),
                replicates=replicates,
                progress=progress,
                replicate_reals=replicate_reals,
                max_rows=config.max_rows,
                error_subsamples=config.error_subsamples,
                n_jobs=compute.threads,
                processes=processes,  # each child a sample's work
                **scoring,
            )

        def sections() -> tuple[dict[str, pd.DataFrame], dict[str, bytes]]:
            progress("population tables: calibration residuals, missing shares")
            tables, plots = _population_section(project.catalog, fictitious, targets, matched, register, donors)
            if linked_ins:
                progress("linked tables: distributions against the surveys")
                linked_tables, linked_plots = _linked_section(project.catalog, inputs)
                tables, plots = {**tables, **linked_tables}, {**plots, **linked_plots}
            return tables, plots

        result, (population, population_figures) = forked_imap(
            lambda piece: piece(), [figures, sections], 2 if beside else 1,
            on_log=lambda name, level, text: _relayed(context, level, text),
            on_peak=lambda position, peak: log_child_peak(context, ("the figures", "the tables")[position], peak))
        result.tables.update(population)
        result.figures.update(population_figures)
        comparison = None
        if config.compare_families:
            comparison = _compare_families(context, config, compute, project.catalog, training.read(),
                                           seeded_sample(training.select(columns), n, config.seed),
                                           seeded_sample(holdout.select(columns), n, config.seed), scoring)
        out = report_dir(project, context.partition_key, context.run_id)
        docs = data_docs(project, context)
        # The Great Expectations Data Docs of the data checked (ingest, harmonised, fictitious)
        links = {"Great Expectations Data Docs (what each table was checked against)":
                 os.path.relpath(docs.index, out)}
        paths = write_report(result, out, comparison=comparison, links=links)
        verdict = report_verdict(result, fictitious, out, context.run_id,
                                 {p.name: file_sha256(p) for k, p in paths.items() if k in ("metrics", "report")})
        metadata = {
            "report": dg.MetadataValue.path(str(out / "report.html")),
            "metrics_file": dg.MetadataValue.path(str(out / "metrics.json")),
            "data_docs": dg.MetadataValue.path(str(docs.index)),
            JUDGED_HASH: verdict[JUDGED_HASH],
            "passed": result.passed,
            "failed_checks": ", ".join(result.failed) or "none",
            "headline": dg.MetadataValue.md(headline_markdown(result)),
        }
        metadata["calibration_residuals"] = dg.MetadataValue.md(
            population["population: calibration residuals by margin"].to_markdown(index=False))
        # The plots people look at first, shown in the UI beside the figures.
        for name in ("privacy:dcr", "association:cramers_v", "population:calibration"):
            if name in result.figures:
                metadata[f"plot_{name.split(':')[1]}"] = png_markdown(result.figures[name], name)
        for key in ("kmarginal_1", "kmarginal_2", "kmarginal_3", "worst_1way_distance", "s_pmse", "propensity_auc",
                    "exact_copy_rate", "dcr_share", "mia_auc"):
            value = result.metrics.get(key)
            if isinstance(value, (int, float)):
                metadata[key] = float(value)
            if key in result.sampling_error:
                metadata[f"{key}_sampling_error"] = result.sampling_error[key]
        if comparison is not None:
            metadata.update(_comparison_metadata(comparison, config, out))
        return dg.Output(verdict, metadata=metadata)

    return validation_report


def report_verdict(
    result: Any, fictitious: pd.DataFrame | ParquetTable, out: Path, run_id: str, files: dict[str, str]
) -> dict[str, Any]:
    """The report as a value: what was judged (content hash), the verdict, and its files.

    Downstream steps take this instead of reading metrics.json back, so they judge exactly
    what this step computed, and know which fictitious data it was computed on.
    """
    content = result.to_dict()
    return {
        **judged(fictitious),
        "passed": content["passed"],
        "failed": content["failed"],
        "checks": content["checks"],
        "skipped": content["skipped"],
        "metrics": content["metrics"],
        "baseline": content["baseline"],
        "report_dir": str(out),
        "files": files,
        "run_id": run_id,
    }
