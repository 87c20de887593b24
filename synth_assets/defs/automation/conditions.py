"""Automation conditions of the release assets (see ``sensors.py`` and ``schedules.py`` for the rest).

Release assets carry an eager automation condition that also waits for every blocking
check upstream, so a refused wave goes no further (automation ignores ``blocking=True``
unless told). Donor assets start when their register wave is harmonised.
"""

import dagster as dg

RELEASE_AUTOMATION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
)


def donor_automation(trigger: dg.AssetKey) -> dg.AutomationCondition:
    """A donor partition is requested when its register wave is harmonised (``trigger``: the
    harmonised register, a dependency of every donor) or when the partition newly appears; a
    donor's survey records, the same way when their donor is rebuilt (``trigger``: the donor).

    Not ``on_missing()`` alone: "missing" turns newly true when the wave partition is added, and
    Dagster's first evaluation of a condition counts every partition as handled. When the
    incoming sensor added the wave before the automation sensor's first tick (a file dropped as
    ``make ui`` starts), the donors were never requested and the release stalled after
    ``calibration_targets``. Nor ``eager()``: donors read every wave of their survey, so each
    new survey wave would rebuild every past release; a survey wave arriving after its release
    is taken up by the monthly refresh or by hand.
    """
    trigger_updated = (dg.AutomationCondition.any_deps_updated().allow(dg.AssetSelection.assets(trigger))
                       .with_label(f"{trigger.path[-1]}_updated"))
    return (
        (dg.AutomationCondition.newly_missing() | trigger_updated).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    )
