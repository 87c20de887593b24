"""Household variables identical within every household: a blocking check on the matched and the fictitious data."""

import dagster as dg

from synth_assets.catalog import Catalog
from synth_assets.common.frames import ParquetTable
from synth_assets.defs import keys, working_sets
from synth_assets.defs.metadata import judged
from synth_assets.defs.partitions import wave_partitions
from synth_assets.matching.sources import households_disagreeing


def build_household_variables_check(catalog: Catalog, asset: dg.AssetKey) -> dg.AssetChecksDefinition:
    """``asset``'s household variables (the surveys' ``level: household``) constant within households."""
    household_id = catalog.register.household_id_column
    variables = catalog.household_variables()

    @dg.asset_check(
        asset=asset,
        name=keys.HOUSEHOLD_VARIABLES_CONSTANT,
        op_tags=working_sets.STREAMED,
        blocking=True,
        partitions_def=wave_partitions(catalog.register_name),
        description=(
            "Every household variable of the surveys (`level: household`, or a household survey's) "
            f"holds one value per household, the same for every member: {', '.join(variables) or 'none declared'}."
        ),
    )
    def household_variables_constant(data: ParquetTable) -> dg.AssetCheckResult:
        by = ["replicate"] if "replicate" in data.columns else []
        # parts of whole households, a row group at a time (the tables come sorted by household), so
        # the check holds a row group whatever the population's size
        counts: dict[str, int] = {}
        households = 0
        if household_id:
            keys = [*by, household_id]
            for part in data.whole_parts(keys, [v for v in variables if v in data.columns]):
                for variable, n in households_disagreeing(part, household_id, variables, by=by).items():
                    counts[variable] = counts.get(variable, 0) + n
                households += int(part[keys].drop_duplicates().shape[0])
        disagreeing = {v: counts[v] for v in variables if v in counts}
        return dg.AssetCheckResult(
            passed=not disagreeing,
            description=("households whose members differ on a household variable: " + ", ".join(
                f"{v}: {n} of {households}" for v, n in disagreeing.items())) if disagreeing else None,
            metadata={"household_variables": dg.MetadataValue.json(variables),
                      "households_disagreeing": dg.MetadataValue.json(disagreeing), "households": households,
                      **judged(data)},
        )

    return household_variables_constant
