"""The population model and the fictitious dataset: 100% generated records."""

import functools
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator

from synth_assets.calibration import Targets, calibrated_population, select_households, spec_from_catalog
from synth_assets.calibration.tails import top_code
from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetStack, ParquetTable
from synth_assets.common.memory import release_free_memory
from synth_assets.common.parallel import forked_imap, resolved_jobs
from synth_assets.defs import keys, working_sets
from synth_assets.defs.automation.conditions import RELEASE_AUTOMATION
from synth_assets.defs.calibration.assets import amount_thresholds, household_key
from synth_assets.defs.metadata import log_child_peak, log_progress, png_markdown
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.resources import ComputeResource, ProjectResource
from synth_assets.defs.signatures import with_keyword_inputs
from synth_assets.defs.synthesis.fallback import fallback_of
from synth_assets.defs.values import ModelFile, RegionDraw, WaveTable
from synth_assets.defs.versions import code_version
from synth_assets.synthesis.factory import check_model_params, model_options
from synth_assets.synthesis.families import FAMILIES, Family
from synth_assets.synthesis.split import split_masks

if TYPE_CHECKING:
    from synth_assets.synthesis.constraints import RuleEnforcement

#: A hash of the source this module runs (see ``defs/versions.py``).
SYNTHESIS_CODE_VERSION = code_version(__name__)


class SplitConfig(dg.Config):
    """Share of households kept out of training, so privacy can be measured against them, and the
    most persons the model learns from.

    ``max_training_persons``: beyond it the training sample is a seeded random sample of the other
    households (whole), so the model's fit and each replicate's draw stop growing with the
    population (bench/README.md, issue 16); ``null``: every household not held out. The sample is
    stratified by the household structure the release is calibrated on (its first household
    margin): a structure with fewer than 30 households is taken whole (``split_masks``), since a
    model that draws from its training households (CART's donors) cannot draw a structure the
    sample missed. The default, 1,000,000 persons, leaves a city of 1.2 million whole (its 960,000
    training persons: the model's step 2.7 GB) and bounds a country's: a smaller sample costs
    fidelity, measured at 1.2 million persons with 400,000 (with n_jobs 2: about 11 minutes saved, register x register
    TVD against the truth 13% higher: bench/README.md, "Twelfth pass").
    """

    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    max_training_persons: int | None = Field(default=1_000_000, ge=1_000)
    seed: int = Field(default=0, ge=0)


class ModelConfig(dg.Config):
    """Which family to train and how long. ``max_seconds`` bounds training whatever ``epochs`` says.

    With households, ``family`` generates the households and ``person_family`` their members
    given the household (None: the same family). The default is the autoregressive network
    (``neural``) for both, which passes the gate on the demo (README, "The model"), with
    sequential CART as its fallback. ``family: gan`` trains our conditional GAN.

    ``fallback_family``: when the gate refuses the release of this model, the wave is released
    again from a model of that family (both households and members), which meets the same gate
    (``defs/synthesis/fallback.py``); the release's data card then names it and the refusal.
    ``synth-assets run`` launches that run itself, ``release_fallback_sensor`` for a run
    launched from the UI or by the automation (``defs/synthesis/fallback_sensor.py``). A model
    of the fallback family alone has no fallback.
    """

    family: Family = "neural"
    person_family: str | None = None  # a family; Dagster's config types take no Optional[Literal]
    fallback_family: str | None = "cart"
    epochs: int = Field(default=300, ge=1)
    max_seconds: float = Field(default=600.0, gt=0)
    seed: int = Field(default=0, ge=0)
    households: bool = True
    # the families' own options (``synthesis.factory.model_options``), e.g. {"min_leaf": 50} for
    # CART, {"batch_size": 500} for the GAN; each model takes those it has
    params: dict[str, Any] = {}

    @field_validator("person_family", "fallback_family")
    @classmethod
    def _person_family(cls, value: str | None) -> str | None:
        return check_family(value)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        own = sorted(set(value) & set(cls.model_fields))
        if own:
            raise ValueError(f"{own[0]!r} is an option of the model step itself: set model.{own[0]}")
        family = info.data.get("family", "neural")
        person_family = info.data.get("person_family") or family
        families = [family, person_family] if info.data.get("households", True) else [family]
        return check_model_params(families, value, exclude=list(cls.model_fields))


def check_family(value: str | None) -> str | None:
    """A family name, or None; any other name refused, naming the families (config validators)."""
    if value is not None and value not in FAMILIES:
        raise ValueError(f"{value!r} is not a model family; choose one of {', '.join(FAMILIES)}")
    return value


