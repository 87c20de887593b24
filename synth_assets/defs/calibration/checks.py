"""Calibration's blocking checks on ``fictitious_dataset``: the register's margins met, amounts top-coded."""

import dagster as dg
import pandas as pd

from synth_assets.calibration import Targets, spec_from_catalog
from synth_assets.calibration.structure import household_cells, household_structure_tvd
from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.defs import keys, working_sets
from synth_assets.defs.calibration.assets import amount_thresholds, household_key
from synth_assets.defs.metadata import judged
from synth_assets.defs.partitions import wave_partitions


def build_top_coding_check(catalog: Catalog) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=keys.FICTITIOUS_DATASET,
        name=keys.AMOUNTS_TOP_CODED,
        op_tags=working_sets.STREAMED,
        blocking=True,
        partitions_def=wave_partitions(catalog.register_name),
        additional_ins={"matched": dg.AssetIn(keys.MATCHED_DATASET)},
        description=(
            "No amount beyond the catalog's quantile of the real variable's non-zero values "
            "(`release.top_coding`, default 0.999): extreme real values are never published as drawn."
        ),
    )
    def amounts_top_coded(fictitious_dataset: ParquetTable, matched: ParquetTable) -> dg.AssetCheckResult:
        thresholds = amount_thresholds(catalog, matched)
        amounts = [v for v in thresholds if v in fictitious_dataset.columns]
        beyond = dict.fromkeys(amounts, 0)
        for block in fictitious_dataset.frames(amounts):  # a row group of the amounts at a time
            for v in amounts:
                beyond[v] += int((pd.to_numeric(block[v], errors="coerce").abs() > thresholds[v] + 1e-9).sum())
        worst = {v: n for v, n in beyond.items() if n}
        return dg.AssetCheckResult(
            passed=not worst,
            description=("values beyond the top-coding threshold: " + ", ".join(
                f"{v}: {n} above {thresholds[v]:.6g}" for v, n in worst.items())) if worst else None,
            metadata={"thresholds": dg.MetadataValue.json({v: round(t, 2) for v, t in thresholds.items()}),
                      **judged(fictitious_dataset)},
        )

    return amounts_top_coded


def build_calibration_check(catalog: Catalog) -> dg.AssetChecksDefinition:
    household_id = household_key(catalog)

    @dg.asset_check(
        asset=keys.FICTITIOUS_DATASET,
        name=keys.CALIBRATED_TO_REGISTER,
        op_tags=working_sets.STREAMED,
        blocking=True,
        partitions_def=wave_partitions(catalog.register_name),
        additional_ins={
            "targets": dg.AssetIn(keys.CALIBRATION_TARGETS),
            "register": dg.AssetIn(keys.harmonised(catalog.register_name)),
        },
        description=(
            "Every replicate meets the register's margins within the catalog's tolerances (unit "
            "weights), and its household size x type table is within "
            f"{catalog.release.calibration.household_structure_tvd} (TVD) of the register's."
        ),
    )
    def calibrated_to_register(
        fictitious_dataset: ParquetTable, targets: pd.DataFrame, register: ParquetTable
    ) -> dg.AssetCheckResult:
        # the release and the register read in parts of whole households, a row group at a time:
        # the step holds a row group and the tables' counts, whatever the population's size
        problems: list[str] = []
        rows = []
        structure = [c for c in ("household_size", "household_type") if c in register.columns]
        # judged whether or not fictitious_dataset calibrated: the promise is the register's
        residuals_of = Targets.from_frame(spec_from_catalog(catalog), targets).replicate_residuals(
            fictitious_dataset, household_id)
        released_cells = household_cells(fictitious_dataset, household_id, structure) if structure else {}
        register_cells = household_cells(register, household_id, structure).get(1) if structure else None
        for replicate, residuals in residuals_of.items():
            off = residuals[~residuals["within"]]
            if len(off):
                worst = off.reindex(off["difference"].abs().sort_values(ascending=False).index).iloc[0]
                problems.append(
                    f"replicate {replicate}: {len(off)} controls beyond tolerance, worst {worst['margin']} "
                    f"[{worst['label']}]: {worst['released']:.6g} released vs {worst['target']:.6g} in the register "
                    f"(tolerance {worst['tolerance']:g})"
                )
            rows.append({"replicate": replicate, "controls": len(residuals), "beyond_tolerance": len(off),
                         "max_abs_count_difference": float(residuals.loc[residuals["kind"] == "count", "difference"].abs().max())})
            if register_cells is not None:
                tvd, cell = household_structure_tvd(released_cells[replicate], register_cells, structure)
                limit = catalog.release.calibration.household_structure_tvd
                if tvd > limit:
                    problems.append(f"replicate {replicate}: household {' x '.join(structure)} TVD {tvd:.4f} "
                                    f"> {limit} (worst cell {cell})")
                rows[-1]["household_structure_tvd"] = round(tvd, 5)
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) if problems else None,
            metadata={"replicates": dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False) if rows else "-"),
                      **judged(fictitious_dataset)},
        )

    return calibrated_to_register
