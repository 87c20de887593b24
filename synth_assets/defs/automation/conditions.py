"""Automation conditions of the release assets (see ``sensors.py`` and ``schedules.py`` for the rest).

Release assets carry an eager automation condition that also waits for every blocking
check upstream, so a refused wave goes no further (automation ignores ``blocking=True``
unless told). Donor assets start when a new register wave appears.
"""

import dagster as dg

RELEASE_AUTOMATION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
)
# Donors read every wave of their survey: under eager(), each new survey wave would rebuild
# every past release. A donor partition is requested once, when its release wave appears;
# a survey wave arriving after that is taken up by the monthly refresh or by hand.
DONOR_AUTOMATION = (
    dg.AutomationCondition.on_missing() & dg.AutomationCondition.all_deps_blocking_checks_passed()
)