class FictitiousConfig(dg.Config):
    """How many replicates (for the combining rules) and how many persons each.

    Valid combining rules need each replicate from its own draw of the model's parameters.
    CART has one (its fitted trees' leaves filled with the replicate's records, Bayesian-bootstrap
    weighted), the networks too (fine-tuned on them). For the SDV families that means a refit per
    replicate on a bootstrap sample: ``refit_replicates`` turns it on (m times the training
    time); without it their replicates differ by sampling noise only. For CART and the networks
    ``refit_replicates`` fits each replicate's model afresh instead (m times the training time:
    7 to 8 minutes a replicate for CART at 1.2 million persons), whose trees then differ too: the
    replicates' own spread is wider (bench/README.md, "Fourteenth pass").
    """

    replicates: int = Field(default=5, ge=1, le=100)
    # without calibration (release.calibration.enabled: false); default: the register's
    persons: int | None = Field(default=None, ge=1)
    refit_replicates: bool = False
    seed: int = Field(default=1, ge=0)
    # households drawn and checked this many persons at a time: the sampler's working set (about
    # 3.3 KB per drawn person for CART) is one chunk's, not the whole surplus's (bench/scale)
    chunk_persons: int = Field(default=100_000, ge=1_000)


def _structure_variables(catalog: Catalog) -> list[str]:
    """The household structure the release is calibrated on (its first household margin), or none."""
    if not catalog.release.calibration.enabled:
        return []
    return next((list(m.variables) for m in catalog.calibration_margins() if m.unit == "household"), [])


def build_split(catalog: Catalog) -> dg.AssetsDefinition:
    household_id = catalog.register.household_id_column or catalog.register.id_column
    partitions = wave_partitions(catalog.register_name)

    @dg.multi_asset(
        group_name="synthesis",
        op_tags=working_sets.POPULATION,
        partitions_def=partitions,
        outs={
            keys.name(keys.TRAINING_SAMPLE): dg.AssetOut(
                key=keys.TRAINING_SAMPLE,
                code_version=SYNTHESIS_CODE_VERSION,
                automation_condition=RELEASE_AUTOMATION,
                description=("Households of the matched dataset the model learns from: beyond `max_training_persons`, "
                             "a seeded random sample of them. Never public."),
            ),
            keys.name(keys.HOLDOUT_SAMPLE): dg.AssetOut(
                key=keys.HOLDOUT_SAMPLE,
                code_version=SYNTHESIS_CODE_VERSION,
                automation_condition=RELEASE_AUTOMATION,
                description=(
                    "Households kept out of training: the yardstick for privacy (distance to "
                    "closest record, membership inference) and for the utility baseline. Never public."
                ),
            ),
        },
        ins={"matched": dg.AssetIn(keys.MATCHED_DATASET)},
    )
    def split_matched_dataset(config: SplitConfig, matched: ParquetTable):
        # decided on the household column, written a row group at a time: neither side held whole
        groups = matched.read([household_id])[household_id] if household_id else np.arange(matched.num_rows)
        structure = [v for v in _structure_variables(catalog) if v in matched.columns] if household_id else []
        strata = (None if not structure or config.max_training_persons is None
                  else matched.read(structure).groupby(structure, observed=True, dropna=False, sort=False).ngroup())
        in_training, in_holdout = split_masks(groups,
                                              config.holdout_fraction, seed=config.seed,
                                              max_training_rows=config.max_training_persons, strata=strata)
        train, holdout = ParquetStack(), ParquetStack()
        start = 0
        for frame in matched.frames():
            rows = slice(start, start + len(frame))
            train.append(frame.loc[in_training[rows]])
            holdout.append(frame.loc[in_holdout[rows]])
            start += len(frame)
            del frame
        left_out = int(len(in_training) - in_training.sum() - in_holdout.sum())
        yield dg.Output(train.finish(), output_name=keys.name(keys.TRAINING_SAMPLE),
                        metadata={"rows": int(in_training.sum()), "persons_in_neither_sample": left_out})
        yield dg.Output(holdout.finish(), output_name=keys.name(keys.HOLDOUT_SAMPLE),
                        metadata={"rows": int(in_holdout.sum())})

    return split_matched_dataset


#: Facts about the training the published data card cites, kept in the model's ``training_log``.
MODEL_CARD_KEYS = ("family", "person_family", "parameters", "training_seconds", "epochs_run", "device", "run_id",
                   "fallback")


def model_card(model: Any) -> dict[str, Any]:
    """What the data card says about the model: family, parameters, training time, device, run."""
    log = model.training_log
    card = {"parameters": log.get("params", {}), "epochs_run": log.get("epochs"), **log.get("card", {})}
    # "fallback" only where the model replaced a refused one: other cards stay as they were
    return {k: card.get(k) for k in MODEL_CARD_KEYS if k != "fallback" or card.get(k)}


def _with_threads(config: ModelConfig, compute: ComputeResource) -> dict[str, Any]:
    """``config.params``, with ``n_jobs`` the compute resource's ``threads`` where a family takes it and
    the params leave it unset (CART: trees fitted that many at a time; the same model whatever it is)."""
    families = {config.family, config.person_family or config.family}
    takes = any("n_jobs" in model_options(family) for family in families)
    return {**({"n_jobs": resolved_jobs(compute.threads)} if takes else {}), **config.params}


