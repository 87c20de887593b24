"""Calibration to the register: the targets every release must meet, and the gate's check.

``calibration_targets`` holds the register's margins (small cells merged), the only thing
of the register the release reproduces. ``fictitious_dataset`` meets them; the blocking
check ``calibrated_to_register`` recomputes them on the fictitious data and, beside them,
the household size x type table straight from the register, so a release that drifts from
the population is refused naming the cell.
"""

import dagster as dg
import pandas as pd

from synth_assets.calibration import register_targets, spec_from_catalog
from synth_assets.calibration.tails import tail_thresholds
from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.defs import keys, working_sets
from synth_assets.defs.automation.conditions import RELEASE_AUTOMATION
from synth_assets.defs.partitions import wave_partitions
from synth_assets.defs.versions import code_version

#: A hash of the source this module runs (see ``defs/versions.py``).
CALIBRATION_CODE_VERSION = code_version(__name__)


def build_calibration_targets(catalog: Catalog) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.CALIBRATION_TARGETS,
        op_tags=working_sets.POPULATION,
        automation_condition=RELEASE_AUTOMATION,
        group_name="calibration",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=CALIBRATION_CODE_VERSION,
        kinds={"pandas"},
        ins={"register": dg.AssetIn(keys.harmonised(catalog.register_name))},
        description=(
            "The register's margins a release must meet (catalog `release.calibration`): persons by "
            "municipality x sex x age band, households by municipality x type x size, income totals and "
            "their non-zero counts; cells under `min_cell` merged, so no small count is reproduced."
        ),
    )
    def calibration_targets(register: ParquetTable) -> dg.Output[pd.DataFrame]:
        # the release is top-coded (no extreme amount published as drawn): so are its targets. The
        # register is read in parts of whole households, a row group at a time (its counts add up).
        targets = register_targets(register, spec_from_catalog(catalog), household_key(catalog),
                                   top_coding=amount_thresholds(catalog, register))
        controls = targets.to_frame()
        summary = controls.groupby("margin", sort=False).agg(controls=("target", "size"), smallest=("target", "min"))
        return dg.Output(
            controls,
            metadata={
                "persons": targets.persons,
                "households": targets.households,
                "controls": len(controls),
                "margins": dg.MetadataValue.md(summary.to_markdown()),
            },
        )

    return calibration_targets


def household_key(catalog: Catalog) -> str:
    """The register's household id column (its person id when it has none: each person a household)."""
    column = catalog.register.household_id_column or catalog.register.id_column
    if column is None:
        raise ValueError(f"register {catalog.register_name!r}: the catalog names no id or household id column")
    return column


def amount_thresholds(catalog: Catalog, real: pd.DataFrame | ParquetTable) -> dict[str, float]:
    """Top-coding thresholds of the catalog's amounts found in ``real`` (empty when switched off);
    a table on disk read one amount at a time (a quantile needs its whole column, not the others)."""
    quantile = catalog.release.top_coding.quantile
    if quantile is None:
        return {}
    amounts = [v for v in catalog.amounts() if v in real.columns]
    if isinstance(real, ParquetTable):
        return {v: t for amount in amounts for v, t in tail_thresholds(real.read([amount]), [amount], quantile).items()}
    return tail_thresholds(real, amounts, quantile)
