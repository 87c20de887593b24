"""Fusing every survey of the catalog into the register base, one survey after another.

Person-level variables are matched person to person. Household-level variables (budgets,
wealth; in a person file, household facts repeated on every member, declared ``level:
household``) are matched household to household on the head's common variables and the
household's size and labour income, then every member of the recipient household gets the
donor household's values: the household stays coherent and the survey's variables keep
their joint relations, since a whole block comes from one donor. A survey holding both levels is fused in two steps: its household
variables once per household, then its person variables person by person, conditioned on the
household values just donated (so a member's answers fit the household's facts).

Before fusing, a survey's item non-response is imputed from its own respondents
(:mod:`synth_assets.matching.nonresponse`): a missing answer is never copied into the
population.  Recipients outside a survey's ``universe`` get each variable's catalog
``not_applicable`` value (e.g. -8 hours for persons over 74), not an imputation; so do
recipients outside a variable's own ``universe`` (e.g. personal incomes from age 16), whose
values come from the donors inside it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.catalog.model import MatchingStep, Source
from synth_assets.common.memory import release_free_memory
from synth_assets.common.parallel import forked_imap, resolved_jobs
from synth_assets.matching.api import fuse
from synth_assets.matching.methods import METHODS
from synth_assets.matching.methods.neural import NetworkCache, import_training_modules
from synth_assets.matching.nonresponse import impute_item_nonresponse
from synth_assets.matching.resample import COPIES_COLUMN

log = logging.getLogger("synth_assets.matching")

HOUSEHOLD_PREFIX = "hh_"


@dataclass
class SurveyFusion:
    """What one survey contributed to the base.

    ``item_nonresponse``: per specific variable, how many donor values (households for a
    household survey) were missing and imputed from respondents before fusion; also in
    ``diagnostics["item_nonresponse"]``.
    """

    survey: str
    wave: str
    method: str
    unit: str
    on: list[str]
    imputed: list[str]
    donors: int
    diagnostics: dict[str, Any] = field(default_factory=dict)
    item_nonresponse: dict[str, int] = field(default_factory=dict)
    household_variables: list[str] = field(default_factory=list)  # imputed once per household


def _head_rows(table: pd.DataFrame, household_id: str) -> pd.DataFrame:
    """One row per household: the head's where relation is known, else the first member."""
    if "relation" in table:
        order = (table["relation"].astype("string") != "head").astype(int)
        table = table.assign(_order=order.to_numpy()).sort_values([household_id, "_order"], kind="stable")
        table = table.drop(columns="_order")
    return table.drop_duplicates(household_id, keep="first")


def household_view(table: pd.DataFrame, household_id: str, common: list[str]) -> pd.DataFrame:
    """Household-level matching variables: the head's common variables plus household totals."""
    # the columns used, not the table: on the register, a sort of the whole base cost two copies of it
    used = [c for c in dict.fromkeys([household_id, "relation", *common, "labour_income"]) if c in table.columns]
    table = table[used]
    heads = _head_rows(table, household_id)[[household_id, *common]].reset_index(drop=True)
    grouped = table.groupby(household_id, sort=False)
    if "household_size" not in common:
        sizes = grouped.size().rename("household_size")
        heads = heads.merge(sizes, left_on=household_id, right_index=True, how="left")
    if "labour_income" in table:
        totals = grouped["labour_income"].sum(min_count=1).rename(f"{HOUSEHOLD_PREFIX}labour_income")
        heads = heads.merge(totals, left_on=household_id, right_index=True, how="left")
    return heads


def _matching_variables(catalog: Catalog, survey: str, base: pd.DataFrame, configured: list[str] | None) -> list[str]:
    source = catalog.sources[survey]
    if configured:
        missing = [v for v in configured if v not in base.columns]
        if missing:
            raise ValueError(f"release.matching.{survey}.on: {missing} not in the base at this step")
        return list(configured)
    shared = [v for v in source.common if v in base.columns]
    if not shared:
        raise ValueError(f"survey {survey!r} shares no common variable with the register")
    return shared