def build_population_model(catalog: Catalog) -> dg.AssetsDefinition:
    register = catalog.register

    @dg.asset(
        key=keys.POPULATION_MODEL,
        op_tags=working_sets.POPULATION,
        automation_condition=RELEASE_AUTOMATION,
        group_name="synthesis",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=SYNTHESIS_CODE_VERSION,
        io_manager_key="model_io_manager",
        kinds={"pytorch", "sdv"},
        # One model trains at a time across all runs (pool limit in dagster.yaml), so a neural model
        # does not starve ingest and validation steps of the same machine.
        pool="model_training",
        ins={"training": dg.AssetIn(keys.TRAINING_SAMPLE)},
        description=(
            "The population model trained on the training sample: the autoregressive network by "
            "default (GPU when present, within a time budget); sequential CART, our conditional GAN, "
            "SDV's CTGAN, TVAE or Gaussian copula by config. Households are modelled as households. Metadata: family, parameters, "
            "epochs, training time and the loss curves."
        ),
    )
    def population_model(
        context: dg.AssetExecutionContext, config: ModelConfig, compute: ComputeResource, training: ParquetTable
    ):
        from synth_assets.synthesis import build_population_synthesizer, plot_losses
        from synth_assets.synthesis.families import TORCH_FAMILIES

        # CART and the copula need no torch: not imported, its threads and device not asked for
        uses_torch = bool({config.family, config.person_family or config.family} & set(TORCH_FAMILIES))
        if uses_torch:
            compute.configure_torch()
        gpu = uses_torch and compute.use_gpu()
        model = build_population_synthesizer(
            family=config.family,
            person_family=config.person_family,
            household_id=register.household_id_column if config.households else None,
            person_id=register.id_column,
            seed=config.seed,
            epochs=config.epochs,
            max_seconds=config.max_seconds,
            enable_gpu=gpu,
            # each survey's variables were fused from one donor: CART draws them as one block
            blocks=[[v for v in source.specific if v in training.columns] for source in catalog.surveys.values()],
            household_level=catalog.household_variables() if config.households else (),
            # the household's total income drawn with its household variables (spending follows it)
            household_totals=catalog.register_amounts() if config.households else (),
            # drawn within the rules the release is held to where the family can (the redraws and the gate check them)
            rules=catalog.plausibility_rules(),
            **_with_threads(config, compute),
        )
        started = time.perf_counter()
        # read from the file without the person id: one copy of the training sample, not the input and a copy
        model.fit(training.read([c for c in training.columns if c != register.id_column]))
        seconds = time.perf_counter() - started
        log = model.training_log
        # what the data card cites, with the model (public_dataset takes the model as an input)
        log["card"] = {
            "family": config.family,
            "person_family": config.person_family or config.family,
            "training_seconds": round(seconds, 1),
            "device": "cuda" if gpu else "cpu",
            "run_id": context.run_id,
        }
        replaced = fallback_of(context.run.tags)
        metadata: dict[str, Any] = {}
        if replaced is not None:
            # the public card cites the refusal, not the refused run's id (auditors: the metadata)
            log["card"]["fallback"] = {"instead_of": replaced["instead_of"], "refused_by": replaced["refused_by"]}
            metadata = {"fallback_of_run": replaced["refused_run"], "fallback_instead_of": replaced["instead_of"],
                        "fallback_refused_by": dg.MetadataValue.md("\n".join(f"- {r}" for r in replaced["refused_by"]))}
        metadata = {
            **{k: v for k, v in log["card"].items() if k not in ("run_id", "fallback")},
            **metadata,
            "parameters": dg.MetadataValue.json({k: v for k, v in log.get("params", {}).items()}),
            "epochs_run": log.get("epochs"),
            "training_rows": training.num_rows,
        }
        png = plot_losses(model)
        if png is not None:
            metadata["loss_curves"] = png_markdown(png, "training losses")
        return dg.Output(model, metadata=metadata)

    return population_model


