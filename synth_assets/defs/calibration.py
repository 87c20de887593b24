"""Calibration to the register: the targets every release must meet, and the gate's check.

``calibration_targets`` holds the register's margins (small cells merged), the only thing
of the register the release reproduces. ``fictitious_dataset`` meets them; the blocking
check ``calibrated_to_register`` recomputes them on the fictitious data and, beside them,
the household size x type table straight from the register, so a release that drifts from
the population is refused naming the cell.
"""

import dagster as dg
import pandas as pd

from synth_assets.calibration.tails import tail_thresholds, top_code
from synth_assets.catalog import Catalog
from synth_assets.common.distances import total_variation
from synth_assets.defs.automation import RELEASE_AUTOMATION
from synth_assets.defs.metadata import judged
from synth_assets.defs.partitions import wave_partitions

CALIBRATION_CODE_VERSION = "1"

def build_calibration_targets(catalog: Catalog) -> dg.AssetsDefinition:
    register = catalog.register

    @dg.asset(
        name="calibration_targets",
        automation_condition=RELEASE_AUTOMATION,
        group_name="calibration",
        partitions_def=wave_partitions(catalog.register_name),
        code_version=CALIBRATION_CODE_VERSION,
        kinds={"pandas"},
        ins={"register": dg.AssetIn(f"harmonised_{catalog.register_name}")},
        description=(
            "The register's margins a release must meet (catalog `release.calibration`): persons by "
            "municipality x sex x age band, households by municipality x type x size, income totals and "
            "their non-zero counts; cells under `min_cell` merged, so no small count is reproduced."
        ),
    )
    def calibration_targets(register: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        from synth_assets.calibration import register_targets, spec_from_catalog

        # the release is top-coded (no extreme amount published as drawn): so are its targets
        register, _ = top_code(register, amount_thresholds(catalog, register))
        targets = register_targets(register, spec_from_catalog(catalog), catalog.register.household_id_column)
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


def amount_thresholds(catalog: Catalog, real: pd.DataFrame) -> dict[str, float]:
    """Top-coding thresholds of the catalog's amounts found in ``real`` (empty when switched off)."""
    quantile = catalog.release.top_coding.quantile
    if quantile is None:
        return {}
    return tail_thresholds(real, [v for v in catalog.amounts() if v in real.columns], quantile)


def build_top_coding_check(catalog: Catalog) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="fictitious_dataset",
        name="amounts_top_coded",
        blocking=True,
        partitions_def=wave_partitions(catalog.register_name),
        additional_ins={"matched": dg.AssetIn("matched_dataset")},
        description=(
            "No amount beyond the catalog's quantile of the real variable's non-zero values "
            "(`release.top_coding`, default 0.999): extreme real values are never published as drawn."
        ),
    )
    def amounts_top_coded(fictitious_dataset: pd.DataFrame, matched: pd.DataFrame) -> dg.AssetCheckResult:
        thresholds = amount_thresholds(catalog, matched)
        beyond = {v: int((pd.to_numeric(fictitious_dataset[v], errors="coerce").abs() > t + 1e-9).sum())
                  for v, t in thresholds.items() if v in fictitious_dataset}
        worst = {v: n for v, n in beyond.items() if n}
        return dg.AssetCheckResult(
            passed=not worst,
            description=("values beyond the top-coding threshold: " + ", ".join(
                f"{v}: {n} above {thresholds[v]:.6g}" for v, n in worst.items())) if worst else None,
            metadata={"thresholds": dg.MetadataValue.json({v: round(t, 2) for v, t in thresholds.items()}),
                      **judged(fictitious_dataset)},
        )

    return amounts_top_coded


def household_structure_tvd(
    released: pd.DataFrame, register: pd.DataFrame, household_id: str, columns: list[str]
) -> tuple[float, str]:
    """TVD of the household table over ``columns`` and its cell furthest from the register."""
    def shares(frame: pd.DataFrame) -> pd.Series:
        heads = frame.drop_duplicates(household_id)
        return heads.groupby([heads[c].astype(str) for c in columns]).size() / len(heads)

    real, synthetic = shares(register), shares(released)
    cells = real.index.union(synthetic.index)
    released_shares, register_shares = synthetic.reindex(cells, fill_value=0), real.reindex(cells, fill_value=0)
    gap = released_shares - register_shares
    worst = gap.abs().idxmax()
    cell = ", ".join(f"{c}={v}" for c, v in zip(columns, worst if isinstance(worst, tuple) else (worst,)))
    return total_variation(released_shares, register_shares), f"{cell}: {synthetic.get(worst, 0):.2%} released vs {real.get(worst, 0):.2%} in the register"


def build_calibration_check(catalog: Catalog) -> dg.AssetChecksDefinition:
    household_id = catalog.register.household_id_column

    @dg.asset_check(
        asset="fictitious_dataset",
        name="calibrated_to_register",
        blocking=True,
        partitions_def=wave_partitions(catalog.register_name),
        additional_ins={
            "targets": dg.AssetIn("calibration_targets"),
            "register": dg.AssetIn(f"harmonised_{catalog.register_name}"),
        },
        description=(
            "Every replicate meets the register's margins within the catalog's tolerances (unit "
            "weights), and its household size x type table is within "
            f"{catalog.release.calibration.household_structure_tvd} (TVD) of the register's."
        ),
    )
    def calibrated_to_register(
        fictitious_dataset: pd.DataFrame, targets: pd.DataFrame, register: pd.DataFrame
    ) -> dg.AssetCheckResult:
        from synth_assets.calibration import Targets, spec_from_catalog

        spec = spec_from_catalog(catalog)
        problems: list[str] = []
        rows = []
        structure = [c for c in ("household_size", "household_type") if c in register.columns]
        replicates = fictitious_dataset.groupby("replicate") if "replicate" in fictitious_dataset else [(1, fictitious_dataset)]
        for replicate, data in replicates:
            # judged whether or not fictitious_dataset calibrated: the promise is the register's
            residuals = Targets.from_frame(spec, targets).residuals(data, household_id)
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
            if structure:
                tvd, cell = household_structure_tvd(data, register, household_id, structure)
                limit = catalog.release.calibration.household_structure_tvd
                if tvd > limit:
                    problems.append(f"replicate {replicate}: household {' x '.join(structure)} TVD {tvd:.4f} "
                                    f"> {limit} (worst cell {cell})")
                if rows:
                    rows[-1]["household_structure_tvd"] = round(tvd, 5)
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) if problems else None,
            metadata={"replicates": dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False) if rows else "-"),
                      **judged(fictitious_dataset)},
        )

    return calibrated_to_register