def fuse_sources(
    catalog: Catalog,
    register: pd.DataFrame,
    surveys: dict[str, tuple[str, pd.DataFrame]],
    *,
    methods: dict[str, str] | None = None,
    seed: int = 0,
    processes: int | None = None,
    on_log: Callable[[str, int, str], None] | None = None,
    on_peak: Callable[[int, int | None], None] | None = None,
    donor_seed: int | None = None,
    networks: NetworkCache | None = None,
) -> tuple[pd.DataFrame, list[SurveyFusion]]:
    """Impute each survey's specific variables into the register, in catalog order.

    ``surveys`` maps survey name to (wave used, harmonised table). ``methods`` overrides the
    catalog's method per survey. Returns the matched base (same rows and order as the
    register) and one :class:`SurveyFusion` per survey.

    ``donor_seed`` (default ``seed``) seeds the surveys' item non-response imputation, ``networks``
    keeps ``neural_draw``'s networks for a later call: the parts of one register
    (``matching.parts``) share both, so their donors are one completion and each survey's network
    is trained once, while ``seed`` gives each part its own draws.

    With ``processes`` > 1, surveys that read nothing an earlier one imputes (their matching
    variables, donation classes and universes are the register's) are fused side by side in
    child processes forked from this one (``common.parallel.forked_imap``; ``on_log`` and
    ``on_peak`` as there): each fusion has its own seeds, so the result is the same; a survey
    that reads an earlier one's variables makes the whole chain run here, one after another.
    """
    methods = methods or {}
    # A shallow copy: the base only gains columns, so the register's own are shared, not copied
    # (a deep copy was the size of the register again, per matched replicate too).
    base = register.copy(deep=False)
    base.index = pd.RangeIndex(len(base))
    # each survey imputes its specific variables that no earlier one (nor the register) holds
    present = set(base.columns)
    plan: list[tuple[int, str, str, pd.DataFrame, list[str]]] = []
    for step, (survey, (wave, donor)) in enumerate(surveys.items()):
        specific = [v for v in catalog.sources[survey].specific if v not in present]
        plan.append((step, survey, wave, donor, specific))
        present.update(specific)

    def fused(item: tuple[int, str, str, pd.DataFrame, list[str]]) -> tuple[dict[str, pd.Series], SurveyFusion]:
        step, survey, wave, donor, specific = item
        own = base.copy(deep=False)  # in a child, the register's pages stay shared
        fusion = _fuse_survey(catalog, own, step, survey, wave, donor, specific, methods, seed, donor_seed, networks)
        # in the order the fusion added them (household variables first), as the chain adds them
        imputed = set(specific)
        return {column: own[column] for column in own.columns if column in imputed}, fusion

    fusions: list[SurveyFusion] = []
    if resolved_jobs(processes) > 1 and len(plan) > 1 and _independent(catalog, plan, set(register.columns)):
        import_training_modules_for(catalog, [survey for _, survey, *_ in plan], methods)
        for columns, fusion in forked_imap(fused, plan, processes, on_log=on_log, on_peak=on_peak):
            for column, values in columns.items():
                base[column] = values
            fusions.append(fusion)
    else:
        for step, survey, wave, donor, specific in plan:
            fusions.append(_fuse_survey(catalog, base, step, survey, wave, donor, specific, methods, seed,
                                        donor_seed, networks))
    if len(base) != len(register):
        raise AssertionError("fusion changed the number of register records")
    return base, fusions


def _independent(catalog: Catalog, plan: list[tuple[int, str, str, pd.DataFrame, list[str]]],
                 register_columns: set[str]) -> bool:
    """Whether no survey reads a variable an earlier one imputes: its matching variables (configured
    or its common ones), donation classes, universe and its variables' universes name only what the
    register holds or it imputes itself (names found in the expressions' words: a conservative test)."""
    imputed: set[str] = set()
    for _, survey, _, _, specific in plan:
        source = catalog.sources[survey]
        config = catalog.release.matching.get(survey)
        texts = [source.universe or "", *(source.variables[v].universe or "" for v in source.specific)]
        read = {*source.common, *(config.on or [] if config else []), *(config.donation_classes if config else [])}
        read |= {word for text in texts for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)}
        if read & (imputed - register_columns):
            return False
        imputed.update(specific)
    return True


def import_training_modules_for(catalog: Catalog, surveys: Iterable[str], methods: dict[str, str]) -> bool:
    """torch's training modules imported here when one of ``surveys`` is fused by a method that trains
    networks (``neural.import_training_modules``): for a caller about to fork their fusions. True if so."""
    specs = (METHODS.get(survey_method(catalog, survey, methods)) for survey in surveys)
    if not any(spec is not None and spec.trains_networks for spec in specs):
        return False
    import_training_modules()
    return True


def survey_method(catalog: Catalog, survey: str, methods: dict[str, str]) -> str:
    """The method ``survey`` is fused with: ``methods``' override, else the catalog's, else the default."""
    config = catalog.release.matching.get(survey)
    return methods.get(survey) or (config.method if config else MatchingStep().method)


