"""Every asset key and check name of the graph, defined once; every other module imports them.

Per-source assets (``raw_<source>``, ``harmonised_<source>``, ``donor_<survey>``) are
keyed by the catalog's source names, so they are functions; the release chain is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg


def incoming(source: str) -> dg.AssetKey:
    """The files delivered to ``data/incoming`` for ``source``: an observable source asset, one
    partition per wave, whose data version is the file's sha256 (group ``ingest``)."""
    return dg.AssetKey(f"incoming_{source}")


def raw(source: str) -> dg.AssetKey:
    """The file delivered for one wave of ``source``, read as is (group ``ingest``)."""
    return dg.AssetKey(f"raw_{source}")


def harmonised(source: str) -> dg.AssetKey:
    """One wave of ``source`` on the common schema (group ``harmonise``)."""
    return dg.AssetKey(f"harmonised_{source}")


def donor(survey: str) -> dg.AssetKey:
    """The survey's records a release matches from (group ``matching``)."""
    return dg.AssetKey(f"donor_{survey}")


def survey_records(source: str) -> dg.AssetKey:
    """A record survey's harmonised diary episodes or trips of the wave a release fuses (group ``matching``)."""
    return dg.AssetKey(f"survey_records_{source}")


def linked(source: str) -> dg.AssetKey:
    """The diary days or trips generated for a release's fictitious persons (group ``synthesis``)."""
    return dg.AssetKey(f"linked_{source}")


MATCHED_DATASET = dg.AssetKey("matched_dataset")
MATCHING_REPORT = dg.AssetKey("matching_report")
MATCHED_REPLICATES = dg.AssetKey("matched_replicates")
TRAINING_SAMPLE = dg.AssetKey("training_sample")
HOLDOUT_SAMPLE = dg.AssetKey("holdout_sample")
POPULATION_MODEL = dg.AssetKey("population_model")
CALIBRATION_TARGETS = dg.AssetKey("calibration_targets")
FICTITIOUS_DATASET = dg.AssetKey("fictitious_dataset")
VALIDATION_REPORT = dg.AssetKey("validation_report")
PUBLIC_DATASET = dg.AssetKey("public_dataset")

#: The assets one release run builds per register wave, in pipeline order (plus a donor per survey).
RELEASE_CHAIN: tuple[dg.AssetKey, ...] = (
    MATCHED_DATASET, MATCHING_REPORT, MATCHED_REPLICATES, TRAINING_SAMPLE, HOLDOUT_SAMPLE, POPULATION_MODEL, CALIBRATION_TARGETS,
    FICTITIOUS_DATASET, VALIDATION_REPORT, PUBLIC_DATASET,
)


def release_assets(surveys: Iterable[str], record_sources: Iterable[str] = ()) -> list[dg.AssetKey]:
    """Every asset of the release run: the chain, one donor per survey, and per record survey
    its records and the linked table generated from them."""
    record_sources = list(record_sources)
    return [*RELEASE_CHAIN, *(donor(s) for s in surveys), *(survey_records(s) for s in record_sources),
            *(linked(s) for s in record_sources)]


def name(key: dg.AssetKey) -> str:
    """The asset's name, which is also its op's name in run config (``{"ops": {name: ...}}``)."""
    return key.to_python_identifier()


# Check names, per asset
DELIVERED_FILE_IS_VALID = "delivered_file_is_valid"  # raw_<source>
CONFORMS_TO_COMMON_SCHEMA = "conforms_to_common_schema"  # harmonised_<source>
NO_REAL_RECORD_COPIED = "no_real_record_copied"  # fictitious_dataset
RULES_AND_CATEGORIES_HOLD = "rules_and_categories_hold"  # fictitious_dataset
CALIBRATED_TO_REGISTER = "calibrated_to_register"  # fictitious_dataset
AMOUNTS_TOP_CODED = "amounts_top_coded"  # fictitious_dataset
THRESHOLDS_PASS = "thresholds_pass"  # validation_report
HOUSEHOLD_VARIABLES_CONSTANT = "household_variables_constant"  # matched_dataset, fictitious_dataset
NO_REAL_DAY_COPIED = "no_real_day_copied"  # linked_<source>
AGGREGATES_AGREE = "aggregates_agree_with_persons"  # linked_<source>
DISTRIBUTIONS_REPORTED = "distributions_against_survey"  # linked_<source>

#: The blocking checks a fictitious dataset must pass, on the very data received, to be published.
GATE_CHECKS: dict[dg.AssetKey, tuple[str, ...]] = {
    FICTITIOUS_DATASET: (NO_REAL_RECORD_COPIED, RULES_AND_CATEGORIES_HOLD, CALIBRATED_TO_REGISTER, AMOUNTS_TOP_CODED,
                         HOUSEHOLD_VARIABLES_CONSTANT),
    VALIDATION_REPORT: (THRESHOLDS_PASS,),
}

#: The blocking checks each linked table must pass, on the very table received, to be published.
LINKED_GATE_CHECKS: tuple[str, ...] = (NO_REAL_DAY_COPIED, AGGREGATES_AGREE)