def _add_counts(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add nested record counts (``{a: {b: n}}``) into ``total``."""
    for key, value in part.items():
        if isinstance(value, dict):
            _add_counts(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value


def removed_by_stratum_table(removed: dict[str, dict[str, dict[str, int]]],
                             drawn: dict[str, dict[str, int]]) -> str:
    """Markdown: per filter or rule, stratum variable and value, the records removed and their share of the draws."""
    rows = [
        {"filter or rule": reason, "stratum": f"{variable} = {value}", "removed": n,
         "drawn": drawn.get(variable, {}).get(value, 0),
         "share": round(n / drawn[variable][value], 4) if drawn.get(variable, {}).get(value) else None}
        for reason, variables in removed.items() for variable, values in variables.items()
        for value, n in values.items()
    ]
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "nothing removed"


FICTITIOUS_DESCRIPTION = (
    "100% generated records: `replicates` independent fictitious populations (column "
    "`replicate`) for the combining rules of fully synthetic data; households coherent; "
    "every catalog rule holds, no record equals a matched or survey record, and no record "
    "unique in the register reappears (such households are redrawn: their members given the "
    "household, else a fresh household of the same size, type and municipality, or of the "
    "same size where that structure breaks a rule, so the household structure stays the model's). "
    "Each replicate is chosen from a surplus of such households to meet the register's margins "
    "(`calibration_targets`) with unit weights, and carries `calibration_weight` (within the "
    "catalog's `calibration.weight_bounds`) for users who gross up. Drawn by region (catalog `release.regions`: one step per region, in "
    "parallel, drawing the candidates its strata need; one region `all` without), then chosen "
    "from all regions' candidates at once. "
    "Candidate for publication."
)


def _merge_summaries(parts: list[RegionDraw]) -> dict[str, Any]:
    """The regions' counts as the asset's metadata: per replicate (and region, with several)."""
    several = len(parts) > 1

    def keyed(part: RegionDraw, values: dict[str, Any]) -> dict[str, Any]:
        return {f"{part.region}/{k}" if several else k: v for k, v in values.items()}

    persons: dict[str, int] = {}
    merged: dict[str, Any] = {"households_replaced": {}, "calibration": {}, "top_coded": {},
                              "dropped_after_top_coding": {}, "outside_region": 0}
    by_stratum: dict[str, Any] = {}
    drawn_by_stratum: dict[str, Any] = {}
    for part in parts:
        summary = part.summary
        for replicate, n in summary["persons_per_replicate"].items():
            persons[replicate] = persons.get(replicate, 0) + n
        merged["households_replaced"].update(keyed(part, summary["households_replaced"]))
        merged["calibration"].update(keyed(part, summary["calibration"]))
        _add_counts(merged["top_coded"], summary["top_coded"])
        _add_counts(merged["dropped_after_top_coding"], summary["dropped_after_top_coding"])
        _add_counts(by_stratum, summary["by_stratum"])
        _add_counts(drawn_by_stratum, summary["drawn_by_stratum"])
        merged["outside_region"] += summary.get("outside_region", 0)
    merged.update(persons_per_replicate=persons, by_stratum=by_stratum, drawn_by_stratum=drawn_by_stratum,
                  proper=parts[0].summary["proper"], disclosure=parts[0].summary["disclosure"])
    return merged


def number_persons(data: pd.DataFrame, person_id: str | None) -> pd.DataFrame:
    """``data`` with persons numbered 1..n in its first column: within their replicate, the key the
    linked tables refer to. In place: drop/assign would each copy the replicate, at the step's peak."""
    if person_id:
        if person_id in data.columns:
            del data[person_id]
        data.insert(0, person_id, pd.Series(range(1, len(data) + 1), index=data.index, dtype="Int64"))
    return data


@dataclass(frozen=True)
class ChunkTally:
    """What making one chunk of a replicate's draw publishable took (pickled back from the child
    process that enforced it): the rules' enforcement (its rows let go), the amounts top-coded,
    the records dropped as disclosive after top-coding, the records outside the region."""

    enforcement: "RuleEnforcement"  # imported for the type only: the module is heavy (torch)
    top_coded: dict[str, int]
    dropped_after_top_coding: dict[str, int]
    outside_region: int


@dataclass(frozen=True)
class ReplicateDraw:
    """One replicate of a region step: its staged file (None: no household) and its counts, sent back
    from the child process that drew it (pickled: plain values)."""

    replicate: int
    table: str | None
    persons: int
    seed: int
    rejected: dict[str, Any]
    calibrated: dict[str, Any] | None
    top_coded: dict[str, int]
    dropped_after_top_coding: dict[str, int]
    outside_region: int
    by_stratum: dict[str, Any]
    drawn_by_stratum: dict[str, Any]


def build_fictitious_dataset(catalog: Catalog) -> dg.AssetsDefinition:
    register = catalog.register
    regions = catalog.region_groups()
    split = catalog.release.regions
    donor_names = [keys.name(keys.donor(name)) for name in catalog.surveys]

    @dg.op(out=dg.DynamicOut(str, io_manager_key="intermediate_io_manager"),
           description="One region per group of the catalog's `release.regions` (one region `all` without).")
    def fictitious_regions():
        for name in regions:
            yield dg.DynamicOutput(name, mapping_key=name)

    @dg.op(out=dg.Out(RegionDraw, io_manager_key="intermediate_io_manager"), tags=working_sets.REGION,
           description=("One region's candidate households in every replicate: drawn, checked, and as many as "
                        "its calibration strata need."))
    @functools.partial(with_keyword_inputs, names=donor_names)
    def fictitious_region(
        context: dg.OpExecutionContext, config: FictitiousConfig, project: ProjectResource, compute: ComputeResource,
        region: str,
        model: ModelFile, training: ParquetTable, matched: ParquetTable, matched_replicates: ParquetTable,
        targets: pd.DataFrame, **donors: WaveTable,
    ) -> RegionDraw:
        from synth_assets.calibration.candidates import Candidates
        from synth_assets.calibration.population import default_surplus, draw_candidates
        from synth_assets.calibration.regions import in_region, region_table, regional_targets
        from synth_assets.synthesis.constraints import (  # lazy: torch and SDV are heavy
            copy_detectors,
            drop_disclosive_households,
            enforce_rules,
            enforced_chunks,
        )
        from synth_assets.synthesis.replicates import ReplicateTrainingSets, chain_replicate_models

        # The step's working set is one replicate's model and one chunk of its draws: the real tables
        # are read from their files, the region's rows and the columns needed only, and hashed a row
        # group at a time for the copy filters; the model is loaded for its replicates' draws alone.
        household_id = register.household_id_column
        calibration = project.catalog.release.calibration
        spec = spec_from_catalog(project.catalog)
        register_targets = Targets.from_frame(spec, targets)
        population = register_targets.persons  # the whole register's, whatever the region
        values = regions[region]
        # a region's own households: the references a record of it could copy (the variable is a
        # quasi-identifier's or a household's, so a record elsewhere never equals one of these)
        here = (lambda table: table) if values is None or split is None else (
            lambda table: region_table(table, split.variable, values))
        thresholds = amount_thresholds(project.catalog, matched)
        if values is not None and split is not None:
            coded, _ = top_code(here(matched).read([c for c in register.variables if c in matched.columns]),
                                thresholds)
            register_targets = regional_targets(coded, register_targets, household_key(catalog), split.variable, values)
            del coded
        ids = {register.id_column, household_id}
        compare_columns = [c for c in matched.columns if c not in ids]
        register_columns = [c for c in register.variables if c in matched.columns and c not in ids]
        references: dict[str, pd.DataFrame | ParquetTable] = {"matched dataset": here(matched).select(compare_columns)}
        for donor in donors.values():
            source = catalog.sources[donor.origin.source]
            survey_ids = {source.id_column, source.household_id_column, source.weight_column}
            survey = donor.data.drop(columns=[c for c in survey_ids if c in donor.data])
            references[f"{donor.origin.source} survey"] = (
                survey.loc[in_region(survey, split.variable, values)]
                if values is not None and split is not None and split.variable in survey else survey)
        rules = project.catalog.plausibility_rules()
        release = project.catalog.release
        # the references indexed once for every chunk of every replicate (their hashes only)
        detectors = copy_detectors(references, {"register": here(matched).select(register_columns)}, compare_columns,
                                   quasi_identifiers=list(release.quasi_identifiers), k=release.disclosure.k)
        del references
        release_free_memory()  # the references' hashing
        fitted = model.load()
        persons = config.persons or register_targets.persons
        refit = config.refit_replicates and not fitted.has_posterior_draw
        proper = bool(fitted.has_posterior_draw or refit)
        calibrate_here = calibration.enabled and len(regions) == 1
        # by the whole register's size, whatever the region: the model learnt from all of it
        surplus = calibration.surplus or default_surplus(population)

        def draw_replicate(job: tuple[int, Any, int]) -> ReplicateDraw:
            """Replicate ``i``'s households of the region, drawn and checked, then chosen (one region)
            or kept as candidates (several), in a staged file of its own; and its counts. In a child
            process when the step runs replicates side by side: it logs through ``synth_assets``'
            loggers (relayed to the step's log), never through the step's context."""
            i, replicate_model, replicate_seed = job
            # in a child, the step's context is the parent's: a logger's records are relayed to it
            progress = logging.getLogger("synth_assets.calibration").info if processes > 1 else context.log.info
            if values is not None and split is not None:
                if not hasattr(replicate_model, "restricted_to"):
                    raise ValueError("release.regions: a draw by region needs a household model (model.households)")
                replicate_model = replicate_model.restricted_to(split.variable, values)
            tallies: list[ChunkTally] = []

            def enforce(sample: pd.DataFrame, seed: int, representative: bool = True) -> tuple[pd.DataFrame, ChunkTally]:
                """The sample made publishable, and what that took (in a child process when the chunks'
                enforcement runs beside the draw: it returns its counts, it keeps nothing here)."""
                enforced = enforce_rules(
                    sample, rules, lambda size, s: replicate_model.sample(size, seed=s), detectors=detectors,
                    household_id=household_id, seed=seed,
                    households=replicate_model if hasattr(replicate_model, "redraw_members") else None,
                    # calibration chooses from a surplus: a household no redraw fixes is left out
                    drop_unfixable=calibration.enabled,
                    # the copy filters judge risk: rare records reproduced, or records copied whole
                    quasi_identifiers=list(release.quasi_identifiers), k=release.disclosure.k,
                    compare_columns=compare_columns,
                    strata=release.disclosure.strata,
                    member_rounds=release.enforcement.member_rounds, max_rounds=release.enforcement.max_rounds,
                    # a draw of the rarest strata alone says nothing of the model's rejection rate
                    max_rejection_rate=release.enforcement.max_rejection_rate if representative else 1.0,
                )
                data, top_coded_here = top_code(enforced.data, thresholds)
                # its counts are kept for the metadata, not its rows: every chunk of the surplus
                # would stay in memory until the replicate ends (the candidates are on disk). A copy:
                # an empty slice is a view that keeps the whole chunk alive
                enforced.data = enforced.data.iloc[:0].copy()
                # judged again as published: a top-coded amount is a real value
                data, dropped = drop_disclosive_households(data, detectors, household_id)
                outside = 0
                if values is not None and split is not None:
                    # a redraw that kept only the size may come from another region: not this one's
                    kept = in_region(data, split.variable, values)
                    outside = int((~kept).sum())
                    data = data.loc[kept]
                return data, ChunkTally(enforced, top_coded_here, dropped, outside)

            def tallied(results: Iterable[tuple[pd.DataFrame, ChunkTally]]) -> Iterator[pd.DataFrame]:
                for data, tally in results:
                    tallies.append(tally)
                    yield data

            def draw_chunks(n: int, seed: int) -> Iterator[pd.DataFrame]:
                # each chunk drawn and enforced in a child while this process begins the next (one
                # replicate at a time: a replicate in a child of its own draws its chunks itself)
                return tallied(enforced_chunks(replicate_model, n, enforce, seed=seed, chunk_size=config.chunk_persons,
                                               processes=chunk_processes,
                                               on_log=lambda _, level, text: context.log.log(level, text)))

            def draw_like(structures: pd.DataFrame, seed: int) -> pd.DataFrame:
                return next(tallied([enforce(replicate_model.sample_structures(structures, seed=seed), seed,
                                             representative=False)]))

            usable_draw_like = draw_like if hasattr(replicate_model, "sample_structures") else None
            own = ParquetStack(work)
            calibrated = None
            if calibrate_here:
                # one region: the step that draws also chooses, and draws once more should the first
                # selection end beyond a tolerance (the neural 50k make run needed it in one replicate)
                # calibration's top-ups and search in the step's log (info: a step process keeps no
                # debug lines, and at 1.2 million persons a top-up was a 20-minute draw nobody could name)
                result = calibrated_population(draw_chunks, register_targets, household_key(catalog),
                                               surplus=surplus, seed=replicate_seed,
                                               progress=progress, draw_like=usable_draw_like)
                data = number_persons(result.data, register.id_column)
                calibrated = result.summary()
                data["replicate"] = i
                own.append(data)
                del data, result
            elif calibration.enabled:
                # the region's candidates: a surplus, and more for its strata left short (drawn given
                # their structure); each enforced chunk goes to disk as it comes. The households are
                # chosen from every region's candidates at once (fictitious_join): the national margins
                # are then met as by a release drawn in one step.
                with Candidates([household_key(catalog), *register_targets.spec.variables]) as candidates:
                    draw_candidates(draw_chunks, register_targets, household_key(catalog), candidates,
                                    surplus=surplus, seed=replicate_seed, progress=progress,
                                    draw_like=usable_draw_like)
                    for piece in candidates.pieces():
                        piece["replicate"] = i
                        own.append(piece)
            else:
                parts = list(draw_chunks(persons, replicate_seed))  # at least one: persons > 0
                data = number_persons(parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True),
                                      register.id_column)
                del parts
                data["replicate"] = i
                own.append(data)
                del data
            enforcements = [t.enforcement for t in tallies]
            top_coded: dict[str, int] = {}
            dropped_after_top_coding: dict[str, int] = {}
            for t in tallies:
                _add_counts(top_coded, t.top_coded)
                _add_counts(dropped_after_top_coding, t.dropped_after_top_coding)
            drawn = sum(e.drawn_households for e in enforcements)
            replaced = sum(e.rejected_households for e in enforcements)
            reasons: dict[str, int] = {}
            by_stratum: dict[str, Any] = {}
            drawn_by_stratum: dict[str, Any] = {}
            for e in enforcements:
                _add_counts(reasons, e.rejected_by_reason)
                _add_counts(by_stratum, e.rejected_by_stratum)
                _add_counts(drawn_by_stratum, e.drawn_by_stratum)
            rejected = {
                "rate": round(replaced / drawn, 4) if drawn else 0.0,
                "by_members": sum(e.fixed_by_member_redraws for e in enforcements),
                "whole": sum(e.fixed_by_household_redraws for e in enforcements),
                "size_only": sum(e.fixed_with_size_only for e in enforcements),
                "dropped": sum(e.dropped_households for e in enforcements),
                **{k: v for k, v in reasons.items() if v},
            }
            return ReplicateDraw(i, own.finish().detach() if own.started else None, len(own), int(replicate_seed),
                                 rejected, calibrated, top_coded, dropped_after_top_coding,
                                 sum(t.outside_region for t in tallies), by_stratum,
                                 drawn_by_stratum)

        # replicate r: its own survey bootstraps and fusion (matched_replicates, read when its turn
        # comes), model refit and draw
        models = chain_replicate_models(
            fitted, ReplicateTrainingSets(matched_replicates, training.read([household_key(catalog)]),
                                          household_key(catalog), config.replicates,
                                          drop=[c for c in (register.id_column,) if c]),
            config.seed, refit=True if refit else None, cluster=household_id,
            from_scratch=config.refit_replicates and fitted.has_posterior_draw,
        )
        del fitted  # the chain keeps what its draws need: a clone to refit, or CART's trees without their leaves

        def jobs() -> Iterator[tuple[int, Any, int]]:
            # no enumerate(models): its cached result tuple would hold the previous replicate's model
            # until the next one is fitted (a CART replicate model is its training data again)
            i = 0
            for replicate_model, replicate_seed in models:
                i += 1  # noqa: SIM113 (see above)
                yield i, replicate_model, replicate_seed
                # this replicate's model: not held while the next one is fitted
                del replicate_model
                release_free_memory()

        # each replicate written to a staged file as it is made (by this process or a child), joined
        # here in order; the replicates side by side on the step's cores (compute.processes): the
        # draws and checks are pandas and Python, which threads cannot share
        replicates = ParquetStack()
        persons_per_replicate: dict[str, int] = {}
        rejected: dict[str, dict[str, Any]] = {}
        by_stratum: dict[str, dict[str, dict[str, int]]] = {}  # reason -> stratum variable -> value -> records
        drawn_by_stratum: dict[str, dict[str, int]] = {}
        seeds: dict[str, int] = {}
        calibrated: dict[str, dict[str, Any]] = {}
        top_coded: dict[str, int] = {}
        dropped_after_top_coding: dict[str, int] = {}
        outside_region = 0
        processes = working_sets.child_processes(compute.processes, population, config.replicates)
        chunk_processes = working_sets.chunk_processes(compute.processes, processes)
        if processes > 1:
            log_progress(context, f"{config.replicates} replicates, {processes} at a time in processes of their own")
        elif chunk_processes > 1:
            log_progress(context, f"each replicate's chunks drawn and checked (members, rules, copy filters) in up to "
                                  f"{chunk_processes} processes of their own, the next begun meanwhile")
        with tempfile.TemporaryDirectory(prefix="synth-assets-replicates-") as work:
            for part in forked_imap(draw_replicate, jobs(), processes,
                                    on_log=lambda _, level, text: context.log.log(level, text),
                                    on_peak=lambda position, peak: log_child_peak(context, f"replicate {position + 1}",
                                                                                  peak)):
                name = f"r{part.replicate}"
                if part.table is not None:
                    replicates.extend(part.table)
                    os.remove(part.table)  # joined: its disk is not held while the next ones are
                seeds[name] = part.seed
                persons_per_replicate[name] = part.persons
                rejected[name] = part.rejected
                _add_counts(top_coded, part.top_coded)
                _add_counts(dropped_after_top_coding, part.dropped_after_top_coding)
                _add_counts(by_stratum, part.by_stratum)
                _add_counts(drawn_by_stratum, part.drawn_by_stratum)
                outside_region += part.outside_region
                if part.calibrated is not None:
                    calibrated[name] = part.calibrated
                    log_progress(context, f"replicate {part.replicate} of {config.replicates}: {part.persons:,} "
                                          f"persons, calibrated ({part.calibrated['count_cells_off']} count cells off "
                                          f"by at most {part.calibrated['max_abs_count_residual']:g})")
                elif calibration.enabled:
                    log_progress(context, f"replicate {part.replicate} of {config.replicates}: {part.persons:,} "
                                          "candidate persons")
                else:
                    log_progress(context, f"replicate {part.replicate} of {config.replicates}: "
                                          f"{part.persons:,} persons")
        summary = {
            "persons_per_replicate": persons_per_replicate, "households_replaced": rejected,
            "candidates": calibration.enabled and len(regions) > 1, "calibration": calibrated,
            "replicate_seeds": seeds, "top_coded": top_coded, "dropped_after_top_coding": dropped_after_top_coding,
            "by_stratum": by_stratum, "drawn_by_stratum": drawn_by_stratum, "outside_region": outside_region,
            "proper": proper,
            # the filters' and enforcement's settings this draw ran with (catalog, or a run's overlay)
            "disclosure": {"quasi_identifiers": list(release.quasi_identifiers), **release.disclosure.model_dump(),
                           **release.enforcement.model_dump()},
        }
        return RegionDraw(region, replicates.finish(), summary)

    @dg.op(tags=working_sets.POPULATION, description=("The regions' households joined into one release, replicate by replicate: with "
                        "calibration, chosen from every region's candidates to meet the register's margins."))
    def fictitious_join(context: dg.OpExecutionContext, config: FictitiousConfig, project: ProjectResource,
                        parts: list[RegionDraw], targets: pd.DataFrame) -> dg.Output[ParquetTable]:
        from synth_assets.calibration.candidates import Candidates
        from synth_assets.calibration.population import selection_seed
        from synth_assets.calibration.regions import join_regions, region_rows

        household_id = household_key(catalog)
        order = list(regions)
        parts = sorted(parts, key=lambda part: order.index(part.region))
        named = [(part.region, part.table) for part in parts]
        merged = _merge_summaries(parts)
        calibrated: dict[str, dict[str, Any]] = merged["calibration"]  # chosen by a single region's step
        if parts[0].summary["candidates"]:
            register_targets = Targets.from_frame(spec_from_catalog(project.catalog), targets)
            stack = ParquetStack()
            for i, (name, seed) in enumerate(parts[0].summary["replicate_seeds"].items(), start=1):
                with Candidates([household_id, *register_targets.spec.variables]) as candidates:
                    for frame in region_rows(named, i, household_id):
                        candidates.append(frame)
                    result = select_households(candidates, register_targets, household_key(catalog),
                                               seed=selection_seed(seed), progress=context.log.info)
                data = number_persons(result.data, register.id_column)
                calibrated[name] = result.summary()
                data["replicate"] = i
                stack.append(data)
                merged["persons_per_replicate"][name] = len(data)
                log_progress(context, f"replicate {i}: {len(data):,} persons chosen from {result.candidate_households:,} "
                             f"candidate households, calibrated ({calibrated[name]['count_cells_off']} count cells off "
                             f"by at most {calibrated[name]['max_abs_count_residual']:g})")
                del data
            fictitious = stack.finish()
        else:
            fictitious = join_regions(named, household_id, register.id_column)
        return dg.Output(
            fictitious,
            metadata={
                "replicates": config.replicates,
                "regions": dg.MetadataValue.json({part.region: regions[part.region] for part in parts}),
                "proper_replicates": merged["proper"],
                "replicates_draw": "survey bootstrap + own fusion + the model given it, and a posterior draw"
                if merged["proper"] else "one fitted model (not proper)",
                "persons_per_replicate": dg.MetadataValue.json(merged["persons_per_replicate"]),
                "rows": fictitious.num_rows,
                "households_replaced": dg.MetadataValue.json(merged["households_replaced"]),
                "calibration": dg.MetadataValue.json(calibrated) if calibrated else "off",
                "top_coded_values_drawn": dg.MetadataValue.json(merged["top_coded"]),
                # records the copy filters flagged once top-coded (their households left out)
                "disclosive_after_top_coding": dg.MetadataValue.json(merged["dropped_after_top_coding"]),
                # what the filters and rules removed from the draws, per stratum: a filter that
                # removes one region's or one household size's records more than others' shows here
                "removed_by_stratum": dg.MetadataValue.md(
                    removed_by_stratum_table(merged["by_stratum"], merged["drawn_by_stratum"])),
                "disclosure": dg.MetadataValue.json(merged["disclosure"]),
                **({"outside_region_left_out": merged["outside_region"]} if split is not None else {}),
            },
        )

    @dg.config_mapping(config_schema=FictitiousConfig.to_config_schema().as_field())
    def fictitious_config(config: dict[str, Any]) -> dict[str, Any]:
        # one settings block for the asset (ops.fictitious_dataset.config), as for any other step
        return {"fictitious_region": {"config": config}, "fictitious_join": {"config": config}}

    @dg.graph_asset(
        key=keys.FICTITIOUS_DATASET,
        automation_condition=RELEASE_AUTOMATION,
        group_name="synthesis",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=SYNTHESIS_CODE_VERSION,
        kinds={"pandas"},
        config=fictitious_config,
        ins={
            "model": dg.AssetIn(keys.POPULATION_MODEL),
            "training": dg.AssetIn(keys.TRAINING_SAMPLE),
            "matched": dg.AssetIn(keys.MATCHED_DATASET),
            "matched_replicates": dg.AssetIn(keys.MATCHED_REPLICATES),
            "targets": dg.AssetIn(keys.CALIBRATION_TARGETS),
            **{name: dg.AssetIn(keys.donor(survey)) for name, survey in zip(donor_names, catalog.surveys)},
        },
        description=FICTITIOUS_DESCRIPTION,
    )
    @functools.partial(with_keyword_inputs, names=donor_names)
    def fictitious_dataset(model, training, matched, matched_replicates, targets, **donors):
        parts = fictitious_regions().map(
            lambda region: fictitious_region(region, model, training, matched, matched_replicates, targets, **donors))
        return fictitious_join(parts.collect(), targets)

    return fictitious_dataset