def _fuse_survey(catalog: Catalog, base: pd.DataFrame, step: int, survey: str, wave: str, donor: pd.DataFrame,
                 specific: list[str], methods: dict[str, str], seed: int, donor_seed: int | None = None,
                 networks: NetworkCache | None = None) -> SurveyFusion:
    """Impute ``survey``'s ``specific`` variables into ``base`` (in place), the ``step``-th fusion
    (``donor_seed`` and ``networks`` as in :func:`fuse_sources`)."""
    register_source = catalog.register
    household_id = register_source.household_id_column
    source = catalog.sources[survey]
    config = catalog.release.matching.get(survey)
    method = survey_method(catalog, survey, methods)
    options = dict(config.options) if config else {}
    if networks is not None and method == "neural_draw":
        options["networks"] = networks
    donor_seed = seed if donor_seed is None else donor_seed
    classes = list(config.donation_classes) if config else []
    household_level = [v for v in specific if source.level(v) == "household"]
    person_level = [v for v in specific if v not in household_level]
    on = _matching_variables(catalog, survey, base, config.on if config else None)
    weight = source.weight_column
    log.info("fusing %s (wave %s, %d donors) into %d records with %s on %s",
             survey, wave, len(donor), len(base), method, on)
    in_universe = (
        np.asarray(base.eval(source.universe), dtype=bool) if source.universe else np.ones(len(base), bool)
    )
    # Item non-response draws get a stream of their own: the fusions use seed + step, and
    # reusing those would tie the two draws together (and the next survey's).
    nonresponse_seed = int(np.random.SeedSequence([donor_seed, step]).generate_state(1)[0])
    parts: dict[str, dict[str, Any]] = {}
    nonresponse: dict[str, int] = {}
    donors_used = len(donor)
    # a bootstrap draw's rows name the delivered row they copy: a record and its copies are one donor
    # to a method that holds donors out (the head's row stands for its household)
    copies = [COPIES_COLUMN] if COPIES_COLUMN in donor.columns else []
    if household_level:
        donor_hh_id = source.household_id_column
        if donor_hh_id is None or household_id is None:  # the catalog refuses such a file
            raise ValueError(f"survey {survey!r} donates households: it and the register need a household id")
        recipient_view = household_view(base, household_id, on)
        donor_view = household_view(donor, donor_hh_id, on)
        donor_values = _head_rows(donor, donor_hh_id)[[donor_hh_id, *household_level, weight, *copies]]
        donor_view = donor_view.merge(donor_values, on=donor_hh_id, how="left")
        match_on = [c for c in recipient_view.columns if c != household_id and c in donor_view.columns]
        # One value per household: the household's answers are completed, then donated. A
        # universe of a household survey selects recipients (members outside it get the
        # not-applicable value below); its donors are whole households.
        donor_view, missing = impute_item_nonresponse(
            donor_view, on=match_on, impute=household_level, weight=weight, seed=nonresponse_seed,
            what=f"survey {survey!r} (wave {wave}, households)",
        )
        nonresponse.update(missing)
        result = fuse(
            recipient_view, donor_view, on=match_on, impute=household_level, donor_weight=weight,
            donation_classes=[c for c in classes if c in match_on] or None,
            method=method, seed=seed + step, donor_copies=next(iter(copies), None), **options,
        )
        _donate_to_members(base, result.data, household_id, household_level)
        parts["households"] = result.diagnostics.to_dict()
        donors_used = len(donor_view)
        if person_level:
            # Members answer given their household's facts: the donors' household values,
            # completed, on every member row, and recipients matched on those of their household.
            donor = donor.drop(columns=household_level).merge(
                donor_view[[donor_hh_id, *household_level]], on=donor_hh_id, how="left")
    if person_level:
        if source.universe:
            # The survey speaks for its universe only: a record outside it donates to nobody.
            donor = donor.loc[np.asarray(donor.eval(source.universe), dtype=bool)]
        person_on = on + [v for v in household_level if v not in on]
        conditioning = person_on + [c for c in classes if c not in person_on]
        # Variables with a universe of their own are fused among the persons it concerns.
        groups: dict[str | None, list[str]] = {}
        for column in person_level:
            groups.setdefault(source.variables[column].universe, []).append(column)
        for g, (universe, columns) in enumerate(groups.items()):
            label = "persons" if universe is None else f"persons with {universe}"
            concerned = donor.loc[np.asarray(donor.eval(universe), dtype=bool)] if universe else donor
            g_seed = (nonresponse_seed if g == 0
                      else int(np.random.SeedSequence([donor_seed, step, g]).generate_state(1)[0]))
            concerned, missing = impute_item_nonresponse(
                concerned, on=conditioning, impute=columns, weight=weight, seed=g_seed,
                what=f"survey {survey!r} (wave {wave}{', ' + universe if universe else ''})",
            )
            nonresponse.update(missing)
            selected = in_universe & (np.asarray(base.eval(universe), dtype=bool) if universe else True)
            # the matching columns only: the whole base, copied, was the step's largest frame
            recipients = base.loc[selected, list(dict.fromkeys(conditioning))]
            result = fuse(
                recipients, concerned, on=person_on, impute=columns, donor_weight=weight,
                donation_classes=classes or None, method=method, seed=seed + step + 1000 * g,
                donor_copies=next(iter(copies), None), **options,
            )
            for column in columns:
                values = result.data[column]
                values.index = recipients.index
                base[column] = values.reindex(base.index)  # nulls of the column's own dtype, filled below
            parts[label] = result.diagnostics.to_dict()
            if g == 0:
                donors_used = len(concerned)
    for column in specific:
        concerns = variable_concerns(base, source, column)
        base[column] = _not_applicable(base[column], ~concerns, source, f"sources.{survey}.variables.{column}")
        _assert_complete(base.loc[concerns, [column]], survey)
    # each fusion's temporaries (network inputs, predictions, neighbours) are the register's size:
    # handed back before the next survey, not left in the heap for the next one's to pile on
    release_free_memory()
    diagnostics: dict[str, Any] = dict(next(iter(parts.values()))) if len(parts) == 1 else {"parts": parts}
    diagnostics["item_nonresponse"] = dict(nonresponse)
    return SurveyFusion(
        survey=survey, wave=wave, method=method, unit=source.unit, on=on, imputed=specific,
        donors=donors_used, diagnostics=diagnostics, item_nonresponse=dict(nonresponse),
        household_variables=household_level,
    )


