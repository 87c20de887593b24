"""Fusing every survey of the catalog into the register base, one survey after another.

Person-level surveys are matched person to person. Household-level surveys (budgets,
wealth) are matched household to household on the head's common variables and the
household's size and labour income, then every member of the recipient household gets the
donor household's values: the household stays coherent and the survey's variables keep
their joint relations, since a whole block comes from one donor.

Before fusing, a survey's item non-response is imputed from its own respondents
(:mod:`synth_assets.matching.nonresponse`): a missing answer is never copied into the
population.  Recipients outside a survey's ``universe`` get each variable's catalog
``not_applicable`` value (e.g. -8 hours for persons over 74), not an imputation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synth_assets.catalog import Catalog
from synth_assets.catalog.model import MatchingStep, Source
from synth_assets.matching.api import fuse
from synth_assets.matching.nonresponse import impute_item_nonresponse

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


def _head_rows(table: pd.DataFrame, household_id: str) -> pd.DataFrame:
    """One row per household: the head's where relation is known, else the first member."""
    if "relation" in table:
        order = (table["relation"].astype("string") != "head").astype(int)
        table = table.assign(_order=order.to_numpy()).sort_values([household_id, "_order"], kind="stable")
        table = table.drop(columns="_order")
    return table.drop_duplicates(household_id, keep="first")


def household_view(table: pd.DataFrame, household_id: str, common: list[str]) -> pd.DataFrame:
    """Household-level matching variables: the head's common variables plus household totals."""
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
) -> tuple[pd.DataFrame, list[SurveyFusion]]:
    """Impute each survey's specific variables into the register, in catalog order.

    ``surveys`` maps survey name to (wave used, harmonised table). ``methods`` overrides the
    catalog's method per survey. Returns the matched base (same rows and order as the
    register) and one :class:`SurveyFusion` per survey.
    """
    methods = methods or {}
    base = register.reset_index(drop=True).copy()
    register_source = catalog.register
    household_id = register_source.household_id_column
    fusions: list[SurveyFusion] = []
    for step, (survey, (wave, donor)) in enumerate(surveys.items()):
        source = catalog.sources[survey]
        config = catalog.release.matching.get(survey)
        method = methods.get(survey) or (config.method if config else MatchingStep().method)
        options = dict(config.options) if config else {}
        classes = list(config.donation_classes) if config else []
        specific = [v for v in source.specific if v not in base.columns]
        on = _matching_variables(catalog, survey, base, config.on if config else None)
        weight = source.weight_column
        log.info("fusing %s (wave %s, %d donors) into %d records with %s on %s",
                 survey, wave, len(donor), len(base), method, on)
        in_universe = (
            np.asarray(base.eval(source.universe), dtype=bool) if source.universe else np.ones(len(base), bool)
        )
        # Item non-response draws get a stream of their own: the fusions use seed + step, and
        # reusing those would tie the two draws together (and the next survey's).
        nonresponse_seed = int(np.random.SeedSequence([seed, step]).generate_state(1)[0])
        if source.unit == "household":
            donor_hh_id = source.household_id_column
            if donor_hh_id is None or household_id is None:  # the catalog refuses such a file
                raise ValueError(f"survey {survey!r} donates households: it and the register need a household id")
            recipient_view = household_view(base, household_id, on)
            donor_view = household_view(donor, donor_hh_id, on)
            donor_values = _head_rows(donor, donor_hh_id)[[donor_hh_id, *specific, weight]]
            donor_view = donor_view.merge(donor_values, on=donor_hh_id, how="left")
            match_on = [c for c in recipient_view.columns if c != household_id and c in donor_view.columns]
            # One value per household: the household's answers are completed, then donated. A
            # universe of a household survey selects recipients (members outside it get the
            # not-applicable value below); its donors are whole households.
            donor_view, nonresponse = impute_item_nonresponse(
                donor_view, on=match_on, impute=specific, weight=weight, seed=nonresponse_seed,
                what=f"survey {survey!r} (wave {wave}, households)",
            )
            result = fuse(
                recipient_view, donor_view, on=match_on, impute=specific, donor_weight=weight,
                donation_classes=[c for c in classes if c in match_on] or None,
                method=method, seed=seed + step, **options,
            )
            imputed = result.data[[household_id, *specific]]
            base = base.merge(imputed, on=household_id, how="left", validate="many_to_one")
        else:
            if source.universe:
                # The survey speaks for its universe only: a record outside it donates to nobody.
                donor = donor.loc[np.asarray(donor.eval(source.universe), dtype=bool)]
            conditioning = on + [c for c in classes if c not in on]
            donor, nonresponse = impute_item_nonresponse(
                donor, on=conditioning, impute=specific, weight=weight, seed=nonresponse_seed,
                what=f"survey {survey!r} (wave {wave})",
            )
            recipients = base.loc[in_universe]
            result = fuse(
                recipients, donor, on=on, impute=specific, donor_weight=weight,
                donation_classes=classes or None, method=method, seed=seed + step, **options,
            )
            for column in specific:
                values = result.data[column]
                values.index = recipients.index
                base[column] = values.reindex(base.index)  # nulls of the column's own dtype, filled below
        for column in specific:
            base[column] = _not_applicable(base[column], ~in_universe, source, f"sources.{survey}.variables.{column}")
        _assert_complete(base.loc[in_universe, specific], survey)
        diagnostics = result.diagnostics.to_dict()
        diagnostics["item_nonresponse"] = dict(nonresponse)
        fusions.append(
            SurveyFusion(
                survey=survey, wave=wave, method=method, unit=source.unit, on=on, imputed=specific,
                donors=len(donor), diagnostics=diagnostics, item_nonresponse=dict(nonresponse),
            )
        )
    if len(base) != len(register):
        raise AssertionError("fusion changed the number of register records")
    return base, fusions


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