def _donate_to_members(base: pd.DataFrame, households: pd.DataFrame, household_id: str, columns: list[str]) -> None:
    """Every member of a recipient household gets its household's imputed ``columns`` (in place).

    Looked up by position rather than merged: a merge copies the whole base.
    """
    ids = pd.Index(households[household_id])
    if not ids.is_unique:
        raise AssertionError(f"household fusion returned household {ids[ids.duplicated()][0]!r} twice")
    rows = ids.get_indexer(base[household_id])
    if (rows < 0).any():
        raise AssertionError(f"household {base[household_id].iloc[np.flatnonzero(rows < 0)[0]]!r} got no donor")
    for column in columns:
        values = households[column].iloc[rows]
        values.index = base.index
        base[column] = values


def variable_concerns(table: pd.DataFrame, source: Source, column: str) -> np.ndarray:
    """Records a specific variable concerns: in the source's universe and the variable's own."""
    universe = source.variable_universe(column)
    return np.asarray(table.eval(universe), dtype=bool) if universe else np.ones(len(table), bool)


def households_disagreeing(data: pd.DataFrame, household_id: str, variables: list[str],
                           by: list[str] | None = None) -> dict[str, int]:
    """Per household variable, the households whose members do not all hold the same value.

    ``by`` (e.g. the replicate) separates households of different tables that share ids.
    A missing value counts as a value: a household with one member missing disagrees.
    """
    present = [v for v in variables if v in data.columns]
    if not present or data.empty:
        return {}
    keys = [*(by or []), household_id]
    distinct = data.groupby(keys, sort=False, observed=True)[present].nunique(dropna=False)
    return {v: int((distinct[v] > 1).sum()) for v in present if (distinct[v] > 1).any()}


def _not_applicable(column: pd.Series, outside: np.ndarray, source: Source, where: str) -> pd.Series:
    """``column`` with the catalog's not-applicable value where ``outside`` (dtype and categories kept)."""
    if not outside.any():
        return column
    value = source.variables[str(column.name)].not_applicable
    if value is None:  # the catalog requires one wherever there is a universe
        raise ValueError(f"{where}: no 'not_applicable' value for recipients outside the universe")
    column = column.copy()
    if isinstance(column.dtype, pd.CategoricalDtype):
        value = str(value)
        if value not in column.cat.categories:
            column = column.cat.add_categories([value])
    column[outside] = value
    return column


def _assert_complete(values: pd.DataFrame, survey: str) -> None:
    """No recipient in a survey's universe may be left without a value (item non-response was imputed)."""
    counts = values.isna().sum()
    if counts.any():
        raise AssertionError(
            f"survey {survey!r}: recipients in the universe left without a value: {counts[counts > 0].to_dict()}"
        )


def assert_no_survey_ids(matched: pd.DataFrame, catalog: Catalog) -> None:
    """Survey ids and weights must not leak into the base (they identify survey respondents)."""
    leaked = []
    for name, source in catalog.surveys.items():
        for column in (source.id_column, source.weight_column):
            if column and column in matched.columns and column not in catalog.register.variables:
                leaked.append(f"{name}.{column}")
    if leaked:
        raise AssertionError(f"survey identifiers leaked into the matched dataset: {leaked}")

